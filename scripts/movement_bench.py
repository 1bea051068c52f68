"""The reference's per-step mask refresh on BERT-base-sized scores (benches/movement.rs).

Scores: torch.manual_seed(0), then torch.randn per tensor, in the order of the 72 Linear weights
of a BERT-base encoder (12 x (4 x 768x768, 3072x768, 768x3072)); the Rust side draws the same.
Local: emmental's TopKBinarizer.forward on every tensor (sort, then scatter). Global:
masked_run_squad.py --global_topk (cat, kthvalue, then S > thr per tensor).

Usage: movement_bench.py REPEATS KEPT_FRACTION
Prints `local <median seconds> <kept>` and `global <median seconds> <kept>`.
"""
import statistics
import sys
import time

import torch


def topk_mask(inputs, threshold):
    mask = inputs.clone()
    _, idx = inputs.flatten().sort(descending=True)
    j = int(threshold * inputs.numel())
    flat_out = mask.flatten()
    flat_out[idx[j:]] = 0
    flat_out[idx[:j]] = 1
    return mask


def global_masks(scores, t):
    allscores = torch.cat([s.flatten() for s in scores])
    n = allscores.numel()
    kth = max(n - (int(n * t) + 1), 1)
    thr = allscores.kthvalue(kth).values
    return [(s > thr).type(s.type()) for s in scores]


def main(repeats, t):
    torch.manual_seed(0)
    shapes = []
    for _ in range(12):
        shapes += [(768, 768)] * 4 + [(3072, 768), (768, 3072)]
    scores = [torch.randn(*s) for s in shapes]
    with torch.no_grad():
        for name, fn in (("local", lambda: [topk_mask(s, t) for s in scores]),
                         ("global", lambda: global_masks(scores, t))):
            fn()
            times, kept = [], 0
            for _ in range(repeats):
                start = time.perf_counter()
                masks = fn()
                times.append(time.perf_counter() - start)
                kept = int(sum(m.sum().item() for m in masks))
            print(f"{name} {statistics.median(times):.6f} {kept}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
