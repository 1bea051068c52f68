#!/usr/bin/env bash
# The quality gates CI runs beside the tests: formatting, clippy on every target and feature
# (clippy only checks, so `doc-only` is harmless there), and the docs of the default build
# with rustdoc warnings as errors (the docs.rs build, with every documented feature, is
# scripts/check-docs-rs.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/env.sh cargo fmt --all --check
scripts/env.sh cargo clippy --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D warnings" scripts/env.sh cargo doc --no-deps
