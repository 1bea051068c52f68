#!/usr/bin/env bash
# What `cargo publish` would upload, checked without uploading: the file list holds the library
# and nothing of the repository's tests, fixtures, benchmarks, scripts or CI, then
# `cargo publish --dry-run` packages the crate and verifies it by building the packaged copy
# against the locked dependencies (through scripts/env.sh, which provides libtorch).
#
# The verification builds into this checkout's target/ (target/package/), where a previous
# `scripts/test.sh` left tch and torch-sys built, so only the packaged crate itself compiles.
# Extra arguments go to `cargo publish` (e.g. `--allow-dirty` in a checkout with uncommitted
# changes; CI runs on a clean clone and needs none).
set -euo pipefail
cd "$(dirname "$0")/.."

list=$(cargo package --list --locked --allow-dirty)
# Paths that belong to the repository, not to the crate.
forbidden=$(printf '%s\n' "$list" | grep -E '^(tests|benches|scripts|\.ci|\.gpu|target)/|^docs/(benchmarks|gpu)\.md$|^(\.gitignore|rustfmt\.toml|CONTRIBUTING\.md)$|\.(safetensors|npy|npz|pt|py)$' || true)
if [ -n "$forbidden" ]; then
  printf 'publish-dry-run: these files would be published but belong to the repository only:\n%s\n' \
    "$forbidden" >&2
  echo "publish-dry-run: narrow \`include\` in Cargo.toml" >&2
  exit 1
fi
# And what a user needs is there.
for needed in Cargo.toml src/lib.rs README.md LICENSE-MIT LICENSE-APACHE CHANGELOG.md \
  docs/for-pytorch-users.md; do
  if ! printf '%s\n' "$list" | grep -qxF "$needed"; then
    echo "publish-dry-run: $needed is missing from the package" >&2
    exit 1
  fi
done
printf 'publish-dry-run: %d files in the package\n' "$(printf '%s\n' "$list" | wc -l)"

scripts/env.sh cargo publish --dry-run --locked "$@"
