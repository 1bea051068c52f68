#!/usr/bin/env bash
# The whole test suite: unit, integration, property and parity tests, doctests, and the
# examples built. Installs libtorch first if needed (scripts/env.sh). Extra arguments go to
# `cargo test` (e.g. `scripts/test.sh parity` runs the tests whose name contains "parity").
#
# Every feature but `doc-only` (which builds without libtorch and so cannot link a test):
# `cuda-tests` (skipped without a GPU) and `plot-png` (which implies `plot`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/env.sh cargo test --features cuda-tests,plot-png "$@"
