#!/usr/bin/env bash
# Unit, integration and doc tests of the whole workspace.
set -euo pipefail
cargo test --workspace --all-features
