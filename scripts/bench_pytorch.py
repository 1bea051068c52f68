"""PyTorch side of the side-by-side benchmark (run by `cargo bench --bench compare_pytorch`).

Usage: python scripts/bench_pytorch.py WORKLOAD REPEATS
Prints one JSON line: {"workload", "median_s", "times_s", "peak_rss_mb"}.
Each workload runs on a fresh BERT-base-shaped set of Linear layers (12 x (4 x 768x768,
768x3072, 3072x768) = 72 weights, 85 M parameters) or, for `lenet`, 100 of the tutorial's LeNets (built untimed, like the
BERT-shaped layers), each taken through the tutorial's pruning sequence.
"""
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


def workload(name):
    """Returns (setup, run): setup builds fresh state (untimed), run(state) is timed."""
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
    raise SystemExit(f"unknown workload {name}")


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    name, repeats = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    setup, run = workload(name)
    times = []
    for _ in range(repeats):
        state = setup()
        start = time.perf_counter()
        run(state)
        times.append(time.perf_counter() - start)
        del state
    print(json.dumps({"workload": name, "median_s": statistics.median(times), "times_s": times,
                      "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
