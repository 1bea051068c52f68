#!/usr/bin/env python3
"""Benchmark of offline pruning (not a test): a synthetic sharded bf16 checkpoint pruned by the
`tch-prune` binary, against a plain copy of the same files and PyTorch's in-memory route.

    scripts/env.sh python scripts/bench_offline.py WORKDIR [--gib 8] [--torch-gib 1,2]

Needs `target/release/tch-prune` (cargo build --release --features cli) and GNU time. Writes
the checkpoint (shards of 2 GiB of [4096, 11008] / [11008, 4096] / [4096, 4096] bf16 weights,
normal values), times each step under /usr/bin/time (wall seconds, peak RSS), deletes outputs as
it goes (peak disk: about 3x the checkpoint), and prints a Markdown table.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008)]
BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "tch-prune")


def bf16_normal(n, rng):
    x = rng.standard_normal(n, dtype=np.float32) * 0.02
    return (x.view(np.uint32) >> 16).astype(np.uint16)  # truncation to bf16: fine for a benchmark


def write_checkpoint(folder, gib, shard_gib=2.0):
    """A sharded bf16 checkpoint of about `gib` GiB, streamed tensor by tensor."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    target = int(gib * 2**30)
    shards, current, total, i = [], [], 0, 0
    while total < target:
        shape = SHAPES[i % len(SHAPES)]
        size = shape[0] * shape[1] * 2
        if current and sum(s for _, _, s in current) + size > shard_gib * 2**30:
            shards.append(current)
            current = []
        current.append((f"model.layers.{i // 3}.w{i % 3}.weight", shape, size))
        total += size
        i += 1
    shards.append(current)
    weight_map = {}
    for k, shard in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for tname, shape, size in shard:
            header[tname] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + size]}
            off += size
            weight_map[tname] = name
        text = json.dumps(header).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for tname, shape, size in shard:
                f.write(bf16_normal(shape[0] * shape[1], rng).tobytes())
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return total


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def timed(cmd, may_fail=False):
    """(wall seconds, peak RSS MiB, ok) of `cmd` under GNU time."""
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True)
    if out.returncode != 0 and not may_fail:
        sys.exit(f"{cmd} failed:\n{out.stdout}\n{out.stderr}")
    wall, rss_kib = out.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kib) / 1024, out.returncode == 0


def sync():
    subprocess.run(["sync"], check=True)


def torch_route(work, gib):
    """PyTorch: load every shard, global_unstructured over all weights (bf16), save."""
    folder = os.path.join(work, f"torch-{gib}")
    write_checkpoint(folder, gib, shard_gib=min(2.0, gib))
    code = f"""
import glob, os, torch
from safetensors.torch import load_file, save_file
import torch.nn.utils.prune as prune
sd = {{}}
for f in sorted(glob.glob(os.path.join({folder!r}, '*.safetensors'))):
    sd.update(load_file(f))
mods = []
for k, v in sd.items():
    m = torch.nn.Module(); m.weight = torch.nn.Parameter(v, requires_grad=False); mods.append((m, 'weight'))
prune.global_unstructured(mods, pruning_method=prune.L1Unstructured, amount=0.5)
for m, _ in mods: prune.remove(m, 'weight')
save_file({{k: m.weight.data.contiguous() for k, (m, _) in zip(sd, mods)}}, os.path.join({folder!r}, 'out.bin'))
"""
    sync()
    result = timed([sys.executable, "-c", code], may_fail=True)  # killed when out of memory
    shutil.rmtree(folder)
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("work")
    p.add_argument("--gib", type=float, default=8.0)
    p.add_argument("--torch-gib", default="1,2")
    p.add_argument("--reuse", action="store_true", help="use WORK/in if it exists")
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    src = os.path.join(a.work, "in")
    t0 = time.time()
    if a.reuse and os.path.exists(os.path.join(src, "model.safetensors.index.json")):
        size = json.load(open(os.path.join(src, "model.safetensors.index.json")))["metadata"]["total_size"]
    else:
        size = write_checkpoint(src, a.gib)
    print(f"generated {size / 2**30:.2f} GiB in {time.time() - t0:.0f} s", file=sys.stderr)
    rows = []

    def step(label, cmd, out):
        sync()
        wall, rss, _ = timed(cmd)
        sync()
        rows.append((label, wall, rss, du(out) if os.path.exists(out) else 0))
        print(rows[-1], file=sys.stderr)

    # tch-prune fsyncs its outputs before renaming them; the copy is timed with its sync too.
    copy = os.path.join(a.work, "copy")
    step("plain copy (cp -r && sync)", ["sh", "-c", f"cp -r {src} {copy} && sync"], copy)
    shutil.rmtree(copy)
    g = os.path.join(a.work, "global")
    step("global L1 50 %", [BIN, "-q", "prune", src, g, "--method", "l1", "--scope", "global", "--amount", "0.5"], g)
    nm = os.path.join(a.work, "nm")
    step("2:4", [BIN, "-q", "prune", src, nm, "--method", "nm", "--nm", "2:4"], nm)
    shutil.rmtree(nm)
    bm = os.path.join(a.work, "bitmask")
    step("dense -> bitmask (global 50 % output)", [BIN, "-q", "compress", g, bm, "--format", "bitmask"], bm)
    shutil.rmtree(g)
    shutil.rmtree(bm)
    shutil.rmtree(src)
    for gib in [float(x) for x in a.torch_gib.split(",") if x]:
        wall, rss, ok = torch_route(a.work, gib)
        note = "" if ok else " — killed (out of memory)"
        rows.append((f"PyTorch in memory, {gib:g} GiB checkpoint (load, global_unstructured, remove, save){note}", wall, rss, 0))
        print(rows[-1], file=sys.stderr)

    dense = size
    print(f"\nCheckpoint: {size / 1e9:.2f} GB ({size / 2**30:.2f} GiB) bf16, {len(os.listdir(a.work)) if os.path.exists(a.work) else 0} leftover entries\n")
    print("| step | wall (s) | peak RSS (MiB) | output bytes |")
    print("|---|---|---|---|")
    for label, wall, rss, out in rows:
        print(f"| {label} | {wall:.1f} | {rss:.0f} | {out if out else ''} |")
    for label, _, _, out in rows:
        if label.startswith("dense -> bitmask"):
            theory = dense / (dense / 2 * (0.5 * 2 + 1 / 8) / 1)
            print(f"\nbitmask: {out} bytes, dense {dense}: {dense / out:.3f}x smaller (theory without row offsets {theory:.3f}x)")


if __name__ == "__main__":
    main()
