#!/usr/bin/env bash
# The project's main job on a local, embedded default, as a live pipeline:
# moto (DynamoDB with Streams, Kinesis, S3, Secrets Manager) and a local
# broker as the sources, the four functions under `cargo lambda watch`, and
# mapping-runner playing Lambda's event source mappings with the template's
# settings. scripts/demo.py drives the five stages and the broker fault and
# prints where every record went. Everything is stopped on exit, failures
# included.
#
#   scripts/demo.sh           the demo
#   scripts/demo.sh --check   the same, failing unless nothing was lost (make test)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/tools.sh rust broker build aws
export PATH="$PWD/.venv/bin:$PATH"
STATE=.tmp/demo
rm -rf "$STATE"
mkdir -p "$STATE"
# Ports of the demo's own, so it runs beside a broker or watch left running.
export WATCH_PORT=${DEMO_WATCH_PORT:-19100}
export BROKER_PORT=${DEMO_BROKER_PORT:-19292}
MOTO_PORT=${DEMO_MOTO_PORT:-15000}
BROKER=$(scripts/broker.sh address)
MOTO_PID=

cleanup() {
  scripts/watch.sh down >/dev/null || true
  [ -f ".tmp/broker-$BROKER_PORT/pid" ] && kill -CONT "$(cat ".tmp/broker-$BROKER_PORT/pid")" 2>/dev/null
  scripts/broker.sh down >/dev/null || true
  [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== building mapping-runner"
cargo build --quiet --package test-support --bin mapping-runner
RUNNER=${CARGO_TARGET_DIR:-target}/debug/mapping-runner

echo "== moto on 127.0.0.1:$MOTO_PORT, broker on $BROKER"
.venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$STATE/moto.log" 2>&1 &
MOTO_PID=$!
scripts/broker.sh up test-topic:6 dynamo-dead-letters:1 clicks:3 clicks-tagged:3 clicks-errors:1
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break
  sleep 0.1
done

# The enricher reads its caller token from Secrets Manager (moto), as it
# does when deployed; the functions' environment is local.env with that
# instead of the inline token.
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
SECRET_ARN=$(.venv/bin/python - "$MOTO_PORT" <<'PY'
import sys, boto3
sm = boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
print(sm.create_secret(Name="enricher-token", SecretString="local-dev-token")["ARN"])
PY
)
{
  grep -v -e '^ENRICHER_TOKEN=' -e '^KAFKA_BOOTSTRAP_SERVERS=' local.env
  echo "KAFKA_BOOTSTRAP_SERVERS=$BROKER"
  echo "ENRICHER_TOKEN_SECRET_ARN=$SECRET_ARN"
  echo "AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:$MOTO_PORT"
  echo "AWS_ACCESS_KEY_ID=local"
  echo "AWS_SECRET_ACCESS_KEY=local"
  echo "AWS_REGION=us-east-1"
} > "$STATE/functions.env"

echo "== the functions under cargo lambda watch (port $WATCH_PORT)"
WATCH_ENV_FILE="$STATE/functions.env" scripts/watch.sh up
# Watch compiles a function on its first invocation (about 1.5 min for the
# first on two cores, seconds for the others); an empty batch each makes
# that happen here, not inside the mappings' first invocations.
for warm in dynamo-stream-producer:events/bad/dynamodb-empty-batch.json \
            kinesis-event-logger:events/bad/kinesis-empty-batch.json \
            kafka-tag-handler:events/bad/kafka-empty-batch.json \
            cdc-enricher:events/cdc-probe.json; do
  started=$SECONDS
  cargo-lambda lambda invoke "${warm%%:*}" --invoke-port "$WATCH_PORT" --data-file "${warm#*:}" \
    >/dev/null 2>&1 || true
  echo "   ${warm%%:*} compiled and started ($((SECONDS - started)) s)"
done

echo "== the pipeline"
status=0
.venv/bin/python scripts/demo.py "$@" \
  --aws "127.0.0.1:$MOTO_PORT" --broker "$BROKER" --lambda-port "$WATCH_PORT" \
  --broker-pid "$(cat ".tmp/broker-$BROKER_PORT/pid")" --runner "$RUNNER" \
  --watch-log .tmp/watch/log --state "$STATE" || status=$?
cp .tmp/watch/log "$STATE/watch.log" 2>/dev/null || true
echo "logs: $STATE/ (runner.log: every invocation the mappings made; watch.log: the functions)"
exit "$status"
