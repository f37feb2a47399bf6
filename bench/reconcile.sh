#!/usr/bin/env bash
# N Apis through apim-operator (direct driver, a spawned apim-sim) to all Ready, against the
# API server's floor measured in the same run: creating the same N objects and patching each
# one's status once with a plain client at the same concurrency (reconcile-bench).
# It runs on the lab as the quick start leaves it: the admission webhook registered (every
# create goes through it, the floor's and the operator's alike), the broker up (the operator
# publishes its events). The quick start's own operator watches every namespace: it is
# stopped for the run, so that only the bench's operator reconciles, and started again after.
# Knobs: COUNT=1000 CONCURRENCY=16 REPEAT=1 EXTRA="" (e.g. COUNT=10000 EXTRA=--no-floor for
# the RSS at 10,000 objects; EXTRA="--idle-secs 300" for the idle check).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../hack/lib/common.sh"
COUNT=${COUNT:-1000}
CONCURRENCY=${CONCURRENCY:-16}
REPEAT=${REPEAT:-1}
EXTRA=${EXTRA:-}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
cd "$REPO_ROOT"

echo "== building apim-operator, apim-sim and reconcile-bench (release) =="
cargo build -q --release -p apim-operator -p apim-sim --bins
bash hack/up >/dev/null
# shellcheck disable=SC1091
source "$LAB_DIR/lab.env"
stop_bg apim-operator
trap 'echo "== restarting the quick start operator =="; bash hack/up >/dev/null' EXIT

for i in $(seq 1 "$REPEAT"); do
  echo "== run $i of $REPEAT: COUNT=$COUNT CONCURRENCY=$CONCURRENCY $EXTRA =="
  # shellcheck disable=SC2086
  "$TARGET_DIR/release/reconcile-bench" --count "$COUNT" --concurrency "$CONCURRENCY" $EXTRA
done
