#!/usr/bin/env bash
# Regenerates BENCHMARKS.md and bench-suite/plots/*.svg: every shmkit
# primitive beside the floor, iceoryx2, pipes, Unix sockets, Python
# multiprocessing and in-process queues, measured on this machine.
#
#   bash bench-suite/run.sh                # the full run: about 4 minutes of
#                                          # measuring on 2 cores, plus the build
#   bash bench-suite/run.sh --quick        # a smoke run that writes nothing
#   bash bench-suite/run.sh --only iceoryx2  # just the matching steps, nothing written
#   bash bench-suite/run.sh --out DIR      # write DIR/BENCHMARKS.md and DIR/bench-suite/plots
#
# The Python package rows (shmkit's Python package against multiprocessing,
# faster-fifo and cloudtoid-interprocess) run in a venv built here, under
# the target directory: `pip install ./python faster-fifo
# cloudtoid-interprocess UltraDict`; a package that does not install is
# reported as skipped.
#
# Rows of shmkit parts still being built (`Value`, `mpmc`, `pipe`) are turned on when
# they compile against the tree; otherwise BENCHMARKS.md says they were not
# measured. Honors CARGO_TARGET_DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/Cargo.toml"

if ! command -v cargo >/dev/null; then
    echo "run.sh: cargo is needed (https://rustup.rs)" >&2
    exit 1
fi
command -v python3 >/dev/null || echo "run.sh: python3 not found: the Python rows will be skipped"

# A feature is tried only if the library exports the part at all; it is kept
# only if the suite then type-checks with it.
lib="$here/../src/lib.rs"
candidates=()
grep -Eq '^pub use value::.*\bValue\b' "$lib" && candidates+=(value)
grep -Eq '^pub mod mpmc;' "$lib" && [ -e "$here/../src/mpmc/mod.rs" -o -e "$here/../src/mpmc.rs" ] && candidates+=(mpmc)
grep -Eq '^pub mod pipe;' "$lib" && [ -e "$here/../src/pipe/mod.rs" -o -e "$here/../src/pipe.rs" ] && candidates+=(pipe)

echo "==> checking which shmkit parts build (${candidates[*]:-none besides spsc})"
features=()
if [ "${#candidates[@]}" -gt 0 ] &&
    cargo check --release --quiet --manifest-path "$manifest" --features "$(IFS=,; echo "${candidates[*]}")" 2>/dev/null; then
    features=("${candidates[@]}")
else
    for f in "${candidates[@]}"; do
        if cargo check --release --quiet --manifest-path "$manifest" --features "$f" 2>/dev/null; then
            features+=("$f")
        else
            echo "    shmkit $f rows: skipped (does not compile against this tree)"
        fi
    done
fi
echo "    extra rows: ${features[*]:-none}"

# The Python package rows run in a venv of their own: the shmkit package
# built from ./python and the peers it is compared with. A package pip
# cannot install (no wheel, a failed build) is written down with pip's last
# line, and BENCHMARKS.md says its rows were skipped and why. Set
# SHMKIT_BENCH_VENV to use a venv you have prepared instead.
if [ -z "${SHMKIT_BENCH_VENV:-}" ]; then
    venv="${CARGO_TARGET_DIR:-$here/target}/bench-venv"
    export SHMKIT_BENCH_VENV="$venv"
    failures="$venv/shmkit-bench-skipped.txt"
    echo "==> the venv of the Python package rows ($venv)"
    if ! command -v python3 >/dev/null; then
        :
    elif [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv" >/dev/null 2>&1; then
        echo "    python3 -m venv failed: the Python package rows will be skipped"
        rm -rf "$venv"
    else
        : >"$failures"
        # pkg-name (as py_bench.py check reports it), pip arguments
        install() {
            local name="$1" log="$venv/pip-$1.log"
            shift
            if "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "$@" >"$log" 2>&1; then
                echo "    $name: installed"
            else
                local why
                why="$(grep -E '^ERROR' "$log" | tail -n 1 | tr '\t' ' ')"
                [ -n "$why" ] || why="$(grep -E '\S' "$log" | tail -n 1 | tr '\t' ' ')"
                printf '%s\tpip install %s failed: %s (log: %s)\n' "$name" "$*" "$why" "$log" >>"$failures"
                echo "    $name: skipped (pip install failed: $why)"
            fi
        }
        install shmkit --force-reinstall --no-deps "$(cd "$here/.." && pwd)/python"
        install faster-fifo faster-fifo
        install cloudtoid cloudtoid-interprocess
        # The Maps section's Python rows (map_bench.py).
        install ultradict UltraDict
    fi
fi

echo "==> building the suite"
feature_arg=()
[ "${#features[@]}" -gt 0 ] && feature_arg=(--features "$(IFS=,; echo "${features[*]}")")
cargo build --release --manifest-path "$manifest" ${feature_arg[@]+"${feature_arg[@]}"}

echo "==> measuring"
exec cargo run --release --quiet --manifest-path "$manifest" ${feature_arg[@]+"${feature_arg[@]}"} -- "$@"
