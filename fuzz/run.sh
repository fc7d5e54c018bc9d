#!/usr/bin/env bash
# Runs the fuzz targets for SECONDS in all (default 60), split evenly
# between them: open_segment (attach to arbitrary segment bytes),
# pipe_decode (decode arbitrary pipe ring contents and positions) and
# map_segment (a map whose control block and slots hold arbitrary words). Naming
# targets runs only those, still within SECONDS in all.
#
#   bash fuzz/run.sh 300
#   bash fuzz/run.sh 120 pipe_decode
#
# Installs cargo-fuzz if it is missing. Any panic, crash or hang (an input
# that runs longer than 5 s) fails that target's run and leaves the input in
# fuzz/artifacts/<target>/; the other targets still run, and this script
# exits non-zero. Reproduce one with:
#   cd fuzz && cargo +nightly fuzz run <target> artifacts/<target>/<file>
# SHMKIT_FUZZ_DEBUG=1 in the environment makes a target print what an
# input does (open errors, operations, results).
set -euo pipefail

secs="${1:-60}"
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 SECONDS [TARGET...]" >&2; exit 2 ;;
esac
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(open_segment pipe_decode map_segment)
fi
each=$((secs / ${#targets[@]}))
if [ "$each" -lt 1 ]; then
    each=1
fi

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

failed=()
for target in "${targets[@]}"; do
    echo "== $target: ${each} s"
    mkdir -p "corpus/$target"
    # corpus/ is gitignored and grows across local runs; seeds/ holds a few
    # committed starting points and is read only.
    if ! cargo "+${SHMKIT_NIGHTLY:-nightly}" fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$each" -timeout=5 -print_final_stats=1; then
        failed+=("$target")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found a problem in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
