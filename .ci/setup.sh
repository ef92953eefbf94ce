#!/usr/bin/env bash
# Installs the system tools the checks use, skipping what is already there.
set -euo pipefail
need=()
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
# The Python API's tests build the package in a virtual environment.
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv python3-dev)
# Browser tests of the web UI run Debian's Chromium headless.
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
# The Kafka tests talk to a real Kafka-protocol broker: tansu, with its
# sqlite storage. Building it takes about 10-15 minutes on two cores, once;
# cargo keeps it in ~/.cargo/bin.
if ! command -v tansu >/dev/null 2>&1; then
  echo "setup: installing the tansu broker (cargo install, about 10-15 minutes, once)"
  cargo install --locked tansu --version 0.6.0 --no-default-features --features libsql --quiet
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
# PostgreSQL 15 server binaries for the sink tests (on the image, or from Debian).
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  echo "setup: installing postgresql-15"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 >/dev/null
fi
echo "setup: ok"
