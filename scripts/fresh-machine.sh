#!/usr/bin/env bash
# The README's two commands on a machine with nothing cached: a clone of the
# committed HEAD in a temporary directory, run with an empty CARGO_HOME and
# HOME, so no cargo registry, no cargo-installed tool, no pip or npm cache
# and no earlier build can help. Only the Rust toolchain is kept (rustup's
# toolchains, reached through a PATH that holds nothing but rustup's
# proxies and the system directories).
#
#   scripts/fresh-machine.sh            make demo, then make test, then both again (warm)
#   scripts/fresh-machine.sh --cold     only the cold run
#
# It takes about half an hour on two cores, so it is not part of `make test`.
# It prints the time of each command and exits non-zero if any failed; the
# logs stay in the temporary directory it names.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

warm=true
case "${1:-}" in
  --cold) warm=false ;;
  "") ;;
  *) sed -n '2,15p' "$0"; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/fresh-machine.XXXXXX")
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
rustup_bin=$(command -v rustup) || { echo "rustup is needed (the toolchain is all that is kept)" >&2; exit 1; }

# rustup's proxies are the rustup binary under the tools' names; the real
# ~/.cargo/bin also holds whatever was `cargo install`ed by hand, so it is
# not put on PATH.
mkdir -p "$work/toolchain-bin" "$work/home" "$work/cargo-home"
for tool in cargo rustc rustdoc rustup rustfmt cargo-fmt cargo-clippy clippy-driver; do
  ln -s "$(realpath "$rustup_bin")" "$work/toolchain-bin/$tool"
done

git clone --quiet --no-local "$repo" "$work/repo"
echo "fresh machine in $work (clone of $(git -C "$work/repo" rev-parse --short HEAD))"

clean_env=(env -i
  HOME="$work/home"
  CARGO_HOME="$work/cargo-home"
  RUSTUP_HOME="$rustup_home"
  PATH="$work/toolchain-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  TERM=dumb LANG=C.UTF-8)

results=()
failed=0
run() {
  local label=$1; shift
  local log="$work/$label.log" start=$SECONDS status=0
  echo "== $label: $* (log $log)"
  (cd "$work/repo" && "${clean_env[@]}" "$@") > "$log" 2>&1 || status=$?
  local took=$((SECONDS - start))
  results+=("$(printf '%-12s %-10s %4d min %02d s' "$label" "$([ $status -eq 0 ] && echo ok || echo "FAILED($status)")" $((took / 60)) $((took % 60)))")
  if [ $status -ne 0 ]; then
    failed=1
    echo "   FAILED after ${took} s; the end of its log:"
    tail -30 "$log" | sed 's/^/   | /'
  else
    echo "   ok in ${took} s"
  fi
}

run demo-cold make demo
run test-cold make test
if $warm; then
  run demo-warm make demo
  run test-warm make test
fi

echo
echo "== fresh-machine summary ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))"
printf '%s\n' "${results[@]}"
exit $failed
