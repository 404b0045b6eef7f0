#!/usr/bin/env bash
# Runs the README's "Local development" recipe as written (the shell block
# after the `<!-- recipe: local-development -->` marker) and checks what it
# printed: the producer's answer reports no failure and the record it sent
# is on the topic. `make test` runs it, so the recipe cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."

recipe=$(awk '
  /<!-- recipe: local-development -->/ { marked = 1; next }
  marked && /^```sh$/ { inside = 1; next }
  inside && /^```$/ { exit }
  inside { print }
' README.md)
[ -n "$recipe" ] || { echo "no local-development recipe found in README.md" >&2; exit 1; }

mkdir -p .tmp/recipe
echo "== the README's local-development recipe:"
printf '%s\n' "$recipe" | sed 's/^/   | /'
status=0
bash -euo pipefail -c "$recipe" > .tmp/recipe/output 2>&1 || status=$?
# Whatever happened, nothing the recipe started may outlive it.
scripts/watch.sh down >/dev/null 2>&1 || true

fail() {
  echo "recipe test FAILED: $*" >&2
  sed 's/^/   > /' .tmp/recipe/output >&2
  echo "   (the functions' log: .tmp/watch/log)" >&2
  exit 1
}
[ "$status" -eq 0 ] || fail "the recipe exited with $status"
grep -q '"batchItemFailures":\[\]' .tmp/recipe/output || fail "the producer did not answer an empty batchItemFailures"
grep -q "key='order-1'" .tmp/recipe/output || fail "the record with key order-1 is not on test-topic"
echo "recipe test passed: the invocation answered {\"batchItemFailures\":[]} and order-1 is on test-topic"
