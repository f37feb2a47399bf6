# Chooses the cluster: the running lab, else a reachable KUBECONFIG, else kind (with a
# Docker engine), else the lab's own control plane built from source. Sourced.
source "$(dirname "${BASH_SOURCE[0]}")/control-plane.sh"

LAB_ENV="$LAB_DIR/lab.env"

external_cluster_reachable() {
  [[ -n "${KUBECONFIG:-}" && "${APIM_LAB_IGNORE_KUBECONFIG:-}" != 1 ]] || return 1
  [[ "$KUBECONFIG" == "$KUBECONFIGS"/* ]] && return 1   # that is the lab itself
  local kubectl="kubectl"; [[ -x "$KUBECTL" ]] && kubectl="$KUBECTL"
  command -v "$kubectl" >/dev/null 2>&1 && timeout 10 "$kubectl" get --raw /readyz >/dev/null 2>&1
}

kind_available() {
  command -v kind >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1
}

write_lab_env() { # write_lab_env MODE KUBECONFIG USERS_DIR
  mkdir -p "$LAB_DIR"
  cat > "$LAB_ENV" <<ENV
# Written by hack/up: source it to talk to the lab.
export APIM_LAB_MODE=$1
export KUBECONFIG=$2
export APIM_LAB_KUBECONFIGS=$3
export APIM_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export APIM_SIM_URL=http://127.0.0.1:$SIM_PORT
export APIM_KUBECTL=$( [[ -x "$KUBECTL" ]] && echo "$KUBECTL" || command -v kubectl )
export NO_PROXY=127.0.0.1,localhost
ENV
}

cluster_up() {
  if pid_alive kube-apiserver || [[ "${APIM_LAB_FORCE_LOCAL:-}" == 1 ]]; then
    control_plane_up; write_lab_env lab "$ADMIN_KUBECONFIG" "$KUBECONFIGS"; return
  fi
  if external_cluster_reachable; then
    say "using the cluster KUBECONFIG names ($KUBECONFIG); lab users are impersonated"
    write_lab_env external "$KUBECONFIG" ""; return
  fi
  if kind_available && [[ "${APIM_LAB_NO_KIND:-}" != 1 ]]; then
    if ! kind get clusters 2>/dev/null | grep -qx apim; then
      say "creating a kind cluster 'apim' (kind-config.yaml)"
      kind create cluster --name apim --config "$REPO_ROOT/kind-config.yaml" --kubeconfig "$LAB_DIR/kind.kubeconfig" \
        || die "kind create cluster failed"
    fi
    KUBECTL="$(command -v kubectl)"
    "$KUBECTL" --kubeconfig "$LAB_DIR/kind.kubeconfig" apply -f "$REPO_ROOT/hack/manifests/" -f "$REPO_ROOT/deploy/rbac/" >/dev/null
    write_lab_env kind "$LAB_DIR/kind.kubeconfig" ""; return
  fi
  control_plane_up
  write_lab_env lab "$ADMIN_KUBECONFIG" "$KUBECONFIGS"
}
