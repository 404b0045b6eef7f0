#!/usr/bin/env bash
# Runs the benchmark suite against the peers and writes BENCHMARKS.md and
# bench/benchmarks.png. See BENCHMARKS.md ("How it is measured").
#
#   scripts/bench.sh             the whole suite (make bench)
#   BENCH_QUICK=1 scripts/bench.sh
#                                fewer repetitions: a smoke run of the harness
#                                (the report says so at the top)
#
# Sections, each repeated and reported as median and spread:
#   1. producer end to end: our handler in process vs two kafkajs peers, on
#      the local broker, with the records read back to check their partitions
#   1b. the same race through a delay line (every chunk delayed 0 or 1 ms
#      one way) to a second broker that advertises the line, plus ours with
#      KAFKA_TCP_NODELAY=false to show the stall the relay removes
#   1c. compression: wire bytes and CPU per record for each codec
#   2. CPU per record: criterion benches of each function's per-record work
#      against a bare serde_json parse + serialize of the same bytes
#   3. cold start: each x86_64 release binary against a local Runtime API
#      emulator (bench/emulator.py), and a Node.js logger for the ratio
#   4. size and memory: arm64 bootstrap and zip sizes; peak RSS for a 6 MB event
#
# The release builds come first and are timed apart: they are one-time work.
# A step that fails is recorded and the rest still runs; the report lists
# what could not be measured, and the script then exits non-zero. No step
# ever fails because of a time.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=.tmp/bench/results
EVENTS=.tmp/bench/events
BROKER=$(scripts/broker.sh address)
FUNCTIONS=(dynamo-stream-producer kinesis-event-logger cdc-enricher kafka-tag-handler)
STAMP=$(date +%s)
MATPLOTLIB=matplotlib==3.11.2

if [ -n "${BENCH_QUICK:-}" ]; then
  E2E_RUNS=3; E2E_RUNS_A=1; COLD_RUNS=5; RSS_RUNS=1; LAT_RUNS=5; LAT_RUNS_BIG=2; CODEC_RUNS=3
else
  E2E_RUNS=9; E2E_RUNS_A=3; COLD_RUNS=25; RSS_RUNS=3; LAT_RUNS=25; LAT_RUNS_BIG=9; CODEC_RUNS=10
fi
# The delay line and the broker behind it (section 1b).
LINE_PORT=19192
LINE_BROKER_PORT=19193

rm -rf "$OUT"
mkdir -p "$OUT" "$EVENTS"
: > "$OUT/failures.txt"
: > "$OUT/commands.txt"
export PATH="$PWD/.venv/bin:$PATH"

say() { printf '\n== %s\n' "$*" >&2; }
# Runs a command, recording it for the report; a failure is noted, not fatal.
run() {
  printf '%s\n' "$*" >> "$OUT/commands.txt"
  "$@" || { echo "$* (exit $?)" >> "$OUT/failures.txt"; return 1; }
}
# Same, with stdout to a file.
run_to() {
  local file=$1; shift
  printf '%s > %s\n' "$*" "$file" >> "$OUT/commands.txt"
  # A partial result is kept: the report shows what went wrong.
  "$@" > "$file" || { echo "$* (exit $?)" >> "$OUT/failures.txt"; return 1; }
}
timed() {
  local name=$1; shift
  local start=$SECONDS
  run "$@"; local rc=$?
  echo "{\"step\": \"$name\", \"seconds\": $((SECONDS - start)), \"ok\": $([ $rc = 0 ] && echo true || echo false)}" >> "$OUT/builds.jsonl"
  return $rc
}

python3 - "$OUT/run.json" "${BENCH_QUICK:-}" <<'EOF'
import json, os, sys, time
json.dump({"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "started_epoch": time.time(),
           "loadavg_at_start": os.getloadavg(), "quick": bool(sys.argv[2])}, open(sys.argv[1], "w"))
EOF

say "tools"
run scripts/tools.sh broker build rust
if [ ! -f .venv/.installed-bench ] || [ "$(cat .venv/.installed-bench)" != "$MATPLOTLIB" ]; then
  run .venv/bin/pip install --quiet "$MATPLOTLIB" && echo "$MATPLOTLIB" > .venv/.installed-bench
fi
run npm ci --prefix bench --no-audit --no-fund --loglevel=error

say "one-time release builds (timed apart)"
# One build per function (see scripts/build.sh): built together, cargo would
# give each the shared crate's features of all of them.
for fn in "${FUNCTIONS[@]}"; do
  timed "x86_64 release binary of $fn" nice -n 10 cargo build --release --package "$fn"
done
timed "delay line" nice -n 10 cargo build --release --package test-support --bin delay-line
timed "codec bench" nice -n 10 cargo bench --no-run --package lambda-stream-kit --bench codecs
for fn in "${FUNCTIONS[@]}"; do
  timed "benches of $fn" nice -n 10 cargo bench --no-run --package "$fn"
done
if [ -x scripts/build.sh ]; then
  timed "arm64 lambda builds (scripts/build.sh)" nice -n 10 scripts/build.sh
else
  for fn in "${FUNCTIONS[@]}"; do
    timed "arm64 lambda build of $fn (cargo lambda)" nice -n 10 cargo-lambda lambda build --release --arm64 --package "$fn"
  done
fi

MEASURE_START=$SECONDS
say "events"
run_to "$EVENTS/meta.json" python3 bench/events.py "$EVENTS"
cp "$EVENTS/meta.json" "$OUT/events.json" 2>/dev/null

say "2. CPU per record (criterion)"
export CRITERION_HOME="$PWD/$OUT/criterion"
run cargo bench --package dynamo-stream-producer --bench unmarshal
run cargo bench --package kinesis-event-logger --bench logging
run cargo bench --package cdc-enricher --bench enrich
run cargo bench --package kafka-tag-handler --bench tagging
unset CRITERION_HOME

say "1. producer end to end"
topics=()
for n in 1000 10000; do
  for impl in rust kjs-b kjs-a; do topics+=("bench-$impl-$n-$STAMP:6"); done
done
topics+=("bench-rss-producer-$STAMP:6" "bench-rss-tagged-$STAMP:6")
run scripts/broker.sh up "${topics[@]}"
readback=()
for n in 1000 10000; do
  event=$EVENTS/ddb-$n.json
  run cargo bench --package dynamo-stream-producer --bench end_to_end -- \
    --event "$PWD/$event" --broker "$BROKER" --topic "bench-rust-$n-$STAMP" --runs "$E2E_RUNS" \
    --out "$PWD/$OUT/e2e-rust-$n.json"
  run node bench/node/producer-bench.js --impl b --event "$event" --broker "$BROKER" \
    --topic "bench-kjs-b-$n-$STAMP" --runs "$E2E_RUNS" --out "$OUT/e2e-kjs-b-$n.json"
  runs_a=$E2E_RUNS_A; [ "$n" = 1000 ] && runs_a=$((E2E_RUNS_A + 2))
  run node bench/node/producer-bench.js --impl a --event "$event" --broker "$BROKER" \
    --topic "bench-kjs-a-$n-$STAMP" --runs "$runs_a" --out "$OUT/e2e-kjs-a-$n.json"
  for impl in rust kjs-b kjs-a; do
    sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$OUT/e2e-$impl-$n.json" 2>/dev/null || echo 0)
    readback+=("bench-$impl-$n-$STAMP:$sent")
  done
done
run_to "$OUT/readback.json" .venv/bin/python bench/readback.py "$BROKER" "${readback[@]}"

say "1b. producer through a delay line"
LINE=127.0.0.1:$LINE_PORT
lat_topics=()
for d in 0 1; do
  for n in 1000 10000; do
    for impl in rust rust-nagle kjs-b kjs-a; do lat_topics+=("lat-$impl-$n-$d-$STAMP:6"); done
  done
done
lat_topics+=("codecs-ddb-$STAMP:6" "codecs-click-$STAMP:6")
BROKER_PORT=$LINE_BROKER_PORT BROKER_ADVERTISED=$LINE run scripts/broker.sh up "${lat_topics[@]}"
line_pid=
line_up() {
  target/release/delay-line --listen "$LINE" --upstream "127.0.0.1:$LINE_BROKER_PORT" \
    --one-way-ms "$1" --stats "$OUT/line-$1ms.json" &
  line_pid=$!
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$LINE_PORT") 2>/dev/null && return 0; sleep 0.1; done
  echo "delay-line did not open $LINE" >> "$OUT/failures.txt"
}
line_down() { [ -n "$line_pid" ] && kill "$line_pid" 2>/dev/null; wait "$line_pid" 2>/dev/null; line_pid=; }
for d in 0 1; do
  printf 'target/release/delay-line --listen %s --upstream 127.0.0.1:%s --one-way-ms %s --stats %s &\n' \
    "$LINE" "$LINE_BROKER_PORT" "$d" "$OUT/line-${d}ms.json" >> "$OUT/commands.txt"
  line_up "$d"
  for n in 1000 10000; do
    event=$EVENTS/ddb-$n.json
    runs=$LAT_RUNS; [ "$n" = 10000 ] && runs=$LAT_RUNS_BIG
    for impl in rust rust-nagle; do
      nodelay=true; [ "$impl" = rust-nagle ] && nodelay=false
      run cargo bench --package dynamo-stream-producer --bench end_to_end -- \
        --event "$PWD/$event" --broker "$LINE" --topic "lat-$impl-$n-$d-$STAMP" --runs "$runs" \
        --set "KAFKA_TCP_NODELAY=$nodelay" --out "$PWD/$OUT/lat-$impl-$n-$d.json"
    done
    run node bench/node/producer-bench.js --impl b --event "$event" --broker "$LINE" \
      --topic "lat-kjs-b-$n-$d-$STAMP" --runs "$runs" --out "$OUT/lat-kjs-b-$n-$d.json"
    # One awaited send per record: about 2.5 s per 1,000 records at 1 ms.
    runs_a=3; [ "$n" = 10000 ] && runs_a=1
    run node bench/node/producer-bench.js --impl a --event "$event" --broker "$LINE" \
      --topic "lat-kjs-a-$n-$d-$STAMP" --runs "$runs_a" --out "$OUT/lat-kjs-a-$n-$d.json"
  done
  if [ "$d" = 0 ]; then
    say "1c. compression: wire bytes and CPU per record, per codec"
    for sample in ddb click; do
      file=$EVENTS/ddb-items.jsonl; [ "$sample" = click ] && file=$EVENTS/clickstream.jsonl
      run cargo bench --package lambda-stream-kit --bench codecs -- --records "$PWD/$file" \
        --broker "$LINE" --topic "codecs-$sample-$STAMP" --stats "$PWD/$OUT/line-0ms.json" \
        --runs "$CODEC_RUNS" --out "$PWD/$OUT/codecs-$sample.json"
    done
  fi
  line_down
done
BROKER_PORT=$LINE_BROKER_PORT run scripts/broker.sh down

say "3. cold start"
# All functions and the Node.js peer round-robin, so they share the same
# moments of a noisy machine; bench/coldstart.json holds their settings.
printf '%s\n' "python3 bench/emulator.py suite --spec bench/coldstart.json --runs $COLD_RUNS --out-dir $OUT" >> "$OUT/commands.txt"
python3 bench/emulator.py suite --spec bench/coldstart.json --runs "$COLD_RUNS" --out-dir "$OUT" \
  || echo "python3 bench/emulator.py suite --spec bench/coldstart.json (exit $?: a function did not answer)" >> "$OUT/failures.txt"

say "4. peak RSS with a 6 MB event"
declare -A RSS_EVENT=(
  [dynamo-stream-producer]=$EVENTS/ddb-6mb.json
  [kinesis-event-logger]=$EVENTS/kinesis-6mb.json
  [cdc-enricher]=$EVENTS/cdc-6mb.json
  [kafka-tag-handler]=$EVENTS/kafka-6mb.json
)
declare -A RSS_ENV=(
  [dynamo-stream-producer]="KAFKA_BOOTSTRAP_SERVERS=$BROKER TOPIC_NAME=bench-rss-producer-$STAMP"
  [kinesis-event-logger]="LOG_DATA_MAX_BYTES=8192"
  [cdc-enricher]="ENRICH_IP=44.201.33.239 ENRICHER_AUTH=none"
  [kafka-tag-handler]="KAFKA_BOOTSTRAP_SERVERS=$BROKER RESPONSE_TOPIC=bench-rss-tagged-$STAMP"
)
for fn in "${FUNCTIONS[@]}"; do
  envs=()
  for pair in ${RSS_ENV[$fn]}; do envs+=(--env "$pair"); done
  run_to "$OUT/rss-$fn.json" python3 bench/emulator.py rss --runs "$RSS_RUNS" --name "$fn" \
    --event "${RSS_EVENT[$fn]}" "${envs[@]}" --log "$OUT/$fn.log" -- "target/release/$fn"
done
run_to "$OUT/rss-node-logger.json" python3 bench/emulator.py rss --runs "$RSS_RUNS" \
  --name node-kinesis-logger --event "$EVENTS/kinesis-6mb.json" \
  --log "$OUT/node-logger.log" -- node bench/node/runtime-loop.js ./kinesis-logger.js

say "4. package size (arm64)"
run_to "$OUT/sizes.json" python3 bench/sizes.py "$OUT/zips" "${FUNCTIONS[@]}"

python3 - "$OUT/run.json" "$((SECONDS - MEASURE_START))" <<'EOF'
import json, os, sys, time
run = json.load(open(sys.argv[1]))
run.update({"finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "measure_seconds": int(sys.argv[2]),
            "loadavg_at_end": os.getloadavg()})
json.dump(run, open(sys.argv[1], "w"))
EOF

say "report"
run .venv/bin/python bench/report.py "$OUT" BENCHMARKS.md bench/benchmarks.png
if [ -s "$OUT/failures.txt" ]; then
  say "steps that failed (see BENCHMARKS.md)"
  cat "$OUT/failures.txt" >&2
  exit 1
fi
say "wrote BENCHMARKS.md and bench/benchmarks.png"
