# Sourced by .ci/test.sh: moto's server (from PyPI) on a free loopback
# port, an S3-compatible object store and a Kinesis-API server in one, for
# the object store and Kinesis tests.
#   start_s3   starts it and exports EMBER_TEST_S3_ENDPOINT and
#              EMBER_TEST_KINESIS_ENDPOINT (the same server)
#   stop_s3    stops it
# moto is installed by .ci/setup.sh into ~/.cache/ember-ci/moto.

MOTO_VENV=${MOTO_VENV:-$HOME/.cache/ember-ci/moto}

start_s3() {
  [ -x "$MOTO_VENV/bin/moto_server" ] || { echo "s3: moto is not installed; run .ci/setup.sh" >&2; return 1; }
  S3_LOG=$(mktemp)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" > "$S3_LOG" 2>&1 &
  S3_PID=$!
  for _ in $(seq 1 200); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/', timeout=0.5)" 2>/dev/null; then
      export EMBER_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
      export EMBER_TEST_KINESIS_ENDPOINT="http://127.0.0.1:$port"
      echo "s3: moto server (S3 and Kinesis) on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "s3: moto did not start:" >&2
  cat "$S3_LOG" >&2
  return 1
}

stop_s3() {
  if [ -n "${S3_PID:-}" ]; then
    kill "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=""
  fi
  [ -n "${S3_LOG:-}" ] && rm -f "$S3_LOG"
  S3_LOG=""
}
