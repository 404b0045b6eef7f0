#!/usr/bin/env bash
# The project's whole check, as CI runs it: formatting, lints, unit tests,
# broker-backed tests against a local tansu, and the template lint.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/tools.sh rust broker
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== tests (unit and broker-backed)"
scripts/broker.sh up
trap 'scripts/broker.sh down' EXIT
KAFKA_TEST_BROKER=$(scripts/broker.sh address) \
TANSU_BIN=$PWD/.venv/bin/tansu \
  cargo test --workspace -- --include-ignored

echo "== cargo deny (licences, bans, sources; advisories when the database can be fetched)"
scripts/deny.sh

echo "== fuzzing, short pass"
FUZZ_SECONDS=${FUZZ_SECONDS:-5} scripts/fuzz.sh --ci

if [ -f template.yaml ]; then
  echo "== template lint"
  scripts/lint-template.sh
fi
