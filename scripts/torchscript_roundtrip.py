#!/usr/bin/env python3
"""TorchScript round trip for tch-prune's hard-mask mode (``HardMask`` + ``MaskedOptimizer``).

``tests/torchscript.rs`` runs this script (with the python of ``$TCH_PRUNE_PYTHON``, set by
``scripts/env.sh``); it can also be run on its own:

    scripts/env.sh python scripts/torchscript_roundtrip.py trace DIR
    scripts/env.sh python scripts/torchscript_roundtrip.py check DIR

``trace DIR``
    Seeds, builds ``Net`` below (``Conv2d(1, 4, 3) -> ReLU -> flatten -> Linear(144, 3)``),
    traces it with ``torch.jit.trace`` on a ``[2, 1, 8, 8]`` input and saves it as
    ``DIR/traced.pt``. Prints the parameter names.

``check DIR``
    Loads ``DIR/trained.pt`` (the module after Rust pruned it with ``HardMask``, trained it
    with ``MaskedOptimizer`` and saved it with ``TrainableCModule::save``) with
    ``torch.jit.load``, ``DIR/masks.safetensors`` (the Rust masks, keyed by ``VarStore`` name:
    the parameter name with ``.`` replaced by ``_``, as ``TrainableCModule::load`` names them)
    and ``DIR/io.safetensors`` (``input`` and ``output``: the Rust forward in eval mode).
    Checks that every entry whose mask is 0 is exactly 0 in the saved parameter, that at least
    one entry was pruned and that most kept entries moved away from their value in
    ``traced.pt`` (training happened), and that the forward of the loaded module on ``input`` equals
    ``output`` within 1e-5.

Exit status 0 when every check passes; otherwise a message on stderr and status 1 (2 when torch
or safetensors cannot be imported).
"""

import os
import sys

try:
    import torch
    import torch.nn as nn
    from safetensors.torch import load_file
except ImportError as exc:  # pragma: no cover - reported to the Rust test
    print(f"torchscript_roundtrip.py: cannot import torch/safetensors: {exc}", file=sys.stderr)
    sys.exit(2)

ATOL = 1e-5


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def fail(message):
    print(f"torchscript_roundtrip.py: {message}", file=sys.stderr)
    sys.exit(1)


def trace(directory):
    torch.manual_seed(0)
    net = Net().eval()
    traced = torch.jit.trace(net, torch.randn(2, 1, 8, 8))
    traced.save(os.path.join(directory, "traced.pt"))
    print(" ".join(name for name, _ in traced.named_parameters()))


def check(directory):
    trained = torch.jit.load(os.path.join(directory, "trained.pt")).eval()
    original = dict(torch.jit.load(os.path.join(directory, "traced.pt")).named_parameters())
    params = {name.replace(".", "_"): p.detach() for name, p in trained.named_parameters()}
    masks = load_file(os.path.join(directory, "masks.safetensors"))
    if not masks:
        fail("masks.safetensors holds no mask")
    for key, mask in masks.items():
        if key not in params:
            fail(f"mask {key!r} matches no parameter (parameters: {sorted(params)})")
        p = params[key]
        if mask.shape != p.shape:
            fail(f"mask {key!r} has shape {tuple(mask.shape)}, parameter {tuple(p.shape)}")
        pruned = mask == 0
        if int(pruned.sum()) == 0:
            fail(f"mask {key!r} prunes nothing")
        alive = p[pruned]
        if bool((alive != 0).any()):
            fail(f"{key}: {int((alive != 0).sum())} pruned entries are not zero: {alive[alive != 0]}")
        before = original[[n for n in original if n.replace(".", "_") == key][0]].detach()
        # A kept entry whose gradient stayed 0 (a dead ReLU) may keep its value: ask for most.
        moved = float((p[~pruned] != before[~pruned]).float().mean())
        if moved < 0.5:
            fail(f"{key}: only {moved:.0%} of the kept entries changed (no training?)")
        print(f"{key}: {int(pruned.sum())} of {mask.numel()} entries pruned, all exactly 0")
    io = load_file(os.path.join(directory, "io.safetensors"))
    with torch.no_grad():
        out = trained(io["input"])
    diff = float((out - io["output"]).abs().max())
    if diff > ATOL:
        fail(f"forward differs from Rust's by {diff} (> {ATOL})")
    print(f"forward matches Rust's (max abs diff {diff:.3g})")


def main(argv):
    if len(argv) != 3 or argv[1] not in ("trace", "check"):
        fail("usage: torchscript_roundtrip.py trace|check DIR")
    {"trace": trace, "check": check}[argv[1]](argv[2])


if __name__ == "__main__":
    main(sys.argv)
