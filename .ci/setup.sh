#!/usr/bin/env bash
# Installs the system tools the checks use, skipping what is already there.
set -euo pipefail
need=()
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
# Browser tests of the web UI run Debian's Chromium headless.
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
echo "setup: ok"
