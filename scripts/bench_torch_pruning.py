"""The Torch-Pruning side of benches/shrink_vs_torch_pruning.rs.

Builds torchvision's ResNet-18 (defined here, same modules, names and shapes as
`torchvision.models.resnet18`, randomly initialised; torchvision is not needed), prunes it
with Torch-Pruning's `BasePruner` and `GroupMagnitudeImportance(p=2)` at the given channel
ratio (fc ignored), and prints one JSON object: parameters and MACs before and after
(`tp.utils.count_ops_and_params`, and convolution + Linear MACs counted as tch-prune does), the time to build the dependency graph and prune, and the
CPU latency (the fastest of `runs` forwards after one warm-up: on a shared machine the least
disturbed) of the dense and the pruned model at batch 1 and 32, interleaved. The time to prune
is the fastest over `repeats` fresh models.

Installs `torch-pruning` into the running interpreter's environment with pip when it is
missing.

    python scripts/bench_torch_pruning.py --ratio 0.5 --global --round-to 8 --size 224 --runs 5 \
        [--weights resnet18.safetensors]

`--weights` loads the tch model's weights (same names), so both sides rank the same numbers.
"""

import argparse
import importlib
import json
import subprocess
import sys
import time

import torch
import torch.nn as nn


def ensure_torch_pruning():
    try:
        return importlib.import_module("torch_pruning")
    except ImportError:
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "torch-pruning"]
        )
        return importlib.import_module("torch_pruning")


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(skip + y)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [64, 128, 256, 512]
        c_in = 64
        for s, c in enumerate(widths):
            stride = 1 if s == 0 else 2
            setattr(self, f"layer{s + 1}", nn.Sequential(BasicBlock(c_in, c, stride), BasicBlock(c, c, 1)))
            c_in = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_fc_macs(model, example):
    """MACs of convolutions and Linear layers only (weight.numel() times output positions per
    sample), the count `tch_prune::ModelStats` reports, for a like-for-like comparison."""
    total = [0]

    def hook(module, _inputs, output):
        positions = output[0].numel() // output.shape[1]
        total[0] += module.weight.numel() * positions

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(example[:1])
    for h in handles:
        h.remove()
    return total[0]


def latencies(dense, pruned, batch, size, runs):
    """The fastest latencies of the dense and the pruned model, their runs interleaved so that
    load from other processes weighs on both alike (one warm-up each)."""
    x = torch.randn(batch, 3, size, size)
    times = ([], [])
    with torch.no_grad():
        dense(x)
        pruned(x)
        for _ in range(runs):
            for i, model in enumerate((dense, pruned)):
                start = time.perf_counter()
                model(x)
                times[i].append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--global", dest="global_pruning", action="store_true")
    parser.add_argument("--round-to", type=int, default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="prune runs (fresh models); the fastest is reported")
    parser.add_argument("--weights", default=None, help="safetensors of the same ResNet-18 (tch's VarStore)")
    args = parser.parse_args()
    tp = ensure_torch_pruning()

    def fresh():
        torch.manual_seed(0)
        model = ResNet18().eval()
        if args.weights:
            from safetensors.torch import load_file

            missing, unexpected = model.load_state_dict(load_file(args.weights), strict=False)
            missing = [k for k in missing if not k.endswith("num_batches_tracked")]
            if missing or unexpected:
                sys.exit(f"weights do not match: missing {missing}, unexpected {unexpected}")
        return model

    example = torch.randn(1, 3, args.size, args.size)
    dense = fresh()
    macs0, params0 = tp.utils.count_ops_and_params(dense, example)
    conv_fc0 = conv_fc_macs(dense, example)
    prune_times = []
    for _ in range(args.repeats):
        model = fresh()
        start = time.perf_counter()
        pruner = tp.pruner.BasePruner(
            model,
            example,
            importance=tp.importance.GroupMagnitudeImportance(p=2),
            pruning_ratio=args.ratio,
            global_pruning=args.global_pruning,
            round_to=args.round_to,
            ignored_layers=[model.fc],
        )
        pruner.step()
        prune_times.append(time.perf_counter() - start)
    macs1, params1 = tp.utils.count_ops_and_params(model, example)
    conv_fc1 = conv_fc_macs(model, example)
    b1 = latencies(dense, model, 1, args.size, args.runs)
    b32 = latencies(dense, model, 32, args.size, args.runs)
    out = {
        "torch_pruning": getattr(tp, "__version__", "?"),
        "torch": torch.__version__,
        "params_before": params0,
        "params_after": params1,
        "macs_before": macs0,
        "macs_after": macs1,
        "conv_fc_macs_before": conv_fc0,
        "conv_fc_macs_after": conv_fc1,
        "prune_s": min(prune_times),
        "widths": [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)],
        "dense_latency_b1_s": b1[0],
        "latency_b1_s": b1[1],
        "dense_latency_b32_s": b32[0],
        "latency_b32_s": b32[1],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
