"""Before/after pictures of a network on real degraded photos that install offline (no
ground truth: pictures only, linked from the model cards).

    python scripts/real_photo_pictures.py --network durn_u --weights durn_u.photos_camera_blur \\
        --out docs/real/durn_u_opencv_blur.png

durn_u: the three really blurred photos of Debian's ``opencv-doc`` examples
(``text_motion.jpg``, ``text_defocus.jpg``, ``licenseplate_motion.jpg``), which durn's
training photos leave out. Each row is one photo: as taken, then restored; both shrunk
alike to ``--height`` where larger.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
REAL_PHOTOS = {
    "durn_u": [OPENCV_DIR / n for n in ("text_motion.jpg", "text_defocus.jpg", "licenseplate_motion.jpg")],
}


def restore_photo(model, path: Path) -> tuple[Image.Image, Image.Image]:
    from durn.evaluate import restore_tensor
    from durn.restoration.convert import array_to_chw, chw_to_array

    with Image.open(path) as im:
        rgb = im.convert("RGB")
    x, scale = array_to_chw(np.asarray(rgb))
    with torch.inference_mode():
        y = restore_tensor(model, x, "cpu")
    return rgb, Image.fromarray(chw_to_array(y, np.uint8, scale, two_d=False))


def montage(rows: list[tuple[Image.Image, Image.Image]], height: int, gap: int = 6) -> Image.Image:
    scaled = []
    for before, after in rows:
        s = min(1.0, height / before.height)
        size = (round(before.width * s), round(before.height * s))
        scaled.append((before.resize(size, Image.LANCZOS), after.resize(size, Image.LANCZOS)))
    width = max(2 * b.width + gap for b, _ in scaled)
    total = sum(b.height for b, _ in scaled) + gap * (len(scaled) - 1)
    canvas = Image.new("RGB", (width, total), "white")
    top = 0
    for before, after in scaled:
        canvas.paste(before, (0, top))
        canvas.paste(after, (before.width + gap, top))
        top += before.height + gap
    return canvas


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="durn_u", choices=sorted(REAL_PHOTOS))
    parser.add_argument("--weights", default="default", help="anything weights= accepts (default: the released default)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write (not overwritten unless --overwrite)")
    parser.add_argument("--height", type=int, default=300, help="height of each row in pixels (default 300)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} exists; give --overwrite to replace it")
    photos = REAL_PHOTOS[args.network]
    missing = [p for p in photos if not p.is_file()]
    if missing:
        parser.error(f"not found: {', '.join(map(str, missing))} (apt install opencv-doc)")

    import durn
    from durn.atomic import atomic_write

    model = durn.get_model(args.network, weights=args.weights).eval()
    picture = montage([restore_photo(model, p) for p in photos], args.height)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda f: picture.save(f, format="PNG", optimize=True))
    print(f"wrote {args.out} ({', '.join(p.name for p in photos)}: as taken | {args.network} {args.weights})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
