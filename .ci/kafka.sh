# Sourced by .ci/test.sh: a throw-away Kafka-protocol broker (tansu, with
# its sqlite storage) on a free loopback port for the Kafka tests.
#   start_kafka   starts it and exports EMBER_TEST_KAFKA_BROKERS
#   stop_kafka    stops it and removes its data
# tansu is installed by .ci/setup.sh (cargo install, cached in ~/.cargo/bin).

start_kafka() {
  command -v tansu >/dev/null 2>&1 || { echo "kafka: tansu is not installed; run .ci/setup.sh" >&2; return 1; }
  KAFKA_DIR=$(mktemp -d)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  (cd "$KAFKA_DIR" && exec tansu broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "sqlite://broker.db" > broker.log 2>&1) &
  KAFKA_PID=$!
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
      export EMBER_TEST_KAFKA_BROKERS="127.0.0.1:$port"
      echo "kafka: tansu broker on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "kafka: tansu did not start:" >&2
  cat "$KAFKA_DIR/broker.log" >&2
  return 1
}

stop_kafka() {
  if [ -n "${KAFKA_PID:-}" ]; then
    kill "$KAFKA_PID" 2>/dev/null || true
    wait "$KAFKA_PID" 2>/dev/null || true
    KAFKA_PID=""
  fi
  [ -n "${KAFKA_DIR:-}" ] && rm -rf "$KAFKA_DIR"
  KAFKA_DIR=""
}
