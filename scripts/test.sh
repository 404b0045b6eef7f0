#!/usr/bin/env bash
# The project's whole check, as CI runs it: formatting, lints, unit tests,
# broker-backed tests against a local tansu, and the template lint.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --check ]; then
  # make check: what the edit loop needs, in under a minute when warm.
  scripts/tools.sh rust
  echo "== cargo fmt --check"
  cargo fmt --all -- --check
  echo "== cargo clippy"
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  echo "== unit tests (broker-backed ones are listed as ignored)"
  cargo test --workspace --quiet
  exit 0
fi

scripts/tools.sh rust broker build
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (the first build of the workspace takes about 4 min on two cores)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== tests (unit and broker-backed)"
scripts/broker.sh up
trap 'scripts/broker.sh down' EXIT
KAFKA_TEST_BROKER=$(scripts/broker.sh address) \
TANSU_BIN=$PWD/.venv/bin/tansu \
  cargo test --workspace -- --include-ignored

echo "== the README's local-development recipe (cargo lambda watch compiles the producer: about 1.5 min the first time)"
scripts/recipe-test.sh
echo "== the local pipeline end to end, with its checks (scripts/demo.sh --check)"
scripts/demo.sh --check
echo "== replaying a stored on-failure batch (scripts/replay.py)"
scripts/replay-test.sh

echo "== cargo deny (licences, bans, sources; advisories when the database can be fetched)"
scripts/deny.sh

echo "== fuzzing, short pass"
FUZZ_SECONDS=${FUZZ_SECONDS:-5} scripts/fuzz.sh --ci

if [ -f template.yaml ]; then
  echo "== template lint"
  scripts/lint-template.sh
fi
