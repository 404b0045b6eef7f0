#!/usr/bin/env bash
# Runs the four functions under `cargo lambda watch` in the background, with
# the environment in local.env (cargo-lambda passes it to the functions; a
# variable set on `cargo lambda invoke` never reaches them).
#
#   scripts/watch.sh up [--env-var KEY=VALUE ...]   start, and wait until it listens
#   scripts/watch.sh down                           stop
#   scripts/watch.sh log                            the functions' output so far
#
# WATCH_ENV_FILE (default local.env) names the environment file.
# WATCH_PORT (default 9000, cargo-lambda's own default, so a plain
# `cargo lambda invoke` finds it). Each function is compiled the first time
# it is invoked: about 1.5 min for the first one on two cores, seconds after.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${WATCH_PORT:-9000}
STATE=.tmp/watch
mkdir -p "$STATE"

running() { [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

up() {
  scripts/tools.sh build
  if running; then echo "cargo lambda watch already running (pid $(cat "$STATE/pid"))"; return; fi
  if listening; then echo "port $PORT is taken by another process" >&2; exit 1; fi
  setsid .venv/bin/cargo-lambda lambda watch --invoke-port "$PORT" --env-file "${WATCH_ENV_FILE:-local.env}" "$@" \
    >"$STATE/log" 2>&1 &
  echo $! > "$STATE/pid"
  for _ in $(seq 1 300); do
    listening && break
    running || { echo "cargo lambda watch exited:" >&2; tail -20 "$STATE/log" >&2; exit 1; }
    sleep 0.2
  done
  listening || { echo "cargo lambda watch did not open port $PORT" >&2; exit 1; }
  echo "cargo lambda watch on port $PORT (pid $(cat "$STATE/pid"), log $STATE/log);"
  echo "each function compiles on its first invocation (about 1.5 min for the first on two cores)"
}

down() {
  if running; then
    kill -- -"$(cat "$STATE/pid")" 2>/dev/null || kill "$(cat "$STATE/pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do running || break; sleep 0.1; done
    echo "cargo lambda watch stopped"
  fi
  rm -f "$STATE/pid"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  log) cat "$STATE/log" 2>/dev/null || true ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
