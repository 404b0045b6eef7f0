#!/usr/bin/env bash
# Lints template.yaml with cfn-lint, `sam validate --lint` and checkov.
# Prints one summary line per tool; on any finding prints that tool's report
# and exits non-zero. Checkov exceptions live in the template itself, as
# `Metadata: checkov: skip:` entries that give their reason.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/tools.sh lint

TEMPLATE=${TEMPLATE:-template.yaml}
BIN=.venv/bin
# Offline and quiet: no telemetry, no download of checkov's online guidelines.
export SAM_CLI_TELEMETRY=0
failed=0

# report NAME EXIT-STATUS OUTPUT SUMMARY: one line on success, the tool's
# whole report on failure.
report() {
  local name=$1 status=$2 output=$3 summary=$4
  if [ "$status" -eq 0 ]; then
    echo "$name: ok${summary:+ ($summary)}"
  else
    echo "$name: FAILED (exit $status)"
    printf '%s\n' "$output" | sed 's/^/  /'
    failed=1
  fi
}

status=0
output=$("$BIN/cfn-lint" "$TEMPLATE" 2>&1) || status=$?
report cfn-lint "$status" "$output" "no errors or warnings"

status=0
output=$("$BIN/sam" validate --lint --region us-east-1 --template-file "$TEMPLATE" 2>&1) || status=$?
report "sam validate --lint" "$status" "$output" "valid SAM template"

status=0
output=$("$BIN/checkov" -f "$TEMPLATE" --framework cloudformation --skip-download --compact --quiet 2>&1) || status=$?
summary=$(printf '%s\n' "$output" | grep -m1 -o 'Passed checks: [0-9]*, Failed checks: [0-9]*, Skipped checks: [0-9]*' || true)
# checkov exits 0 when it found nothing to scan; that is a failure here.
if [ "$status" -eq 0 ] && [ -z "$summary" ]; then status=1; fi
report checkov "$status" "$output" "$summary"

exit "$failed"
