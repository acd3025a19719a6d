"""Make the pictures of durn's synthetic degradations in docs/data.md (docs/degradations/*.png).

Each picture is one scikit-image photo, clean, then degraded with seeds 0, 1 and 2, shrunk
to tiles (noise and the camera_ ones: a centre crop at full resolution instead, since shrinking averages noise
away). Run from the repository root: ``python scripts/make_degradation_pictures.py``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from durn.data import SyntheticPairs, sample_images

SPECS = {
    "gaussian": ("gaussian:30,50,70", True),   # DuRN-P works on gray images
    "blur": ("blur", False),
    "camera_blur": ("camera_blur", False),
    "camera_noise": ("camera_noise", False),
    "haze": ("haze", False),
    "rain": ("rain", False),
    "raindrop": ("raindrop", False),
}


def montage(photo: Path, spec: str, gray: bool, size: int, seeds=(0, 1, 2)) -> Image.Image:
    tiles = []
    for i, seed in enumerate(seeds):
        item = SyntheticPairs([photo], spec, crop=None, seed=seed, gray=gray)[0]
        if i == 0:
            tiles.append(item["target"])
        tiles.append(item["input"])
    h, w = tiles[0].shape[-2:]
    s = size if spec.startswith(("gaussian", "camera_")) else min(h, w)  # full resolution: noise shows
    top, left = (h - s) // 2, (w - s) // 2
    out = []
    for t in tiles:
        t = t[:, top:top + s, left:left + s].clamp(0, 1)
        if s != size:
            t = torch.nn.functional.interpolate(t[None], size=(size, size), mode="area")[0]
        out.append(t)
    gap = torch.ones(out[0].shape[0], size, 4)
    row = torch.cat([x for t in out for x in (t, gap)][:-1], dim=-1)
    arr = (row * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if gray else arr)
    return img if gray else img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/degradations")
    parser.add_argument("--photo", default="coffee.png", help="a scikit-image photo (default coffee.png)")
    parser.add_argument("--size", type=int, default=128, help="tile size in pixels")
    parser.add_argument("--only", action="append", default=[], choices=sorted(SPECS), help="make only these pictures")
    args = parser.parse_args()
    photos = {p.name: p for p in sample_images("train")}
    if args.photo not in photos:
        raise SystemExit(f"--photo must be one of {sorted(photos)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, (spec, gray) in SPECS.items():
        if args.only and name not in args.only:
            continue
        path = out / f"{name}.png"
        montage(photos[args.photo], spec, gray, args.size).save(path, optimize=True)
        print(f"{path}  {path.stat().st_size / 1024:.1f} KB  ({spec})")


if __name__ == "__main__":
    main()
