"""PyTorch's side of `benches/kernels.rs`: the same masks and the same pruned forward, timed with
`torch.nn.utils.prune` itself, on a CUDA device (or the CPU), for a table against tch-prune's
criterion numbers from the same machine.

Usage: python3 scripts/bench_masks_pytorch.py [--device cuda|cpu] [--repeats N] [--max-size 1e8]

The cases mirror the criterion groups of `benches/kernels.rs`, on the same shapes
(`[n / 1000, 1000]` f32 from `randn`, a ones default mask):

* `l1`: `prune.L1Unstructured(0.4).compute_mask(t, ones)`; `l1/topk`: the `topk` +
  `index_fill_` inside it, alone; `l1/kthvalue`: a `kthvalue` threshold and one comparison;
* `random`: `prune.RandomUnstructured(0.3).compute_mask(t, ones)`;
* `ln_structured`: `prune.LnStructured(0.3, n=2, dim=0).compute_mask(t, ones)`;
* `forward_linear_768x3072_rows4096`: `nn.Linear(768, 3072)` on a 4096 x 768 input, unpruned,
  after `prune.l1_unstructured(layer, "weight", 0.4)` with autograd on, and under `no_grad`.

Each case runs 3 untimed calls, then REPEATS timed calls (default 10, like criterion's
`sample_size(10)` there); on CUDA every call is followed by `torch.cuda.synchronize()` inside the
timed region, as the Rust side waits for the device after every call. Prints one line per case
(median and minimum in milliseconds, and elements per second for the masks), then the same rows
as JSON lines prefixed with `json: `.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

SIZES = [(10_000, "1e4"), (100_000, "1e5"), (1_000_000, "1e6"), (10_000_000, "1e7"),
         (100_000_000, "1e8")]


def timed(fn, device, repeats):
    """Median and minimum seconds of `repeats` calls of `fn` after 3 untimed ones."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def mask_cases(t, ones):
    """The mask computations of one size, by name (as in benches/kernels.rs)."""
    n = t.numel()
    k = round(0.4 * n)  # Python's round is half-to-even, like the Rust side's round_ties_even.

    def topk():
        mask = ones.clone()
        _, idx = t.abs().reshape(-1).topk(k, largest=False)
        mask.view(-1).index_fill_(0, idx, 0)
        return mask

    def kthvalue():
        scores = t.abs().reshape(-1)
        threshold, _ = scores.kthvalue(k)
        return (scores > threshold).float().reshape(t.shape)

    return [
        ("l1", lambda: prune.L1Unstructured(0.4).compute_mask(t, ones)),
        ("l1/topk", topk),
        ("l1/kthvalue", kthvalue),
        ("random", lambda: prune.RandomUnstructured(0.3).compute_mask(t, ones)),
        ("ln_structured", lambda: prune.LnStructured(0.3, n=2, dim=0).compute_mask(t, ones)),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (device 0) or cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--max-size", default="1e8", choices=[label for _, label in SIZES])
    args = parser.parse_args()

    device = torch.device("cuda:0" if args.device == "cuda" else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_masks_pytorch: --device cuda, but torch sees no CUDA device")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {device} ({name}), {args.repeats} timed calls a case")

    rows = []
    for n, label in SIZES:
        t = torch.randn(n // 1000, 1000, device=device)
        ones = torch.ones_like(t)
        for case, fn in mask_cases(t, ones):
            median, best = timed(fn, device, args.repeats)
            rows.append({"case": case, "size": label, "median_ms": median * 1e3,
                         "min_ms": best * 1e3, "elements_per_s": n / median})
        del t, ones
        if label == args.max_size:
            break

    torch.manual_seed(0)
    x = torch.randn(4096, 768, device=device)
    unpruned = nn.Linear(768, 3072).to(device)
    pruned = nn.Linear(768, 3072).to(device)
    pruned.load_state_dict(unpruned.state_dict())
    prune.l1_unstructured(pruned, "weight", 0.4)

    def no_grad_forward():
        with torch.no_grad():
            return pruned(x)

    for case, fn in [("unpruned", lambda: unpruned(x)), ("pruned_train", lambda: pruned(x)),
                     ("pruned_eval_no_grad", no_grad_forward)]:
        median, best = timed(fn, device, 20)
        rows.append({"case": f"forward_linear_768x3072_rows4096/{case}", "size": "-",
                     "median_ms": median * 1e3, "min_ms": best * 1e3})

    print(f"{'case':<52} {'size':>5} {'median ms':>11} {'min ms':>11} {'Gelem/s':>9}")
    for row in rows:
        rate = f"{row['elements_per_s'] / 1e9:9.3f}" if "elements_per_s" in row else f"{'-':>9}"
        print(f"{row['case']:<52} {row['size']:>5} {row['median_ms']:11.3f} {row['min_ms']:11.3f} "
              f"{rate}")
    for row in rows:
        print("json: " + json.dumps({"device": str(device), "device_name": name,
                                     "torch": torch.__version__, **row}))


if __name__ == "__main__":
    main()
