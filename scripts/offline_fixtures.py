#!/usr/bin/env python3
"""Fixtures and PyTorch-side checks for offline pruning (tests/offline.rs).

    offline_fixtures.py check-env
    offline_fixtures.py make DIR
        DIR/single.safetensors   f32, bf16, f16, f64 weights (distinct magnitudes), a bias, an int tensor
        DIR/sharded/             three bf16/f32 shards + model.safetensors.index.json
        DIR/norms.safetensors    Wanda scaler_row per 2-D weight (f32, positive)
        DIR/refs.safetensors     reference masks (bool):
            nm24/<name>        torch.ao.pruning.WeightNormSparsifier(sparsity_level=1.0,
                               sparse_block_shape=(1, 4), zeros_per_block=2), on f64 copies
            wanda_row/<name>   locuslab/wanda lib/prune.py, unstructured 50% (stable sort per row)
            wanda_24/<name>    locuslab/wanda lib/prune.py, prune_n=2, prune_m=4
    offline_fixtures.py verify OUT IN MASKS
        Loads OUT and IN with safetensors.torch.load_file (a folder: through its index) and checks
        OUT[n] == IN[n] * MASKS[n] for every mask, OUT[n] == IN[n] bit for bit otherwise, with the
        same names, dtypes and shapes, and the pruning settings in the metadata. Prints "ok".

Exit code 2 when torch or safetensors does not import.
"""
import json
import os
import sys

try:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
except ImportError as e:  # pragma: no cover
    print(f"cannot import torch/safetensors: {e}", file=sys.stderr)
    sys.exit(2)


# Unused bit patterns of positive 16-bit floats, shuffled once: every bf16/f16 magnitude drawn
# is distinct from every other one drawn, across tensors too (no ties in global selections).
POOLS = {}


def distinct_magnitudes(shape, dtype, gen):
    """Values whose magnitudes are all distinct in `dtype` (no ties in the tensor, and none
    across 16-bit tensors)."""
    n = 1
    for d in shape:
        n *= d
    if dtype in (torch.bfloat16, torch.float16):
        if dtype not in POOLS:
            # bf16: ~2e-12 .. ~2e12; f16: ~6e-5 .. ~3e4 (normal numbers, no overflow in products).
            lo, hi = (0x2C00, 0x5400) if dtype == torch.bfloat16 else (0x0400, 0x7800)
            POOLS[dtype] = (lo + torch.randperm(hi - lo, generator=gen)).tolist()
        pool = POOLS[dtype]
        assert len(pool) >= n, (shape, dtype)
        bits, POOLS[dtype] = torch.tensor(pool[:n]), pool[n:]
        vals = bits.to(torch.int16).view(dtype).to(torch.float32)
    else:
        # Draw more than needed, keep distinct magnitudes, in random order.
        vals = (torch.randn(2 * n + 16, generator=gen, dtype=torch.float64) * 2.0).to(dtype).abs()
        vals = vals[vals > 0].unique()
        vals = vals[torch.randperm(vals.numel(), generator=gen)[:n]].to(torch.float64)
        assert vals.numel() == n
    signs = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    return (vals.to(torch.float64) * signs).to(dtype).reshape(shape)


def nm_reference(w):
    from torch.ao.pruning import WeightNormSparsifier
    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(w.to(torch.float64))
    model = torch.nn.Sequential(lin)
    sp = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
    sp.prepare(model, config=[{"tensor_fqn": "0.weight"}])
    sp.step()
    mask = model[0].parametrizations.weight[0].mask.clone()
    return mask.bool()


def wanda_reference(w, scaler_row, prune_n=0, prune_m=0, sparsity_ratio=0.5):
    """lib/prune.py's prune_wanda, for one layer (W_mask True = pruned)."""
    W_metric = torch.abs(w) * torch.sqrt(scaler_row.reshape((1, -1)))
    W_mask = torch.zeros_like(W_metric) == 1
    if prune_n != 0:
        for ii in range(W_metric.shape[1]):
            if ii % prune_m == 0:
                tmp = W_metric[:, ii:(ii + prune_m)].float()
                W_mask.scatter_(1, ii + torch.topk(tmp, prune_n, dim=1, largest=False)[1], True)
    else:
        sort_res = torch.sort(W_metric, dim=-1, stable=True)
        indices = sort_res[1][:, :int(W_metric.shape[1] * sparsity_ratio)]
        W_mask.scatter_(1, indices, True)
    return ~W_mask  # kept


def make(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    single = {
        "a.weight": distinct_magnitudes((64, 48), torch.float32, gen),
        "b.weight": distinct_magnitudes((32, 64), torch.bfloat16, gen),
        "c.weight": distinct_magnitudes((16, 32), torch.float16, gen),
        "d.weight": distinct_magnitudes((8, 16), torch.float64, gen),
        "big.weight": distinct_magnitudes((256, 160), torch.float32, gen),
        "a.bias": distinct_magnitudes((64,), torch.float32, gen),
        "ids": torch.arange(10, dtype=torch.int64),
    }
    save_file(single, os.path.join(out_dir, "single.safetensors"), metadata={"format": "pt"})

    sharded_dir = os.path.join(out_dir, "sharded")
    os.makedirs(sharded_dir, exist_ok=True)
    shards = [
        {"layers.0.q.weight": distinct_magnitudes((32, 64), torch.bfloat16, gen),
         "layers.0.norm.weight": distinct_magnitudes((64,), torch.bfloat16, gen)},
        {"layers.1.q.weight": distinct_magnitudes((24, 64), torch.bfloat16, gen),
         "layers.1.up.weight": distinct_magnitudes((32, 48), torch.bfloat16, gen)},
        {"lm_head.weight": distinct_magnitudes((24, 64), torch.bfloat16, gen),
         "step": torch.tensor([7], dtype=torch.int32)},
    ]
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, os.path.join(sharded_dir, name), metadata={"format": "pt"})
        for k, v in shard.items():
            weight_map[k] = name
            total += v.numel() * v.element_size()
    with open(os.path.join(sharded_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    norms, refs = {}, {}
    for name, w in list(single.items()) + [kv for s in shards for kv in s.items()]:
        if w.dim() != 2:
            continue
        norms[name] = (torch.rand(w.shape[1], generator=gen, dtype=torch.float32) * 4.0 + 0.01)
        refs[f"nm24/{name}"] = nm_reference(w)
        if w.dtype != torch.float64:
            refs[f"wanda_row/{name}"] = wanda_reference(w, norms[name])
            refs[f"wanda_24/{name}"] = wanda_reference(w, norms[name], prune_n=2, prune_m=4)
    save_file(norms, os.path.join(out_dir, "norms.safetensors"))
    save_file({k: v.contiguous() for k, v in refs.items()}, os.path.join(out_dir, "refs.safetensors"))
    print("ok")


def load_all(path):
    """Tensors and per-file metadata of a file or a sharded folder (through its index)."""
    if os.path.isdir(path):
        with open(os.path.join(path, "model.safetensors.index.json")) as f:
            index = json.load(f)
        tensors, metas = {}, []
        for file in sorted(set(index["weight_map"].values())):
            full = os.path.join(path, file)
            loaded = load_file(full)
            for k in loaded:
                assert index["weight_map"][k] == file, (k, file)
            tensors.update(loaded)
            with safe_open(full, "pt") as f:
                metas.append(f.metadata())
        return tensors, metas
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    return load_file(path), [meta]


def verify(out, inp, masks_path):
    out_t, out_meta = load_all(out)
    in_t, _ = load_all(inp)
    masks = load_file(masks_path)
    assert sorted(out_t) == sorted(in_t), (sorted(out_t), sorted(in_t))
    for name, x in in_t.items():
        y = out_t[name]
        assert y.dtype == x.dtype and y.shape == x.shape, (name, y.dtype, x.dtype, y.shape, x.shape)
        if name in masks:
            expected = x * masks[name].to(x.dtype)
            assert torch.equal(y, expected), f"{name}: output != input * mask"
            # Pruned entries are +0.0 exactly.
            pruned = masks[name] == 0
            assert (y[pruned].view(-1).abs().eq(0)).all() and not torch.signbit(y[pruned]).any(), name
        else:
            assert torch.equal(y.view(torch.uint8) if y.dim() else y, x.view(torch.uint8) if x.dim() else x), name
    for meta in out_meta:
        assert meta is not None and "tch_prune" in meta, meta
        json.loads(meta["tch_prune"])
    print("ok")


def main(argv):
    if argv[:1] == ["check-env"]:
        print(f"torch {torch.__version__}")
    elif argv[:1] == ["make"] and len(argv) == 2:
        make(argv[1])
    elif argv[:1] == ["verify"] and len(argv) == 4:
        verify(*argv[1:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
