#!/usr/bin/env bash
# The crates meant for crates.io, packaged as `cargo publish` would and
# each built from its package alone (the workspace's other crates taken
# from the packages made here, not from their folders).
set -euo pipefail
cargo package --workspace --locked \
  --exclude ember-python --exclude ember-testkit --exclude ember-bench
echo "package: ok"
