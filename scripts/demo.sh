#!/usr/bin/env bash
# The project's main job on a local, embedded default: a local broker, the
# four functions under `cargo lambda watch`, each invoked with its samples
# from events/, and what landed printed. Everything is stopped on exit,
# failures included.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/tools.sh rust broker build
export PATH="$PWD/.venv/bin:$PATH"
STATE=.tmp/demo
mkdir -p "$STATE"
export WATCH_PORT=${DEMO_WATCH_PORT:-19000}
BROKER=$(scripts/broker.sh address)

cleanup() {
  scripts/watch.sh down >/dev/null || true
  scripts/broker.sh down >/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== 1. local broker"
scripts/broker.sh up --local-topics

echo "== 2. functions under cargo lambda watch, with local.env"
if [ "$BROKER" = "$(sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p' local.env)" ]; then
  scripts/watch.sh up
else
  scripts/watch.sh up --env-var "KAFKA_BOOTSTRAP_SERVERS=$BROKER"
fi
echo "   the first invocation of each function compiles it: about 1.5 min for the first"
echo "   on two cores (a cold cargo registry adds a few minutes), seconds for the others"

invoke() {
  local function=$1 file=$2
  echo
  echo "-- invoke $function with $file"
  local started=$SECONDS
  cargo-lambda lambda invoke "$function" --invoke-port "$WATCH_PORT" --data-file "$file" \
    --output-format json 2>&1 | tee "$STATE/last.json" | head -c 2000
  echo
  echo "   ($((SECONDS - started)) s)"
}

echo "== 3. invocations"
invoke dynamo-stream-producer events/dynamodb-mixed.json
invoke dynamo-stream-producer events/dynamodb-all-types.json
invoke dynamo-stream-producer events/bad/dynamodb-bad-number.json
invoke kinesis-event-logger events/kinesis-tutorial.json
invoke kinesis-event-logger events/kinesis-kpl-aggregated.json
invoke cdc-enricher events/cdc-doublecloud-sample.json
invoke cdc-enricher events/cdc-function-url.json
invoke kafka-tag-handler events/kafka-msk.json
invoke kafka-tag-handler events/kafka-mixed-batch.json

echo
echo "== 4. what landed"
.venv/bin/python scripts/show_topics.py "$BROKER" test-topic dynamo-dead-letters clicks-tagged clicks-errors
echo
echo "The kinesis logger's lines (from the watch log):"
scripts/watch.sh log | grep -h '"kinesis record"' | head -5 || true
echo
scripts/watch.sh log > "$STATE/watch.log"
echo "demo done; full function logs in $STATE/watch.log"
