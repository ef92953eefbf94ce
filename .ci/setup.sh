#!/usr/bin/env bash
# Installs the system tools the checks use, skipping what is already there.
# System packages come from apt-get, run as root or with sudo.
set -euo pipefail
# For pg_bin_dir, which finds a PostgreSQL server of any major version.
source "$(dirname "$0")/postgres.sh"

# Runs a command as root: directly when we are root, else with sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "setup: not root and no sudo, so cannot run: $*" >&2
    exit 1
  fi
}

# Minutes and seconds since $1 (a value of $SECONDS).
since() {
  local s=$((SECONDS - $1))
  printf '%d:%02d' $((s / 60)) $((s % 60))
}

need=()
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
# The Python API's tests build the package in a virtual environment
# (Debian's python3 has no ensurepip, so no venv, without python3-venv).
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv python3-dev)
# Browser tests of the web UI run Debian's Chromium headless.
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
# The sink tests need a PostgreSQL server, any major version: the
# distribution's own if there is none.
pg_bin_dir >/dev/null || need+=(postgresql)
# Azurite (Azure Blob Storage's emulator) comes from the npm registry.
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing ${need[*]} (Debian package names), and no apt-get to install them" >&2
    exit 1
  fi
  start=$SECONDS
  echo "setup: installing ${need[*]} (apt-get), started at $(date +%H:%M:%S)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  echo "setup: apt-get install took $(since "$start")"
fi
python3 -m venv --help >/dev/null 2>&1 || { echo "setup: python3 -m venv does not work" >&2; exit 1; }
pg_bin_dir >/dev/null || { echo "setup: no PostgreSQL server binaries (initdb, pg_ctl, postgres) found" >&2; exit 1; }
# As root, the test server runs as the `postgres` user: Debian's package
# creates it, a server from elsewhere may not have.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
fi
# rustfmt and clippy, each checked on its own.
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
# The Kafka tests talk to a real Kafka-protocol broker: tansu, with its
# sqlite storage. Building it takes about 10-15 minutes on two cores, once;
# cargo keeps it in ~/.cargo/bin. Not --quiet: the "Compiling" lines show
# progress. The published crate sets no release profile, so cargo's
# defaults apply (no LTO, 16 codegen units): nothing to turn off for speed.
if ! command -v tansu >/dev/null 2>&1; then
  start=$SECONDS
  echo "setup: installing the tansu broker (cargo install, about 10-15 minutes on two cores, once), started at $(date +%H:%M:%S)"
  cargo install --locked tansu --version 0.6.0 --no-default-features --features libsql
  echo "setup: tansu installed in $(since "$start")"
fi
# The object store tests talk to a real S3-compatible server: moto's, from
# PyPI, in its own virtual environment (about half a minute, once).
moto="$HOME/.cache/ember-ci/moto"
if [ ! -x "$moto/bin/moto_server" ]; then
  echo "setup: installing moto's S3 server (pip, once)"
  rm -rf "$moto"
  python3 -m venv "$moto"
  "$moto/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.*"
fi
# The http:// store tests list a WebDAV server: WsgiDAV, from PyPI, in the
# same environment.
if [ ! -x "$moto/bin/wsgidav" ]; then
  echo "setup: installing WsgiDAV (pip, once)"
  "$moto/bin/pip" install --quiet --disable-pip-version-check "wsgidav==4.4.*" "cheroot==11.*"
fi
# The Azure Blob Storage tests talk to Azurite, Microsoft's emulator, from
# the npm registry (about twenty seconds, once).
azurite="$HOME/.cache/ember-ci/azurite"
if [ ! -x "$azurite/node_modules/.bin/azurite-blob" ]; then
  echo "setup: installing Azurite (npm, once)"
  rm -rf "$azurite"
  mkdir -p "$azurite"
  npm install --prefix "$azurite" --no-audit --no-fund --loglevel=error azurite@3.35.0
fi
echo "setup: ok"
