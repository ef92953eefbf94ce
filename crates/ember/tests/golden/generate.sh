#!/usr/bin/env bash
# Regenerates the golden window-operation outputs from REAL Apache Spark.
#
#   bash crates/ember/tests/golden/generate.sh            # every case
#   bash crates/ember/tests/golden/generate.sh CASE...    # only these cases
#
# For each case directory (one holding case.txt) it runs GoldenWindows.java
# on <case>/input/*.txt and writes <case>/expected.txt (see README.md).
#
# Needs: Java 17 (java, javac), python3 with venv/pip, access to PyPI.
# Everything downloaded or built goes to ${EMBER_GOLDEN_CACHE:-$HOME/.cache/ember-golden}
# (venv with pyspark, compiled classes, raw Spark logs), never into the repo.
#
# Time on a 2-core machine: ~20-60 s for the first pip install of pyspark
# (~320 MB download), then ~15 s per case (JVM + Spark start-up, 12
# one-second batches on the real clock, shutdown): about 3 minutes for all
# 12 cases (measured: 2 m 53 s with the venv already in place). Rerunnable and
# idempotent: the venv and pyspark are reused, expected.txt files are
# rewritten (record order within a batch may differ between runs).
set -euo pipefail

export PYSPARK_VERSION=3.5.5

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${EMBER_GOLDEN_CACHE:-$HOME/.cache/ember-golden}"
mkdir -p "$CACHE"

# 1. pyspark, pinned (only for its bundled Spark jars).
source "$HERE/../../../../bench/spark-jars.sh"
spark_jars "$CACHE/venv"

# 2. Compile the Spark program.
rm -rf "$CACHE/classes"
mkdir -p "$CACHE/classes" "$CACHE/logs"
# (The DStream API is deprecated in Spark 3.5; javac's note about it is kept
# out of the way in the log.)
if ! javac -cp "$JARS/*" -d "$CACHE/classes" "$HERE/GoldenWindows.java" 2>"$CACHE/logs/javac.log"; then
    cat "$CACHE/logs/javac.log" >&2
    exit 1
fi

# JVM flags from Spark's launcher for Java 17, plus logging and the heap.
JAVA_OPTS=(
    "${SPARK_JAVA17_OPTS[@]}"
    -Dlog4j2.configurationFile="$HERE/log4j2.properties"
    -Xmx1g
)

# 3. Run each case.
if [ "$#" -gt 0 ]; then
    CASES=("$@")
else
    CASES=()
    for d in "$HERE"/*/; do
        [ -f "$d/case.txt" ] && CASES+=("$(basename "$d")")
    done
fi

for c in "${CASES[@]}"; do
    dir="$HERE/$c"
    [ -f "$dir/case.txt" ] || { echo "no such case: $c" >&2; exit 1; }
    ok=0
    for attempt in 1 2 3; do
        start=$(date +%s)
        if SPARK_LOCAL_IP=127.0.0.1 java "${JAVA_OPTS[@]}" -cp "$CACHE/classes:$JARS/*" \
                GoldenWindows "$c" "$dir" \
                >"$CACHE/logs/$c.stdout" 2>"$CACHE/logs/$c.stderr" \
            && "$SPARK_VENV/bin/python" "$HERE/normalize.py" \
                <"$CACHE/logs/$c.stdout" >"$CACHE/logs/$c.expected"; then
            mv "$CACHE/logs/$c.expected" "$dir/expected.txt"
            echo "$c: ok ($(( $(date +%s) - start )) s, $(grep -c '^Time: ' "$dir/expected.txt") outputs)"
            ok=1
            break
        fi
        echo "$c: attempt $attempt failed; see $CACHE/logs/$c.stderr" >&2
    done
    [ "$ok" = 1 ] || exit 1
done
