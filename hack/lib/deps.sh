# Installs what the lab and the build need when it is missing. Sourced.

APT_PACKAGES=(pkg-config libssl-dev zlib1g-dev kcat openssl jq curl)

apt_missing() {
  local p missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]}"
}

ensure_deps() {
  local missing
  missing="$(apt_missing)"
  if [[ -n "$missing" ]]; then
    command -v apt-get >/dev/null 2>&1 || die "missing packages ($missing) and no apt-get: install them with your package manager"
    local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
    say "installing Debian packages: $missing"
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null 2>&1 \
      || die "apt-get install $missing failed: run it by hand to see why"
  fi
  need_cmd cargo "install Rust with rustup (https://rustup.rs)"
  need_cmd go "install Go 1.26+ (https://go.dev/doc/install); the lab builds Kubernetes from its Go module"
  need_cmd java "install a Java 17+ runtime (apt-get install -y openjdk-17-jre-headless); the lab's Kafka broker runs on it"
  need_cmd mvn "install Maven (apt-get install -y maven); it fetches the Kafka jars"
  if ! command -v ansible-playbook >/dev/null 2>&1; then
    need_cmd python3 "install Python 3 (apt-get install -y python3 python3-pip)"
    say "installing ansible-core $ANSIBLE_CORE_VERSION from PyPI"
    python3 -m pip install -q "ansible-core==$ANSIBLE_CORE_VERSION" >/dev/null 2>&1 \
      || python3 -m pip install -q --break-system-packages "ansible-core==$ANSIBLE_CORE_VERSION" >/dev/null 2>&1 \
      || die "pip install ansible-core failed: run 'python3 -m pip install ansible-core' by hand to see why"
    # pyenv exposes new console scripts only after a rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
    hash -r
    command -v ansible-playbook >/dev/null 2>&1 \
      || die "ansible-core is installed but ansible-playbook is not on PATH: add the bin directory of $(command -v python3) to PATH"
  fi
}
