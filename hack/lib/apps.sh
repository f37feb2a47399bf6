# Our own processes in the lab: simulator, webhook, operator; CRDs and examples. Sourced.

BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"

build_binaries() {
  say "building apim-sim, apim-operator and apim-webhook (cargo build; first time several minutes)"
  (cd "$REPO_ROOT" && cargo build -q --bins -p apim-sim -p apim-operator -p apim-webhook) \
    || die "cargo build failed: run 'cargo build --bins' to see why"
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

crds_up() { :; }
webhook_up() { :; }
operator_up() { :; }
examples_up() { :; }

apps_down_controllers() { stop_bg apim-operator; stop_bg apim-webhook; }
apps_down() { apps_down_controllers; stop_bg apim-sim; }

apps_status() {
  local c
  for c in apim-sim apim-webhook apim-operator; do
    if pid_alive "$c"; then echo "  $c: running (pid $(cat "$LAB_DIR/run/$c.pid"))"; else echo "  $c: stopped"; fi
  done
}
