#!/usr/bin/env bash
# Runs the examples as a user would: queue_stream on its own, and
# network_word_count against a real `nc -lk` server.
set -euo pipefail
cargo build --examples -p ember-streaming
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

# network_word_count against nc -lk: the words typed into nc are counted;
# SIGTERM stops it gracefully, so a line received in the open batch is still
# counted and the exit status is 0.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkfifo "$work/nc.in"
nc -lk 127.0.0.1 "$port" < "$work/nc.in" > /dev/null &
exec 3> "$work/nc.in"
"$bin/network_word_count" 127.0.0.1 "$port" --master 'local[2]' --batch-interval 2s --ui 127.0.0.1:0 > "$work/nwc.out" 2> "$work/nwc.err" &
nwc=$!
sent=0
for i in $(seq 1 100); do
  echo "hello world hello ember" >&3
  sent=$((sent + 1))
  if grep -q '^(hello,' "$work/nwc.out" 2>/dev/null; then break; fi
  sleep 0.2
done
# ember logs the UI's address at start: `... INFO ember_core::ui: Streaming UI at http://…/streaming`.
ui=$(sed -n 's/.*Streaming UI at \(http[^ ]*\)\/streaming$/\1/p' "$work/nwc.err" | head -1)
[ -n "$ui" ] || { echo "network_word_count: no 'Streaming UI at' line"; cat "$work/nwc.err"; exit 1; }
# One more line, then wait until the receiver has read it (the UI's receiver
# table counts lines read) before sending SIGTERM.
echo "final" >&3
sent=$((sent + 1))
read_all=""
for i in $(seq 1 100); do
  got=$(python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/streaming/receivers"))[0]["numRecords"])' "$ui" 2>/dev/null || echo 0)
  if [ "$got" -ge "$sent" ]; then read_all=yes; break; fi
  sleep 0.1
done
[ -n "$read_all" ] || { echo "network_word_count: the receiver read $got of $sent lines"; exit 1; }
kill -TERM "$nwc"
rc=0
timeout 30 tail --pid="$nwc" -f /dev/null || { echo "network_word_count: did not exit within 30 s of SIGTERM"; exit 1; }
wait "$nwc" || rc=$?
exec 3>&-
[ "$rc" -eq 0 ] || { echo "network_word_count: exit status $rc after SIGTERM"; cat "$work/nwc.err"; exit 1; }
grep -q '^-------------------------------------------$' "$work/nwc.out" || { echo "network_word_count: no print() header"; cat "$work/nwc.out" "$work/nwc.err"; exit 1; }
grep -Eq '^\(hello,[0-9]+\)$' "$work/nwc.out" || { echo "network_word_count: no counts for hello"; cat "$work/nwc.out" "$work/nwc.err"; exit 1; }
grep -Eq '^\(ember,[0-9]+\)$' "$work/nwc.out" || { echo "network_word_count: no counts for ember"; cat "$work/nwc.out" "$work/nwc.err"; exit 1; }
grep -q '^(final,1)$' "$work/nwc.out" || { echo "network_word_count: the line received before SIGTERM was not counted"; cat "$work/nwc.out" "$work/nwc.err"; exit 1; }
echo "examples: network_word_count against nc -lk ok; SIGTERM stopped it gracefully"

# custom_receiver: a receiver written on the public interface follows a
# file it appends to itself; its word counts are printed, SIGTERM stops it.
"$bin/custom_receiver" --master 'local[2]' --no-ui > "$work/custom.out" 2> "$work/custom.err" &
custom=$!
for i in $(seq 1 100); do
  if grep -Eq '^\(the,[0-9]+\)$' "$work/custom.out" 2>/dev/null; then break; fi
  sleep 0.2
done
grep -Eq '^\(the,[0-9]+\)$' "$work/custom.out" || { echo "custom_receiver: no counts for the"; cat "$work/custom.out" "$work/custom.err"; exit 1; }
kill -TERM "$custom"
rc=0
timeout 30 tail --pid="$custom" -f /dev/null || { echo "custom_receiver: did not exit within 30 s of SIGTERM"; exit 1; }
wait "$custom" || rc=$?
[ "$rc" -eq 0 ] || { echo "custom_receiver: exit status $rc after SIGTERM"; cat "$work/custom.err"; exit 1; }
echo "examples: custom_receiver ok; SIGTERM stopped it gracefully"

# sql_network_word_count (the `sql` feature) against nc -lk: each batch's
# words counted by a SQL query and printed in Spark's show() format.
cargo build -p ember-streaming --features sql --example sql_network_word_count
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkfifo "$work/sql.in"
nc -lk 127.0.0.1 "$port" < "$work/sql.in" > /dev/null &
exec 4> "$work/sql.in"
"$bin/sql_network_word_count" 127.0.0.1 "$port" --master 'local[2]' --no-ui > "$work/sql.out" 2> "$work/sql.err" &
sqlwc=$!
for i in $(seq 1 100); do
  echo "hello world hello" >&4
  if grep -Eq '^\| *hello\| *[0-9]+\|$' "$work/sql.out" 2>/dev/null; then break; fi
  sleep 0.2
done
kill -TERM "$sqlwc"
rc=0
timeout 30 tail --pid="$sqlwc" -f /dev/null || { echo "sql_network_word_count: did not exit within 30 s of SIGTERM"; exit 1; }
wait "$sqlwc" || rc=$?
exec 4>&-
[ "$rc" -eq 0 ] || { echo "sql_network_word_count: exit status $rc after SIGTERM"; cat "$work/sql.err"; exit 1; }
grep -Eq '^========= [0-9]+ ms =========$' "$work/sql.out" || { echo "sql_network_word_count: no batch header"; cat "$work/sql.out"; exit 1; }
grep -Eq '^\| *word\|total\|$' "$work/sql.out" || { echo "sql_network_word_count: no table header"; cat "$work/sql.out"; exit 1; }
grep -Eq '^\| *hello\| *[0-9]+\|$' "$work/sql.out" || { echo "sql_network_word_count: no count for hello"; cat "$work/sql.out" "$work/sql.err"; exit 1; }
echo "examples: sql_network_word_count against nc -lk ok"
