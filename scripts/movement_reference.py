"""Reference values for movement pruning (tests/movement.rs).

The binarizers, the L0 gate, the regularisers and `schedule_threshold` below are written from
the reference implementation (huggingface/transformers
examples/research_projects/movement-pruning: emmental/modules/binarizer.py,
emmental/modules/masked_nn.py, masked_run_squad.py), with its sort-based masks and custom
autograd Functions, run on the pinned torch. The L0 training noise replaces
`uniform_()` with the crate's splitmix64 stream (tch_prune::movement::noise_value), reproduced
here in numpy, so both sides draw the same `u`.

Usage: movement_reference.py OUT_DIR
Writes OUT_DIR/movement.safetensors and prints "movement: ok".
"""
import sys

import numpy as np
import torch
from safetensors.torch import save_file


class TopKBinarizer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, threshold):
        mask = inputs.clone()
        _, idx = inputs.flatten().sort(descending=True)
        j = int(threshold * inputs.numel())
        flat_out = mask.flatten()
        flat_out[idx[j:]] = 0
        flat_out[idx[:j]] = 1
        return mask

    @staticmethod
    def backward(ctx, gradOutput):
        return gradOutput, None


class ThresholdBinarizer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, threshold, sigmoid):
        nb_elems = inputs.numel()
        nb_min = int(0.005 * nb_elems) + 1
        if sigmoid:
            mask = (torch.sigmoid(inputs) > threshold).type(inputs.type())
        else:
            mask = (inputs > threshold).type(inputs.type())
        if mask.sum() < nb_min:
            k_threshold = inputs.flatten().kthvalue(max(nb_elems - nb_min, 1)).values
            mask = (inputs > k_threshold).type(inputs.type())
        return mask

    @staticmethod
    def backward(ctx, gradOutput):
        return gradOutput, None, None


class MagnitudeBinarizer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, threshold):
        mask = inputs.clone()
        _, idx = inputs.abs().flatten().sort(descending=True)
        j = int(threshold * inputs.numel())
        flat_out = mask.flatten()
        flat_out[idx[j:]] = 0
        flat_out[idx[:j]] = 1
        return mask

    @staticmethod
    def backward(ctx, gradOutput):
        return gradOutput, None


def l0_gate(scores, u):
    l, r, b = -0.1, 1.1, 2 / 3
    if u is not None:
        s = torch.sigmoid((u.log() - (1 - u).log() + scores) / b)
    else:
        s = torch.sigmoid(scores)
    s_bar = s * (r - l) + l
    return s_bar.clamp(min=0.0, max=1.0)


def global_topk_masks(scores, t):
    """masked_run_squad.py --global_topk: a threshold on the concatenation."""
    allscores = torch.cat([s.flatten() for s in scores])
    n = allscores.numel()
    if t >= 1.0:
        thr = -100.0
    else:
        kth = max(n - (int(n * t) + 1), 1)
        thr = allscores.kthvalue(kth).values
    return [(s > thr).type(s.type()) for s in scores]


def schedule_threshold(step, total_step, warmup_steps, initial_threshold, final_threshold,
                       initial_warmup, final_warmup, final_lambda):
    if step <= initial_warmup * warmup_steps:
        threshold = initial_threshold
    elif step > (total_step - final_warmup * warmup_steps):
        threshold = final_threshold
    else:
        spars_warmup_steps = initial_warmup * warmup_steps
        spars_schedu_steps = (final_warmup + initial_warmup) * warmup_steps
        mul_coeff = 1 - (step - spars_warmup_steps) / (total_step - spars_schedu_steps)
        threshold = final_threshold + (initial_threshold - final_threshold) * (mul_coeff**3)
    regu_lambda = final_lambda * threshold / final_threshold
    return threshold, regu_lambda


def regularization(scores, mode):
    regu, counter = 0, 0
    for param in scores:
        if mode == "l1":
            regu += torch.norm(torch.sigmoid(param), p=1) / param.numel()
        elif mode == "l0":
            regu += torch.sigmoid(param - 2 / 3 * np.log(0.1 / 1.1)).sum() / param.numel()
        counter += 1
    return regu / counter


M64 = (1 << 64) - 1


def noise(seed, start, n):
    """tch_prune::movement::noise_value(seed, start..start+n)."""
    with np.errstate(over="ignore"):
        i = np.arange(start + 1, start + n + 1, dtype=np.uint64)
        z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    bits = (z >> np.uint64(40)).astype(np.float32)
    return torch.from_numpy(bits * np.float32(1.0 / (1 << 24)))


def main(out_dir):
    torch.manual_seed(0)
    out = {}
    # Two layers: a small one (sort fallback in Rust) and a large one (selection kernels).
    shapes = {"a": (12, 20), "b": (256, 256)}
    x = {k: torch.randn(7, s[1]) for k, s in shapes.items()}
    g = {k: torch.randn(7, s[0]) for k, s in shapes.items()}
    for k, s in shapes.items():
        out[f"{k}.weight"] = torch.randn(*s)
        out[f"{k}.scores"] = torch.randn(*s)
        out[f"{k}.x"] = x[k]
        out[f"{k}.g"] = g[k]

    def grads(k, mask_fn, with_scores=True):
        w = out[f"{k}.weight"].clone().requires_grad_(True)
        sc = out[f"{k}.scores"].clone().requires_grad_(True)
        mask = mask_fn(w, sc)
        y = torch.nn.functional.linear(x[k], mask * w)
        (y * g[k]).sum().backward()
        res = {"mask": mask.detach(), "gw": w.grad}
        if with_scores:
            res["gs"] = sc.grad
        return res

    for k in shapes:
        for t in (0.5, 0.1, 0.03):
            r = grads(k, lambda w, s: TopKBinarizer.apply(s, t))
            for name, v in r.items():
                out[f"topk.{t}.{k}.{name}"] = v
            r = grads(k, lambda w, s: MagnitudeBinarizer.apply(w, t), with_scores=False)
            for name, v in r.items():
                out[f"magnitude.{t}.{k}.{name}"] = v
        for tau in (0.3, 0.999):
            r = grads(k, lambda w, s: ThresholdBinarizer.apply(s, tau, True))
            for name, v in r.items():
                out[f"soft.{tau}.{k}.{name}"] = v
        r = grads(k, lambda w, s: l0_gate(s, None))
        for name, v in r.items():
            out[f"l0eval.{k}.{name}"] = v
    # L0 in training: one forward, parameters in order a, b, noise stream seed 5.
    start = 0
    for k, s in shapes.items():
        n = s[0] * s[1]
        u = noise(5, start, n).reshape(s).clamp(0.0001, 0.9999)
        start += n
        r = grads(k, lambda w, sc: l0_gate(sc, u))
        for name, v in r.items():
            out[f"l0train.{k}.{name}"] = v
    for t in (0.5, 0.1, 0.03, 1.0):
        masks = global_topk_masks([out["a.scores"], out["b.scores"]], t)
        out[f"global.{t}.a.mask"], out[f"global.{t}.b.mask"] = masks
    scores = [out["a.scores"], out["b.scores"]]
    out["regu.l1"] = regularization(scores, "l1").reshape(1)
    out["regu.l0"] = regularization(scores, "l0").reshape(1)
    # The README's schedules, scaled: (initial, final, warmup, total, iw, fw, lambda).
    for i, (ti, tf, w, total, iw, fw, lam) in enumerate(
        [(1.0, 0.15, 54, 1000, 1, 2, 0.0), (0.0, 0.1, 30, 777, 1, 2, 400.0), (1.0, 0.03, 7, 100, 2, 3, 1.0)]
    ):
        seq = [schedule_threshold(step, total, w, ti, tf, iw, fw, lam) for step in range(-2, total + 5)]
        out[f"schedule.{i}.threshold"] = torch.tensor([s[0] for s in seq], dtype=torch.float64)
        out[f"schedule.{i}.lambda"] = torch.tensor([s[1] for s in seq], dtype=torch.float64)
    save_file({k: v.contiguous() for k, v in out.items()}, f"{out_dir}/movement.safetensors")
    print("movement: ok")


if __name__ == "__main__":
    main(sys.argv[1])
