#!/usr/bin/env bash
# The project's whole check, as CI runs it: formatting, lints, unit tests,
# broker-backed tests against Apache Kafka (every listener: PLAINTEXT,
# SCRAM, PLAIN, client certificates, MSK IAM) with moto serving Secrets
# Manager, a compatibility pass on the oldest Kafka MSK supports, the local
# pipeline, and the template lint.
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

scripts/tools.sh rust broker build aws
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (the first build of the workspace takes about 4 min on two cores)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# The oldest Apache Kafka line MSK still supports (3.8 and 3.9: see README).
COMPAT_KAFKA=3.8.1
COMPAT_PORT=19392
# The tests' own broker, fresh: not one left running by `make broker-up`.
TEST_PORT=19492
MOTO_PORT=${TEST_MOTO_PORT:-15100}
MOTO_PID=
cleanup() {
  BROKER_PORT=$TEST_PORT scripts/broker.sh down >/dev/null || true
  # The recipe's and the replay's broker, on the default port, if a failure
  # left it running.
  BROKER_PORT= scripts/broker.sh down >/dev/null || true
  BROKER_PORT=$COMPAT_PORT scripts/broker.sh down >/dev/null || true
  [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true
}
trap cleanup EXIT

echo "== tests (unit and broker-backed, on Apache Kafka $(scripts/kafka.sh version))"
export BROKER_PORT=$TEST_PORT
scripts/broker.sh down >/dev/null
scripts/broker.sh up
mkdir -p .tmp
.venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" >.tmp/test-moto.log 2>&1 &
MOTO_PID=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null \
  || { echo "moto did not open port $MOTO_PORT:" >&2; tail -20 .tmp/test-moto.log >&2; exit 1; }
export TEST_MOTO=127.0.0.1:$MOTO_PORT
KAFKA_TEST_BROKER=$(scripts/broker.sh address) \
KAFKA_TEST_LISTENERS=$(scripts/broker.sh listeners) \
  cargo test --workspace -- --include-ignored

echo "== compatibility: the producers' broker and listener tests on Apache Kafka $COMPAT_KAFKA"
scripts/broker.sh down
export KAFKA_VERSION=$COMPAT_KAFKA BROKER_PORT=$COMPAT_PORT
scripts/broker.sh down >/dev/null
scripts/broker.sh up
export KAFKA_TEST_BROKER KAFKA_TEST_LISTENERS
KAFKA_TEST_BROKER=$(scripts/broker.sh address)
KAFKA_TEST_LISTENERS=$(scripts/broker.sh listeners)
cargo test -p lambda-stream-kit --all-features --test listeners --test iam --test refusals -- --include-ignored
cargo test -p dynamo-stream-producer -p kafka-tag-handler --test broker --test listeners -- --include-ignored
scripts/broker.sh down
unset KAFKA_VERSION BROKER_PORT KAFKA_TEST_BROKER KAFKA_TEST_LISTENERS

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
