#!/usr/bin/env python3
"""Trains a pruned MLP with the REAL `torch.nn.utils.prune`; `tests/training.rs` replays it.

Run by the Rust test (`cargo test --test training`) as

    $TCH_PRUNE_PYTHON scripts/training_reference.py OUT.safetensors

and usable by hand the same way (`scripts/env.sh python scripts/training_reference.py out.st`).
It is deterministic (fixed seed, one thread) and needs `torch` and `safetensors`.

The model is `Linear(8, 16) -> ReLU -> Linear(16, 4)` (`fc1`, `fc2`), the loss
`F.mse_loss(model(x), y)` (mean). Every scenario starts from the same initial state:

    prune.l1_unstructured(fc1, "weight", amount=0.5)             # 64 of 128 entries
    prune.ln_structured(fc2, "weight", amount=0.25, n=2, dim=0)  # 1 of 4 rows

with the optimizer built BEFORE pruning (it holds the parameter that becomes `weight_orig`),
then `STEPS` steps of `zero_grad(); loss = mse(model(x), y); loss.backward(); step()`:

* ``sgd``: `SGD(lr=0.1, momentum=0.9)`;
* ``adam``: `Adam(lr=1e-2)` (betas (0.9, 0.999), eps 1e-8, no weight decay, no amsgrad);
* ``sgd_reprune``: as ``sgd``, but after step ``REPRUNE_AFTER`` (0-based: after that many
  steps) a no-grad forward refreshes the cached `fc1.weight` (PyTorch's repeated pruning ranks
  the value cached by the last forward pre-hook) and
  `prune.l1_unstructured(fc1, "weight", amount=0.25)` prunes a quarter of the entries still
  unpruned, through a `PruningContainer`; after the last step `prune.remove` makes both
  prunings permanent.

Tensors written (all float32 except where said):

* ``init.{fc1,fc2}.{weight,bias}``: the initial parameters; ``x`` (32x8), ``y`` (32x4);
* ``mask.fc1.weight``, ``mask.fc2.weight``: the masks after the initial pruning;
* ``{scenario}.loss``: float64, ``STEPS`` values, the loss of each step (before its update);
* ``{scenario}.step{i}.{fc1,fc2}.{weight_orig,bias}``: the parameters after step ``i``'s update;
* ``sgd_reprune.mask2.fc1.weight``: the fc1 mask after the second pruning;
* ``sgd_reprune.removed.{fc1,fc2}.weight``: the weights after `prune.remove`.

The file's metadata holds ``torch`` (the version) and ``steps``/``reprune_after``.
"""

import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import prune

STEPS = 10
REPRUNE_AFTER = 5
SEED = 20240611


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def check_no_tie(scores, k, what):
    """Which of several equal scores `topk` drops is unspecified: make sure the k-th and the
    (k+1)-th smallest differ, so the mask is the same in any correct implementation."""
    s = scores.detach().reshape(-1).sort().values
    if s[k - 1] == s[k]:
        sys.exit(f"tie at the pruning boundary of {what}; change SEED")


def initial_pruning(model):
    check_no_tie(model.fc1.weight.abs(), 64, "fc1.weight")
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    check_no_tie(model.fc2.weight.norm(p=2, dim=1), 1, "fc2.weight")
    prune.ln_structured(model.fc2, "weight", amount=0.25, n=2, dim=0)


def snapshot(t):
    return t.detach().clone().contiguous()


def run(name, make_optimizer, init, x, y, out):
    model = Mlp()
    model.load_state_dict(init)
    opt = make_optimizer(model.parameters())  # before pruning, as the Rust test does
    initial_pruning(model)
    losses = []
    for i in range(STEPS):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        for layer in ("fc1", "fc2"):
            module = getattr(model, layer)
            out[f"{name}.step{i}.{layer}.weight_orig"] = snapshot(module.weight_orig)
            out[f"{name}.step{i}.{layer}.bias"] = snapshot(module.bias)
        if name == "sgd_reprune" and i + 1 == REPRUNE_AFTER:
            with torch.no_grad():
                model(x)  # refresh the cached `weight` the container ranks
            kept = model.fc1.weight[model.fc1.weight_mask.bool()]
            check_no_tie(kept.abs(), 16, "fc1.weight (second pruning)")
            prune.l1_unstructured(model.fc1, "weight", amount=0.25)
            out[f"{name}.mask2.fc1.weight"] = snapshot(model.fc1.weight_mask)
    out[f"{name}.loss"] = torch.tensor(losses, dtype=torch.float64)
    if name == "sgd_reprune":
        for layer in ("fc1", "fc2"):
            module = getattr(model, layer)
            prune.remove(module, "weight")
            out[f"{name}.removed.{layer}.weight"] = snapshot(module.weight)
    return model


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT.safetensors")
    path = sys.argv[1]
    torch.set_num_threads(1)
    torch.manual_seed(SEED)

    reference = Mlp()
    init = {k: snapshot(v) for k, v in reference.state_dict().items()}
    x = torch.randn(32, 8)
    y = torch.randn(32, 4)

    out = {f"init.{k}": v for k, v in init.items()}
    out["x"] = x
    out["y"] = y

    pruned = Mlp()
    pruned.load_state_dict(init)
    initial_pruning(pruned)
    out["mask.fc1.weight"] = snapshot(pruned.fc1.weight_mask)
    out["mask.fc2.weight"] = snapshot(pruned.fc2.weight_mask)

    run("sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), init, x, y, out)
    run("adam", lambda p: torch.optim.Adam(p, lr=1e-2), init, x, y, out)
    run("sgd_reprune", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), init, x, y, out)

    # Write next to the target and rename: concurrent test runs never see a partial file.
    tmp = f"{path}.{os.getpid()}.tmp"
    metadata = {
        "torch": torch.__version__,
        "steps": str(STEPS),
        "reprune_after": str(REPRUNE_AFTER),
    }
    save_file(out, tmp, metadata=metadata)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
