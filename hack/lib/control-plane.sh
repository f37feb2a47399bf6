# Starts and stops etcd, kube-apiserver and kube-controller-manager on loopback. Sourced.
source "$(dirname "${BASH_SOURCE[0]}")/users.sh"

PKI="$LAB_DIR/pki"
KUBECONFIGS="$LAB_DIR/kubeconfigs"
ADMIN_KUBECONFIG="$KUBECONFIGS/admin.kubeconfig"
KUBECTL="$K8S_BIN/kubectl"

gen_pki() {
  [[ -f "$PKI/done" ]] && return 0
  need_cmd openssl "apt-get install -y openssl"
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=apim-lab-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc,IP:10.96.0.1\nextendedKeyUsage=serverAuth\n' > san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile san.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    : > tokens.csv
    local entry user groups token
    for entry in "${LAB_USERS[@]}"; do
      user="${entry%%|*}"; groups="${entry#*|}"
      token="$(openssl rand -hex 24)"
      echo "$token,$user,$user,\"$groups\"" >> tokens.csv
    done
    chmod 600 ./*.key tokens.csv
  )
  touch "$PKI/done"
}

token_of() { awk -F, -v u="$1" '$2 == u { print $1 }' "$PKI/tokens.csv"; }

write_kubeconfigs() {
  mkdir -p "$KUBECONFIGS"
  local ca entry user
  ca="$(base64 -w0 < "$PKI/ca.crt")"
  for entry in "${LAB_USERS[@]}"; do
    user="${entry%%|*}"
    cat > "$KUBECONFIGS/$user.kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: apim-lab
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $(token_of "$user")
contexts:
- name: $user@apim-lab
  context: {cluster: apim-lab, user: $user}
current-context: $user@apim-lab
KCFG
    chmod 600 "$KUBECONFIGS/$user.kubeconfig"
  done
}

apiserver_ready() {
  curl -sf --max-time 2 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(token_of admin)" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null
}
etcd_ready() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
kcm_ready() { curl -sfk --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz" >/dev/null; }

ensure_port_free() { # ensure_port_free PORT COMPONENT ENVVAR
  if port_in_use "$1"; then
    die "port $1 (for $2) is in use by another process: stop it, or choose another port with $3=<port>"
  fi
}

start_etcd() {
  if pid_alive etcd && etcd_ready; then return 0; fi
  stop_bg etcd
  ensure_port_free "$ETCD_PORT" etcd APIM_ETCD_PORT
  ensure_port_free "$ETCD_PEER_PORT" "etcd peer" APIM_ETCD_PEER_PORT
  mkdir -p "$LAB_DIR/etcd"
  start_bg etcd "$LAB_DIR/logs/etcd.log" "$ETCD_BIN/etcd" \
    --name lab --data-dir "$LAB_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "lab=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
  wait_started etcd 30 "$LAB_DIR/logs/etcd.log" etcd_ready
}

start_apiserver() {
  if pid_alive kube-apiserver && apiserver_ready; then return 0; fi
  stop_bg kube-apiserver
  ensure_port_free "$APISERVER_PORT" kube-apiserver APIM_APISERVER_PORT
  start_bg kube-apiserver "$LAB_DIR/logs/kube-apiserver.log" "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --token-auth-file "$PKI/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
    --disable-admission-plugins ServiceAccount \
    --enable-admission-plugins MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --allow-privileged=true --profiling=false \
    --cert-dir "$LAB_DIR/apiserver-certs" \
    --v 1
  wait_started kube-apiserver 90 "$LAB_DIR/logs/kube-apiserver.log" apiserver_ready
}

start_controller_manager() {
  if pid_alive kube-controller-manager && kcm_ready; then return 0; fi
  stop_bg kube-controller-manager
  ensure_port_free "$KCM_PORT" kube-controller-manager APIM_KCM_PORT
  start_bg kube-controller-manager "$LAB_DIR/logs/kube-controller-manager.log" "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$ADMIN_KUBECONFIG" \
    --authentication-kubeconfig "$ADMIN_KUBECONFIG" --authorization-kubeconfig "$ADMIN_KUBECONFIG" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
    --controllers garbage-collector-controller,namespace-controller \
    --use-service-account-credentials=false \
    --cert-dir "$LAB_DIR/kcm-certs" --v 1
  wait_started kube-controller-manager 60 "$LAB_DIR/logs/kube-controller-manager.log" kcm_ready
}

apply_lab_rbac() {
  "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" apply -f "$REPO_ROOT/hack/manifests/" -f "$REPO_ROOT/deploy/rbac/" >/dev/null \
    || die "applying hack/manifests/ (lab namespaces and RBAC) failed"
}

control_plane_up() {
  [[ -x "$ETCD_BIN/etcd" && -x "$K8S_BIN/kube-apiserver" ]] || bash "$REPO_ROOT/hack/lib/build-control-plane.sh"
  gen_pki
  write_kubeconfigs
  start_etcd
  start_apiserver
  start_controller_manager
  apply_lab_rbac
}

control_plane_down() {
  stop_bg kube-controller-manager
  stop_bg kube-apiserver
  stop_bg etcd
}

control_plane_status() {
  local c
  for c in etcd kube-apiserver kube-controller-manager; do
    if pid_alive "$c"; then echo "  $c: running (pid $(cat "$LAB_DIR/run/$c.pid"))"; else echo "  $c: stopped"; fi
  done
}
