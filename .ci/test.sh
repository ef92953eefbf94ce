#!/usr/bin/env bash
# Unit, integration, browser and doc tests of the whole workspace, with the
# real services some of them talk to: a PostgreSQL 15 server and a
# Kafka-protocol broker (tansu), each throw-away, on free loopback ports.
set -euo pipefail
source .ci/postgres.sh
source .ci/kafka.sh
trap 'stop_postgres; stop_kafka' EXIT
start_postgres
start_kafka
cargo test --workspace --all-features
