#!/usr/bin/env bash
# ember vs Apache Spark Streaming, side by side, on one machine.
#
#   bash bench/compare-spark/run.sh            # full mode (3 runs per rate: ~2 h on 2 cores)
#   bash bench/compare-spark/run.sh --repeat 1 # full mode, one run per rate (~45 min)
#   bash bench/compare-spark/run.sh --quick    # smoke test (~12 min)
#   bash bench/compare-spark/run.sh --quick --jobs wordcount   # one job only
#   bash bench/compare-spark/run.sh --python --quick   # ember's Python API vs PySpark
#
# Any further arguments go to compare.py (--jobs, --systems, --latency-rate,
# --start system-job=RATE). See README.md beside this file.
#
# Needs: Java 17 (java, javac), python3 with venv/pip, PyPI, cargo.
# Downloads and builds go to ${EMBER_COMPARE_CACHE:-$HOME/.cache/ember-compare-spark}
# (reusing the golden-data venv at ~/.cache/ember-golden/venv when it already
# has the same pyspark); logs and the table go to target/compare-spark/<time>/.
set -euo pipefail

export PYSPARK_VERSION=3.5.5
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${EMBER_COMPARE_CACHE:-$HOME/.cache/ember-compare-spark}"
MODE=full
PYTHON=
ARGS=()
for a in "$@"; do
    case "$a" in
        --quick) MODE=quick ;;
        --full) MODE=full ;;
        --python) PYTHON=1 ;;
        *) ARGS+=("$a") ;;
    esac
done
OUT="$ROOT/target/compare-spark/$(date +%Y%m%d-%H%M%S)-$MODE${PYTHON:+-python}"
mkdir -p "$CACHE" "$OUT"
T0=$(date +%s)

# 1. Spark from PyPI, only for the jars it ships (no Python in the measured path).
source "$ROOT/bench/spark-jars.sh"
spark_jars "$CACHE/venv" "$HOME/.cache/ember-golden/venv"

# 2. The Spark jobs, compiled against those jars.
CLASSES="$CACHE/classes"
rm -rf "$CLASSES" && mkdir -p "$CLASSES"
if ! javac -nowarn -cp "$JARS/*" -d "$CLASSES" "$HERE/SparkJobs.java" 2>"$OUT/javac.log"; then
    cat "$OUT/javac.log" >&2
    exit 1
fi

# 3. ember's side and the load generator (one binary).
(cd "$ROOT" && cargo build --release -p ember-bench)
BIN="$ROOT/target/release/ember-bench"

# 3b. With --python: ember's Python package, installed from this checkout
# into its own venv (a release build, a few minutes), and PySpark's own
# Python (the venv above) for pyjobs.py on both sides.
if [ -n "$PYTHON" ]; then
    EMBER_VENV="$CACHE/ember-venv"
    [ -x "$EMBER_VENV/bin/python" ] || python3 -m venv "$EMBER_VENV"
    echo "installing ember's Python package from $ROOT/crates/ember-python"
    "$EMBER_VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall \
        "$ROOT/crates/ember-python"
    # 2 s batches: PySpark's fixed cost per batch on a 2-core machine is
    # over a second (an empty batch took 1.1-1.9 s), so at 1 s batches it
    # sustains no rate at all.
    case " ${ARGS[*]} " in
        *" --systems "*|*" --systems="*) ;;
        *) ARGS+=(--systems ember-python,pyspark) ;;
    esac
    ARGS=(--interval-ms 2000 "${ARGS[@]}"
          --ember-python "$EMBER_VENV/bin/python" --pyspark-python "$SPARK_VENV/bin/python")
fi

# JVM flags from Spark's launcher for Java 17, plus logging and the heap.
JAVA_OPTS="${SPARK_JAVA17_OPTS[*]} -Dlog4j2.configurationFile=$HERE/log4j2.properties -Xmx${SPARK_HEAP:-4g}"

# 4. The machine.
{
    echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/^Mem:/{print $2}') GB RAM"
    echo "== load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "== java: $(java -version 2>&1 | head -1); pyspark $PYSPARK_VERSION; ember $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' + uncommitted changes')"
    echo "== mode: $MODE"
    echo "== the machine's own limit: one thread splitting the text and counting into a hash map"
    "$BIN" baseline --seconds 2
    echo "== the load generator's own limit (unthrottled, into a draining loopback reader)"
    "$BIN" serve --self-test 3
} | tee "$OUT/machine.txt"

# 5. The comparison.
SPARK_LOCAL_IP=127.0.0.1 python3 "$HERE/compare.py" --mode "$MODE" --ember-bin "$BIN" \
    --spark-cp "$CLASSES:$JARS/*" --java-opts "$JAVA_OPTS" --out "$OUT" "${ARGS[@]}"
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "== total time $(( ($(date +%s) - T0) / 60 )) min $(( ($(date +%s) - T0) % 60 )) s; logs in $OUT"
