#!/usr/bin/env bash
# Builds .gpu/bundle/: everything the GPU checks need on a CUDA machine that has PyTorch 2.11
# but no Rust toolchain, so that one command there runs them all (docs/gpu.md):
#
#   cuda-tests               tests/cuda.rs (release, feature cuda-tests)
#   cuda-semi-sparse         tests/cuda_semi_sparse.rs (2:4 cuSPARSELt layer, BERT FFN benchmark)
#   kernels                  benches/kernels.rs (release; TCH_PRUNE_BENCH_DEVICE=cuda there)
#   bench_masks_pytorch.py   PyTorch's side of the same benchmarks
#   run.sh                   scripts/gpu-run.sh: runs the three, writes gpu-results.txt
#   BUILD.txt                the commit, the tch and torch versions, the build flags
#
# Both binaries are built against tch 0.24 / torch 2.11 (the GPU machines' torch) through
# scripts/test-tch-0.24.sh, linked to libtorch_cuda.so even though no symbol of it is used
# (otherwise CUDA is never initialised there), and checked here: `readelf` must list
# libtorch_cuda.so, the tests must load and skip (no GPU here), and criterion must list the
# CUDA-capable benchmarks. From scratch (torch 2.11's install, torch-sys's C++ wrapper, the
# release build of the dependencies) about 7.5 minutes of CPU time; seconds when nothing changed.
#
#   scripts/gpu-bundle.sh                 # then, on the GPU machine: bash .gpu/bundle/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bundle="$root/.gpu/bundle"
target=x86_64-unknown-linux-gnu
# `--no-as-needed -ltorch_cuda` keeps libtorch_cuda.so as a dependency of the binaries. The
# explicit `--target` makes cargo apply RUSTFLAGS to the crate's own units only: without it,
# build scripts and proc macros get the flags too and fail to link (or load libtorch into rustc).
rustflags="-C link-arg=-Wl,--no-as-needed -C link-arg=-ltorch_cuda"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "gpu-bundle: building tests/cuda.rs and benches/kernels.rs against tch 0.24 / torch 2.11" >&2
RUSTFLAGS="$rustflags" scripts/test-tch-0.24.sh --release --target "$target" --no-run \
  --test cuda --test cuda_semi_sparse --bench kernels --message-format=json-render-diagnostics >"$log"

# The binaries' paths, from cargo's JSON messages (other lines are the scripts' own output).
executable() {
  python3 - "$log" "$1" <<'PY'
import json, sys
path = None
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and msg["target"]["name"] == sys.argv[2]:
        path = msg["executable"]
if path is None:
    sys.exit(f"gpu-bundle: cargo built no executable named {sys.argv[2]}")
print(path)
PY
}
cuda_bin=$(executable cuda)
semi_bin=$(executable cuda_semi_sparse)
kernels_bin=$(executable kernels)

rm -rf "$bundle"
mkdir -p "$bundle"
cp "$cuda_bin" "$bundle/cuda-tests"
cp "$semi_bin" "$bundle/cuda-semi-sparse"
cp "$kernels_bin" "$bundle/kernels"
cp scripts/gpu-run.sh "$bundle/run.sh"
cp scripts/bench_masks_pytorch.py "$bundle/bench_masks_pytorch.py"
chmod +x "$bundle/run.sh" "$bundle/cuda-tests" "$bundle/cuda-semi-sparse" "$bundle/kernels"

for bin in cuda-tests cuda-semi-sparse kernels; do
  if ! readelf -d "$bundle/$bin" | grep -q 'NEEDED.*libtorch_cuda\.so'; then
    echo "gpu-bundle: $bin does not list libtorch_cuda.so as NEEDED; CUDA would stay off" >&2
    exit 1
  fi
done

# Smoke tests on this machine (no GPU): the binaries load against torch 2.11's libraries, the
# tests skip (and pass), criterion lists its benchmarks.
torch_lib=$(TORCH_VERSION=2.11.0 scripts/env.sh python -c \
  'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
LD_LIBRARY_PATH="$torch_lib" "$bundle/cuda-tests" --test-threads 1 >"$log" 2>&1 || {
  cat "$log" >&2
  echo "gpu-bundle: the CUDA test binary failed here" >&2
  exit 1
}
if ! grep -q 'test result: ok' "$log"; then
  cat "$log" >&2
  echo "gpu-bundle: the CUDA test binary printed no passing result here" >&2
  exit 1
fi
LD_LIBRARY_PATH="$torch_lib" "$bundle/cuda-semi-sparse" --test-threads 1 >"$log" 2>&1 || {
  cat "$log" >&2
  echo "gpu-bundle: the semi-sparse CUDA test binary failed here" >&2
  exit 1
}
LD_LIBRARY_PATH="$torch_lib" "$bundle/kernels" --list >"$log" 2>&1 || {
  cat "$log" >&2
  echo "gpu-bundle: the benchmark binary failed to list its benchmarks" >&2
  exit 1
}

tch_version=$(grep -A1 '^name = "tch"$' target/tch-0.24/src/Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
{
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -m)"
  echo "tch: $tch_version; torch (build): $(TORCH_VERSION=2.11.0 scripts/env.sh python -c 'import torch; print(torch.__version__)')"
  echo "cargo test --release --target $target --features cuda-tests,plot-png --test cuda --test cuda_semi_sparse --bench kernels"
  echo "RUSTFLAGS: $rustflags"
  (cd "$bundle" && sha256sum cuda-tests cuda-semi-sparse kernels)
} >"$bundle/BUILD.txt"

echo "gpu-bundle: $(du -sh "$bundle" | cut -f1) in ${bundle#"$root"/}:" >&2
ls -l "$bundle" >&2
cat >&2 <<EOF
gpu-bundle: on the GPU machine, run:  bash .gpu/bundle/run.sh
  (results in \$OUT/gpu-results.txt when OUT is set, else .gpu/bundle/gpu-results.txt)
EOF
