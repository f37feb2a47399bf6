#!/usr/bin/env bash
# Admission webhook benchmarks in one go:
#   1. Criterion: the decision function without a server (cargo bench --bench decide);
#   2. HTTPS load: apim-webhook with a self-generated certificate on 127.0.0.1, driven by
#      webhook-load with keep-alive at concurrency 32: reviews/s, client p50/p99, server-side
#      p50/p99 from the /metrics histogram, server VmHWM (peak RSS).
# Traffic goes to 127.0.0.1 only, for a bounded time. Environment knobs:
#   DURATION=10 WARMUP=2 CONCURRENCY=32 PORT=18443 SCENARIOS="promotion-approve ..."
#   SKIP_CRITERION=1 to run only the load part.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-32}
PORT=${PORT:-18443}
SCENARIOS=${SCENARIOS:-"promotion-approve api-create api-untagged promotion-mutate"}
cd "$ROOT"

echo "== building (profile bench) =="
cargo build -q --profile bench -p apim-webhook --bins

if [ "${SKIP_CRITERION:-0}" != 1 ]; then
  echo "== criterion: decision function =="
  cargo bench -q -p apim-webhook --bench decide
fi

WORK=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== HTTPS load: apim-webhook on 127.0.0.1:$PORT =="
RUST_LOG=${RUST_LOG:-info} "$TARGET_DIR/release/apim-webhook" \
  --listen "127.0.0.1:$PORT" --cert-dir "$WORK/certs" >"$WORK/webhook.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  if [ -s "$WORK/certs/ca.crt" ] && curl -sf --noproxy '*' --cacert "$WORK/certs/ca.crt" \
      "https://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
    break
  fi
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/webhook.log"; echo "apim-webhook died" >&2; exit 1; }
  sleep 0.1
done
echo "server pid $PID, idle: $(grep -E 'VmRSS' /proc/$PID/status)"

status=0
for s in $SCENARIOS; do
  echo "-- scenario $s"
  "$TARGET_DIR/release/webhook-load" --url "https://127.0.0.1:$PORT" --ca "$WORK/certs/ca.crt" \
    --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" \
    --scenario "$s" --server-pid "$PID" || status=1
done
echo "server peak memory: $(grep -E 'VmHWM' /proc/$PID/status)"
exit $status
