#!/usr/bin/env bash
# Installs the project's tools into .venv (Python tools) and checks the Rust
# toolchain. Idempotent: each group is installed once, then skipped.
#
#   scripts/tools.sh broker   Apache Kafka (scripts/kafka.sh install: Maven, a JDK), kafka-python and its codecs
#   scripts/tools.sh lint     cfn-lint, aws-sam-cli, checkov
#   scripts/tools.sh build    cargo-lambda and zig (arm64 cross-builds)
#   scripts/tools.sh rust     rustfmt, clippy and the aarch64 target
#   scripts/tools.sh aws      moto (server mode: DynamoDB with Streams, Kinesis, S3, Secrets Manager) and boto3
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
# checkov pins boto3 to an exact version other than aws-sam-cli's, so the two
# cannot share a venv: checkov gets its own, linked into .venv/bin.
CHECKOV_VENV=.tools/checkov
# Pinned versions. Apache Kafka's own is in scripts/kafka.sh.
KAFKA_PYTHON=kafka-python==2.3.3
# The codecs kafka-python decodes batches with (its kafka/codec.py imports
# `snappy`, `lz4.frame` and `zstandard`; gzip is in Python), for the
# compression test in shared/tests/compression.rs. python-snappy runs on
# cramjam, pinned too. Wheels only: building one from source would need a
# C toolchain and minutes.
KAFKA_CODECS=(python-snappy==0.7.3 cramjam==2.14.0 lz4==4.4.5 zstandard==0.25.0)
WHEELS_ONLY=--only-binary=python-snappy,cramjam,lz4,zstandard
CFN_LINT=cfn-lint==1.58.0
SAM_CLI=aws-sam-cli==1.170.0
CHECKOV=checkov==3.3.30
CARGO_LAMBDA=cargo-lambda==1.9.2
ZIG=ziglang==0.14.1
# moto in server mode stands in for AWS in `make demo`; the extras pull in
# what its DynamoDB (PartiQL parser, Streams), Kinesis, S3 and Secrets
# Manager backends import.
MOTO="moto[server,dynamodb,dynamodbstreams,kinesis,s3,secretsmanager]==5.2.5"

venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
  fi
}

# Roughly how long each group's first install takes (PyPI, two cores), so a
# long silent step says what it is doing.
declare -A ABOUT=([broker]="about 15 s" [lint]="about 1 min" [build]="about 15 s" [aws]="about 45 s")

install_group() {
  local group=$1; shift
  local marker="$VENV/.installed-$group"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$*" ]; then return; fi
  venv
  echo "installing $group tools (once, ${ABOUT[$group]:-a minute or so}): $*"
  "$VENV/bin/pip" install --quiet "$@"
  echo "$*" > "$marker"
}

for group in "$@"; do
  case "$group" in
    broker)
      install_group broker "$KAFKA_PYTHON" "${KAFKA_CODECS[@]}" "$WHEELS_ONLY"
      scripts/kafka.sh install
      ;;
    lint)
      install_group lint "$CFN_LINT" "$SAM_CLI"
      if [ ! -f "$CHECKOV_VENV/.installed" ] || [ "$(cat "$CHECKOV_VENV/.installed")" != "$CHECKOV" ]; then
        echo "installing checkov (once, about 1 min): $CHECKOV"
        python3 -m venv "$CHECKOV_VENV"
        "$CHECKOV_VENV/bin/pip" install --quiet --upgrade pip
        "$CHECKOV_VENV/bin/pip" install --quiet "$CHECKOV"
        echo "$CHECKOV" > "$CHECKOV_VENV/.installed"
      fi
      ln -sf "$(realpath "$CHECKOV_VENV/bin/checkov")" "$VENV/bin/checkov"
      ;;
    build) install_group build "$CARGO_LAMBDA" "$ZIG" ;;
    aws) install_group aws "$MOTO" ;;
    rust)
      rustup component add rustfmt clippy >/dev/null 2>&1 || true
      rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
      ;;
    *) echo "unknown tool group: $group" >&2; exit 2 ;;
  esac
done
