#!/usr/bin/env bash
# Runs the whole test suite against the oldest supported tch (0.24, with torch 2.11.0 from
# PyPI), without touching the checkout: the sources are copied to target/tch-0.24/src, the
# copy's lock file is moved to tch 0.24, and it builds into target/tch-0.24/target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scratch="$root/target/tch-0.24"
mkdir -p "$scratch/src"
# Mirror the sources (everything but build outputs and git metadata).
tar --exclude=./target --exclude=./.git -cf - . | (cd "$scratch/src" && tar -xf -)
cd "$scratch/src"
TORCH_VERSION=2.11.0 "$root/scripts/env.sh" cargo update --quiet -p tch --precise 0.24.0
TORCH_VERSION=2.11.0 CARGO_TARGET_DIR="$scratch/target" "$root/scripts/env.sh" \
  cargo test --all-features "$@"
