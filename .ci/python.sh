#!/usr/bin/env bash
# The Python API as a user gets it: `pip install` of the checkout into a
# fresh virtual environment (maturin and the crates come from the
# registries), then its pytest suites (the connectors' against a real
# broker and PostgreSQL server), including Spark's own Python
# streaming examples run unmodified under `python -m ember.submit`. The
# examples are read from the pyspark distribution on PyPI, downloaded here.
set -euo pipefail
python=${EMBER_PYTHON:-python3}
venv=target/python-venv
pyspark_version=4.3.0
rm -rf "$venv"
"$python" -m venv "$venv"
echo "python: installing ./crates/ember-python with its sql extra (a release build of the engine, a few minutes)"
"$venv/bin/pip" install --quiet --disable-pip-version-check "./crates/ember-python[test,sql]"

downloads=target/pyspark-download
examples=target/pyspark-examples
if [ ! -d "$examples/pyspark-$pyspark_version" ]; then
  mkdir -p "$downloads" "$examples"
  [ -f "$downloads/pyspark-$pyspark_version.tar.gz" ] ||
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
      -d "$downloads" "pyspark==$pyspark_version"
  tar xzf "$downloads/pyspark-$pyspark_version.tar.gz" -C "$examples" \
    --wildcards "pyspark-$pyspark_version/deps/examples/streaming/*"
fi
export EMBER_PYSPARK_EXAMPLES=$PWD/$examples/pyspark-$pyspark_version/deps/examples/streaming
export EMBER_REQUIRE_PYSPARK_EXAMPLES=1

# The recogniser of the functions the engine runs natively reads bytecode,
# which differs between CPython versions: check it under each one present
# (pure Python, no build needed).
for minor in 10 11 12 13; do
  interpreter=$(ls -d "$HOME"/.pyenv/versions/3."$minor".*/bin/python3 2>/dev/null | tail -1 || true)
  if [ -z "$interpreter" ] && "python3.$minor" -c pass 2>/dev/null; then
    interpreter=python3.$minor
  fi
  if [ -n "$interpreter" ]; then
    "$interpreter" crates/ember-python/tests/lift_cases.py
  else
    echo "python: no CPython 3.$minor here; its bytecode is not checked"
  fi
done

# The connector tests talk to a real broker, a real PostgreSQL server and a
# real S3-compatible object store.
source .ci/postgres.sh
source .ci/kafka.sh
source .ci/s3.sh
trap 'stop_postgres; stop_kafka; stop_s3' EXIT
start_postgres
start_kafka
start_s3
export EMBER_REQUIRE_SERVICES=1
# ember.sql's tests (and Spark's sql_network_wordcount.py) must run here.
export EMBER_REQUIRE_SQL=1
# Run from the tests' folder so that `ember` is the installed package, not
# the source tree.
cd crates/ember-python/tests
"../../../$venv/bin/python" -m pytest -q -p no:cacheprovider .
# Again with every natively run function also run in Python and compared:
# any difference fails the test that met it.
echo "python: the suite again with EMBER_LIFT_CHECK=1 (native and Python results compared)"
EMBER_LIFT_CHECK=1 "../../../$venv/bin/python" -m pytest -q -p no:cacheprovider .

# The engine's side of the native functions on the other CPython versions
# present (pyenv): the package built for each, the lifting and streaming
# suites run with the differential check on. Each build recompiles only
# PyO3 and the extension (a minute or two).
cd ../../..
for minor in 10 12 13; do
  interpreter=$(ls -d "$HOME"/.pyenv/versions/3."$minor".*/bin/python3 2>/dev/null | tail -1 || true)
  if [ -z "$interpreter" ]; then
    echo "python: no CPython 3.$minor here; the package is not tested on it"
    continue
  fi
  other=target/python-venv-3.$minor
  rm -rf "$other"
  "$interpreter" -m venv "$other"
  echo "python: installing ./crates/ember-python for $("$other/bin/python" -V)"
  "$other/bin/pip" install --quiet --disable-pip-version-check "./crates/ember-python[test]"
  (cd crates/ember-python/tests &&
    EMBER_LIFT_CHECK=1 "../../../$other/bin/python" -m pytest -q -p no:cacheprovider \
      test_lift.py test_streaming.py test_golden.py)
done
