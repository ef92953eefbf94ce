#!/usr/bin/env bash
# Kafka → word count → PostgreSQL, measured end to end with the
# kafka_to_postgres example on a real broker (tansu) and a real PostgreSQL:
#   1. sustained: LINES lines are loaded first; the example reads them as
#      fast as it can (1 s batches); lines/s = lines / (last batch done -
#      first batch opened), from the example's own JSON API;
#   2. latency: the example runs while kafka_load writes RATE lines/s for
#      SECONDS; the batches' total delay (batch time → PostgreSQL commit)
#      p50/p99, plus the batch interval a record waits at most for its batch.
# Usage: bench/kafka-postgres/run.sh [LINES] [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
LINES=${1:-2000000}
RATE=${2:-50000}
SECONDS_AT_RATE=${3:-30}
source .ci/postgres.sh
source .ci/kafka.sh
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; stop_postgres; stop_kafka; rm -rf "$work"' EXIT
start_postgres
start_kafka
B=$EMBER_TEST_KAFKA_BROKERS
cargo build --release -q -p ember-streaming --features kafka,postgres --example kafka_to_postgres
cargo build --release -q -p ember-streaming-kafka --example kafka_load
app=target/release/examples/kafka_to_postgres
load=target/release/examples/kafka_load
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stats() { # URL EXPECTED → waits until that many records were processed, prints the summary
  python3 - "$@" <<'PY'
import json, sys, time, urllib.request
url, want, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
get = lambda p: json.load(urllib.request.urlopen(url + p))
deadline = time.time() + 900
while True:
    try:
        s = get("/api/v1/streaming/statistics")
        if s["numProcessedRecords"] >= want:
            break
    except Exception:
        pass
    if time.time() > deadline:
        sys.exit("timed out")
    time.sleep(0.5)
batches = [b for b in get("/api/v1/streaming/batches") if b["status"] == "COMPLETED"]
batches.sort(key=lambda b: b["batchTime"])
data = [b for b in batches if b["inputSize"] > 0]
interval = s["batchDuration"]
if mode == "sustained":
    begin = data[0]["batchTime"] - interval
    end = max(b["processingEndTime"] for b in data)
    n = sum(b["inputSize"] for b in data)
    print(f"sustained: {n} lines in {(end - begin) / 1000:.1f} s = {n * 1000 / (end - begin):,.0f} lines/s "
          f"({3 * n * 1000 / (end - begin):,.0f} words/s); largest batch {max(b['inputSize'] for b in data):,} lines, "
          f"{len(data)} batches")
else:
    steady = data[3:-1] if len(data) > 5 else data
    d = sorted(b["totalDelay"] for b in steady)
    pct = lambda p: d[min(len(d) - 1, int(p * len(d)))]
    rate = sum(b["inputSize"] for b in steady) * 1000 / (interval * len(steady))
    print(f"latency at {rate:,.0f} lines/s: batch total delay p50 {pct(0.5)} ms, p99 {pct(0.99)} ms, max {d[-1]} ms "
          f"over {len(steady)} batches; a record also waits up to {interval} ms for its batch to close")
PY
}

echo "== sustained: $LINES lines loaded first"
tansu topic create bench-sustained --partitions 4 --broker "tcp://$B" >/dev/null
"$load" "$B" bench-sustained "$LINES"
port=$(free_port)
"$app" "$B" bench-sustained "$EMBER_TEST_POSTGRES_URL" "$work/ckpt1" --table bench_sustained \
  --ui "127.0.0.1:$port" > /dev/null 2> "$work/app1.err" &
app_pid=$!
stats "http://127.0.0.1:$port" "$LINES" sustained
kill "$app_pid"; wait "$app_pid" 2>/dev/null || true

echo "== latency: $RATE lines/s for $SECONDS_AT_RATE s"
tansu topic create bench-latency --partitions 4 --broker "tcp://$B" >/dev/null
port=$(free_port)
"$app" "$B" bench-latency "$EMBER_TEST_POSTGRES_URL" "$work/ckpt2" --table bench_latency \
  --ui "127.0.0.1:$port" > /dev/null 2> "$work/app2.err" &
app_pid=$!
total=$((RATE * SECONDS_AT_RATE))
"$load" "$B" bench-latency "$total" "$RATE"
stats "http://127.0.0.1:$port" "$total" latency
kill "$app_pid"; wait "$app_pid" 2>/dev/null || true
echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg)"
