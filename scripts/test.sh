#!/usr/bin/env bash
# The one test command: every test of the repository.
#
#   1. `cargo test`: the library, its derive macro, the `shmkit` tool and
#      testkit (unit, cross-process, crash and doc tests).
#   2. The Python package (`python/`): rustfmt and clippy on its Rust code,
#      then `pip install ./python` into a virtual environment (pip fetches
#      maturin and pyo3 from the registries and builds from source), then
#      its pytest suite.
#
# Needs only a Rust toolchain and Python 3 (>= 3.10) with its `venv` module.
# Arguments go to pytest (`bash scripts/test.sh -k pipe`). PYTHON picks the
# interpreter (default python3); the environment lives in target/py-venv.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
python=${PYTHON:-python3}
venv=${SHMKIT_PY_VENV:-$root/target/py-venv}

echo "==== cargo test"
cargo test

echo "==== python/: rustfmt and clippy"
cargo fmt --manifest-path python/Cargo.toml -- --check
cargo clippy --manifest-path python/Cargo.toml --all-targets -- -D warnings

echo "==== python/: pip install ./python into $venv"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pytest
# Always rebuilt: pip would keep an installed shmkit of the same version.
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps ./python

echo "==== python/: pytest"
# From the repository root, so that `import shmkit` is the installed package
# and not the source directory python/shmkit (which lacks the native module).
rc=0
"$venv/bin/python" -m pytest python/tests "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
fi
exit "$rc"
