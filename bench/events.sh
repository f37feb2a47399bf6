#!/usr/bin/env bash
# Event publisher benchmark against the lab's Kafka broker, with Kafka's own
# ProducerPerformance (kafka-tools 4.4) as the peer, in one run. Each configuration runs
# REPEAT times, interleaved (the machine is shared), and the median is reported.
#   ours            event-bench: N CloudEvents (~500-byte documents + 13 ce_* headers) through
#                   Publisher::publish_batch, delivery reports awaited concurrently -> events/s
#   ours-bare       the same documents without the ce_* headers (diagnostic: same bytes as
#                   the peer's payload-file run)
#   peer-defaults   ProducerPerformance --record-size 500, acks=all, enable.idempotence=true,
#                   compression as ours, its default batching (linger.ms=5, batch.size=16384)
#   peer-matched    the same with our batching (linger.ms, batch.size=1000000)
#   peer-documents  as peer-matched, sending our event documents (--payload-file), no headers
#   latency         single-event publishes at a fixed RATE for LATENCY_SECONDS:
#                   produce-to-ack p50/p99 (median over the runs)
# Ratios: ours / best of peer-defaults and peer-matched (the brief's comparison: same record
# size, acks, idempotence), and ours-bare / peer-documents (same bytes on both sides).
# Traffic goes to the broker on 127.0.0.1 only. Knobs: N=200000 REPEAT=3 COMPRESSION=zstd
# APIM_KAFKA_BROKERS=127.0.0.1:9092 RATE=1000 LATENCY_SECONDS=10 LINGER_MS=1
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
N=${N:-200000}
REPEAT=${REPEAT:-3}
COMPRESSION=${COMPRESSION:-zstd}
BROKERS=${APIM_KAFKA_BROKERS:-127.0.0.1:9092}
RATE=${RATE:-1000}
LATENCY_SECONDS=${LATENCY_SECONDS:-10}
LINGER_MS=${LINGER_MS:-1}
cd "$ROOT"

KAFKA_LIBS=$(ls -d "$HOME"/.cache/apim-lab/kafka-4.4.0-*/libs 2>/dev/null | head -n1 || true)
if [ -z "$KAFKA_LIBS" ]; then
  echo "Kafka jars not found under ~/.cache/apim-lab (start the lab: hack/)" >&2
  exit 1
fi

echo "== building event-bench (release) =="
cargo build -q --release -p apim-operator --bin event-bench
BENCH="$TARGET_DIR/release/event-bench"
export APIM_KAFKA_BROKERS="$BROKERS"

WORK=$(mktemp -d)
PEER_TOPIC="apim-bench-peer-$$"
cleanup() {
  "$BENCH" delete-topic "$PEER_TOPIC" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BENCH" create-topic "$PEER_TOPIC" --partitions 6 >/dev/null
"$BENCH" payloads "$WORK/payloads.txt" --count 10000 --record-size 500 >/dev/null
PROPS="bootstrap.servers=$BROKERS acks=all enable.idempotence=true compression.type=$COMPRESSION"

ours() { # file, extra args...
  local out=$1
  shift
  "$BENCH" throughput --events "$N" --record-size 500 --compression "$COMPRESSION" \
    --linger-ms "$LINGER_MS" --rate 0 "$@" >"$WORK/run.txt"
  grep '^throughput' "$WORK/run.txt"
  sed -n 's/^RESULT throughput_events_per_s=\([0-9.]*\).*/\1/p' "$WORK/run.txt" >>"$out"
}
peer() { # file, args...
  local out=$1
  shift
  # shellcheck disable=SC2086
  java -cp "$KAFKA_LIBS/*" org.apache.kafka.tools.ProducerPerformance \
    --topic "$PEER_TOPIC" --num-records "$N" --throughput -1 "$@" 2>&1 | tail -n1 | tee "$WORK/run.txt"
  sed -n 's/^[0-9]* records sent, \([0-9.]*\) records\/sec.*/\1/p' "$WORK/run.txt" >>"$out"
}
latency() {
  "$BENCH" throughput --events 1000 --record-size 500 --compression "$COMPRESSION" \
    --linger-ms "$LINGER_MS" --rate "$RATE" --latency-seconds "$LATENCY_SECONDS" >"$WORK/run.txt"
  grep '^latency' "$WORK/run.txt"
  sed -n 's/^RESULT latency_p50_ms=\([0-9.]*\) latency_p99_ms=\([0-9.]*\).*/\1 \2/p' "$WORK/run.txt" >>"$WORK/latency"
}
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

"$BENCH" throughput --events 1 --rate 0 | grep '^config' || true
for round in $(seq 1 "$REPEAT"); do
  echo "== round $round/$REPEAT =="
  echo "-- ours"; ours "$WORK/ours"
  echo "-- ours-bare"; ours "$WORK/ours-bare" --without-headers
  # shellcheck disable=SC2086
  echo "-- peer-defaults"; peer "$WORK/peer-defaults" --record-size 500 --producer-props $PROPS
  # shellcheck disable=SC2086
  echo "-- peer-matched"; peer "$WORK/peer-matched" --record-size 500 --producer-props $PROPS linger.ms="$LINGER_MS" batch.size=1000000
  # shellcheck disable=SC2086
  echo "-- peer-documents"; peer "$WORK/peer-documents" --payload-file "$WORK/payloads.txt" --producer-props $PROPS linger.ms="$LINGER_MS" batch.size=1000000
  echo "-- latency at $RATE events/s"; latency
done

OURS=$(median "$WORK/ours")
BARE=$(median "$WORK/ours-bare")
PD=$(median "$WORK/peer-defaults")
PM=$(median "$WORK/peer-matched")
PDOC=$(median "$WORK/peer-documents")
cut -d' ' -f1 "$WORK/latency" >"$WORK/p50"
cut -d' ' -f2 "$WORK/latency" >"$WORK/p99"
BEST=$(printf '%s\n%s\n' "$PD" "$PM" | sort -g | tail -n1)
echo "== summary: medians of $REPEAT runs, N=$N, compression=$COMPRESSION, acks=all, idempotent =="
printf 'ours (event-bench, with ce_* headers)     %10.0f events/s\n' "$OURS"
printf 'ours-bare (no headers, diagnostic)        %10.0f events/s\n' "$BARE"
printf 'peer ProducerPerformance defaults         %10.0f records/s\n' "$PD"
printf 'peer ProducerPerformance matched batching %10.0f records/s\n' "$PM"
printf 'peer ProducerPerformance our documents    %10.0f records/s\n' "$PDOC"
awk -v o="$OURS" -v b="$BEST" 'BEGIN { printf "ratio ours / best 500-byte peer run        %10.2f (target >= 0.80)\n", o / b }'
awk -v o="$BARE" -v b="$PDOC" 'BEGIN { printf "ratio ours-bare / peer our documents      %10.2f (same bytes)\n", o / b }'
printf 'latency at %s events/s: p50 %s ms, p99 %s ms (target p99 < 10 ms)\n' "$RATE" "$(median "$WORK/p50")" "$(median "$WORK/p99")"
