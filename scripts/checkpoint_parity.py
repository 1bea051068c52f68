#!/usr/bin/env python3
"""Checkpoint parity between tch-prune and the real ``torch.nn.utils.prune``, both directions.

``tests/checkpoints.rs`` runs this script (with the python of ``$TCH_PRUNE_PYTHON``, set by
``scripts/env.sh``); it is not meant to be run on its own, but can be:

    scripts/env.sh python scripts/checkpoint_parity.py check-env
    scripts/env.sh python scripts/checkpoint_parity.py rust-to-torch DIR PARAM [PARAM ...]
    scripts/env.sh python scripts/checkpoint_parity.py torch-to-rust DIR
    scripts/env.sh python scripts/checkpoint_parity.py kinds DIR

The architecture is ``Net`` below; the Rust test builds the same one (same parameter names).

``rust-to-torch DIR PARAM...``
    Reads ``DIR/model.safetensors`` (a pruned tch ``VarStore``, saved by Rust),
    ``DIR/input.safetensors`` (key ``input``) and ``DIR/output.safetensors`` (key ``output``:
    the Rust forward of the pruned model on that input). Builds ``Net``, applies
    ``prune.identity`` to every ``PARAM`` (e.g. ``fc1.weight``), loads the file with
    ``load_state_dict(strict=True)`` and checks that the ``state_dict`` keys equal the file's
    keys exactly, that every dtype and shape matches, and that the forward output equals the
    Rust output within 1e-6.

``torch-to-rust DIR``
    Seeds, builds ``Net``, prunes it with the real methods (``PRUNE_RECIPE``, a repeated prune
    included), and writes ``DIR/model.safetensors`` (the ``state_dict``, contiguous tensors) and
    ``DIR/io.safetensors`` (``input`` and ``output``: the forward of the pruned model). The Rust
    test loads the checkpoint into an unpruned model and compares.

``kinds DIR``
    A checkpoint whose entries are not stored in the model's dtypes, and what
    ``load_state_dict`` makes of it. Seeds, builds ``Net``, prunes it with ``PRUNE_RECIPE``,
    and writes its ``state_dict`` to ``DIR/model.safetensors`` with the dtypes of ``KINDS``
    (masks as bool, float64, uint8 and int64; originals and biases as float64, bfloat16 and
    int64), so the values are those of that dtype (the float64 ones with digits float32 cannot
    hold, the int64 bias ten times the float one, truncated). Then builds a fresh ``Net``, applies
    ``prune.identity`` to the pruned parameters, loads that file with
    ``load_state_dict(strict=True)`` (which copies each entry into the model's own tensor, so
    every parameter and mask stays float32) and writes the resulting ``state_dict`` to
    ``DIR/expected.safetensors``, and ``input`` / ``output`` (its forward) to
    ``DIR/io.safetensors``. Fails if any loaded tensor is not float32. The Rust test loads the
    same file into unpruned Rust models (trainable and frozen) and requires PyTorch's kinds,
    values and output.

Exit status 0 when every check passes; otherwise a message on stderr and status 1 (2 when torch
or safetensors cannot be imported).
"""

import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.utils.prune as prune
    from safetensors.torch import load_file, save_file
except ImportError as exc:  # pragma: no cover - reported to the Rust test
    print(f"checkpoint_parity.py: cannot import torch/safetensors: {exc}", file=sys.stderr)
    sys.exit(2)

TOLERANCE = 1e-6

# The parameters `torch-to-rust` prunes, and how (the Rust test expects exactly these names).
PRUNE_RECIPE = [
    ("conv1", "weight", lambda m: prune.ln_structured(m, "weight", amount=1, n=2, dim=0)),
    ("fc1", "weight", lambda m: prune.l1_unstructured(m, "weight", amount=0.5)),
    ("fc1", "weight", lambda m: prune.ln_structured(m, "weight", amount=0.3, n=1, dim=1)),
    ("fc2", "weight", lambda m: prune.l1_unstructured(m, "weight", amount=7)),
    ("fc2", "bias", lambda m: prune.l1_unstructured(m, "bias", amount=1)),
]


class Net(nn.Module):
    """A LeNet-like model: conv (1 -> 3 channels, 3x3) on 6x6 inputs, then two linears."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3)
        self.fc1 = nn.Linear(48, 10)
        self.fc2 = nn.Linear(10, 4)

    def forward(self, x):
        x = torch.relu(self.conv1(x)).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def fail(message):
    print(f"checkpoint_parity.py: {message}", file=sys.stderr)
    sys.exit(1)


def split(param):
    """``"fc1.weight"`` -> ``("fc1", "weight")``."""
    module, _, name = param.rpartition(".")
    if not module or not name:
        fail(f"bad parameter name {param!r} (expected MODULE.NAME)")
    return module, name


def rust_to_torch(directory, params):
    state = load_file(f"{directory}/model.safetensors")
    x = load_file(f"{directory}/input.safetensors")["input"]
    rust_out = load_file(f"{directory}/output.safetensors")["output"]

    model = Net()
    for param in params:
        module, name = split(param)
        prune.identity(getattr(model, module), name)

    # Strict loading: raises on any missing or unexpected key.
    model.load_state_dict(state, strict=True)
    torch_state = model.state_dict()
    if set(torch_state) != set(state):
        fail(
            "state_dict keys differ from the file's: "
            f"only in torch {sorted(set(torch_state) - set(state))}, "
            f"only in the file {sorted(set(state) - set(torch_state))}"
        )
    for key, value in state.items():
        ours = torch_state[key]
        if ours.dtype != value.dtype or ours.shape != value.shape:
            fail(f"{key}: torch has {ours.dtype} {tuple(ours.shape)}, "
                 f"the file {value.dtype} {tuple(value.shape)}")
        if not torch.equal(ours, value):
            fail(f"{key}: loaded values differ from the file's")
    pruned = sorted(k[: -len("_mask")] for k in torch_state if k.endswith("_mask"))
    if pruned != sorted(params):
        fail(f"pruned parameters {pruned} != {sorted(params)}")

    with torch.no_grad():
        out = model(x)  # the forward pre-hooks recompute orig * mask
    if out.dtype != rust_out.dtype or out.shape != rust_out.shape:
        fail(f"output: torch {out.dtype} {tuple(out.shape)}, "
             f"rust {rust_out.dtype} {tuple(rust_out.shape)}")
    diff = (out - rust_out).abs().max().item()
    if diff > TOLERANCE:
        fail(f"forward outputs differ by {diff} (> {TOLERANCE})")
    print(f"rust-to-torch: {len(state)} keys, {len(params)} pruned, max |diff| = {diff}")


def torch_to_rust(directory):
    torch.manual_seed(0)
    model = Net()
    for module, _, apply in PRUNE_RECIPE:
        apply(getattr(model, module))
    x = torch.randn(5, 1, 6, 6)
    with torch.no_grad():
        out = model(x)
    # safetensors needs contiguous tensors that share no storage.
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, f"{directory}/model.safetensors")
    save_file({"input": x.contiguous(), "output": out.contiguous()}, f"{directory}/io.safetensors")
    print(f"torch-to-rust: wrote {len(state)} keys: {sorted(state)}")


# `kinds`: the dtype each entry of the checkpoint is stored as (the others stay float32).
KINDS = {
    "conv1.weight_mask": torch.bool,
    "conv1.weight_orig": torch.float64,
    "conv1.bias": torch.float64,
    "fc1.weight_mask": torch.float64,
    "fc1.weight_orig": torch.bfloat16,
    "fc1.bias": torch.int64,
    "fc2.weight_mask": torch.uint8,
    "fc2.bias_mask": torch.int64,
    "fc2.bias_orig": torch.float64,
}


def kinds(directory):
    torch.manual_seed(1)
    model = Net()
    for module, _, apply in PRUNE_RECIPE:
        apply(getattr(model, module))
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().contiguous().clone()
        kind = KINDS.get(key, value.dtype)
        if kind == torch.float64 and not key.endswith("_mask"):
            value = value.to(kind) * (1 + 2**-30)  # digits float32 cannot hold
        elif kind == torch.int64 and not key.endswith("_mask"):
            value = value * 10  # whole numbers after truncation, not only zeros
        state[key] = value.to(kind)
    missing = sorted(set(KINDS) - set(state))
    if missing:
        fail(f"KINDS names entries the state_dict does not have: {missing}")
    save_file(state, f"{directory}/model.safetensors")

    fresh = Net()
    for param in sorted({k[: -len("_mask")] for k in state if k.endswith("_mask")}):
        module, name = split(param)
        prune.identity(getattr(fresh, module), name)
    fresh.load_state_dict(state, strict=True)
    loaded = {k: v.detach().contiguous().clone() for k, v in fresh.state_dict().items()}
    odd = sorted(k for k, v in loaded.items() if v.dtype != torch.float32)
    if odd:
        fail(f"load_state_dict did not keep float32 for {odd}")
    x = torch.randn(5, 1, 6, 6)
    with torch.no_grad():
        out = fresh(x)
    save_file(loaded, f"{directory}/expected.safetensors")
    save_file({"input": x.contiguous(), "output": out.contiguous()}, f"{directory}/io.safetensors")
    print(f"kinds: wrote {len(state)} keys, {len(KINDS)} of them not float32")


def main(argv):
    if len(argv) >= 1 and argv[0] == "check-env":
        print(f"torch {torch.__version__}")
        return
    if len(argv) >= 3 and argv[0] == "rust-to-torch":
        rust_to_torch(argv[1], argv[2:])
        return
    if len(argv) == 2 and argv[0] == "torch-to-rust":
        torch_to_rust(argv[1])
        return
    if len(argv) == 2 and argv[0] == "kinds":
        kinds(argv[1])
        return
    fail(
        "usage: checkpoint_parity.py check-env | rust-to-torch DIR PARAM... | torch-to-rust DIR"
        " | kinds DIR"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
