#!/usr/bin/env bash
# Bounded coverage-guided fuzzing of the parsers (cargo fuzz, libFuzzer).
#
#   scripts/fuzz.sh                   every target for FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh --ci              a short pass: FUZZ_SECONDS defaults to 10
#   scripts/fuzz.sh cdc_lines ...     only the named targets
#
# Environment:
#   FUZZ_SECONDS     time per target (default 60, or 10 with --ci)
#   FUZZ_TOOLCHAIN   rustup toolchain to build with (default: nightly when
#                    installed, else the project's stable toolchain; with no
#                    sanitizer cargo fuzz needs no nightly-only flag)
#   FUZZ_TARGET_DIR  where the fuzz build goes (default fuzz/target)
#   FUZZ_SANITIZER   none (default) or address. Our crates forbid unsafe
#                    code, so AddressSanitizer mostly costs speed.
#
# The targets live in fuzz/ (its own workspace; see fuzz/src/lib.rs). Their
# corpora (fuzz/corpus/<target>, not committed) are seeded on every run
# from the fixtures in events/ and events/bad/, and from the inputs that
# once crashed, kept in fuzz/regressions/<target>/. A crash is saved under
# fuzz/artifacts/<target>/; the script prints the command that reproduces
# it and exits non-zero. At the end it prints, per target, the executions
# and crashes.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(dynamodb_item dynamodb_stream kinesis_kpl kinesis_batch
             cdc_lines cdc_batch cdc_handler kafka_event kafka_rules)

ci=false
targets=()
for arg in "$@"; do
  case "$arg" in
    --ci) ci=true ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
if $ci; then seconds=${FUZZ_SECONDS:-10}; else seconds=${FUZZ_SECONDS:-60}; fi
sanitizer=${FUZZ_SANITIZER:-none}
# CI points this outside the clone so a second run builds nothing.
target_dir=${FUZZ_TARGET_DIR:-fuzz/target}

if [ -z "${FUZZ_TOOLCHAIN:-}" ]; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ_TOOLCHAIN=nightly
  else
    FUZZ_TOOLCHAIN=stable
  fi
fi
cargo_fuzz=(cargo "+$FUZZ_TOOLCHAIN" fuzz)

# `cargo install` puts binaries here; a fresh CARGO_HOME is not on PATH yet.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION (once, about 1.5 min on two cores)"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

# --- corpus seeding ---------------------------------------------------------

# Copies fixture files into a target's corpus.
seed_files() {
  local dir=$1; shift
  local file
  for file in "$@"; do
    [ -f "$file" ] && cp "$file" "$dir/seed-$(basename "$file")"
  done
  return 0
}

# Decodes every base64 string under `"field": "..."` in the fixtures into
# its own corpus file (KPL aggregates, Kafka values, Firehose messages).
seed_base64() {
  local dir=$1 field=$2; shift 2
  local file n=0 text
  for file in "$@"; do
    [ -f "$file" ] || continue
    while IFS= read -r text; do
      n=$((n + 1))
      printf '%s' "$text" | base64 -d > "$dir/seed-$(basename "$file" .json)-$field-$n" 2>/dev/null || true
    done < <(grep -oE "\"$field\": *\"[A-Za-z0-9+/=]+\"" "$file" | sed -E 's/.*: *"(.*)"/\1/')
  done
}

seed() {
  local target=$1 dir=fuzz/corpus/$1
  mkdir -p "$dir"
  shopt -s nullglob
  # Inputs that once failed, kept so every run tries them first.
  seed_files "$dir" "fuzz/regressions/$target"/*
  case "$target" in
    dynamodb_item|dynamodb_stream) seed_files "$dir" events/dynamodb-*.json events/bad/dynamodb-*.json ;;
    kinesis_batch) seed_files "$dir" events/kinesis-*.json events/bad/kinesis-*.json ;;
    kinesis_kpl) seed_base64 "$dir" data events/kinesis-*.json events/bad/kinesis-*.json ;;
    cdc_lines) seed_base64 "$dir" data events/cdc-*.json events/bad/cdc-*.json ;;
    cdc_batch|cdc_handler) seed_files "$dir" events/cdc-*.json events/bad/cdc-*.json ;;
    kafka_event)
      seed_files "$dir" events/kafka-*.json events/bad/kafka-*.json
      seed_base64 "$dir" value events/kafka-*.json events/bad/kafka-*.json
      ;;
    kafka_rules)
      seed_files "$dir" functions/kafka-tag-handler/rules/*.json events/bad/kafka-rules-*.json
      ;;
    *) echo "unknown target: $target (${ALL_TARGETS[*]})" >&2; exit 2 ;;
  esac
  shopt -u nullglob
}

# --- build ------------------------------------------------------------------

echo "== building fuzz targets (toolchain $FUZZ_TOOLCHAIN, sanitizer $sanitizer; the first build takes about 7 min on two cores)"
build_start=$(date +%s)
mkdir -p .tmp/fuzz
if ! "${cargo_fuzz[@]}" build -s "$sanitizer" --target-dir "$target_dir" > .tmp/fuzz/build.log 2>&1; then
  cat .tmp/fuzz/build.log >&2
  echo "fuzz build failed" >&2
  exit 1
fi
echo "build took $(( $(date +%s) - build_start )) s"

# --- run --------------------------------------------------------------------

summary=()
failed=0
for target in "${targets[@]}"; do
  seed "$target"
  log=.tmp/fuzz/$target.log
  mkdir -p "fuzz/artifacts/$target"
  before=$(find "fuzz/artifacts/$target" -type f | wc -l)
  echo "== $target: ${seconds}s, corpus fuzz/corpus/$target ($(find "fuzz/corpus/$target" -type f | wc -l) inputs)"
  status=0
  "${cargo_fuzz[@]}" run -s "$sanitizer" --target-dir "$target_dir" "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    > "$log" 2>&1 || status=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n1)
  if [ -z "$execs" ]; then
    # A crash ends the run before the final stats; take the last status line.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#')
  fi
  crashes=$(( $(find "fuzz/artifacts/$target" -type f | wc -l) - before ))
  if [ "$status" -ne 0 ]; then
    failed=1
    [ "$crashes" -gt 0 ] || crashes="? (exit $status)"
    echo "   CRASH in $target; the panic and input are in $log:"
    grep -m1 -A3 -E "panicked at|ERROR: libFuzzer" "$log" | sed 's/^/   | /' || true
    newest=$(ls -t "fuzz/artifacts/$target" 2>/dev/null | head -n1)
    [ -z "$newest" ] || echo "   reproduce: ${cargo_fuzz[*]} run -s $sanitizer $target fuzz/artifacts/$target/$newest"
  fi
  summary+=("$(printf '%-16s %12s %10s' "$target" "${execs:-0}" "$crashes")")
done

echo
echo "== fuzzing summary (${seconds}s per target)"
printf '%-16s %12s %10s\n' target executions crashes
printf '%s\n' "${summary[@]}"
exit "$failed"
