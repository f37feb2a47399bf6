#!/usr/bin/env bash
# Whole-process benchmark: openapi-convert (this repo) against the npm peer
# @apiture/openapi-down-convert, on the same >= 1 MB OpenAPI 3.1 document, then both
# outputs validated against the official OpenAPI 3.0 JSON Schema.
#
# usage: bench/openapi/compare.sh [DOC]      (default: github-webhooks-as-paths.3.1.json)
# env:   RUNS_OURS (default 20), RUNS_PEER (default 5), PEER_VERSION (default 0.14.2),
#        TIMER=loop (time with a shell loop even if hyperfine is installed)
#
# Needs cargo, node and npm; uses hyperfine when installed (apt-get install -y hyperfine),
# else a timing loop. Installs the peer into bench/openapi/node_modules (gitignored).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
doc=$(realpath "${1:-$here/github-webhooks-as-paths.3.1.json}")
runs_ours=${RUNS_OURS:-20}
runs_peer=${RUNS_PEER:-5}
peer_version=${PEER_VERSION:-0.14.2}
out="$here/out"
mkdir -p "$out"

bytes=$(wc -c <"$doc")
echo "document: $doc ($bytes bytes)"
if [ "$bytes" -lt 1000000 ]; then
  echo "warning: the document is under 1 MB" >&2
fi

# (a) the release binary (twice: the default build, with mimalloc, and --no-default-features,
# on the system allocator),
# and the validator (an example of the crate).
echo "building openapi-convert (release)..."
target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
(cd "$root" && cargo build --release -q -p openapi-convert --bin openapi-convert)
cp "$target_dir/release/openapi-convert" "$out/openapi-convert.mimalloc"
(cd "$root" && cargo build --release -q -p openapi-convert --no-default-features --bin openapi-convert --example validate30)
cp "$target_dir/release/openapi-convert" "$out/openapi-convert"
ours="$out/openapi-convert"
ours_mi="$out/openapi-convert.mimalloc"
validate="$target_dir/release/examples/validate30"

# (b) the peer, from npm, if missing.
peer_cli="$here/node_modules/@apiture/openapi-down-convert/lib/src/cli.js"
if [ ! -f "$peer_cli" ]; then
  echo "installing @apiture/openapi-down-convert@$peer_version into $here/node_modules..."
  (cd "$here" && npm install --silent --no-save --no-package-lock --no-audit --no-fund \
    --prefix "$here" "@apiture/openapi-down-convert@$peer_version")
fi
peer_installed=$(node -p "require('$here/node_modules/@apiture/openapi-down-convert/package.json').version")

ours_cmd="$ours $doc -o $out/ours.json"
ours_mi_cmd="$ours_mi $doc -o $out/ours-mimalloc.json"
peer_cmd="node $peer_cli --input $doc --output $out/peer.json"

# (c) whole-process timings; medians in ms.
median_of() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
if [ "${TIMER:-}" != loop ] && command -v hyperfine >/dev/null 2>&1; then
  timer="hyperfine"
  hyperfine -N --style basic --warmup 2 --runs "$runs_ours" --export-json "$out/ours.hyperfine.json" \
    -n openapi-convert "$ours_cmd"
  hyperfine -N --style basic --warmup 2 --runs "$runs_ours" --export-json "$out/ours-mimalloc.hyperfine.json" \
    -n "openapi-convert (mimalloc)" "$ours_mi_cmd"
  hyperfine -N --style basic --warmup 1 --runs "$runs_peer" --export-json "$out/peer.hyperfine.json" \
    -n openapi-down-convert "$peer_cmd"
  median_ms() { node -p "(require('$1').results[0].median * 1000).toFixed(1)"; }
  ours_ms=$(median_ms "$out/ours.hyperfine.json")
  ours_mi_ms=$(median_ms "$out/ours-mimalloc.hyperfine.json")
  peer_ms=$(median_ms "$out/peer.hyperfine.json")
else
  timer="shell loop (date +%s%N)"
  time_runs() {
    local runs=$1; shift
    for _ in $(seq "$runs"); do
      local t0 t1
      t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
      echo $(((t1 - t0) / 1000))
    done | median_of | awk '{printf "%.1f", $1/1000}'
  }
  # shellcheck disable=SC2086
  ours_ms=$(time_runs "$runs_ours" $ours_cmd)
  # shellcheck disable=SC2086
  ours_mi_ms=$(time_runs "$runs_ours" $ours_mi_cmd)
  # shellcheck disable=SC2086
  peer_ms=$(time_runs "$runs_peer" $peer_cmd)
fi

# (d) both outputs against the OpenAPI 3.0 schema.
validity() {
  if "$validate" "$1" >"$1.validation.txt" 2>&1; then echo "valid"; else echo "INVALID"; fi
}
ours_valid=$(validity "$out/ours.json")
ours_mi_valid=$(validity "$out/ours-mimalloc.json")
peer_valid=$(validity "$out/peer.json")

ratio() { awk -v p="$peer_ms" -v o="$1" 'BEGIN {printf "%.1f", p / o}'; }
cpus=$(nproc)
echo
echo "== OpenAPI 3.1 -> 3.0, whole process, $(basename "$doc") ($bytes bytes), timer: $timer =="
echo "   machine: $cpus CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
row() { printf '%-46s median %9s ms  (%2s runs)  output: %-7s 3.0  %s\n' "$@"; }
row "openapi-convert (ours, system allocator)" "$ours_ms" "$runs_ours" "$ours_valid" "peer/ours: $(ratio "$ours_ms")x"
row "openapi-convert (ours, default: mimalloc)" "$ours_mi_ms" "$runs_ours" "$ours_mi_valid" "peer/ours: $(ratio "$ours_mi_ms")x"
row "@apiture/openapi-down-convert $peer_installed" "$peer_ms" "$runs_peer" "$peer_valid" ""
if [ "$peer_valid" != "valid" ]; then
  echo "first errors in the peer's output ($out/peer.json.validation.txt):"
  head -4 "$out/peer.json.validation.txt" | cut -c1-200
fi
