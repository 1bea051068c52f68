#!/usr/bin/env python3
"""Writes the mask parity fixtures that `tests/parity.rs` checks the crate against.

Every mask in the fixtures is computed by the REAL `torch.nn.utils.prune` classes
(`Identity`, `RandomUnstructured`, `L1Unstructured`, `RandomStructured`, `LnStructured`,
`CustomFromMask`, `PruningContainer`), so the Rust test proves bit-for-bit parity with PyTorch.

Run it (from the repository root) with:

    scripts/env.sh python scripts/make_fixtures.py

It is deterministic (fixed seeds), so re-running it rewrites identical files. It writes:

* ``tests/fixtures/masks.json``: a list of cases, each
  ``{"id": str, "methods": [method, ...], "container": bool, "start_in_container": bool,
  "shape": [...], "dtype": str, "note": str}`` where a method is one of

      {"method": "identity"}
      {"method": "l1_unstructured", "amount": A}
      {"method": "random_unstructured", "amount": A, "seed": S}
      {"method": "random_structured", "amount": A, "dim": D, "seed": S}
      {"method": "ln_structured", "amount": A, "n": N, "dim": D}
      {"method": "custom_from_mask"}

  ``A`` is a JSON integer for a count (Python ``int``) or a JSON float, always written with a
  decimal point or an exponent, for a fraction (Python ``float``): ``1`` is one unit, ``1.0``
  everything. ``N`` is a number or one of ``"inf"``, ``"-inf"``, ``"fro"``. ``shape``, ``dtype``
  and ``note`` only describe the case for people.

* ``tests/fixtures/masks.safetensors``: the tensors, keyed by case id.

  - Single method (``"container": false``, exactly one method):
    ``{id}.importance``, ``{id}.default_mask``, ``{id}.mask`` (and ``{id}.custom`` for
    ``custom_from_mask``): ``mask == method.compute_mask(importance, default_mask)``.
    For a random method, ``torch.manual_seed(seed)`` runs right before ``compute_mask``.

  - Container (``"container": true``, 1 to 4 methods), the way repeated module-level pruning
    (``prune.<method>(module, "weight", ...)`` called again and again) computes its masks.
    Step ``i`` (``0 <= i < len(methods)``) stores ``{id}.step{i}.importance``,
    ``{id}.step{i}.default_mask``, ``{id}.step{i}.mask`` (and ``{id}.step{i}.custom`` when
    method ``i`` is ``custom_from_mask``):

      * step 0, unless ``start_in_container``: the first pruning, a bare
        ``methods[0].compute_mask(importance_0, default_mask_0)``;
      * every other step (and step 0 when ``start_in_container``): a ``PruningContainer``
        holding ``methods[0..=i]`` (all with ``_tensor_name = "weight"``, built like
        ``BasePruningMethod.apply`` builds it), and
        ``mask_i = container.compute_mask(importance_i, default_mask_i)``; only the last
        method computes, on the still-unpruned slice.

    ``default_mask_i`` is ``mask_{i-1}`` (for ``i > 0``), and ``importance_i`` is the masked
    weight ``mask_{i-1}.to(orig.dtype) * orig`` that module-level pruning uses as importance
    (or a fixed importance-score tensor, when the case says so in ``note``). The seed of a
    random method is set right before its own step.

  Each stored tensor is an independent contiguous copy taken *before* the call (PyTorch's
  container writes into the default mask in place when its dtype equals the importance dtype).

  - RNG probes ``_rng_probe.{f16,bf16,f32,f64}``: ``torch.rand(8, dtype=...)`` right after
    ``torch.manual_seed(0)``. libtorch's CPU stream of float16/bfloat16 draws is not the same in
    every version (torch 2.11 and 2.13 differ), so a RandomUnstructured mask on half-precision
    scores can only be compared value for value on a libtorch whose probe matches; elsewhere
    the test still checks those masks' dtype and shape and lists them as not compared.
    float32/float64 streams must always match.

Ties: which of several equal scores ``topk`` picks is an implementation detail, so no case
depends on it. While the fixtures are generated, ``torch.topk`` is wrapped by a checker that
rejects a draw when the selected and the unselected scores at the boundary are equal or within
a relative 1e-3 of each other (norms computed by a different kernel must not reorder); the
case is then redrawn (new values, new seeds). Values for magnitude pruning are built from a
random permutation of distinct magnitudes with random signs.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.utils.prune as prune
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")
TENSOR_NAME = "weight"
MAX_ATTEMPTS = 60

DTYPES = {
    "f32": torch.float32,
    "f64": torch.float64,
    "f16": torch.float16,
    "bf16": torch.bfloat16,
    "i64": torch.int64,
    "i32": torch.int32,
    "bool": torch.bool,
}


# --------------------------------------------------------------------------------------------
# Tie checker around torch.topk (prune.py looks `torch.topk` up at call time).


class Tie(Exception):
    """A draw whose mask would depend on how topk orders equal (or nearly equal) scores."""


_real_topk = torch.topk


def _checked_topk(input, k, dim=-1, largest=True, sorted=True, **kwargs):  # noqa: A002
    result = _real_topk(input, k, dim=dim, largest=largest, sorted=sorted, **kwargs)
    flat = input.reshape(-1)
    n = flat.numel()
    if input.dim() <= 1 and 0 < k < n:
        values = flat.double()
        chosen = torch.zeros(n, dtype=torch.bool)
        chosen[result.indices.reshape(-1)] = True
        sel, unsel = values[chosen], values[~chosen]
        if torch.isnan(values).any():
            raise Tie("NaN score")
        if largest:
            a, b = sel.min().item(), unsel.max().item()
        else:
            a, b = unsel.min().item(), sel.max().item()
        # a must be clearly larger than b.
        gap = a - b
        scale = max(abs(a), abs(b))
        exact = not input.is_floating_point()
        if gap <= 0 or (not exact and gap <= 1e-3 * scale):
            raise Tie(f"boundary {a} vs {b}")
    return result


torch.topk = _checked_topk


# --------------------------------------------------------------------------------------------
# Value generators.


def distinct_values(shape, dtype, rng):
    """Values with pairwise distinct magnitudes, exactly representable in `dtype`."""
    n = int(np.prod(shape))
    perm = rng.permutation(n) + 1
    if dtype in (torch.float32, torch.float64):
        mags = (perm + rng.uniform(0.1, 0.9, n)) * 0.37
    elif dtype in (torch.float16, torch.bfloat16):
        assert n <= 200, "keep half-precision tensors small so magnitudes stay exact"
        mags = perm * 0.25
    else:
        mags = perm.astype(np.float64)
    signs = rng.choice([-1.0, 1.0], n)
    return torch.tensor(mags * signs, dtype=torch.float64).reshape(shape).to(dtype)


def normal_values(shape, dtype, rng):
    return torch.tensor(rng.standard_normal(int(np.prod(shape))) * 1.7).reshape(shape).to(dtype)


def make_default(shape, kind, dtype, rng, dim=None):
    """A default mask. kind: ones | zeros (about a third of the entries are 0) | channels
    (whole channels along `dim` are 0) | nonbinary (entries 0, 0.5, 1 and 2)."""
    n = int(np.prod(shape))
    if kind == "ones":
        vals = np.ones(n)
    elif kind == "zeros":
        vals = (rng.uniform(size=n) > 0.35).astype(np.float64)
    elif kind == "channels":
        nd = len(shape)
        d = dim % nd
        full = np.ones(shape)
        nch = shape[d]
        dead = rng.choice(nch, size=max(1, nch // 3), replace=False)
        idx = [slice(None)] * nd
        idx[d] = dead
        full[tuple(idx)] = 0.0
        vals = full.reshape(-1)
    elif kind == "nonbinary":
        vals = rng.choice([0.0, 0.5, 1.0, 1.0, 1.0, 2.0], n)
    else:
        raise ValueError(kind)
    return torch.tensor(vals).reshape(shape).to(dtype)


# --------------------------------------------------------------------------------------------
# Methods: JSON description <-> real PyTorch object.


def build(spec, custom=None):
    kind = spec["method"]
    if kind == "identity":
        m = prune.Identity()
    elif kind == "l1_unstructured":
        m = prune.L1Unstructured(spec["amount"])
    elif kind == "random_unstructured":
        m = prune.RandomUnstructured(spec["amount"])
    elif kind == "random_structured":
        m = prune.RandomStructured(spec["amount"], dim=spec["dim"])
    elif kind == "ln_structured":
        n = spec["n"]
        n = {"inf": math.inf, "-inf": -math.inf}.get(n, n) if isinstance(n, str) else n
        m = prune.LnStructured(spec["amount"], n=n, dim=spec["dim"])
    elif kind == "custom_from_mask":
        m = prune.CustomFromMask(custom)
    else:
        raise ValueError(kind)
    m._tensor_name = TENSOR_NAME
    return m


def seed_for(spec):
    if "seed" in spec:
        torch.manual_seed(spec["seed"])


def snapshot(t):
    return t.detach().clone().contiguous()


def L1(amount):
    return {"method": "l1_unstructured", "amount": amount}


def RU(amount):
    return {"method": "random_unstructured", "amount": amount, "seed": None}


def RS(amount, dim):
    return {"method": "random_structured", "amount": amount, "dim": dim, "seed": None}


def LN(amount, n, dim):
    return {"method": "ln_structured", "amount": amount, "n": n, "dim": dim}


IDENT = {"method": "identity"}
CUSTOM = {"method": "custom_from_mask"}


def make_custom(shape, custom_kind, rng):
    """The user's mask of a CustomFromMask: f32 / f64 0-1, bool, i64 0-1, or f32 with 0.5s."""
    n = int(np.prod(shape))
    bits = (rng.uniform(size=n) > 0.4).astype(np.float64)
    if custom_kind == "half_values":
        bits = rng.choice([0.0, 0.5, 1.0], n)
        return torch.tensor(bits).reshape(shape).to(torch.float32)
    return torch.tensor(bits).reshape(shape).to(DTYPES[custom_kind])


# --------------------------------------------------------------------------------------------
# Case builders. Each returns (json_case, {key: tensor}) or raises Tie.


class Builder:
    def __init__(self):
        self.cases = []
        self.tensors = {}
        self.ids = set()
        self.rng = np.random.default_rng(20240611)
        self.next_seed = 1

    def _fresh_seeds(self, methods):
        out = []
        for m in methods:
            m = dict(m)
            if "seed" in m:
                m["seed"] = int(self.rng.integers(0, 2**31 - 1))
            out.append(m)
        return out

    def _unique(self, case_id):
        assert "." not in case_id, case_id
        assert case_id not in self.ids, case_id
        self.ids.add(case_id)

    def single(self, case_id, method, shape, dtype="f32", default="ones", default_dtype=None,
               importance_dtype=None, values="distinct", custom_kind="f32"):
        """One bare compute_mask call.

        dtype: the parameter's dtype; importance_dtype: importance scores of another dtype
        (the default mask then has the parameter's dtype unless default_dtype says otherwise).
        """
        self._unique(case_id)
        param_dtype = DTYPES[dtype]
        imp_dtype = DTYPES[importance_dtype] if importance_dtype else param_dtype
        def_dtype = DTYPES[default_dtype] if default_dtype else param_dtype
        for _ in range(MAX_ATTEMPTS):
            spec = self._fresh_seeds([method])[0]
            gen = distinct_values if values == "distinct" else normal_values
            importance = gen(shape, imp_dtype, self.rng)
            dmask = make_default(shape, default, def_dtype, self.rng, dim=spec.get("dim", 0))
            custom = make_custom(shape, custom_kind, self.rng) if spec["method"] == "custom_from_mask" else None
            m = build(spec, custom)
            stored = {
                f"{case_id}.importance": snapshot(importance),
                f"{case_id}.default_mask": snapshot(dmask),
            }
            if custom is not None:
                stored[f"{case_id}.custom"] = snapshot(custom)
            try:
                seed_for(spec)
                mask = m.compute_mask(importance, default_mask=dmask.clone())
            except Tie:
                continue
            stored[f"{case_id}.mask"] = snapshot(mask)
            self.tensors.update(stored)
            note = f"default={default}:{def_dtype}".replace("torch.", "")
            if custom is not None:
                note += f" custom={custom.dtype}".replace("torch.", "")
            self.cases.append({
                "id": case_id, "methods": [spec], "container": False,
                "start_in_container": False, "shape": list(shape),
                "dtype": str(imp_dtype).replace("torch.", ""), "note": note,
            })
            return
        raise RuntimeError(f"{case_id}: could not draw a tie-free case")

    def container(self, case_id, methods, shape, dtype="f32", values="distinct",
                  scores_dtype=None, start_in_container=False, default="ones",
                  default_dtype=None, custom_kind="f32"):
        """Repeated pruning of one parameter (see the module docstring)."""
        self._unique(case_id)
        param_dtype = DTYPES[dtype]
        def_dtype = DTYPES[default_dtype] if default_dtype else param_dtype
        for _ in range(MAX_ATTEMPTS):
            specs = self._fresh_seeds(methods)
            gen = distinct_values if values == "distinct" else normal_values
            orig = gen(shape, param_dtype, self.rng)
            scores = gen(shape, DTYPES[scores_dtype], self.rng) if scores_dtype else None
            first_dim = next((s["dim"] for s in specs if "dim" in s), 0)
            prev = make_default(shape, default, def_dtype, self.rng, dim=first_dim)
            stored = {}
            container = None
            try:
                for i, spec in enumerate(specs):
                    custom = make_custom(shape, custom_kind, self.rng) if spec["method"] == "custom_from_mask" else None
                    m = build(spec, custom)
                    if scores is not None:
                        importance = scores
                    elif i == 0:
                        importance = orig
                    else:
                        importance = prev.to(dtype=orig.dtype) * orig
                    default_mask = snapshot(prev)
                    key = f"{case_id}.step{i}"
                    stored[f"{key}.importance"] = snapshot(importance)
                    stored[f"{key}.default_mask"] = snapshot(default_mask)
                    if custom is not None:
                        stored[f"{key}.custom"] = snapshot(custom)
                    if i == 0 and not start_in_container:
                        seed_for(spec)
                        mask = m.compute_mask(importance, default_mask=default_mask.clone())
                        container = prune.PruningContainer(m)
                    else:
                        if container is None:
                            container = prune.PruningContainer(m)
                        else:
                            container.add_pruning_method(m)
                        seed_for(spec)
                        mask = container.compute_mask(importance, default_mask=default_mask.clone())
                    stored[f"{key}.mask"] = snapshot(mask)
                    prev = mask
            except Tie:
                continue
            self.tensors.update(stored)
            note = f"default={default}:{def_dtype}".replace("torch.", "")
            if scores is not None:
                note += f" importance=fixed scores of {scores.dtype}".replace("torch.", "")
            else:
                note += " importance=masked weight"
            self.cases.append({
                "id": case_id, "methods": specs, "container": True,
                "start_in_container": start_in_container, "shape": list(shape),
                "dtype": str(param_dtype).replace("torch.", ""), "note": note,
            })
            return
        raise RuntimeError(f"{case_id}: could not draw a tie-free case")


def tag(x):
    """A JSON-id-safe spelling of an amount / norm / dim / shape."""
    if isinstance(x, (list, tuple)):
        return "x".join(str(v) for v in x)
    if isinstance(x, float):
        s = repr(x).replace(".", "p").replace("-", "m")
        return "f" + s
    if isinstance(x, int):
        return ("c" + str(x)).replace("-", "m")
    return str(x).replace("-", "m")


def dim_tag(d):
    return f"d{d}".replace("-", "m")


# --------------------------------------------------------------------------------------------
# The cases.


def unstructured_cases(b):
    # (shape, amount) pairs: counts incl. 0 and all; fractions incl. 0.0, 1.0 and .5 ties.
    grid = [
        ((5,), 0), ((5,), 1), ((5,), 5), ((5,), 0.5), ((7,), 0.5), ((10,), 0.25),
        ((4,), 0.125), ((10,), 0.45), ((5,), 0.9), ((17,), 0.4), ((3,), 0.5), ((1,), 0.5),
        ((3, 4), 0.0), ((3, 4), 1.0), ((3, 4), 3), ((3, 4), 12), ((4, 3), 0.3),
        ((2, 5), 0.6), ((7, 10), 0.2), ((2, 3, 4), 0.5), ((2, 3, 4), 7), ((3, 2, 2, 2), 0.75),
        ((2, 2, 3, 2), 1), ((4, 2, 3, 1), 0.33),
    ]
    for i, (shape, amount) in enumerate(grid):
        dtype = ["f32", "f64"][i % 2]
        b.single(f"l1_{i:02}_{dtype}_{tag(shape)}_{tag(amount)}", L1(amount), shape, dtype)
        b.single(f"ru_{i:02}_{dtype}_{tag(shape)}_{tag(amount)}", RU(amount), shape, dtype)
    # Half precision and integer parameters.
    for dtype in ["f16", "bf16"]:
        for shape, amount in [((6,), 2), ((3, 4), 0.5), ((2, 3, 4), 0.25), ((2, 2, 2, 3), 1.0)]:
            b.single(f"l1_{dtype}_{tag(shape)}_{tag(amount)}", L1(amount), shape, dtype)
            b.single(f"ru_{dtype}_{tag(shape)}_{tag(amount)}", RU(amount), shape, dtype)
    for dtype in ["i64", "i32"]:
        for shape, amount in [((6,), 2), ((3, 4), 0.5), ((2, 3, 4), 0.75)]:
            b.single(f"l1_{dtype}_{tag(shape)}_{tag(amount)}", L1(amount), shape, dtype)
    # Default masks that are not all ones, and of other kinds (spec 7.6: the mask keeps the
    # default mask's dtype).
    variants = [
        ("zeros", None), ("zeros", "i64"), ("zeros", "i32"), ("ones", "i64"), ("zeros", "bool"),
        ("zeros", "f64"), ("nonbinary", None), ("zeros", "f16"),
    ]
    for j, (default, ddtype) in enumerate(variants):
        shape = [(4, 5), (12,), (2, 3, 4), (2, 2, 3, 2)][j % 4]
        amount = [0.5, 3, 0.25, 1.0][j % 4]
        label = f"{default}_{ddtype or 'same'}"
        b.single(f"l1_default_{label}_{tag(shape)}_{tag(amount)}", L1(amount), shape, "f32",
                 default=default, default_dtype=ddtype)
        b.single(f"ru_default_{label}_{tag(shape)}_{tag(amount)}", RU(amount), shape, "f32",
                 default=default, default_dtype=ddtype)
    # Importance scores of another dtype than the parameter (default mask: parameter dtype).
    for param, scores in [("f32", "f64"), ("f64", "f32"), ("f32", "f16"), ("f32", "bf16"),
                          ("f16", "f32"), ("i64", "f32"), ("f32", "i64")]:
        for shape, amount in [((3, 5), 0.4), ((2, 3, 2), 5)]:
            b.single(f"l1_scores_{scores}_param_{param}_{tag(shape)}_{tag(amount)}", L1(amount),
                     shape, param, importance_dtype=scores)
            if not scores.startswith("i"):
                b.single(f"ru_scores_{scores}_param_{param}_{tag(shape)}_{tag(amount)}",
                         RU(amount), shape, param, importance_dtype=scores)


def structured_cases(b):
    norms = [1, 2, 3, "inf", "-inf", "fro"]
    # (shape, dim, amount)
    grid = [
        ((5, 3), 0, 0.5), ((7, 2), 0, 0.5), ((3, 10), 1, 0.25), ((4, 3), 0, 0.125),
        ((4, 3), -2, 1), ((3, 4), -1, 2), ((3, 4), 1, 0), ((3, 4), 1, 4), ((4, 3), 0, 0.0),
        ((4, 3), 0, 1.0), ((2, 3, 4), 2, 0.5), ((2, 3, 4), -1, 3), ((2, 3, 4), 0, 1),
        ((4, 2, 3), -3, 0.75), ((2, 5, 3), 1, 0.9), ((2, 3, 2, 2), 1, 0.4),
        ((3, 2, 2, 2), 0, 2), ((2, 2, 3, 4), 3, 0.5), ((2, 3, 2, 4), -1, 0.25),
        ((4, 2, 3, 1), -4, 0.5), ((2, 3, 5, 1), -2, 0.6), ((5, 4), 1, 0.5),
    ]
    for i, (shape, dim, amount) in enumerate(grid):
        dtype = ["f32", "f64"][i % 2]
        n = norms[i % len(norms)]
        n2 = norms[(i + 3) % len(norms)]
        # torch.norm(p="fro") over 3 or more dims raises in torch 2.13 (matrix_norm wants a
        # 2-tuple), so "fro" is only used on tensors of rank <= 3; p=2 stands in on 4-D.
        if len(shape) == 4:
            n = 2 if n == "fro" else n
            n2 = 2 if n2 == "fro" else n2
        stem = f"{dtype}_{tag(shape)}_{dim_tag(dim)}_{tag(amount)}"
        b.single(f"ln_{i:02}_{tag(n)}_{stem}", LN(amount, n, dim), shape, dtype, values="normal")
        b.single(f"ln_{i:02}b_{tag(n2)}_{stem}", LN(amount, n2, dim), shape, dtype,
                 values="normal")
        b.single(f"rs_{i:02}_{stem}", RS(amount, dim), shape, dtype)
    # Every norm on a 4-D tensor but "fro" (see above), and every one on a 3-D tensor.
    for n in norms + [0.5, 1.5]:
        if n != "fro":
            b.single(f"ln_4d_{tag(n)}_f32_2x3x2x2_d1_f0p5", LN(0.5, n, 1), (2, 3, 2, 2), "f32",
                     values="normal")
        b.single(f"ln_3d_{tag(n)}_f64_3x2x4_dm1_c2", LN(2, n, -1), (3, 2, 4), "f64",
                 values="normal")
    # Half precision (norms and rand use the same libtorch kernels on both sides).
    for dtype in ["f16", "bf16"]:
        for n in [1, 2, "inf"]:
            b.single(f"ln_{dtype}_{tag(n)}_4x3_d0_c1", LN(1, n, 0), (4, 3), dtype, values="normal")
        b.single(f"rs_{dtype}_4x3_d0_f0p5", RS(0.5, 0), (4, 3), dtype)
        b.single(f"rs_{dtype}_2x3x4_dm1_c2", RS(2, -1), (2, 3, 4), dtype)
    # Integer parameter for RandomStructured (zeros_like keeps int64).
    b.single("rs_i64_3x4_d1_c2", RS(2, 1), (3, 4), "i64")
    # Default masks: prior zeros, dead channels, integer / bool / other float kinds.
    variants = [
        ("zeros", None), ("channels", None), ("zeros", "i64"), ("ones", "i64"),
        ("channels", "i32"), ("zeros", "bool"), ("zeros", "f64"), ("nonbinary", None),
    ]
    for j, (default, ddtype) in enumerate(variants):
        shape, dim, amount = [((4, 5), 0, 0.5), ((3, 6), 1, 2), ((2, 3, 4), -1, 0.25),
                              ((3, 2, 2, 2), 0, 1)][j % 4]
        n = norms[j % len(norms)]
        label = f"{default}_{ddtype or 'same'}"
        b.single(f"ln_default_{label}_{tag(n)}_{tag(shape)}_{dim_tag(dim)}_{tag(amount)}",
                 LN(amount, n, dim), shape, "f32", default=default, default_dtype=ddtype,
                 values="normal")
        b.single(f"rs_default_{label}_{tag(shape)}_{dim_tag(dim)}_{tag(amount)}",
                 RS(amount, dim), shape, "f32", default=default, default_dtype=ddtype)
    # Count 0 with a non-trivial default mask: the default mask comes back (its dtype).
    b.single("ln_k0_default_i64", LN(0, 2, 0), (3, 4), "f32", default="zeros",
             default_dtype="i64", values="normal")
    b.single("rs_k0_default_i64", RS(0.1, 0), (3, 4), "f32", default="zeros",
             default_dtype="i64")
    # Importance scores of another dtype (mask: importance dtype when count > 0).
    for param, scores in [("f32", "f64"), ("f64", "f32"), ("f32", "f16"), ("f32", "bf16")]:
        b.single(f"ln_scores_{scores}_param_{param}", LN(0.5, 2, 0), (4, 3), param,
                 importance_dtype=scores, values="normal")
        b.single(f"ln_scores_{scores}_param_{param}_k0", LN(0, 1, 1), (4, 3), param,
                 importance_dtype=scores, values="normal")
        b.single(f"rs_scores_{scores}_param_{param}", RS(1, -1), (2, 2, 3), param,
                 importance_dtype=scores)


def identity_and_custom_cases(b):
    for dtype, default, ddtype, shape in [
        ("f32", "ones", None, (5,)), ("f64", "zeros", None, (3, 4)),
        ("f32", "zeros", "i64", (2, 3, 4)), ("f32", "ones", "bool", (2, 2, 2, 2)),
        ("f16", "zeros", None, (4, 3)), ("bf16", "nonbinary", None, (6,)),
        ("f32", "zeros", "i32", (3, 3)), ("i64", "ones", None, (2, 5)),
    ]:
        label = f"{default}_{ddtype or 'same'}"
        b.single(f"identity_{dtype}_{label}_{tag(shape)}", IDENT, shape, dtype, default=default,
                 default_dtype=ddtype)
    for i, (custom_kind, dtype, default, ddtype, shape) in enumerate([
        ("f32", "f32", "ones", None, (6,)), ("f32", "f64", "ones", None, (3, 4)),
        ("bool", "f32", "ones", None, (2, 3, 4)), ("i64", "f32", "zeros", None, (2, 2, 2, 2)),
        ("half_values", "f32", "ones", None, (4, 3)), ("f64", "f32", "zeros", None, (5, 2)),
        ("f32", "f32", "zeros", "i64", (3, 4)), ("bool", "f32", "ones", "bool", (4, 2)),
        ("f32", "f16", "zeros", None, (3, 4)), ("i64", "bf16", "ones", None, (2, 6)),
        ("half_values", "f64", "nonbinary", None, (2, 3, 2)), ("f32", "i64", "ones", None, (7,)),
        ("bool", "f32", "zeros", "i32", (2, 2, 3)),
    ]):
        label = f"{default}_{ddtype or 'same'}"
        b.single(f"custom_{i:02}_{custom_kind}_{dtype}_{label}_{tag(shape)}", CUSTOM, shape,
                 dtype, default=default, default_dtype=ddtype, custom_kind=custom_kind)


def container_cases(b):
    specs = [
        # (methods, shape, dtype, values)
        ([L1(0.5), L1(0.5)], (4, 5), "f32", "distinct"),
        ([L1(3), L1(2), L1(0.25)], (3, 4), "f64", "distinct"),
        ([L1(0.5), L1(0.5), L1(0.5), L1(1.0)], (2, 3, 4), "f32", "distinct"),
        ([L1(2), LN(0.5, 2, 0)], (4, 3), "f32", "distinct"),
        ([L1(0.3), LN(1, 1, -1)], (3, 5), "f64", "distinct"),
        ([LN(1, 2, 0), LN(0.5, 2, 0)], (4, 3), "f32", "normal"),
        ([LN(1, 2, 0), LN(0.5, 1, 1)], (4, 3), "f32", "normal"),
        ([LN(0.25, "inf", 1), L1(0.5)], (3, 4), "f32", "normal"),
        ([LN(2, "fro", -1), L1(3), LN(1, 3, -1)], (2, 3, 5), "f64", "normal"),
        ([LN(0.5, "-inf", 0), LN(0.5, "-inf", 0)], (6, 3), "f32", "normal"),
        ([RU(0.5), RU(0.5)], (4, 5), "f32", "distinct"),
        ([RU(3), L1(0.5)], (3, 4), "f64", "distinct"),
        ([L1(0.25), RU(2), L1(1)], (2, 3, 4), "f32", "distinct"),
        ([RS(1, 0), RS(0.5, 0)], (4, 3), "f32", "distinct"),
        ([RS(1, 1), L1(0.5), RS(1, 0)], (3, 4), "f32", "distinct"),
        ([L1(0.5), RS(0.5, -1)], (2, 3, 4), "f64", "distinct"),
        ([IDENT, L1(0.5)], (3, 4), "f32", "distinct"),
        ([L1(0.5), IDENT], (3, 4), "f32", "distinct"),
        ([IDENT, LN(0.5, 2, 1), IDENT], (3, 4), "f64", "normal"),
        ([CUSTOM, L1(0.5)], (4, 4), "f32", "distinct"),
        ([L1(0.25), CUSTOM], (4, 4), "f32", "distinct"),
        ([L1(2), CUSTOM, LN(0.5, 2, 0)], (4, 3), "f64", "distinct"),
        ([LN(0.25, 1, 0), RU(0.5), CUSTOM, L1(0.5)], (4, 3, 2), "f32", "distinct"),
        ([L1(1.0), L1(0)], (2, 3), "f32", "distinct"),
        ([LN(1.0, 2, 0), LN(0, 2, 0)], (3, 3), "f32", "normal"),
        ([L1(0.5), LN(0.5, 2, 0)], (4, 3), "f16", "distinct"),
        ([L1(0.5), RU(0.5)], (3, 4), "bf16", "distinct"),
        ([L1(0.5), L1(3)], (2, 3, 2, 2), "f32", "distinct"),
        ([LN(1, 2, 3), LN(0.5, "inf", 1), L1(0.125)], (2, 3, 2, 4), "f32", "normal"),
        ([RS(1, -2), LN(1, 2, -1), RU(0.5), L1(1)], (4, 3, 2, 2), "f64", "distinct"),
        ([L1(3), L1(3)], (12,), "f32", "distinct"),
        ([L1(0.5), L1(0.5)], (3, 4), "i64", "distinct"),
        ([RU(0.5), LN(0.5, 1, 0), RS(1, 1)], (4, 4), "f32", "distinct"),
        ([LN(0.5, 2, 1), RS(0.5, 1), LN(1, 1, 1)], (3, 6), "f32", "normal"),
    ]
    for i, (methods, shape, dtype, values) in enumerate(specs):
        names = "_".join({"l1_unstructured": "l1", "random_unstructured": "ru",
                          "random_structured": "rs", "ln_structured": "ln",
                          "identity": "id", "custom_from_mask": "cm"}[m["method"]]
                         for m in methods)
        b.container(f"container_{i:02}_{names}_{dtype}_{tag(shape)}", methods, shape, dtype,
                    values=values)
    # Fixed importance scores of another dtype at every step (mask: scores dtype).
    b.container("container_scores_f64_l1_l1", [L1(0.25), L1(0.5)], (4, 5), "f32",
                scores_dtype="f64")
    b.container("container_scores_f32_l1_ln", [L1(2), LN(0.5, 2, 0)], (4, 3), "f64",
                scores_dtype="f32", values="normal")
    b.container("container_scores_f64_ln_l1", [LN(1, 1, 1), L1(0.5)], (3, 4), "f32",
                scores_dtype="f64", values="normal")
    # The container combining step on a non-trivial starting mask: step 0 already goes through
    # PruningContainer.compute_mask (mask == 1 slice, dead-channel slice, global).
    starts = [
        ([L1(0.5)], (4, 5), "f32", "zeros", None),
        ([L1(2)], (4, 5), "f32", "nonbinary", None),
        ([L1(0.5), L1(1)], (3, 4), "f32", "zeros", "i64"),
        ([L1(0.25)], (2, 3, 4), "f64", "zeros", "f32"),
        ([RU(0.5)], (4, 5), "f32", "zeros", None),
        ([RU(2)], (3, 4), "f64", "nonbinary", "i64"),
        ([LN(1, 2, 0)], (4, 3), "f32", "channels", None),
        ([LN(0.5, 1, -1)], (3, 6), "f32", "channels", "i64"),
        ([LN(0.5, "inf", 1)], (2, 4, 3), "f64", "channels", "f32"),
        ([RS(1, 0), L1(0.5)], (5, 3), "f32", "channels", None),
        ([RS(0.5, -1)], (2, 3, 4), "f32", "channels", "bool"),
        ([IDENT], (3, 4), "f32", "nonbinary", "i64"),
        ([CUSTOM], (3, 4), "f32", "zeros", "i64"),
        ([CUSTOM, L1(0.5)], (4, 3), "f64", "nonbinary", None),
        ([LN(1, 2, 0)], (4, 3), "f32", "zeros", None),
        ([RS(2, 1)], (3, 5), "f32", "zeros", None),
    ]
    for i, (methods, shape, dtype, default, ddtype) in enumerate(starts):
        names = "_".join({"l1_unstructured": "l1", "random_unstructured": "ru",
                          "random_structured": "rs", "ln_structured": "ln",
                          "identity": "id", "custom_from_mask": "cm"}[m["method"]]
                         for m in methods)
        b.container(f"container_start_{i:02}_{names}_{default}_{ddtype or 'same'}", methods,
                    shape, dtype, values="normal" if "ln" in names else "distinct",
                    start_in_container=True, default=default, default_dtype=ddtype)


def main():
    torch.set_default_dtype(torch.float32)
    b = Builder()
    unstructured_cases(b)
    structured_cases(b)
    identity_and_custom_cases(b)
    container_cases(b)

    # RNG probes: `torch.rand(8, dtype)` right after `torch.manual_seed(0)`. The CPU stream of
    # float16/bfloat16 draws changed between torch 2.11 and 2.13, so the Rust test compares its
    # libtorch's draws with these before judging a random case of that dtype.
    for name, dtype in [("f16", torch.float16), ("bf16", torch.bfloat16),
                        ("f32", torch.float32), ("f64", torch.float64)]:
        torch.manual_seed(0)
        b.tensors[f"_rng_probe.{name}"] = torch.rand(8, dtype=dtype)

    os.makedirs(OUT_DIR, exist_ok=True)
    st_path = os.path.join(OUT_DIR, "masks.safetensors")
    save_file(b.tensors, st_path,
              # A single key: safetensors writes metadata in hash order, which varies by run.
              metadata={"generator": f"scripts/make_fixtures.py, torch {torch.__version__}"})
    os.chmod(st_path, 0o644)  # safetensors creates the file owner-only
    with open(os.path.join(OUT_DIR, "masks.json"), "w") as f:
        # One case per line: small diffs when a case changes.
        f.write("[\n" + ",\n".join(json.dumps(c) for c in b.cases) + "\n]\n")
    n_steps = sum(len(c["methods"]) for c in b.cases)
    print(f"wrote {len(b.cases)} cases ({n_steps} mask computations, {len(b.tensors)} tensors) "
          f"to {os.path.relpath(OUT_DIR, ROOT)}/ with torch {torch.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
