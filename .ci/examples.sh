#!/usr/bin/env bash
# Runs the examples as a user would: queue_stream on its own, and
# network_word_count against a real `nc -lk` server.
set -euo pipefail
cargo build --examples -p ember
bin=target/debug/examples
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# queue_stream: five batches of 1..=1000, 100 numbers per last digit.
timeout 60 "$bin/queue_stream" --master 'local[2]' > "$work/queue.out"
batches=$(grep -c '^Time: [0-9]* ms$' "$work/queue.out")
hundreds=$(grep -c '^([0-9],100)$' "$work/queue.out")
[ "$batches" -ge 5 ] || { echo "queue_stream: expected >= 5 batches, got $batches"; cat "$work/queue.out"; exit 1; }
[ "$hundreds" -eq 50 ] || { echo "queue_stream: expected 50 lines (d,100), got $hundreds"; cat "$work/queue.out"; exit 1; }
echo "examples: queue_stream ok ($batches batches)"

# network_word_count against nc -lk: the words typed into nc are counted.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkfifo "$work/nc.in"
nc -lk 127.0.0.1 "$port" < "$work/nc.in" > /dev/null &
exec 3> "$work/nc.in"
"$bin/network_word_count" 127.0.0.1 "$port" --master 'local[2]' --batch-interval 500ms > "$work/nwc.out" 2> "$work/nwc.err" &
nwc=$!
for i in $(seq 1 100); do
  echo "hello world hello ember" >&3
  if grep -q '^(hello,' "$work/nwc.out" 2>/dev/null; then break; fi
  sleep 0.1
done
sleep 1
kill "$nwc" 2>/dev/null || true
exec 3>&-
grep -q '^-------------------------------------------$' "$work/nwc.out" || { echo "network_word_count: no print() header"; cat "$work/nwc.out" "$work/nwc.err"; exit 1; }
grep -Eq '^\(hello,[0-9]+\)$' "$work/nwc.out" || { echo "network_word_count: no counts for hello"; cat "$work/nwc.out" "$work/nwc.err"; exit 1; }
grep -Eq '^\(ember,[0-9]+\)$' "$work/nwc.out" || { echo "network_word_count: no counts for ember"; cat "$work/nwc.out" "$work/nwc.err"; exit 1; }
echo "examples: network_word_count against nc -lk ok"
