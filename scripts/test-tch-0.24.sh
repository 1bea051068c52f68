#!/usr/bin/env bash
# Runs the whole test suite against the oldest supported tch (0.24, with torch 2.11.0 from
# PyPI), without touching the checkout: the sources are copied to target/tch-0.24/src, the
# copy's lock file is moved to tch 0.24, and it builds into target/tch-0.24/target. The copy's
# lock is also held to the crate's rust-version (scripts/check-msrv.py). Extra arguments go to
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scratch="$root/target/tch-0.24"
# Mirror the sources (everything but build outputs and git metadata), afresh so that files
# deleted from the checkout do not linger; tar keeps the modification times, so cargo rebuilds
# only what changed.
rm -rf "$scratch/src"
mkdir -p "$scratch/src"
tar --exclude=./target --exclude=./.git --exclude=./.gpu -cf - . | (cd "$scratch/src" && tar -xf -)
cd "$scratch/src"
TORCH_VERSION=2.11.0 "$root/scripts/env.sh" cargo update --quiet -p tch --precise 0.24.0
python3 "$root/scripts/check-msrv.py" --manifest-path "$scratch/src/Cargo.toml"
# Every feature but `doc-only`, as scripts/test.sh.
TORCH_VERSION=2.11.0 CARGO_TARGET_DIR="$scratch/target" "$root/scripts/env.sh" \
  cargo test --features cuda-tests,plot-png "$@"
