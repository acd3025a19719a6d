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

* Debian's ``mate-backgrounds`` (GPL-2+), ``lomiri-wallpapers-16.04`` and
  ``lomiri-wallpapers-20.04`` (CC-BY-4.0 / CC-BY-SA-4.0, the photographers named in the
  file names): 25 photographs (``apt install mate-backgrounds lomiri-wallpapers-16.04
  lomiri-wallpapers-20.04``), no renders or graphics. Two MATE photos are left out on
  purpose: ``Storm.jpg`` is motion-blurred and ``RainDrops.jpg`` is covered in water drops,
  which would teach the deblurring and raindrop networks to keep them. Photos with a short
  side of 2,000 pixels or more are shrunk by 2x2 (or 3x3) averaging, which also averages
  away most of their JPEG artefacts and sensor noise.

``--sources`` picks which to read (default: all of them). The weights released before the
wallpapers were added were trained on ``--sources skimage,opencv,vc2`` (35 training
photos); the validation photos are the same either way. Missing sources are skipped with a message. Existing files are left as they are
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
BACKGROUNDS_DIR = Path("/usr/share/backgrounds")
WALLPAPERS = (  # (package, path under BACKGROUNDS_DIR)
    *(("mate-backgrounds", f"mate/nature/{n}.jpg") for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "TwoWings", "Wood",
        "YellowFlower")),
    *(("lomiri-wallpapers-16.04", f"{n}.jpg") for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "analogpattern_by_Peter_Nerlich",
        "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
        "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi")),
    ("lomiri-wallpapers-20.04", "Kleiber_by_Lukas_Baubkus.jpg"),
)
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


def shrink(pixels: np.ndarray, short_side: int = 2000) -> np.ndarray:
    """Average f x f blocks, f = short side // 1000 once it reaches ``short_side`` (else as is)."""
    f = min(pixels.shape[:2]) // 1000 if min(pixels.shape[:2]) >= short_side else 1
    if f == 1:
        return pixels
    h, w = pixels.shape[0] // f * f, pixels.shape[1] // f * f
    blocks = pixels[:h, :w].astype(np.float64).reshape(h // f, f, w // f, f, -1).mean(axis=(1, 3))
    return np.round(blocks).astype(np.uint8)


def wallpaper_photos():
    missing = sorted({pkg for pkg, rel in WALLPAPERS if not (BACKGROUNDS_DIR / rel).is_file()})
    if missing:
        print(f"{', '.join(missing)} not installed (apt install {' '.join(missing)}): skipping its photos",
              file=sys.stderr)
    for package, rel in WALLPAPERS:
        path = BACKGROUNDS_DIR / rel
        if path.is_file():
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("RGB"))
            stem = path.stem.split("_by_")[0]
            yield f"{package.split('-')[0]}-{stem}", str(path), shrink(pixels)


SOURCES = {"skimage": skimage_photos, "opencv": opencv_photos, "vc2": vc2_photos, "wallpapers": wallpaper_photos}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write train/ and val/ into")
    parser.add_argument("--sources", default=",".join(SOURCES),
                        help=f"comma-separated, from {', '.join(SOURCES)} (default: all)")
    args = parser.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        parser.error(f"--sources takes a comma-separated list from {', '.join(SOURCES)}, got {args.sources!r}")
    manifest = []
    for source in (SOURCES[s] for s in sources):
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
