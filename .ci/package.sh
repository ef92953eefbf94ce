#!/usr/bin/env bash
# The crates meant for crates.io, packaged as `cargo publish` would and
# each built from its package alone (the workspace's other crates taken
# from the packages made here, not from their folders).
set -euo pipefail
# Those packages are served from a temporary registry at a fixed path, so
# cargo takes two things from an earlier run for them: their unpacked
# sources under ~/.cargo/registry and their builds, both keyed by name and
# version (seen: a trait method added in core was missing for the crates
# using it). The packaging builds get a target directory of their own, and
# ember's unpacked copies and builds in it are removed first.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
target="${CARGO_TARGET_DIR:-target}/package-verify"
rm -rf "$cargo_home"/registry/src/*/ember-streaming-* "$cargo_home"/registry/cache/*/ember-streaming-* \
  "$target"/package "$target"/debug/.fingerprint/ember-streaming-*
cargo package --workspace --locked --target-dir "$target" \
  --exclude ember-python --exclude ember-testkit --exclude ember-bench
echo "package: ok"
