"""Load a DuRN through torch.hub from this clone and run it on a real photograph.

    python examples/hub_restore.py --network durn_p --sigma 50 -o restored.png   # released weights
    python examples/hub_restore.py --network durn_us --weights authors --image hazy.jpg

Without ``--weights`` the network's released weights are loaded (``pretrained=True``);
``--weights authors`` needs ``durn import-authors`` first; ``--weights untrained`` gives
durn's seeded random weights (the pipeline working, not a restoration).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def sample_image(gray: bool) -> np.ndarray:
    from skimage import data

    return data.camera() if gray else data.chelsea()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="durn_p", help="durn_p, durn_p_real, durn_u, durn_us, durn_s, durn_s_p")
    parser.add_argument("--weights", help="'authors', 'untrained', a released entry, or a checkpoint file "
                                          "(default: the released weights)")
    parser.add_argument("--image", help="input image (default: a photograph from scikit-image's data)")
    parser.add_argument("--sigma", type=float, help="add Gaussian noise of this sigma (0-255 scale) first")
    parser.add_argument("-o", "--output", default="restored.png")
    args = parser.parse_args()

    model = torch.hub.load(str(REPO), args.network, source="local", pretrained=args.weights is None,
                           weights=args.weights).eval()
    gray = model.in_channels == 1
    if args.image:
        img = np.asarray(Image.open(args.image).convert("L" if gray else "RGB"))
    else:
        img = sample_image(gray)
    clean = torch.from_numpy(img).float().div(255)
    clean = clean[None] if gray else clean.permute(2, 0, 1)
    x = clean
    if args.sigma:
        g = torch.Generator().manual_seed(0)
        x = clean + args.sigma / 255 * torch.randn(clean.shape, generator=g)
    if model.channel_order == "BGR":
        x = x.flip(0)
    with torch.no_grad():
        y = model(x)
    if model.channel_order == "BGR":
        y = y.flip(0)
    y = y.clamp(0, 1)
    out = (y * 255).round().byte()
    out = out[0].numpy() if gray else out.permute(1, 2, 0).numpy()
    out_path = Path(args.output)
    if out_path.exists():
        raise SystemExit(f"{out_path} exists; choose another --output (nothing was overwritten)")
    Image.fromarray(out).save(out_path)
    weights = {None: "released (pretrained=True)", "untrained": "random (NOT a restoration)"}.get(args.weights, args.weights)
    print(f"{args.network} from {REPO} via torch.hub; weights: {weights}")
    print(f"input {tuple(x.shape)} -> {out_path}")
    if args.sigma:
        mse = lambda a: float(((a.clamp(0, 1) - clean) ** 2).mean())  # noqa: E731
        psnr = lambda a: 10 * np.log10(1 / mse(a))  # noqa: E731
        print(f"PSNR noisy {psnr(x if model.channel_order != 'BGR' else x.flip(0)):.2f} dB, output {psnr(y):.2f} dB")


if __name__ == "__main__":
    main()
