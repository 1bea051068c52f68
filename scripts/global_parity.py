#!/usr/bin/env python3
"""Global pruning parity with the real ``torch.nn.utils.prune.global_unstructured``.

``tests/model_pruning.rs`` (``PrunedModel::global_unstructured``) and ``tests/hard_mask.rs``
(``HardMask::global_unstructured``) run this script with the python of ``$TCH_PRUNE_PYTHON``
(set by ``scripts/env.sh``); it can also be run on its own:

    scripts/env.sh python scripts/global_parity.py check-env
    scripts/env.sh python scripts/global_parity.py extra-scores DIR

``extra-scores DIR``
    What PyTorch does with ``importance_scores`` entries for parameters that are **not** in the
    list it prunes: it ignores them (it only looks up the listed ``(module, name)`` pairs), so
    one scores dict can serve several subsets. Seeds, builds three linear layers ``a``
    (4 -> 3), ``b`` (3 -> 2) and ``c`` (2 -> 2), and writes ``DIR/global.safetensors``:

    * ``a.weight``, ``a.bias``, ``b.weight``, ``b.bias``, ``c.weight``, ``c.bias``: the values
      before pruning;
    * ``scores.a.weight``, ``scores.b.weight``, ``scores.c.weight``, ``scores.a.bias``: random
      scores; the last two are for parameters that are never pruned;
    * ``round1.a.weight_mask``, ``round1.b.weight_mask``: the masks after
      ``global_unstructured([(a, "weight"), (b, "weight")], L1Unstructured,
      importance_scores=<all four scores>, amount=0.4)``;
    * ``scores2.a.weight``: ``abs(scores.a.weight) * 0.2``, on the scale of ``b.weight``;
    * ``round2.a.weight_mask``, ``round2.b.weight_mask``: the masks after a second call on the
      same list with ``amount=3`` and scores for ``a.weight`` (``scores2.a.weight``),
      ``c.weight`` and ``a.bias`` only (``b.weight`` is ranked by its current, masked value;
      both go through the container path).

    It checks on the PyTorch side that ``c.weight`` and ``a.bias`` were not pruned. The Rust
    tests load the initial values into the same layers, make the same two calls with the same
    scores (plus scores for a name that is not a variable at all) and compare the masks bit for
    bit.

Exit status 0 when every check passes; otherwise a message on stderr and status 1 (2 when torch
or safetensors cannot be imported).
"""

import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.utils.prune as prune
    from safetensors.torch import save_file
except ImportError as exc:  # pragma: no cover - reported to the Rust test
    print(f"global_parity.py: cannot import torch/safetensors: {exc}", file=sys.stderr)
    sys.exit(2)


def fail(message):
    print(f"global_parity.py: {message}", file=sys.stderr)
    sys.exit(1)


def extra_scores(directory):
    torch.manual_seed(0)
    layers = {"a": nn.Linear(4, 3), "b": nn.Linear(3, 2), "c": nn.Linear(2, 2)}
    out = {}
    for lname, layer in layers.items():
        for pname, param in layer.named_parameters():
            out[f"{lname}.{pname}"] = param.detach().clone()
    a, b, c = layers["a"], layers["b"], layers["c"]
    scores = {
        (a, "weight"): torch.randn(3, 4),
        (b, "weight"): torch.randn(2, 3),
        (c, "weight"): torch.randn(2, 2),  # not listed: ignored
        (a, "bias"): torch.randn(3),  # not listed: ignored
    }
    for (module, pname), value in scores.items():
        lname = next(k for k, v in layers.items() if v is module)
        out[f"scores.{lname}.{pname}"] = value.clone()

    listed = [(a, "weight"), (b, "weight")]
    prune.global_unstructured(listed, prune.L1Unstructured, importance_scores=scores, amount=0.4)
    out["round1.a.weight_mask"] = a.weight_mask.clone()
    out["round1.b.weight_mask"] = b.weight_mask.clone()

    fewer = {key: value for key, value in scores.items() if key != (b, "weight")}
    fewer[(a, "weight")] = scores[(a, "weight")].abs() * 0.2  # on the scale of b's weights
    out["scores2.a.weight"] = fewer[(a, "weight")].clone()
    prune.global_unstructured(listed, prune.L1Unstructured, importance_scores=fewer, amount=3)
    out["round2.a.weight_mask"] = a.weight_mask.clone()
    out["round2.b.weight_mask"] = b.weight_mask.clone()

    if prune.is_pruned(c) or hasattr(a, "bias_mask"):
        fail("a parameter that was only given scores got pruned")
    for lname in ("a", "b"):
        before = (out[f"round1.{lname}.weight_mask"] == 0).sum()
        if before == 0 or (out[f"round2.{lname}.weight_mask"] == 0).sum() == before:
            fail(f"{lname}.weight is not pruned further in both rounds: the case changed?")
    save_file({k: v.contiguous() for k, v in out.items()}, f"{directory}/global.safetensors")
    print(f"extra-scores: wrote {len(out)} tensors")


def main(argv):
    if len(argv) >= 1 and argv[0] == "check-env":
        print(f"torch {torch.__version__}")
        return
    if len(argv) == 2 and argv[0] == "extra-scores":
        extra_scores(argv[1])
        return
    fail("usage: global_parity.py check-env | extra-scores DIR")


if __name__ == "__main__":
    main(sys.argv[1:])
