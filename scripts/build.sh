#!/usr/bin/env bash
# Builds every function for AWS Lambda on arm64 (Graviton), release profile.
#
#   scripts/build.sh        cargo lambda build --release --arm64 for each package
#                           under functions/; output target/lambda/<name>/bootstrap
#   scripts/build.sh sam    sam build from template.yaml (SAM runs cargo lambda
#                           itself); output .aws-sam/build/<LogicalId>/bootstrap
#
# Release builds use LTO with one codegen unit: expect several minutes per
# function on a small machine.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-cargo}
case "$mode" in
  cargo) scripts/tools.sh build rust ;;
  sam) scripts/tools.sh build rust lint ;;
  *) echo "usage: $0 [sam]" >&2; exit 2 ;;
esac

# cargo-lambda and zig (the cross-linker) live in the project's venv.
export PATH="$PWD/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0

if [ "$mode" = sam ]; then
  sam build --template-file template.yaml
  for bootstrap in .aws-sam/build/*/bootstrap; do
    printf '%s\t%s bytes\n' "$bootstrap" "$(stat -c %s "$bootstrap")"
  done
  exit 0
fi

# One cargo invocation per function: cargo unifies the features of packages
# built together, so a joint build would give every function the shared
# crate's features of all of them (the logger would link rustls and ring
# for the TLS provider it never uses). Built one by one, each links only
# what it names, as `sam build` builds them. Dependencies with the same
# features are built once and reused. Each function's package name is also
# its binary name.
names=()
for manifest in functions/*/Cargo.toml; do
  names+=("$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n 1)")
done
for name in "${names[@]}"; do
  cargo lambda build --release --arm64 --package="$name"
done
for name in "${names[@]}"; do
  bootstrap=target/lambda/$name/bootstrap
  printf '%s\t%s bytes\n' "$bootstrap" "$(stat -c %s "$bootstrap")"
done
