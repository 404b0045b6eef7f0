#!/usr/bin/env bash
# Replays an on-failure object in the documented S3 shape
# (events/on-failure/dynamodb-s3-object.json) through the producer under
# `cargo lambda watch`, and checks that its records are on the topic.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup() {
  scripts/watch.sh down >/dev/null 2>&1 || true
  scripts/broker.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/broker.sh up --local-topics >/dev/null
scripts/watch.sh up >/dev/null
mkdir -p .tmp/replay
.venv/bin/python scripts/replay.py dynamo-stream-producer events/on-failure/dynamodb-s3-object.json \
  | tee .tmp/replay/output
.venv/bin/python scripts/show_topics.py "$(scripts/broker.sh address)" test-topic > .tmp/replay/topic
for key in replayed-1 replayed-2 replayed-3; do
  grep -q "key='$key'" .tmp/replay/topic || {
    echo "replay test FAILED: $key is not on test-topic" >&2; cat .tmp/replay/topic >&2; exit 1; }
done
echo "replay test passed: the three records of the stored batch are on test-topic"
