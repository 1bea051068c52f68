#!/usr/bin/env python3
"""Global pruning of large layers with ties at the threshold, by the real ``torch.nn.utils.prune``.

``tests/global_ties_pytorch.rs`` runs this script (with the python of ``$TCH_PRUNE_PYTHON``, set
by ``scripts/env.sh``) and repeats the same calls with ``PrunedModel``; it can also be run alone:

    scripts/env.sh python scripts/global_ties_parity.py check-env
    scripts/env.sh python scripts/global_ties_parity.py run DIR

``run DIR`` seeds, builds ``Net`` (three ``Linear`` layers, 48,000 + 15,360 + 640 weights: above
the 32,768 entries where tch-prune selects in linear time), and on the three weights, in order:

1. ``global_unstructured(L1Unstructured, amount=0.5)``, then ``prune.remove`` on each: half of
   the weights are now exactly zero (``-0.0`` for negative ones);
2. ``global_unstructured(L1Unstructured, amount=0.3)``: the 32,000 zeros tie, 19,200 are pruned;
3. ``global_unstructured(L1Unstructured, amount=0.2)``: the container's slice (mask == 1) still
   holds 12,800 zeros, 8,960 are pruned;
4. ``torch.manual_seed(RANDOM_SEED)``, then ``global_unstructured(RandomUnstructured, 0.3)``.

It writes ``DIR/global_ties.safetensors``: ``init.{a,b,c}.weight`` (the weights before step 1)
and ``step{i}.{a,b,c}.weight_mask`` (the masks after step ``i``, 1 to 4; after step 1 the masks
are taken before ``remove``). Exit status 0 on success, 1 on failure, 2 when torch or
safetensors cannot be imported.
"""

import os
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.utils.prune as prune
    from safetensors.torch import save_file
except ImportError as exc:  # pragma: no cover - reported to the Rust test
    print(f"global_ties_parity.py: cannot import torch/safetensors: {exc}", file=sys.stderr)
    sys.exit(2)

RANDOM_SEED = 2024
NAMES = ["a", "b", "c"]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(200, 240)
        self.b = nn.Linear(240, 64)
        self.c = nn.Linear(64, 10)


def run(out_dir):
    torch.manual_seed(0)
    net = Net()
    params = [(getattr(net, n), "weight") for n in NAMES]
    out = {f"init.{n}.weight": getattr(net, n).weight.detach().clone() for n in NAMES}

    def record(step):
        for n in NAMES:
            out[f"step{step}.{n}.weight_mask"] = getattr(net, n).weight_mask.detach().clone()

    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.5)
    record(1)
    for module, name in params:
        prune.remove(module, name)
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.3)
    record(2)
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.2)
    record(3)
    torch.manual_seed(RANDOM_SEED)
    prune.global_unstructured(params, pruning_method=prune.RandomUnstructured, amount=0.3)
    record(4)
    path = os.path.join(out_dir, "global_ties.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path)


def main(argv):
    if argv[1:] == ["check-env"]:
        print(f"torch {torch.__version__}")
        return 0
    if len(argv) == 3 and argv[1] == "run":
        run(argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
