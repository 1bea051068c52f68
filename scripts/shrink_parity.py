"""The PyTorch side of tests/shrink_pytorch.rs: a model shrunk in Rust, rebuilt in PyTorch from
its manifest, loads the shrunk safetensors strictly and computes the same output.

    python scripts/shrink_parity.py DIR

DIR holds `manifest.json` (tch_prune::ShrinkManifest), `model.safetensors` (the shrunk
VarStore, saved with `vs.save`) and `io.safetensors` (`input` and the Rust `output`). The
model is `SmallNet` of the test, with its widths taken from the manifest's groups (what a
config file would hold): `stream` (stem and residual block), `inner` (the block's first
conv), `head` (the strided conv before the flatten) and `ffn` (fc1's width). Prints the
largest absolute difference; exits 1 when it exceeds 1e-5 (relative to the output's scale) or
the checkpoint does not load strictly, 2 when torch or safetensors does not import.
"""

import json
import sys

try:
    import torch
    import torch.nn as nn
    from safetensors.torch import load_file
except ImportError as err:  # pragma: no cover - environment problem
    print(f"cannot import torch/safetensors: {err}", file=sys.stderr)
    sys.exit(2)


class SmallNet(nn.Module):
    """stem conv+bn -> residual block (conv_a+bn_a, relu, conv_b+bn_b, add, relu) ->
    conv_c (stride 2) + bn_c + relu -> flatten -> fc1 -> relu -> fc2, on 8x8 inputs."""

    def __init__(self, stream, inner, head, ffn, classes=5, positions=16):
        super().__init__()
        self.stem = nn.Conv2d(3, stream, 3, 1, 1, bias=False)
        self.bn_stem = nn.BatchNorm2d(stream)
        self.conv_a = nn.Conv2d(stream, inner, 3, 1, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(inner)
        self.conv_b = nn.Conv2d(inner, stream, 3, 1, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(stream)
        self.conv_c = nn.Conv2d(stream, head, 3, 2, 1)
        self.bn_c = nn.BatchNorm2d(head)
        self.fc1 = nn.Linear(head * positions, ffn)
        self.fc2 = nn.Linear(ffn, classes)

    def forward(self, x):
        s = torch.relu(self.bn_stem(self.stem(x)))
        y = self.bn_b(self.conv_b(torch.relu(self.bn_a(self.conv_a(s)))))
        s = torch.relu(s + y)
        h = torch.relu(self.bn_c(self.conv_c(s))).flatten(1)
        return self.fc2(torch.relu(self.fc1(h)))


def main():
    folder = sys.argv[1]
    with open(f"{folder}/manifest.json") as f:
        manifest = json.load(f)
    widths = {name: g["after"] for name, g in manifest["groups"].items()}
    model = SmallNet(widths["stream"], widths["inner"], widths["head"], widths["ffn"]).eval()
    state = load_file(f"{folder}/model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    # tch's BatchNorm has no `num_batches_tracked` buffer; everything else must match.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        print(f"checkpoint mismatch: missing {missing}, unexpected {unexpected}")
        sys.exit(1)
    io = load_file(f"{folder}/io.safetensors")
    with torch.no_grad():
        out = model(io["input"])
    diff = (out - io["output"]).abs().max().item()
    scale = max(io["output"].abs().max().item(), 1e-12)
    print(f"max_abs_diff {diff:.3e} scale {scale:.3e} widths {widths}")
    sys.exit(0 if diff <= 1e-5 * scale else 1)


if __name__ == "__main__":
    main()
