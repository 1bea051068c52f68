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

  A case may also have ``"error": str``: PyTorch raises at its last step (the single method, or
  the last container step), and the crate must return the ``PruneError`` variant of that name
  (``"UnsupportedNorm"``, ``"DimOutOfRange"``, ...) there. No ``mask`` is stored for that step;
  the note quotes PyTorch's exception. A case may also have ``"cast": {suffix:
  dtype}`` (``dtype`` one of the names below, ``"f32"``, ``"f64"``, ...): the tensor stored
  under ``{id}.{suffix}`` (e.g. ``step1.mask``) holds the values in a smaller integer dtype
  (``uint8`` or ``int8``, bit-exact) and is converted to ``dtype`` when read; the large cases
  store 0/1 masks and integer scores that way.

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
depends on it, except the ``large_*`` cases (``large_tensor_cases``): tensors above the 32768
entries where tch-prune selects in linear time, whose scores tie exactly at the threshold on
purpose (the crate must then give ``topk``'s choice, as PyTorch). Elsewhere, while the fixtures
are generated, ``torch.topk`` is wrapped by a checker that
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
    """The user's mask of a CustomFromMask: f32 / f64 0-1, bool, i64 0-1, f32 with 0.5s, or
    (``nan_<dtype>``) NaNs and other special values (`nan_mask`)."""
    if custom_kind.startswith("nan_"):
        return nan_mask(shape, custom_kind[4:], rng)
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
    # Default masks that are not all ones, and of other kinds (PyTorch's mask keeps the default
    # mask's dtype).
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


# --------------------------------------------------------------------------------------------
# Exactness: structured re-pruning of 1-D tensors, "fro" on 4 or more dimensions
# (PyTorch raises: cases with an "error"), and custom masks holding NaN payloads.

NAN_BITS = {
    # Quiet and signalling NaNs of both signs with assorted payloads, infinities, -0.0.
    "f32": (np.uint32, np.int32, torch.float32,
            [0x7FC00000, 0x7F800001, 0xFFC00000, 0x7FBFFFFF, 0xFF812345, 0x7FC54321,
             0x7F800000, 0xFF800000, 0x80000000]),
    "f64": (np.uint64, np.int64, torch.float64,
            [0x7FF8000000000000, 0x7FF0000000000001, 0xFFF4000000000ABC, 0x7FF0000000000000,
             0x8000000000000000]),
    "f16": (np.uint16, np.int16, torch.float16,
            [0x7E00, 0xFE00, 0x7C01, 0x7FFF, 0x7D55, 0xFC00, 0x8000]),
    "bf16": (np.uint16, np.int16, torch.bfloat16,
             [0x7FC0, 0xFFC0, 0x7F81, 0x7FFF, 0xFF81, 0x7F80, 0x8000]),
}


def nan_mask(shape, name, rng):
    """A custom mask of dtype `name` whose entries are 0, 1, 0.5 or one of `NAN_BITS[name]`,
    at random positions. PyTorch's first pruning stores ``ones * mask.to(dtype)``, and the
    product re-encodes NaNs: it quiets signalling NaNs, and libtorch's bfloat16 kernel writes
    0xFFFF where it runs vectorized and 0x7FC0 in its scalar tail. Which entries fall in the
    tail depends on the vector width; for 70 or 5 entries AVX2 and AVX-512 agree (64
    vectorized and 6 in the tail, or all 5 in the tail)."""
    unsigned, signed, dtype, specials = NAN_BITS[name]
    n = int(np.prod(shape))
    plain = torch.tensor(rng.choice([0.0, 1.0, 1.0, 0.5], n)).to(dtype)
    pick = torch.tensor(rng.integers(0, len(specials), n))
    special = torch.tensor(np.array(specials, dtype=unsigned).view(signed)).view(dtype)[pick]
    use = torch.tensor(rng.uniform(size=n) < 0.5)
    use[-3:] = True  # the scalar tail holds special values too
    return torch.where(use, special, plain).reshape(shape).contiguous()


def expect_error(b, case_id, methods, shape, dtype, error, values="normal", default="ones",
                 start_in_container=False):
    """A case whose last step PyTorch refuses: its ``"error"`` names the PruneError variant the
    crate must return there, and no mask is stored for that step. The steps are run and stored
    as `Builder.container` does (as `Builder.single` for one method without
    ``start_in_container``)."""
    b._unique(case_id)
    container = len(methods) > 1 or start_in_container
    param_dtype = DTYPES[dtype]
    gen = distinct_values if values == "distinct" else normal_values
    for _ in range(MAX_ATTEMPTS):
        specs = b._fresh_seeds(methods)
        orig = gen(shape, param_dtype, b.rng)
        first_dim = next((s["dim"] for s in specs if "dim" in s), 0)
        prev = make_default(shape, default, param_dtype, b.rng, dim=first_dim)
        stored, history, message = {}, None, None
        try:
            for i, spec in enumerate(specs):
                assert spec["method"] != "custom_from_mask", "no custom masks in error cases"
                m = build(spec)
                importance = orig if i == 0 else prev.to(dtype=orig.dtype) * orig
                key = f"{case_id}.step{i}" if container else case_id
                stored[f"{key}.importance"] = snapshot(importance)
                stored[f"{key}.default_mask"] = snapshot(prev)
                if i == 0 and not start_in_container:
                    bare, history = m, prune.PruningContainer(m)
                else:
                    if history is None:
                        history = prune.PruningContainer(m)
                    else:
                        history.add_pruning_method(m)
                    bare = history
                seed_for(spec)
                if i + 1 < len(specs):
                    prev = bare.compute_mask(importance, default_mask=prev.clone())
                    stored[f"{key}.mask"] = snapshot(prev)
                    continue
                try:
                    bare.compute_mask(importance, default_mask=prev.clone())
                except Tie:
                    raise
                except Exception as e:  # noqa: BLE001 - any error PyTorch raises
                    message = f"{type(e).__name__}: {e}"
                else:
                    raise AssertionError(f"{case_id}: PyTorch did not raise")
        except Tie:
            continue
        b.tensors.update(stored)
        b.cases.append({
            "id": case_id, "methods": specs, "container": container,
            "start_in_container": start_in_container, "shape": list(shape),
            "dtype": str(param_dtype).replace("torch.", ""), "error": error, "note": f"default={default}; PyTorch raises {message}",
        })
        return
    raise RuntimeError(f"{case_id}: could not draw a tie-free case")


def exactness_cases(b):
    # Structured re-pruning of a 1-D tensor: PyTorch's container slices it as one row [1, n]
    # ([0, n] when its mask sums to zero, which still runs the method and its draws): with
    # dim 0 the vector is one channel, with dim -1 each entry is one (pruned ones included).
    vectors = [
        ([L1(2), LN(1, 2, 0)], (5,), "f32", "distinct"),
        ([L1(2), LN(3, 1, -1)], (7,), "f64", "distinct"),
        ([L1(0.4), RS(0.6, 0)], (5,), "f32", "distinct"),
        ([L1(2), RS(0.6, -1)], (6,), "f32", "distinct"),
        ([RU(0.5), LN(0.5, "inf", 0), L1(1)], (8,), "f32", "distinct"),
        ([L1(1), LN(4, "fro", -1), LN(1, 2, 0)], (8,), "f32", "normal"),
        ([L1(2), LN(3, 2, -1)], (6,), "bf16", "distinct"),
        ([L1(2), RS(2, -1)], (5,), "i64", "distinct"),
        ([L1(1.0), RS(0.5, -1), L1(0)], (6,), "f32", "distinct"),
        ([L1(1.0), LN(0.5, 2, 0)], (5,), "f32", "distinct"),
        ([L1(1.0), LN(0, 1, -1)], (5,), "f64", "distinct"),
    ]
    for i, (methods, shape, dtype, values) in enumerate(vectors):
        names = "_".join({"l1_unstructured": "l1", "random_unstructured": "ru",
                          "random_structured": "rs", "ln_structured": "ln"}[m["method"]]
                         for m in methods)
        b.container(f"vector_{i:02}_{names}_{dtype}_{tag(shape)}", methods, shape, dtype,
                    values=values)
    for i, (methods, shape, default, ddtype) in enumerate([
        ([RS(0.5, -1)], (6,), "nonbinary", None),
        ([LN(1, 2, 0)], (5,), "zeros", "i64"),
        ([RS(2, -1), L1(1)], (7,), "zeros", None),
    ]):
        b.container(f"vector_start_{i:02}_{default}_{ddtype or 'same'}", methods, shape, "f32",
                    values="normal", start_in_container=True, default=default,
                    default_dtype=ddtype)
    # ... and where PyTorch raises on that path (IndexError for a dim other than 0 and -1 or
    # any dim of a 0-D tensor; ValueError for a count larger than the rows or entries), and
    # the first pruning, a bare method (ValueError: not multidimensional).
    expect_error(b, "vector_err_ln_d1", [L1(2), LN(1, 2, 1)], (5,), "f32", "DimOutOfRange")
    expect_error(b, "vector_err_rs_dm2", [L1(2), RS(1, -2)], (5,), "f32", "DimOutOfRange")
    expect_error(b, "vector_err_dead_ln_c1", [L1(1.0), LN(1, 2, 0)], (5,), "f32",
                 "AmountTooLarge", values="distinct")
    expect_error(b, "vector_err_rs_c6", [L1(2), RS(6, -1)], (5,), "f64", "AmountTooLarge",
                 values="distinct")
    expect_error(b, "vector_err_first_ln", [LN(1, 2, 0)], (5,), "f32", "NotStructured")
    expect_error(b, "scalar_err_ln", [L1(1), LN(1, 2, 0)], (), "f32", "DimOutOfRange")
    # n="fro" on 4 or more dimensions: torch.norm calls linalg.matrix_norm, which raises, even
    # with amount 0; the amount and the dtype are checked first.
    expect_error(b, "fro_err_4d_c0", [LN(0, "fro", 0)], (4, 3, 2, 2), "f32", "UnsupportedNorm")
    expect_error(b, "fro_err_4d_f0p5_dm1", [LN(0.5, "fro", -1)], (2, 3, 2, 2), "f64",
                 "UnsupportedNorm")
    expect_error(b, "fro_err_5d_c1", [LN(1, "fro", 1)], (2, 2, 2, 3, 2), "f32",
                 "UnsupportedNorm")
    expect_error(b, "fro_err_4d_container", [L1(0.5), LN(0.0, "fro", 0)], (3, 2, 2, 2), "f32",
                 "UnsupportedNorm", values="distinct")
    expect_error(b, "fro_err_4d_i64", [LN(0, "fro", 0)], (4, 3, 2, 2), "i64", "UnsupportedKind",
                 values="distinct")
    expect_error(b, "fro_err_4d_c5", [LN(5, "fro", 0)], (4, 3, 2, 2), "f32", "AmountTooLarge")
    # Custom masks with NaN payloads on a first pruning (default mask of ones), every float
    # kind against every other; `tests/parity.rs` also checks `compute_mask_on_ones` on them.
    for mask_kind, dtype, shape in [
        ("f32", "f32", (70,)), ("f64", "f64", (7, 10)), ("bf16", "bf16", (70,)),
        ("f16", "f16", (7, 10)), ("f64", "f32", (70,)), ("f32", "bf16", (7, 10)),
        ("bf16", "f32", (70,)), ("f16", "bf16", (70,)), ("f32", "f16", (70,)),
        ("bf16", "f64", (7, 10)), ("bf16", "bf16", (5,)), ("f32", "f32", (5,)),
    ]:
        b.single(f"custom_nan_{mask_kind}_{dtype}_{tag(shape)}", CUSTOM, shape, dtype,
                 custom_kind=f"nan_{mask_kind}")


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


# --------------------------------------------------------------------------------------------
# Large tensors: above the 32768 entries where tch-prune selects in linear time, with
# scores tied exactly at the threshold. These cases depend on how `topk` picks among ties on
# purpose (the crate must hand such tensors to the same `topk`), so they run with the real
# `torch.topk`, not the tie checker, and draw from their own generator (`LARGE_SEED`), leaving
# the other cases' draws alone.

LARGE_SEED = 9


def _compact(tensor):
    """`(stored, cast)`: the tensor in `uint8` or `int8` when that holds it bit for bit (0/1
    masks, small integer scores without -0.0), with the dtype name to convert it back to;
    otherwise the tensor itself and `None`."""
    if tensor.dtype not in (torch.float32, torch.float64):
        return tensor, None
    name = {torch.float32: "f32", torch.float64: "f64"}[tensor.dtype]
    bits = torch.int32 if tensor.dtype == torch.float32 else torch.int64
    for small in (torch.uint8, torch.int8):
        info = torch.iinfo(small)
        if not bool(((tensor == tensor.round()) & (tensor >= info.min) & (tensor <= info.max)).all()):
            continue
        stored = tensor.to(small)
        if torch.equal(stored.to(tensor.dtype).view(bits), tensor.view(bits)):
            return stored.contiguous(), name
    return tensor, None


def _add_large(b, case_id, methods, container, start_in_container, shape, dtype, steps, note):
    """Records a case computed by the caller: `steps` is a list of dicts of tensors keyed by
    `importance`, `default_mask`, `mask`, one per step (one for a single method)."""
    b._unique(case_id)
    cast = {}
    for i, tensors in enumerate(steps):
        prefix = f"{case_id}.step{i}" if container else case_id
        for name, tensor in tensors.items():
            stored, dtype_name = _compact(snapshot(tensor))
            key = f"{prefix}.{name}"
            b.tensors[key] = stored
            if dtype_name is not None:
                cast[key[len(case_id) + 1:]] = dtype_name
    b.cases.append({
        "id": case_id, "methods": methods, "container": container,
        "start_in_container": start_in_container, "shape": list(shape), "dtype": dtype,
        "note": note, "cast": cast,
    })


def _large_single(b, case_id, spec, importance, default, note):
    m = build(spec)
    seed_for(spec)
    mask = m.compute_mask(importance, default_mask=default.clone())
    _add_large(b, case_id, [spec], False, False, importance.shape,
               str(importance.dtype).replace("torch.", ""),
               [{"importance": importance, "default_mask": default, "mask": mask}], note)


def _large_container(b, case_id, specs, orig, default, start_in_container, note):
    """Repeated pruning as in `Builder.container`: importance_i = mask_{i-1} * orig."""
    prev, container, steps = default, None, []
    for i, spec in enumerate(specs):
        m = build(spec)
        importance = orig if i == 0 else prev.to(dtype=orig.dtype) * orig
        default_mask = snapshot(prev)
        if spec["method"] == "l1_unstructured":
            # Every magnitude step of these cases is meant to straddle ties.
            whole = i == 0 and not start_in_container
            scores = importance.abs() if whole else importance[default_mask == 1].abs()
            k = prune._compute_nparams_toprune(spec["amount"], scores.numel())
            assert _straddles(scores, k, False), (case_id, i)
        seed_for(spec)
        if i == 0 and not start_in_container:
            mask = m.compute_mask(importance, default_mask=default_mask.clone())
            container = prune.PruningContainer(m)
        else:
            if container is None:
                container = prune.PruningContainer(m)
            else:
                container.add_pruning_method(m)
            mask = container.compute_mask(importance, default_mask=default_mask.clone())
        steps.append({"importance": importance, "default_mask": default_mask, "mask": mask})
        prev = mask
    _add_large(b, case_id, specs, True, start_in_container, orig.shape,
               str(orig.dtype).replace("torch.", ""), steps, note)


def _straddles(scores, k, largest):
    """Whether the `k` smallest (largest) scores end among tied scores, some left unselected."""
    flat = scores.reshape(-1)
    threshold = _real_topk(flat, k, largest=largest).values[-1]
    up_to = (flat >= threshold) if largest else (flat <= threshold)
    return int(up_to.sum()) > k


def large_tensor_cases(b):
    torch.topk = _real_topk
    try:
        _large_tensor_cases(b, np.random.default_rng(LARGE_SEED))
    finally:
        torch.topk = _checked_topk


def _large_tensor_cases(b, rng):
    shape = (180, 200)  # 36,000 entries
    n = shape[0] * shape[1]

    def levels(dtype):
        # Integers -8..8: every magnitude shared by thousands of entries.
        return torch.tensor(rng.integers(-8, 9, n), dtype=dtype).reshape(shape)

    def after_remove(dtype, shape=shape):
        # Weights after prune + remove: half of them exactly zero, -0.0 where they were negative.
        w = torch.tensor(rng.standard_normal(int(np.prod(shape))) * 0.05, dtype=dtype)
        keep = torch.tensor(rng.permutation(w.numel()) % 2, dtype=dtype)
        return (w * keep).reshape(shape)

    # Single L1 method: ties straddle the threshold (importance on 17 levels; and weights with
    # half of them zero, the zeros straddling it), f32 and f64, other default masks.
    for dtype, amount in [(torch.float32, 0.3), (torch.float64, 12345)]:
        tag_ = "f32" if dtype == torch.float32 else "f64"
        t = levels(dtype)
        assert _straddles(t.abs(), prune._compute_nparams_toprune(amount, n), False)
        _large_single(b, f"large_l1_levels_{tag_}_{tag(amount)}", L1(amount), t,
                      torch.ones(shape, dtype=dtype), "magnitudes tie at the threshold")
    t = after_remove(torch.float32)
    assert _straddles(t.abs(), round(0.3 * n), False)
    _large_single(b, "large_l1_zeros_f32_f0p3", L1(0.3), t,
                  make_default(shape, "zeros", torch.float32, rng),
                  "half the importance exactly zero (+-0.0), 30 % pruned: zeros straddle")
    # Prune, remove, prune again (step 0: the zeros of the removed pruning straddle), then once
    # more through the container (zeros left in the slice mask == 1 straddle again). In f64 the
    # first amount is small (`k * 64 <= n`: topk's heap branch) and the slice of step 1 is
    # above 32,768 entries.
    for dtype, shape_, first in [(torch.float32, shape, 0.3), (torch.float64, (166, 200), 0.01)]:
        tag_ = "f32" if dtype == torch.float32 else "f64"
        orig = after_remove(dtype, shape_)
        _large_container(b, f"large_prune_remove_prune_{tag_}", [L1(first), L1(0.2)], orig,
                         torch.ones(shape_, dtype=dtype), False,
                         "orig = weights after prune(0.5) + remove; zeros straddle each step")
    # The container's slice with ties, from a mask with entries 0, 0.5, 1 and 2.
    t = levels(torch.float32)
    _large_container(b, "large_container_levels_nonbinary_f32", [L1(0.4)], t,
                     make_default(shape, "nonbinary", torch.float32, rng), True,
                     "importance on 17 levels; slice mask == 1 straddles")
    # Seeded RandomUnstructured (PyTorch's rand_like at every size).
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, 4)]
    z32 = torch.zeros(shape, dtype=torch.float32)
    _large_single(b, "large_ru_f32_f0p3", dict(RU(0.3), seed=seeds[0]), z32,
                  torch.ones(shape), "seeded draws of a large tensor")
    z64 = torch.zeros((170, 200), dtype=torch.float64)
    _large_single(b, "large_ru_f64_f0p5", dict(RU(0.5), seed=seeds[1]), z64,
                  make_default((170, 200), "zeros", torch.float64, rng),
                  "seeded draws of a large tensor, default mask with zeros")
    # float32 draws are multiples of 2^-24: among 36,000 some are equal. A count ending on
    # such a pair prunes one of the two: topk's choice.
    torch.manual_seed(seeds[2])
    draws = torch.rand_like(z32).reshape(-1)
    ordered = torch.sort(draws, descending=True).values
    tied = torch.nonzero(ordered[1:] == ordered[:-1]).reshape(-1)
    k = int(tied[len(tied) // 2]) + 1
    assert _straddles(draws, k, True)
    _large_single(b, f"large_ru_tied_draws_f32_c{k}", dict(RU(k), seed=seeds[2]), z32,
                  torch.ones(shape), "count ends on two equal draws")
    # Random pruning inside the container on a slice above 32,768 entries.
    shape_ = (210, 200)
    _large_container(b, "large_container_ru_ru_f32", [dict(RU(0.2), seed=seeds[3]),
                                                      dict(RU(0.3), seed=seeds[3] + 1)],
                     torch.zeros(shape_), torch.ones(shape_), False,
                     "step 1 draws rand_like on a slice of 33,600 entries")


def main():
    torch.set_default_dtype(torch.float32)
    b = Builder()
    unstructured_cases(b)
    structured_cases(b)
    identity_and_custom_cases(b)
    container_cases(b)
    large_tensor_cases(b)
    exactness_cases(b)

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
