#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl from the official
# k8s.io/kubernetes Go module, and etcd from go.etcd.io/etcd/server/v3, into
# ~/.cache/apim-lab/{k8s,etcd}-<version>/. A cached version is never rebuilt.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_kubernetes() {
  local bin="$K8S_BIN"
  if [[ -x "$bin/kube-apiserver" && -x "$bin/kube-controller-manager" && -x "$bin/kubectl" ]]; then
    return 0
  fi
  need_cmd go "install Go 1.26+ (https://go.dev/doc/install) and put it on PATH"
  [[ "$K8S_VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] \
    || die "K8S_VERSION=$K8S_VERSION is not of the form v1.MINOR.PATCH: set e.g. K8S_VERSION=v1.37.2"
  local minor="${BASH_REMATCH[1]}" patch="${BASH_REMATCH[2]}"
  local staging_tag="v0.$minor.$patch"

  say "building Kubernetes $K8S_VERSION (kube-apiserver, kube-controller-manager, kubectl) from the Go module proxy"
  say "  first build only: about 10 min on 2 cores (measured 8-9 min); cached in $bin afterwards (log: $CACHE_DIR/build-k8s.log)"
  local started; started=$(date +%s)
  local work; work="$(mktemp -d "${TMPDIR:-/tmp}/apim-k8s-build.XXXXXX")"
  mkdir -p "$CACHE_DIR"
  local log="$CACHE_DIR/build-k8s.log"
  : > "$log"
  (
    cd "$work"
    go mod init apimlab/k8s-wrapper >>"$log" 2>&1
    local gomod
    gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" 2>>"$log" | jq -r '.GoMod // empty')" || true
    [[ -n "$gomod" && -f "$gomod" ]] \
      || die "k8s.io/kubernetes@$K8S_VERSION is not served by the Go module proxy: pick a served version, e.g. K8S_VERSION=v1.37.2 (see $log)"
    # The staging modules (k8s.io/api, k8s.io/client-go, ...) are replaced by
    # ./staging/... in Kubernetes' own go.mod; point them at their published tags.
    local replaces
    replaces="$(go mod edit -json "$gomod" | jq -r '.Replace[]? | select(.New.Path | startswith("./staging/")) | .Old.Path')"
    [[ -n "$replaces" ]] || die "no staging replace found in $gomod: unexpected layout for $K8S_VERSION"
    local args=()
    while read -r p; do args+=("-replace=$p=$p@$staging_tag"); done <<<"$replaces"
    go mod edit "${args[@]}"
    say "  $(wc -l <<<"$replaces") staging modules pinned to $staging_tag; downloading modules"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
           "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
           "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION" >>"$log" 2>&1 \
      || die "go get of Kubernetes $K8S_VERSION failed (see $log); if it needs a newer Go, export GOTOOLCHAIN=go1.27.3"
    local ld=""
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    say "  compiling (go build, CGO off)"
    mkdir -p "$bin.tmp"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w$ld" -o "$bin.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl >>"$log" 2>&1 \
      || die "go build of Kubernetes $K8S_VERSION failed (see $log)"
  )
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
  rm -rf "$work"
  say "  Kubernetes $K8S_VERSION built in $(elapsed_since "$started")s"
}

build_etcd() {
  local bin="$ETCD_BIN"
  [[ -x "$bin/etcd" ]] && return 0
  need_cmd go "install Go 1.26+ (https://go.dev/doc/install) and put it on PATH"
  [[ "$ETCD_VERSION" =~ ^v3\.[0-9]+\.[0-9]+$ ]] \
    || die "ETCD_VERSION=$ETCD_VERSION is not of the form v3.MINOR.PATCH: set e.g. ETCD_VERSION=v3.7.3"
  say "building etcd $ETCD_VERSION from go.etcd.io/etcd/server/v3 (about 2-4 min on 2 cores, once)"
  local started; started=$(date +%s)
  local work; work="$(mktemp -d "${TMPDIR:-/tmp}/apim-etcd-build.XXXXXX")"
  local log="$CACHE_DIR/build-etcd.log"
  mkdir -p "$CACHE_DIR"; : > "$log"
  (
    cd "$work"
    go mod init apimlab/etcd-wrapper >>"$log" 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >>"$log" 2>&1 \
      || die "go.etcd.io/etcd/server/v3@$ETCD_VERSION cannot be fetched: pick a served version, e.g. ETCD_VERSION=v3.7.3 (see $log)"
    mkdir -p "$bin.tmp"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp/etcd" go.etcd.io/etcd/server/v3 >>"$log" 2>&1 \
      || die "go build of etcd $ETCD_VERSION failed (see $log)"
  )
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
  rm -rf "$work"
  say "  etcd $ETCD_VERSION built in $(elapsed_since "$started")s"
}

build_etcd
build_kubernetes
