#!/usr/bin/env bash
# The GPU checks of tch-prune in one command, on a CUDA machine with PyTorch (torch 2.11) and no
# Rust. scripts/gpu-bundle.sh copies this file into .gpu/bundle/ as run.sh, next to the binaries
# it runs; see docs/gpu.md. From the bundle's folder or anywhere:
#
#   bash .gpu/bundle/run.sh            # writes gpu-results.txt into $OUT, or into the bundle
#
# Steps, each logged with its exit status into the one results file:
#   1. the machine: GPU (nvidia-smi), torch's version and library folder, the bundle's BUILD.txt;
#   2. the CUDA tests (tests/cuda.rs) with TCH_PRUNE_REQUIRE_CUDA=1, so a binary that sees no
#      CUDA device fails instead of skipping; every test must print `ok`, none `skipped`;
#   3. the criterion kernel and forward benchmarks (benches/kernels.rs) on CUDA device 0;
#   4. PyTorch's own masks and pruned forward on the same GPU (scripts/bench_masks_pytorch.py).
#
# Settings (environment): PYTHON (default python3: the one with torch), TORCH_LIB (default:
# that torch's lib folder), RESULTS (the results file), BENCH=none to run the tests only,
# BENCH_ARGS (criterion's arguments; default `--warm-up-time 1 --measurement-time 2`),
# PYTORCH_BENCH_ARGS (default `--repeats 10`).
#
# Exit status: 0 when the tests passed on CUDA and every benchmark ran on CUDA, 1 otherwise.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
results=${RESULTS:-${OUT:-$here}/gpu-results.txt}
mkdir -p "$(dirname "$results")"
: >"$results"

logs=$(mktemp -d)
log() { printf '%s\n' "$*" | tee -a "$results"; }
# Runs a step: its output goes to the terminal, to the results file and to $logs/NAME.log; a
# failure is recorded in `failures`.
failures=()
step() {
  local name=$1
  shift
  log ""
  log "== $name: $*"
  local start=$SECONDS
  "$@" 2>&1 | tee "$logs/$name.log" | tee -a "$results"
  local status=${PIPESTATUS[0]}
  log "== $name: exit $status after $((SECONDS - start)) s"
  [ "$status" -eq 0 ] || failures+=("$name (exit $status)")
  return 0
}

if [ -z "${TORCH_LIB:-}" ]; then
  TORCH_LIB=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) ||
    TORCH_LIB=/opt/torch/.venv/lib/python3.12/site-packages/torch/lib
fi
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

log "tch-prune GPU run, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), results in $results"
step build-info cat "$here/BUILD.txt"
step gpu nvidia-smi -L
step gpu-details nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
step torch "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")'
step libtorch-cuda ls -l "$TORCH_LIB/libtorch_cuda.so"
# Both binaries must load libtorch_cuda from this machine's torch.
step linked bash -c "ldd '$here/cuda-tests' '$here/cuda-semi-sparse' '$here/kernels' | grep -E '^/|^[[:space:]]+lib(torch|c10)[^ ]* =>|not found'"

step cuda-tests env TCH_PRUNE_REQUIRE_CUDA=1 "$here/cuda-tests" --nocapture --test-threads 1
if grep -q 'skipped' "$logs/cuda-tests.log"; then
  log "== cuda-tests: a test was skipped (see above): not a CUDA run"
  failures+=("cuda-tests skipped")
fi
# 2:4 semi-structured layer (cuSPARSELt) and its printed BERT-base FFN fp16 benchmark.
step cuda-semi-sparse env TCH_PRUNE_REQUIRE_CUDA=1 "$here/cuda-semi-sparse" --nocapture --test-threads 1
if grep -q 'skipped' "$logs/cuda-semi-sparse.log"; then
  log "== cuda-semi-sparse: a test was skipped (see above): not a CUDA run"
  failures+=("cuda-semi-sparse skipped")
fi

if [ "${BENCH:-all}" != none ]; then
  # Criterion keeps its data out of the bundle (CRITERION_HOME); the timings are in the results.
  read -r -a bench_args <<<"${BENCH_ARGS:---warm-up-time 1 --measurement-time 2}"
  step kernels-bench env CRITERION_HOME="$logs/criterion" TCH_PRUNE_BENCH_DEVICE=cuda \
    "$here/kernels" --bench "${bench_args[@]}"
  if ! grep -q '@Cuda(0)' "$logs/kernels-bench.log"; then
    log "== kernels-bench: no group ran on Cuda(0): the benchmarks ran on the CPU"
    failures+=("kernels-bench not on CUDA")
  fi
  read -r -a py_args <<<"${PYTORCH_BENCH_ARGS:---repeats 10}"
  step pytorch-bench "$python" "$here/bench_masks_pytorch.py" --device cuda "${py_args[@]}"
fi

log ""
if [ "${#failures[@]}" -eq 0 ]; then
  log "== summary: all steps passed"
  exit 0
fi
log "== summary: FAILED: ${failures[*]}"
exit 1
