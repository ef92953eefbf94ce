#!/usr/bin/env bash
# The crates meant for crates.io, packaged as `cargo publish` would and
# each built from its package alone (the workspace's other crates taken
# from the packages made here, not from their folders).
set -euo pipefail
# Cargo unpacks those packages under ~/.cargo/registry, keyed by the
# temporary registry's path and the crates' name and version, and reuses an
# unpacked copy it finds there: a clone at a path packaged before would be
# built against that run's sources (seen: a trait method added in core was
# missing for the crates using it). Remove ember's unpacked copies first.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rm -rf "$cargo_home"/registry/src/*/ember-streaming-* "$cargo_home"/registry/cache/*/ember-streaming-*
cargo package --workspace --locked \
  --exclude ember-python --exclude ember-testkit --exclude ember-bench
echo "package: ok"
