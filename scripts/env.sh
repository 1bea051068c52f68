#!/usr/bin/env bash
# Bootstrap libtorch (from PyPI's `torch` wheel) into a virtualenv OUTSIDE the work tree and
# export what cargo and the test binaries need. Source it or run it with a command:
#
#   scripts/env.sh cargo test            # default: torch 2.13.0 (tch 0.26)
#   TORCH_VERSION=2.11.0 scripts/env.sh cargo test   # torch 2.11.0 (tch 0.24)
#
# Idempotent: when the venv already holds the pinned torch it only exports the variables.
set -euo pipefail

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
CACHE_ROOT="${TCH_PRUNE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tch-prune}"
VENV="${TCH_PRUNE_VENV:-$CACHE_ROOT/venv-torch-$TORCH_VERSION}"
PYTHON="${PYTHON:-python3}"
# Python packages the fixture and checkpoint scripts need beside torch.
EXTRA_PACKAGES=(numpy safetensors)

die() { printf 'scripts/env.sh: %s\n' "$*" >&2; exit 1; }

venv_ok() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" - "$TORCH_VERSION" <<'PY' >/dev/null 2>&1
import sys, torch, numpy, safetensors
sys.exit(0 if torch.__version__.split("+")[0] == sys.argv[1] else 1)
PY
}

if ! venv_ok; then
  command -v "$PYTHON" >/dev/null 2>&1 || die "no '$PYTHON' on PATH; install Python 3.9+ first"
  printf 'scripts/env.sh: installing torch==%s into %s (about 5 GB, a few minutes)...\n' \
    "$TORCH_VERSION" "$VENV" >&2
  mkdir -p "$CACHE_ROOT"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" || die "could not create the virtualenv at $VENV (is python3-venv installed?)"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip ||
    die "pip could not upgrade itself in $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "torch==$TORCH_VERSION" "${EXTRA_PACKAGES[@]}" ||
    die "pip failed to install torch==$TORCH_VERSION (see the messages above); delete $VENV and retry"
  venv_ok || die "torch==$TORCH_VERSION does not import from $VENV after the install"
fi

TORCH_LIB="$("$VENV/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TCH_PRUNE_PYTHON="$VENV/bin/python"

# With arguments: run them in this environment (the exit code is theirs).
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
