# Starts and stops a single-node Kafka-API broker on 127.0.0.1: Redpanda when installed,
# else Apache Kafka in KRaft mode from Maven Central jars (cached). Sourced.

KAFKA_DIR="$LAB_DIR/kafka"

fetch_kafka_jars() {
  [[ -f "$KAFKA_LIBS/.complete" ]] && return 0
  need_cmd java "install a Java 17+ runtime (e.g. apt-get install -y openjdk-17-jre-headless)"
  need_cmd mvn "install Maven (e.g. apt-get install -y maven)"
  say "resolving Apache Kafka $KAFKA_VERSION jars from Maven Central (once, about 1 min)"
  rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
  mvn -B -q -f "$REPO_ROOT/hack/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" \
    >"$CACHE_DIR/kafka-$KAFKA_VERSION.log" 2>&1 \
    || die "Maven could not resolve Kafka $KAFKA_VERSION (see $CACHE_DIR/kafka-$KAFKA_VERSION.log): check KAFKA_VERSION"
  touch "$KAFKA_LIBS/.complete"
}

kafka_ready() { # kafka_ready [PORT] : the broker on 127.0.0.1:PORT (default the lab's) answers
  local port="${1:-$KAFKA_PORT}"
  if command -v kcat >/dev/null 2>&1; then
    kcat -b "127.0.0.1:$port" -L -m 3 >/dev/null 2>&1
  else
    port_in_use "$port"
  fi
}

using_redpanda() { command -v redpanda >/dev/null 2>&1 && [[ "${APIM_USE_APACHE_KAFKA:-}" != 1 ]]; }

# redpanda_args DATA_DIR PORT RPC_PORT : sets REDPANDA_ARGS, the command of one Redpanda node.
redpanda_args() {
  REDPANDA_ARGS=(redpanda --redpanda-cfg /dev/null -- \
    --smp 1 --memory 1G --overprovisioned --unsafe-bypass-fsync=true --default-log-level=warn \
    --node-id 0 --kafka-addr "127.0.0.1:$2" --advertise-kafka-addr "127.0.0.1:$2" \
    --rpc-addr "127.0.0.1:$3" --data-dir "$1")
}

start_redpanda() {
  mkdir -p "$KAFKA_DIR/redpanda"
  redpanda_args "$KAFKA_DIR/redpanda" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
  start_bg kafka "$LAB_DIR/logs/kafka.log" "${REDPANDA_ARGS[@]}"
}

# kafka_configure DIR PORT CONTROLLER_PORT LOG : writes DIR/server.properties (one KRaft node,
# data in DIR/data), formats DIR/data once, and sets KAFKA_ARGS, the command that runs it.
# Shared by the lab's broker and hack/kafka-instance.
kafka_configure() {
  local dir="$1" port="$2" controller_port="$3" log="$4"
  fetch_kafka_jars
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=6
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.flush.interval.ms=9223372036854775807
PROPS
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    java -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$REPO_ROOT/hack/kafka/log4j2.properties" \
      kafka.tools.StorageTool format -t "$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)" \
      -c "$dir/server.properties" >>"$log" 2>&1 \
      || die "formatting Kafka storage failed (see $log)"
  fi
  KAFKA_ARGS=(java -Xms128m -Xmx512m -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$REPO_ROOT/hack/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties")
}

start_apache_kafka() {
  kafka_configure "$KAFKA_DIR" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$LAB_DIR/logs/kafka.log"
  start_bg kafka "$LAB_DIR/logs/kafka.log" "${KAFKA_ARGS[@]}"
}

kafka_up() {
  if pid_alive kafka && kafka_ready; then return 0; fi
  stop_bg kafka
  if port_in_use "$KAFKA_PORT"; then
    die "port $KAFKA_PORT (for the Kafka broker) is in use by another process: stop it, or choose another port with APIM_KAFKA_PORT=<port>"
  fi
  mkdir -p "$LAB_DIR/logs"
  if using_redpanda; then start_redpanda; else start_apache_kafka; fi
  wait_started kafka 90 "$LAB_DIR/logs/kafka.log" kafka_ready
}

kafka_down() { stop_bg kafka; }

kafka_status() {
  if pid_alive kafka; then echo "  kafka: running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$LAB_DIR/run/kafka.pid"))"; else echo "  kafka: stopped"; fi
}
