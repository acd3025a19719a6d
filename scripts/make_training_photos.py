"""Collect the real photos that install offline into a folder of 8-bit PNGs for
``durn train --degrade ...`` (the recipe of durn's own pretrained weights).

    python scripts/make_training_photos.py PHOTOS        # writes PHOTOS/train, PHOTOS/val

Sources (none is committed; each is read from its installed package):

* scikit-image's ``skimage.data`` photos. ``camera`` and ``astronaut`` are never used:
  they are the held-out images the model cards report on.
* Debian's ``opencv-doc`` sample photos (``apt install opencv-doc``), natural photos only:
  no drawings, logos, renders, near-duplicate stereo pairs or the blurred samples.
* BBC's ``vc2-conformance-data`` (``pip install vc2-conformance-data``): three 4256x2832
  16-bit photos, halved by 2x2 averaging (which also lowers their sensor noise).

Missing sources are skipped with a message. Existing files are left as they are
(nothing is overwritten); ``manifest.json`` lists every photo with its source and hash.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from durn.weights.download import sha256_file

HELD_OUT = ("camera", "astronaut")  # the report images: never trained or validated on

SKIMAGE = ("brick", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "immunohistochemistry",
           "moon", "page", "retina", "rocket", "text")
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV = ("aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png",
          "board.jpg", "box_in_scene.png", "building.jpg", "butterfly.jpg", "ela_original.jpg",
          "fruits.jpg", "graf1.png", "home.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg",
          "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "stuff.jpg", "left01.jpg")
VC2 = ("berries", "kingswood", "trees")
# Validation photos (best.pt is chosen on them), disjoint from the training photos.
VALIDATION = ("opencv-fruits", "skimage-chelsea", "opencv-building")


def skimage_photos():
    try:
        import skimage.data as data
    except ImportError:
        print("scikit-image is not installed: skipping its photos", file=sys.stderr)
        return
    for name in SKIMAGE:
        assert name not in HELD_OUT
        yield f"skimage-{name}", f"skimage.data.{name}", np.asarray(getattr(data, name)())


def opencv_photos():
    if not OPENCV_DIR.is_dir():
        print(f"{OPENCV_DIR} not found (apt install opencv-doc): skipping OpenCV's photos", file=sys.stderr)
        return
    for name in OPENCV:
        path = OPENCV_DIR / name
        with Image.open(path) as im:
            yield f"opencv-{path.stem}", str(path), np.asarray(im.convert("RGB"))


def vc2_photos():
    try:
        import vc2_conformance_data
    except ImportError:
        print("vc2-conformance-data is not installed: skipping its photos", file=sys.stderr)
        return
    root = Path(vc2_conformance_data.__file__).parent
    for name in VC2:
        meta = json.loads((root / f"{name}.json").read_text())["video_parameters"]
        w, h = meta["frame_width"], meta["frame_height"]
        planes = np.fromfile(root / f"{name}.raw", dtype="<u2").reshape(3, h, w)  # G, B, R
        rgb = planes[[2, 0, 1]].astype(np.float64) / meta["luma_excursion"]
        half = rgb[:, : h // 2 * 2, : w // 2 * 2].reshape(3, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        yield f"vc2-{name}", str(root / f"{name}.raw"), np.round(half.transpose(1, 2, 0) * 255).astype(np.uint8)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write train/ and val/ into")
    args = parser.parse_args(argv)
    manifest = []
    for source in (skimage_photos, opencv_photos, vc2_photos):
        for name, origin, pixels in source():
            split = "val" if name in VALIDATION else "train"
            path = args.out / split / f"{name}.png"
            if path.exists():
                print(f"kept existing {path}")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.png")
                Image.fromarray(pixels).save(tmp)
                os.replace(tmp, path)
            digest = sha256_file(path)
            manifest.append({"file": f"{split}/{path.name}", "source": origin, "sha256": digest,
                             "size": list(pixels.shape[:2])})
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    counts = {s: sum(m["file"].startswith(s) for m in manifest) for s in ("train", "val")}
    print(f"{counts['train']} training and {counts['val']} validation photos in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
