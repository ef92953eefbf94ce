#!/usr/bin/env bash
# Unit, integration, browser and doc tests of the whole workspace, with the
# real services some of them talk to: a PostgreSQL server, a
# Kafka-protocol broker (tansu), an S3-compatible object store (moto),
# Azure Blob Storage's emulator (Azurite) and a WebDAV server (WsgiDAV),
# each throw-away, on free loopback ports.
set -euo pipefail
source .ci/postgres.sh
source .ci/kafka.sh
source .ci/s3.sh
trap 'stop_postgres; stop_kafka; stop_s3' EXIT
start_postgres
start_kafka
start_s3
# The services are up: a test that cannot find one fails rather than skips.
export EMBER_REQUIRE_SERVICES=1
cargo test --workspace --all-features
