# Sourced by .ci/test.sh: moto's server (from PyPI) on a free loopback
# port, an S3-compatible object store and a Kinesis-API server in one, for
# the object store and Kinesis tests; Azurite (from npm), Azure Blob
# Storage's emulator; and WsgiDAV (from PyPI), a WebDAV server for the
# http:// store.
#   start_s3   starts it and exports EMBER_TEST_S3_ENDPOINT and
#              EMBER_TEST_KINESIS_ENDPOINT (the same server), and a second
#              one that checks credentials (moto's IAM authentication from
#              the first request on: it knows no keys, so it refuses every
#              signed request) as EMBER_TEST_AWS_REFUSING_ENDPOINT
#              Azurite's blob service as AZURITE_BLOB_STORAGE_URL (the
#              variable the object_store crate's emulator mode reads),
#              and WsgiDAV serving a throw-away directory as
#              EMBER_TEST_WEBDAV_URL
#   stop_s3    stops them
# moto, WsgiDAV and Azurite are installed by .ci/setup.sh into
# ~/.cache/ember-ci.

MOTO_VENV=${MOTO_VENV:-$HOME/.cache/ember-ci/moto}
AZURITE_HOME=${AZURITE_HOME:-$HOME/.cache/ember-ci/azurite}

# A free loopback port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until http://127.0.0.1:$1/ answers anything (an HTTP error will do).
await_http() {
  for _ in $(seq 1 200); do
    if python3 -c "
import urllib.error, urllib.request
try:
    urllib.request.urlopen('http://127.0.0.1:$1/', timeout=0.5)
except urllib.error.HTTPError:
    pass" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# Starts moto's server on a free port with the environment given as
# arguments, waits until it answers; sets MOTO_PORT and MOTO_PID and
# appends its output to $S3_LOG.
launch_moto() {
  MOTO_PORT=$(free_port)
  env "$@" "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >> "$S3_LOG" 2>&1 &
  MOTO_PID=$!
  # Any answer will do (the checking server answers 403).
  await_http "$MOTO_PORT" && return 0
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
  [ -x "$AZURITE_HOME/node_modules/.bin/azurite-blob" ] || { echo "s3: Azurite is not installed; run .ci/setup.sh" >&2; return 1; }
  local port
  port=$(free_port)
  AZURITE_DATA=$(mktemp -d)
  "$AZURITE_HOME/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
    --location "$AZURITE_DATA" --skipApiVersionCheck --silent >> "$S3_LOG" 2>&1 &
  AZURITE_PID=$!
  # It answers 403 to the unsigned probe.
  await_http "$port" || { echo "s3: Azurite did not start:" >&2; cat "$S3_LOG" >&2; return 1; }
  export AZURITE_BLOB_STORAGE_URL="http://127.0.0.1:$port"
  echo "s3: Azurite (Azure Blob Storage) on 127.0.0.1:$port"
  [ -x "$MOTO_VENV/bin/wsgidav" ] || { echo "s3: WsgiDAV is not installed; run .ci/setup.sh" >&2; return 1; }
  port=$(free_port)
  WEBDAV_ROOT=$(mktemp -d)
  "$MOTO_VENV/bin/wsgidav" --host 127.0.0.1 --port "$port" --root "$WEBDAV_ROOT" \
    --auth anonymous -q >> "$S3_LOG" 2>&1 &
  WEBDAV_PID=$!
  await_http "$port" || { echo "s3: WsgiDAV did not start:" >&2; cat "$S3_LOG" >&2; return 1; }
  export EMBER_TEST_WEBDAV_URL="http://127.0.0.1:$port"
  echo "s3: WsgiDAV (WebDAV, for http:// stores) on 127.0.0.1:$port"
}

stop_s3() {
  local pid
  for pid in "${S3_PID:-}" "${S3_AUTH_PID:-}" "${AZURITE_PID:-}" "${WEBDAV_PID:-}"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  S3_PID=""
  S3_AUTH_PID=""
  AZURITE_PID=""
  WEBDAV_PID=""
  [ -n "${WEBDAV_ROOT:-}" ] && rm -rf "$WEBDAV_ROOT"
  WEBDAV_ROOT=""
  [ -n "${AZURITE_DATA:-}" ] && rm -rf "$AZURITE_DATA"
  AZURITE_DATA=""
  [ -n "${S3_LOG:-}" ] && rm -f "$S3_LOG"
  S3_LOG=""
}
