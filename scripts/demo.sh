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
WATCH_PORT=${DEMO_WATCH_PORT:-19000}
BROKER=$(scripts/broker.sh address)

cleanup() {
  if [ -f "$STATE/watch.pid" ]; then
    kill -- -"$(cat "$STATE/watch.pid")" 2>/dev/null || kill "$(cat "$STATE/watch.pid")" 2>/dev/null || true
    rm -f "$STATE/watch.pid"
  fi
  scripts/broker.sh down >/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== 1. local broker"
scripts/broker.sh up test-topic:6 dynamo-dead-letters:1 clicks:3 clicks-tagged:3 clicks-errors:1

echo "== 2. functions under cargo lambda watch (first build takes a few minutes)"
# ENRICHER_TOKEN is an inline secret, refused in Lambda but accepted here:
# cargo lambda watch sets AWS_LAMBDA_FUNCTION_NAME, not the variables that
# mark a real Lambda environment (README, "Local-only secrets"). The token
# is what events/cdc-function-url.json sends.
cat > "$STATE/env" <<ENV
KAFKA_BOOTSTRAP_SERVERS=$BROKER
KAFKA_AUTH=none
TOPIC_NAME=test-topic
EVENT_NAMES=INSERT,MODIFY,REMOVE
DEAD_LETTER_TOPIC=dynamo-dead-letters
RESPONSE_TOPIC=clicks-tagged
ERROR_TOPIC=clicks-errors
ENRICH_IP=44.201.33.239
ENRICHER_TOKEN=local-dev-token
AWS_LAMBDA_LOG_FORMAT=JSON
ENV
setsid cargo-lambda lambda watch --invoke-port "$WATCH_PORT" --env-file "$STATE/env" \
  >"$STATE/watch.log" 2>&1 &
echo $! > "$STATE/watch.pid"
for _ in $(seq 1 120); do
  (exec 3<>"/dev/tcp/127.0.0.1/$WATCH_PORT") 2>/dev/null && break
  sleep 1
done

invoke() {
  local function=$1 file=$2
  echo
  echo "-- invoke $function with $file"
  cargo-lambda lambda invoke "$function" --invoke-port "$WATCH_PORT" --data-file "$file" \
    --output-format json 2>&1 | tee "$STATE/last.json" | head -c 2000
  echo
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
grep -h '"kinesis record"' "$STATE/watch.log" | head -5 || true
echo
echo "demo done; full function logs in $STATE/watch.log"
