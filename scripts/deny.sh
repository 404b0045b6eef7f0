#!/usr/bin/env bash
# Dependency policy check (deny.toml): licences, bans, sources and, when the
# RustSec advisory database can be had, advisories.
#
#   scripts/deny.sh            every check the machine can run
#   scripts/deny.sh licenses   only the named checks (advisories, bans,
#                              licenses, sources)
#
# cargo-deny is installed from crates.io on first use (about 2.5 minutes to
# compile on two cores). The advisory database is a git repository on
# GitHub, which some machines cannot reach: then advisories are skipped
# with a note, or checked against the copy fetched earlier when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2

# `cargo install` puts binaries here; a fresh CARGO_HOME is not on PATH yet.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "installing cargo-deny $CARGO_DENY_VERSION (once, about 2.5 min on two cores)"
  cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION"
fi

# The checks below run offline, and cargo-deny reads the dependency graph of
# every platform (deny.toml: targets = []), while a build downloads only the
# host's crates. Without a fetch for all platforms, a machine with an empty
# registry fails here on crates such as android_system_properties.
echo "== cargo fetch (every platform's crates, for the offline checks)"
cargo fetch --locked --quiet

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(advisories bans licenses sources)

wants_advisories=false
others=()
for check in "${checks[@]}"; do
  case "$check" in
    advisories) wants_advisories=true ;;
    bans|licenses|sources) others+=("$check") ;;
    *) echo "unknown check: $check (advisories, bans, licenses, sources)" >&2; exit 2 ;;
  esac
done

status=0
if [ ${#others[@]} -gt 0 ]; then
  echo "== cargo deny check ${others[*]}"
  cargo deny --offline check "${others[@]}" || status=$?
fi

if $wants_advisories; then
  db_dir="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
  if cargo deny fetch db >/dev/null 2>&1; then
    echo "== cargo deny check advisories"
    cargo deny check advisories || status=$?
  elif compgen -G "$db_dir/advisory-db-*/.git" >/dev/null; then
    stamp=$(git -C "$(compgen -G "$db_dir/advisory-db-*" | head -n1)" log -1 --format=%cs 2>/dev/null || echo "unknown date")
    echo "NOTE: the RustSec advisory database cannot be fetched; checking against the copy from $stamp"
    echo "== cargo deny check advisories (offline)"
    cargo deny --offline check advisories || status=$?
  else
    echo "NOTE: advisories NOT checked: the RustSec advisory database (a git repository on"
    echo "      GitHub) cannot be fetched from this machine and no earlier copy exists."
    echo "      Run scripts/deny.sh on a machine with GitHub access to check advisories."
  fi
fi

exit "$status"
