# Sourced by .ci/test.sh: moto's server (from PyPI) on a free loopback
# port, an S3-compatible object store and a Kinesis-API server in one, for
# the object store and Kinesis tests.
#   start_s3   starts it and exports EMBER_TEST_S3_ENDPOINT and
#              EMBER_TEST_KINESIS_ENDPOINT (the same server), and a second
#              one that checks credentials (moto's IAM authentication from
#              the first request on: it knows no keys, so it refuses every
#              signed request) as EMBER_TEST_AWS_REFUSING_ENDPOINT
#   stop_s3    stops them
# moto is installed by .ci/setup.sh into ~/.cache/ember-ci/moto.

MOTO_VENV=${MOTO_VENV:-$HOME/.cache/ember-ci/moto}

# Starts moto's server on a free port with the environment given as
# arguments, waits until it answers; sets MOTO_PORT and MOTO_PID and
# appends its output to $S3_LOG.
launch_moto() {
  MOTO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  env "$@" "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >> "$S3_LOG" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 200); do
    # Any answer will do (the checking server answers 403).
    if python3 -c "
import urllib.error, urllib.request
try:
    urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/', timeout=0.5)
except urllib.error.HTTPError:
    pass" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "s3: moto did not start:" >&2
  cat "$S3_LOG" >&2
  return 1
}

start_s3() {
  [ -x "$MOTO_VENV/bin/moto_server" ] || { echo "s3: moto is not installed; run .ci/setup.sh" >&2; return 1; }
  S3_LOG=$(mktemp)
  launch_moto || return 1
  S3_PID=$MOTO_PID
  export EMBER_TEST_S3_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
  export EMBER_TEST_KINESIS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
  echo "s3: moto server (S3 and Kinesis) on 127.0.0.1:$MOTO_PORT"
  launch_moto INITIAL_NO_AUTH_ACTION_COUNT=0 || return 1
  S3_AUTH_PID=$MOTO_PID
  export EMBER_TEST_AWS_REFUSING_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
  echo "s3: moto server checking credentials on 127.0.0.1:$MOTO_PORT"
}

stop_s3() {
  local pid
  for pid in "${S3_PID:-}" "${S3_AUTH_PID:-}"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  S3_PID=""
  S3_AUTH_PID=""
  [ -n "${S3_LOG:-}" ] && rm -f "$S3_LOG"
  S3_LOG=""
}
