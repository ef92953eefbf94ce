#!/usr/bin/env bash
# Sustained throughput of Python NetworkWordCount on ember: for each offered
# rate (words/s), `ember-bench serve` feeds the job over loopback for a run;
# the rate holds when the batches keep up (total delay stays under 1 s).
#   bash bench/python/run.sh [RATE...]        (default: 250000 500000 1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${EMBER_BENCH_PYTHON:-python3}
rates=("$@"); [ ${#rates[@]} -gt 0 ] || rates=(250000 500000 1000000)
seconds=${EMBER_BENCH_SECONDS:-20}
cargo build --release -q -p ember-bench
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
for rate in "${rates[@]}"; do
  target/release/ember-bench serve --port 0 --rate "$rate" --seconds $((seconds + 15)) > "$out/serve.$rate" &
  for _ in $(seq 50); do grep -q LISTENING "$out/serve.$rate" && break; sleep 0.1; done
  port=$(awk '/LISTENING/ {print $2}' "$out/serve.$rate")
  /usr/bin/time -f "%U %S %M" -o "$out/time.$rate" \
    "$python" bench/python/wordcount_job.py 127.0.0.1 "$port" "$seconds" > "$out/job.$rate" 2> "$out/err.$rate"
  kill %1 2>/dev/null || true; wait 2>/dev/null || true
  python3 - "$rate" "$out/job.$rate" "$out/time.$rate" "$seconds" <<'PY'
import sys
rate, job, timing, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
rows = [l.split()[1:] for l in open(job) if l.startswith("OUT ")]
rows = [(int(b), int(w), int(n)) for b, w, n, _ in rows][3:]  # skip the start-up batches
user, system, rss_kb = open(timing).read().split()[-3:]
if not rows:
    print(f"offered {rate:>9,} words/s: no batches"); sys.exit()
words = sum(n for _, _, n in rows)
delays = sorted(w - b for b, w, _ in rows)
per_s = words / len(rows)
cpu = float(user) + float(system)
verdict = "sustained" if delays[-1] < 1000 and per_s > 0.9 * rate else "NOT sustained"
print(f"offered {rate:>9,} words/s: processed {per_s:>11,.0f} words/s, total delay p50 {delays[len(delays)//2]} ms "
      f"max {delays[-1]} ms, {cpu:.1f} CPU-s, peak RSS {int(rss_kb)//1024} MB: {verdict}")
PY
done
