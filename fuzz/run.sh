#!/usr/bin/env bash
# Runs the open_segment fuzz target for SECONDS (default 60).
#
#   bash fuzz/run.sh 300
#
# Installs cargo-fuzz if it is missing. Any panic, crash or hang (an input
# that runs longer than 5 s) fails the run, leaves the input in
# fuzz/artifacts/open_segment/, and this script exits non-zero.
# Reproduce one with:
#   cd fuzz && cargo +nightly fuzz run open_segment artifacts/open_segment/<file>
# SHMKIT_FUZZ_DEBUG=1 in the environment makes the target print what an
# input does (open errors, operations).
set -euo pipefail

secs="${1:-60}"
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 SECONDS" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing; installing it"
    cargo install cargo-fuzz --locked
fi

# Private segment directories of fuzz processes that are gone.
cleanup() {
    local d pid
    for d in /dev/shm/shmkit-fuzz-*; do
        [ -d "$d" ] || continue
        pid="${d##*-}"
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            rm -rf -- "$d"
        fi
    done
}
trap cleanup EXIT

mkdir -p corpus/open_segment
# corpus/ is gitignored and grows across local runs; seeds/ holds a few
# committed starting points (honest segments of each shape) and is read only.
cargo "+${SHMKIT_NIGHTLY:-nightly}" fuzz run open_segment corpus/open_segment seeds/open_segment -- \
    -max_total_time="$secs" -timeout=5 -print_final_stats=1
