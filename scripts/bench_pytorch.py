"""PyTorch side of the side-by-side benchmark (run by `cargo bench --bench compare_pytorch`).

Usage: python scripts/bench_pytorch.py WORKLOAD REPEATS
Prints one JSON line: {"workload", "median_s", "times_s", "peak_rss_mb", "base_rss_mb"}.
Each workload runs on a fresh BERT-base-shaped set of Linear layers (12 x (4 x 768x768,
768x3072, 3072x768) = 72 weights, 85 M parameters) or, for `lenet`, 100 of the tutorial's LeNets
(built untimed, like the BERT-shaped layers), each taken through the tutorial's pruning sequence.

Memory: `base_rss_mb` is VmRSS once torch is imported and before any model is built;
`peak_rss_mb` is VmHWM at the end (MB = MiB, kB / 1024). Peak - base is what the workload added,
to check the target "peak memory <= 1.25 x (weights + masks)": for the BERT-shaped layers
weights = 12 x (4 x 768*768 + 2 x 768*3072) = 84.9 M f32 parameters = 324 MB, masks (f32, from
`torch.ones_like(weight)`) 324 MB, bound 810 MB. After pruning every weight the layers
legitimately hold orig (`weight_orig`), mask (`weight_mask`) and the effective weight
`orig * mask` that `prune` sets as `module.weight` and the layer computes with: 972 MB.

`forward`: the forward overhead of a pruned layer. nn.Linear(768, 3072) and a 4096 x 768 f32
input; each case timed per call, 20 calls after 3 warm-up calls (x REPEATS, fresh layer each),
the cases interleaved (one call of each per round) so that a drifting load weighs on all three
alike: (a) the unpruned layer(x) (a copy of the pruned layer, same weights); (b) after
prune.l1_unstructured(layer, "weight", 0.4), layer(x) with autograd on (the forward pre-hook
recomputes weight = weight_orig * weight_mask); (c) the same under torch.no_grad() (the hook
still recomputes it). `median_s` is case (b); the line also carries "unpruned_s", "pruned_s",
"pruned_no_grad_s", "overhead_pct" ((b)/(a) - 1) and "no_grad_overhead_pct" ((c)/(a) - 1), in
percent.
"""
import copy
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune


def bert_linears():
    layers = []
    for _ in range(12):
        layers += [nn.Linear(768, 768) for _ in range(4)]
        layers += [nn.Linear(768, 3072), nn.Linear(3072, 768)]
    return layers


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 16 * 5 * 5)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def qkv(layers):
    return [m for i, m in enumerate(layers) if i % 6 < 3]


def lenets():
    return [LeNet() for _ in range(100)]


def lenet_sequence(models):
    for model in models:
        prune.random_unstructured(model.conv1, "weight", amount=0.3)
        prune.l1_unstructured(model.conv1, "bias", amount=3)
        prune.ln_structured(model.conv1, "weight", amount=0.5, n=2, dim=0)
        prune.remove(model.conv1, "weight")
        params = [(model.conv1, "weight"), (model.conv2, "weight"), (model.fc1, "weight"),
                  (model.fc2, "weight"), (model.fc3, "weight")]
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.2)


FWD_IN, FWD_OUT, FWD_ROWS = 768, 3072, 4096
FWD_WARMUP, FWD_ITERS = 3, 20


def forward_setup():
    """An unpruned layer, a pruned copy of it (same weights) and the input."""
    plain = nn.Linear(FWD_IN, FWD_OUT)
    pruned = copy.deepcopy(plain)
    prune.l1_unstructured(pruned, "weight", amount=0.4)
    return plain, pruned, torch.randn(FWD_ROWS, FWD_IN)


def forward_run(state):
    """Times itself: returns {case: [seconds per call]}. The cases are interleaved (each round
    calls each once) so that a drifting load weighs on all three alike; the output is freed
    inside the timed statement, as on the Rust side."""
    plain, pruned, x = state

    def no_grad():
        with torch.no_grad():
            pruned(x)

    cases = {"unpruned_s": lambda: plain(x), "pruned_s": lambda: pruned(x),
             "pruned_no_grad_s": no_grad}
    times = {case: [] for case in cases}
    for round_ in range(FWD_WARMUP + FWD_ITERS):
        for case, f in cases.items():
            start = time.perf_counter()
            f()
            if round_ >= FWD_WARMUP:
                times[case].append(time.perf_counter() - start)
    return times


def workload(name):
    """Returns (setup, run): setup builds fresh state (untimed), run(state) is timed, unless it
    times itself and returns {case: [seconds]} (`forward`)."""
    # The crate's opt-in tie rule has no PyTorch counterpart: PyTorch runs its own algorithm.
    name = {"l1_lowest_index": "l1_unstructured", "global_all_lowest_index": "global_all"}.get(name, name)
    if name == "l1_unstructured":
        def run(ls):
            for m in ls:
                prune.l1_unstructured(m, "weight", amount=0.4)
        return bert_linears, run
    if name == "global_all":
        def run(ls):
            prune.global_unstructured([(m, "weight") for m in ls], prune.L1Unstructured, amount=0.2)
        return bert_linears, run
    if name == "global_qkv":
        def run(ls):
            prune.global_unstructured([(m, "weight") for m in qkv(ls)], prune.L1Unstructured, amount=0.2)
        return bert_linears, run
    if name == "random_unstructured":
        def run(ls):
            for m in ls:
                prune.random_unstructured(m, "weight", amount=0.3)
        return bert_linears, run
    if name == "ln_structured":
        def run(ls):
            for m in ls:
                prune.ln_structured(m, "weight", amount=0.3, n=2, dim=0)
        return bert_linears, run
    if name == "iterative":
        def run(ls):
            for m in ls:
                prune.l1_unstructured(m, "weight", amount=0.2)
                prune.l1_unstructured(m, "weight", amount=0.2)
                prune.ln_structured(m, "weight", amount=0.1, n=1, dim=1)
        return bert_linears, run
    if name == "remove":
        def setup():
            ls = bert_linears()
            for m in ls:
                prune.l1_unstructured(m, "weight", amount=0.4)
            return ls
        def run(ls):
            for m in ls:
                prune.remove(m, "weight")
        return setup, run
    if name == "lenet":
        return lenets, lenet_sequence
    if name == "forward":
        return forward_setup, forward_run
    raise SystemExit(f"unknown workload {name}")


def status_mb(key):
    """A /proc/self/status field in MB (MiB): VmRSS (now) or VmHWM (peak so far)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    name, repeats = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    # torch is imported but nothing is built yet.
    base_rss_mb = status_mb("VmRSS")
    setup, run = workload(name)
    times = []
    cases = {}
    # One untimed warm-up run first (not for `forward`, which warms up itself), as on the Rust
    # side: the first run pays for first-touch page faults on memory the allocator reuses.
    warmup = 0 if name == "forward" else 1
    for rep in range(warmup + repeats):
        state = setup()
        start = time.perf_counter()
        own = run(state)
        elapsed = time.perf_counter() - start
        if rep >= warmup:
            times.append(elapsed)
            for case, ts in (own or {}).items():
                cases.setdefault(case, []).extend(ts)
        del state, own
    out = {"workload": name, "median_s": statistics.median(times), "times_s": times}
    if cases:
        medians = {case: statistics.median(ts) for case, ts in cases.items()}
        a, b, c = medians["unpruned_s"], medians["pruned_s"], medians["pruned_no_grad_s"]
        out.update(medians)
        out.update({"median_s": b, "times_s": cases["pruned_s"],
                    "overhead_pct": (b / a - 1) * 100, "no_grad_overhead_pct": (c / a - 1) * 100,
                    "calls": len(cases["pruned_s"])})
    out.update({"peak_rss_mb": status_mb("VmHWM"), "base_rss_mb": base_rss_mb})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
