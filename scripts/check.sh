#!/usr/bin/env bash
# The quality gates CI runs beside the tests: formatting, clippy on every target, docs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/env.sh cargo fmt --all --check
scripts/env.sh cargo clippy --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D warnings" scripts/env.sh cargo doc --no-deps
