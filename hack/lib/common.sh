# Shared settings and helpers for the lab scripts. Sourced, never run.
# Every setting can be overridden from the environment.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${APIM_CACHE_DIR:-$HOME/.cache/apim-lab}"
LAB_DIR="${APIM_LAB_DIR:-$REPO_ROOT/.lab}"

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
LOG4J_VERSION="${LOG4J_VERSION:-2.25.3}"
ANSIBLE_CORE_VERSION="${ANSIBLE_CORE_VERSION:-2.19.*}"

ETCD_PORT="${APIM_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${APIM_ETCD_PEER_PORT:-2380}"
APISERVER_PORT="${APIM_APISERVER_PORT:-6443}"
KCM_PORT="${APIM_KCM_PORT:-10257}"
KAFKA_PORT="${APIM_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${APIM_KAFKA_CONTROLLER_PORT:-9093}"
SIM_PORT="${APIM_SIM_PORT:-5555}"
WEBHOOK_PORT="${APIM_WEBHOOK_PORT:-8443}"
OPERATOR_PORT="${APIM_OPERATOR_PORT:-8080}"

K8S_BIN="$CACHE_DIR/k8s-$K8S_VERSION"
ETCD_BIN="$CACHE_DIR/etcd-$ETCD_VERSION"
KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION-$(cksum < "$REPO_ROOT/hack/kafka/pom.xml" | cut -d" " -f1)/libs"

# Loopback traffic must never go through a proxy.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

say()  { printf '\033[1m[lab]\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[31m[lab] error:\033[0m %s\n' "$*" >&2; exit 1; }

need_cmd() { # need_cmd CMD "how to fix"
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"
}

port_in_use() { # port_in_use PORT -> 0 when something listens on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pid_alive() { # pid_alive NAME -> 0 when the lab process NAME runs
  local f="$LAB_DIR/run/$1.pid"
  [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start_bg NAME LOGFILE CMD... : starts CMD detached, records its pid.
start_bg() {
  local name="$1" log="$2"; shift 2
  mkdir -p "$LAB_DIR/run" "$LAB_DIR/logs"
  setsid "$@" >>"$log" 2>&1 < /dev/null &
  echo $! > "$LAB_DIR/run/$name.pid"
}

stop_bg() { # stop_bg NAME : SIGTERM, then SIGKILL after 10 s
  local f="$LAB_DIR/run/$1.pid" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_until SECONDS WHAT CMD... : polls CMD every 0.2 s, dies with WHAT after SECONDS.
wait_until() {
  local secs="$1" what="$2"; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || die "$what did not become ready within ${secs}s"
    sleep 0.2
  done
}

# wait_started NAME SECONDS LOG CMD... : like wait_until for the lab process NAME, but
# fails at once, with the last lines of LOG, when the process exits.
wait_started() {
  local name="$1" secs="$2" log="$3"; shift 3
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$name"; then
      tail -n 5 "$log" >&2 || true
      die "$name exited during start-up (log: $log)"
    fi
    (( $(date +%s) < deadline )) || die "$name did not become ready within ${secs}s (log: $log)"
    sleep 0.2
  done
}

elapsed_since() { echo $(( $(date +%s) - $1 )); }
