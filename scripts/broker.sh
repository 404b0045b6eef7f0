#!/usr/bin/env bash
# Starts and stops the local broker: Apache Kafka (scripts/kafka.sh), a
# single KRaft node on loopback, fresh at every start. The tests, the demo
# and the benchmarks all use it.
#
#   scripts/broker.sh up [topic:partitions ...]   start (if needed), wait until ready, create topics
#   scripts/broker.sh up --local-topics           the same, with the topics local.env names
#   scripts/broker.sh down                        stop
#   scripts/broker.sh address                     print the PLAINTEXT host:port
#   scripts/broker.sh listeners                   print the path of listeners.json (every listener, for tests)
#
# BROKER_PORT picks another base port (one broker per port, each with its
# own state; the broker takes BROKER_PORT to BROKER_PORT+7).
# BROKER_ADVERTISED=host:port makes the PLAINTEXT listener name that address
# in its metadata instead of its own, so clients reach every partition
# through whatever listens there (the benchmark's delay line).
# KAFKA_VERSION picks the Kafka version (scripts/kafka.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${BROKER_PORT:-19092}
ADDRESS=127.0.0.1:$PORT
ADVERTISED=${BROKER_ADVERTISED:-$ADDRESS}
# One state folder per port, the default port's included, so a broker
# started with BROKER_PORT given explicitly is found again without it.
STATE=.tmp/broker-$PORT
# The topics of local.env (make broker-up, make demo, the README's recipe).
LOCAL_TOPICS=(test-topic:6 dynamo-dead-letters:1 clicks:3 clicks-tagged:3 clicks-errors:1)
mkdir -p "$STATE"

running() { [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

up() {
  scripts/kafka.sh install
  if ! running; then
    if port_open; then echo "port $PORT is taken by another process" >&2; exit 1; fi
    local started=$SECONDS
    scripts/kafka.sh serve "$STATE" --port "$PORT" --advertise "$ADVERTISED" --all-listeners \
      >"$STATE/log" 2>&1 &
    echo $! > "$STATE/pid"
    # Ready when the server says so; the port alone opens before the
    # controller has elected itself.
    for _ in $(seq 1 600); do
      grep -q "Kafka Server started" "$STATE/log" 2>/dev/null && break
      running || { echo "broker exited:" >&2; tail -30 "$STATE/log" >&2; exit 1; }
      sleep 0.1
    done
    grep -q "Kafka Server started" "$STATE/log" || { echo "broker did not start in 60 s:" >&2; tail -30 "$STATE/log" >&2; exit 1; }
    echo "Apache Kafka $(scripts/kafka.sh version) up on $ADDRESS in $((SECONDS - started)) s (pid $(cat "$STATE/pid"), log $STATE/log)"
  fi
  if [ $# -gt 0 ]; then
    scripts/kafka.sh admin "127.0.0.1:$((PORT + 7))" create-topics "$@"
  fi
}

down() {
  if running; then
    kill "$(cat "$STATE/pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do running || break; sleep 0.1; done
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
  listeners) echo "$PWD/$STATE/listeners.json" ;;
  *) echo "usage: $0 up [--local-topics] [topic:partitions ...] | down | address | listeners" >&2; exit 2 ;;
esac
