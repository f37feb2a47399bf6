# Our own processes in the lab: simulator, webhook, operator; CRDs and examples. Sourced.

BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"

# Builds the workspace, every target: the same cargo invocation shape as hack/test's
# `cargo test --workspace --all-targets`, so the quick start and the tests share one build
# (cargo unifies dependency features over the packages and targets it is asked for).
build_binaries() {
  say "building the workspace (cargo build --workspace --all-targets; the first time takes about 10 minutes)"
  (cd "$REPO_ROOT" && cargo build -q --workspace --all-targets) \
    || die "cargo build failed: run 'cargo build --workspace --all-targets' to see why"
}

sim_ready() { curl -sf --max-time 2 "http://127.0.0.1:$SIM_PORT/_sim/state" >/dev/null; }

sim_up() {
  if pid_alive apim-sim && sim_ready; then return 0; fi
  stop_bg apim-sim
  port_in_use "$SIM_PORT" && die "port $SIM_PORT (for apim-sim) is in use by another process: stop it, or set APIM_SIM_PORT=<port>"
  (cd "$REPO_ROOT" && start_bg apim-sim "$LAB_DIR/logs/apim-sim.log" "$BIN_DIR/apim-sim" \
    --listen "127.0.0.1:$SIM_PORT" --playbook-dir "$REPO_ROOT/ansible")
  wait_started apim-sim 30 "$LAB_DIR/logs/apim-sim.log" sim_ready
}

kubectl_admin() { "$APIM_KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }

crds_up() {
  # shellcheck disable=SC1090
  source "$LAB_DIR/lab.env"
  kubectl_admin apply --server-side --force-conflicts -f "$REPO_ROOT/crds/yaml/" >/dev/null \
    || die "applying crds/yaml/ failed"
  kubectl_admin wait --for condition=Established --timeout 60s -f "$REPO_ROOT/crds/yaml/" >/dev/null \
    || die "the CRDs did not become established"
}

operator_kubeconfig() {
  if [[ -n "${APIM_LAB_KUBECONFIGS:-}" ]]; then echo "$APIM_LAB_KUBECONFIGS/apim-operator.kubeconfig"; else echo "$KUBECONFIG"; fi
}

operator_ready() { curl -sf --max-time 2 "http://127.0.0.1:$OPERATOR_PORT/readyz" >/dev/null; }

operator_up() {
  # shellcheck disable=SC1090
  source "$LAB_DIR/lab.env"
  if pid_alive apim-operator && operator_ready; then return 0; fi
  stop_bg apim-operator
  port_in_use "$OPERATOR_PORT" && die "port $OPERATOR_PORT (for apim-operator) is in use by another process: stop it, or set APIM_OPERATOR_PORT=<port>"
  # The simulated gateways (dev, staging) and AWX, with their credentials in Secrets as in
  # production.
  kubectl_admin apply -f - >/dev/null <<YAML || die "creating the lab's gateway and AWX Secrets failed"
apiVersion: v1
kind: Secret
metadata: {name: lab-gateway-credentials, namespace: apim-system}
stringData: {username: Administrator, password: manage}
---
apiVersion: v1
kind: Secret
metadata: {name: lab-awx-token, namespace: apim-system}
stringData: {token: awx-token}
YAML
  KUBECONFIG="$(operator_kubeconfig)" APIM_LISTEN="127.0.0.1:$OPERATOR_PORT" \
    APIM_GATEWAY_URL_DEV="http://127.0.0.1:$SIM_PORT/gateways/dev" \
    APIM_GATEWAY_URL_STAGING="http://127.0.0.1:$SIM_PORT/gateways/staging" \
    APIM_GATEWAY_SECRET=apim-system/lab-gateway-credentials \
    APIM_AWX_URL="http://127.0.0.1:$SIM_PORT" APIM_AWX_TOKEN_SECRET=apim-system/lab-awx-token \
    start_bg apim-operator "$LAB_DIR/logs/apim-operator.log" "$BIN_DIR/apim-operator" run
  wait_started apim-operator 60 "$LAB_DIR/logs/apim-operator.log" operator_ready
}

examples_up() {
  # shellcheck disable=SC1090
  source "$LAB_DIR/lab.env"
  [[ -d "$REPO_ROOT/examples" ]] || return 0
  kubectl_admin apply -f "$REPO_ROOT/examples/" >/dev/null || die "applying examples/ failed"
  say "examples applied; waiting for the operator to accept them"
  kubectl_admin wait --for condition=Accepted --timeout 60s -A \
    apis.apim.cab-i.com,applications.apim.cab-i.com,subscriptions.apim.cab-i.com,promotionrequests.apim.cab-i.com --all >/dev/null 2>&1 || true
  kubectl_admin wait --for condition=Accepted --timeout 30s teardownpolicies.apim.cab-i.com --all >/dev/null 2>&1 || true
  kubectl_admin wait --for condition=Ready --timeout 60s -A apis.apim.cab-i.com,applications.apim.cab-i.com --all >/dev/null 2>&1 \
    || say "not everything is Ready yet: see the conditions below and $LAB_DIR/logs/apim-operator.log"
  kubectl_admin get apim -A
}

webhook_ready() { curl -sf --max-time 2 --cacert "$LAB_DIR/webhook-certs/ca.crt" "https://127.0.0.1:$WEBHOOK_PORT/healthz" >/dev/null; }

# Registers the running webhook by URL (deploy/webhook/url/) with its CA bundle.
webhook_register() {
  local ca; ca="$(base64 -w0 < "$LAB_DIR/webhook-certs/ca.crt")"
  local f
  for f in "$REPO_ROOT"/deploy/webhook/url/*.yaml; do
    sed -e "s|\${CA_BUNDLE}|$ca|g" -e "s|https://127.0.0.1:8443/|https://127.0.0.1:$WEBHOOK_PORT/|g" "$f"
    echo "---"
  done | kubectl_admin apply -f - >/dev/null || die "registering the webhook configurations failed"
}

webhook_unregister() {
  [[ -f "$LAB_DIR/lab.env" ]] || return 0
  # shellcheck disable=SC1090
  source "$LAB_DIR/lab.env"
  kubectl_admin delete validatingwebhookconfiguration/apim-webhook mutatingwebhookconfiguration/apim-webhook \
    --ignore-not-found >/dev/null 2>&1 || true
}

webhook_up() {
  # shellcheck disable=SC1090
  source "$LAB_DIR/lab.env"
  if ! (pid_alive apim-webhook && webhook_ready); then
    stop_bg apim-webhook
    port_in_use "$WEBHOOK_PORT" && die "port $WEBHOOK_PORT (for apim-webhook) is in use by another process: stop it, or set APIM_WEBHOOK_PORT=<port>"
    start_bg apim-webhook "$LAB_DIR/logs/apim-webhook.log" "$BIN_DIR/apim-webhook" \
      --listen "127.0.0.1:$WEBHOOK_PORT" --cert-dir "$LAB_DIR/webhook-certs" \
      --config "$REPO_ROOT/deploy/webhook/config.yaml"
    wait_started apim-webhook 30 "$LAB_DIR/logs/apim-webhook.log" webhook_ready
  fi
  webhook_register
}

# Stops the operator and the webhook; the webhook's registration goes first, so the API
# server does not keep calling a webhook that is gone.
apps_down_controllers() { stop_bg apim-operator; webhook_unregister; stop_bg apim-webhook; }
apps_down() { apps_down_controllers; stop_bg apim-sim; }

# lab_is_up INFRA_ONLY : 0 when every process the mode needs runs and answers.
lab_is_up() {
  [[ -f "$LAB_DIR/lab.env" ]] || return 1
  # shellcheck disable=SC1090
  source "$LAB_DIR/lab.env"
  if [[ "$APIM_LAB_MODE" == lab ]]; then
    pid_alive kube-apiserver && pid_alive etcd && pid_alive kube-controller-manager || return 1
  fi
  timeout 5 "$APIM_KUBECTL" --kubeconfig "$KUBECONFIG" get --raw /readyz >/dev/null 2>&1 || return 1
  pid_alive kafka && pid_alive apim-sim && sim_ready || return 1
  (( $1 == 1 )) && return 0
  pid_alive apim-webhook && webhook_ready && pid_alive apim-operator && operator_ready
}

apps_status() {
  local c
  for c in apim-sim apim-webhook apim-operator; do
    if pid_alive "$c"; then echo "  $c: running (pid $(cat "$LAB_DIR/run/$c.pid"))"; else echo "  $c: stopped"; fi
  done
}
