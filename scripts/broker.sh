#!/usr/bin/env bash
# Starts and stops the local Kafka-compatible broker (tansu, in-memory
# storage, loopback only) used by the tests and the demo.
#
#   scripts/broker.sh up [topic:partitions ...]   start (if needed), wait, create topics
#   scripts/broker.sh up --local-topics           the same, with the topics local.env names
#   scripts/broker.sh down                        stop
#   scripts/broker.sh address                     print host:port
#
# BROKER_PORT picks another port (one broker per port, each with its own
# state); BROKER_ADVERTISED=host:port makes the broker name that address in
# its metadata instead of its own, so clients reach every partition through
# whatever listens there (the benchmark's delay line).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${BROKER_PORT:-19092}
ADDRESS=127.0.0.1:$PORT
ADVERTISED=${BROKER_ADVERTISED:-$ADDRESS}
STATE=.tmp/broker${BROKER_PORT:+-$PORT}
TANSU=.venv/bin/tansu
# The topics of local.env (make broker-up, make demo, the README's recipe).
LOCAL_TOPICS=(test-topic:6 dynamo-dead-letters:1 clicks:3 clicks-tagged:3 clicks-errors:1)
mkdir -p "$STATE"

running() { [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }

ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

up() {
  scripts/tools.sh broker
  if ! running; then
    if ready; then echo "port $PORT is taken by another process" >&2; exit 1; fi
    "$TANSU" broker \
      --listener-url "tcp://127.0.0.1:$PORT" \
      --advertised-listener-url "tcp://$ADVERTISED" \
      --storage-engine memory://tansu/ \
      >"$STATE/log" 2>&1 &
    echo $! > "$STATE/pid"
    for _ in $(seq 1 100); do
      ready && break
      running || { echo "broker exited:" >&2; tail -20 "$STATE/log" >&2; exit 1; }
      sleep 0.1
    done
    ready || { echo "broker did not open port $PORT" >&2; exit 1; }
    echo "broker up on $ADDRESS (pid $(cat "$STATE/pid"), log $STATE/log)"
  fi
  for spec in "$@"; do
    name=${spec%%:*}; partitions=${spec#*:}
    [ "$partitions" = "$spec" ] && partitions=1
    # 0.6.0 does not auto-create topics; an existing topic is not an error.
    "$TANSU" topic create "$name" --partitions "$partitions" --broker "tcp://$ADDRESS" >/dev/null 2>&1 \
      && echo "topic $name ($partitions partitions)" || true
  done
}

down() {
  if running; then
    kill "$(cat "$STATE/pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do running || break; sleep 0.1; done
    running && kill -9 "$(cat "$STATE/pid")" 2>/dev/null || true
    echo "broker stopped"
  fi
  rm -f "$STATE/pid"
}

case "${1:-}" in
  up)
    shift
    if [ "${1:-}" = --local-topics ]; then shift; set -- "${LOCAL_TOPICS[@]}" "$@"; fi
    up "$@"
    ;;
  down) down ;;
  address) echo "$ADDRESS" ;;
  *) echo "usage: $0 up [--local-topics] [topic:partitions ...] | down | address" >&2; exit 2 ;;
esac
