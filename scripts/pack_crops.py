"""Pack training crops of the offline photos into a folder small enough to travel to the
lent GPU machine (whose working tree, crops included, may hold 64 MiB at most).

    python scripts/make_training_photos.py PHOTOS        # PHOTOS/train, PHOTOS/val
    python scripts/pack_crops.py PHOTOS crops --crop 256 # crops/train, crops/val, crops/manifest.json

Training photos are cut into a grid of non-overlapping ``--crop`` squares (at a random
offset per photo), and the squares are written in a random order, as 8-bit PNGs, until the
next one would pass the size budget; when every square fits, further rounds (``--rounds``,
default 3) add each photo's grid again at a new random offset (overlapping the first, never
repeating a box). Offsets and order depend only on ``--seed``, so the same photos, settings
and seed give the same bytes. Photos smaller than the crop are
skipped (and listed). The validation photos stay apart, in ``val/``: whole, or their
centre ``--val-crop`` square; they are written first and count towards the budget.

``--budget-mib auto`` (the default) is what the device tool leaves for the crops: 64 MiB
less the files of this checkout that travel anyway (tracked and untracked, not ignored)
and 1 MiB of slack, at most 60 MiB. The budget covers every file written, the manifest too.

Unless ``--no-vendor``, the pure-Python packages durn trains with that the GPU machine's
image lacks (pytorch_msssim, for the SSIM losses) are copied from this environment into
``vendor/`` (with their licence); ``scripts/gpu_recipe.py`` puts that folder on the path.

``manifest.json`` lists every file with its source photo (and that photo's origin, from
the photos folder's manifest), its box (left, top, right, bottom) and SHA-256. Images that
must never be trained on are refused: scikit-image's camera and astronaut (the report
images), scikit-learn's and matplotlib's sample images, scipy's face, and Debian's
plasma-workspace wallpapers. The output folder is replaced as a whole (``--overwrite``)
or not at all.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

FORMAT = "durn-crops"
VERSION = 1
MIB = 2**20
DEVICE_TREE_LIMIT = 64 * MIB  # what the device tool sends at most: the working tree and carried paths
AUTO_BUDGET_CAP = 60 * MIB
SLACK = 1 * MIB
VENDORED = ("pytorch_msssim",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# (why, pattern) matched against "<file stem> <origin>" in lower case. The stem patterns
# catch the well-known sample images by name even when their origin is unknown.
FORBIDDEN = (
    ("scikit-image's camera / astronaut are the held-out report images",
     re.compile(r"(?<![a-z])(camera|astronaut)(?![a-z])")),
    ("scikit-learn's sample images are not used",
     re.compile(r"sklearn|scikit[-_]learn|(?<![a-z])(china|flower)(?![a-z])")),
    ("matplotlib's sample images are not used", re.compile(r"matplotlib|mpl-data|grace_hopper")),
    ("scipy's face (and other scipy.datasets images) are not used",
     re.compile(r"scipy|(?<![a-z])(face|raccoon|ascent)(?![a-z])")),
    ("Debian's plasma-workspace-wallpapers are not used", re.compile(r"plasma-workspace|/usr/share/wallpapers")),
)


class PackError(Exception):
    pass


def forbidden_reason(stem: str, origin: str) -> str | None:
    label = f"{stem} {origin}".lower()
    for why, pattern in FORBIDDEN:
        if pattern.search(label):
            return why
    return None


def list_photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def photo_origins(photos_dir: Path) -> dict[str, str]:
    """``"train/x.png" -> origin`` from the manifest make_training_photos.py writes (if any)."""
    path = photos_dir / "manifest.json"
    if not path.is_file():
        return {}
    try:
        return {e["file"]: str(e.get("source", "")) for e in json.loads(path.read_text())}
    except (ValueError, TypeError, KeyError) as err:
        raise PackError(f"{path} is not a photos manifest (a list of {{file, source}}): {err}") from None


def read_photo(path: Path) -> np.ndarray:
    """8-bit pixels, (H, W) gray or (H, W, 3) RGB, as the photo holds them."""
    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                scale = 65535.0 if arr.max() > 255 else 255.0
                return np.clip(arr / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            return np.array(im)
    except OSError as err:
        raise PackError(f"cannot read {path}: {err}") from None


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def grid_boxes(h: int, w: int, crop: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """Non-overlapping crop x crop boxes (left, top, right, bottom) tiling the photo from a
    random offset."""
    ny, nx = h // crop, w // crop
    if ny == 0 or nx == 0:
        return []
    oy = int(rng.integers(0, h - ny * crop + 1))
    ox = int(rng.integers(0, w - nx * crop + 1))
    return [(ox + j * crop, oy + i * crop, ox + (j + 1) * crop, oy + (i + 1) * crop)
            for i in range(ny) for j in range(nx)]


def travel_bytes(folder: Path, exclude: Path) -> int | None:
    """Bytes of the files the device tool sends from the git checkout holding ``folder``
    (tracked and untracked-not-ignored), leaving out ``exclude``; None outside a checkout."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    try:
        root = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=probe, capture_output=True,
                              text=True, check=True).stdout.strip()
        listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                 cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    exclude = exclude.resolve()
    total = 0
    for name in listing.decode("utf-8", "surrogateescape").split("\0"):
        if not name:
            continue
        path = Path(root, name)
        if path.is_file() and not path.is_symlink() and exclude not in path.resolve().parents:
            total += path.stat().st_size
    return total


def resolve_budget(spec: str, out_dir: Path) -> tuple[int, str]:
    travel = travel_bytes(out_dir.resolve().parent, out_dir)
    if spec != "auto":
        try:
            budget = int(float(spec) * MIB)
        except ValueError:
            raise PackError(f"--budget-mib must be a number of MiB or 'auto', got {spec!r}") from None
        if budget <= 0:
            raise PackError(f"--budget-mib must be positive, got {spec}")
        note = f"budget {budget / MIB:.2f} MiB"
        if travel is not None and travel + budget > DEVICE_TREE_LIMIT:
            note += (f"; WARNING: with the {travel / MIB:.1f} MiB this checkout sends anyway that passes the "
                     f"device tool's {DEVICE_TREE_LIMIT // MIB} MiB (use --budget-mib auto)")
        return budget, note
    if travel is None:
        return AUTO_BUDGET_CAP, f"budget {AUTO_BUDGET_CAP // MIB} MiB (auto; {out_dir} is not in a git checkout)"
    budget = min(AUTO_BUDGET_CAP, DEVICE_TREE_LIMIT - travel - SLACK)
    if budget < 2 * MIB:
        raise PackError(f"the checkout already sends {travel / MIB:.1f} MiB of the device tool's "
                        f"{DEVICE_TREE_LIMIT // MIB} MiB: no room for crops")
    return budget, (f"budget {budget / MIB:.1f} MiB (auto: {DEVICE_TREE_LIMIT // MIB} MiB less the "
                    f"{travel / MIB:.1f} MiB this checkout sends and {SLACK // MIB} MiB slack)")


def vendor_files(names=VENDORED) -> list[tuple[str, bytes]]:
    """(relative path under vendor/, bytes) of each package's Python files and licence."""
    out = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise PackError(f"{name} is not installed here, so it cannot be bundled for the GPU machine "
                            f"(pip install {name.replace('_', '-')}, or pass --no-vendor)")
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            out.append((f"vendor/{name}/{path.relative_to(root).as_posix()}", path.read_bytes()))
        for info in sorted(root.parent.glob(f"{name.replace('_', '[-_]')}-*.dist-info")):
            for lic in sorted(info.glob("LICEN[CS]E*")):
                out.append((f"vendor/{name}/{lic.name}", lic.read_bytes()))
    return out


class Packer:
    """Files written into a staging folder, each counted against the budget together with
    its line in the manifest."""

    def __init__(self, folder: Path, budget: int, header: int):
        self.folder, self.budget = folder, budget
        self.entries: dict[str, list[dict]] = {"vendor": [], "crops": []}
        self.bytes = 0
        self.reserve = header  # the manifest's bytes so far

    def add(self, rel: str, data: bytes, info: dict, *, group: str = "crops") -> bool:
        """Write ``data`` to ``rel`` if it fits in the budget (else nothing, and False)."""
        entry = {"file": rel, **info, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        line = len(json.dumps(entry, indent=1)) + 8
        if self.bytes + len(data) + self.reserve + line > self.budget:
            return False
        path = self.folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.bytes += len(data)
        self.reserve += line
        self.entries[group].append(entry)
        return True


def pack(photos_dir: Path, out_dir: Path, *, crop: int, budget: int, seed: int = 0, val_crop: int = 0,
         rounds: int = 3, vendor: bool = True, overwrite: bool = False) -> dict:
    """Write the crops folder (see the module docstring); returns its manifest."""
    if crop < 16:
        raise PackError(f"--crop must be at least 16, got {crop}")
    if rounds < 1:
        raise PackError(f"--rounds must be at least 1, got {rounds}")
    train_dir, val_dir = photos_dir / "train", photos_dir / "val"
    if not train_dir.is_dir():
        raise PackError(f"{train_dir} not found: PHOTOS_DIR must hold train/ (and val/), as "
                        "scripts/make_training_photos.py writes them")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        if not overwrite:
            raise PackError(f"{out_dir} exists and is not empty (pass --overwrite to replace it)")
        if not (out_dir / "manifest.json").is_file() or _format_of(out_dir / "manifest.json") != FORMAT:
            raise PackError(f"{out_dir} is not a crops folder (no {FORMAT} manifest.json): not replacing it")
    origins = photo_origins(photos_dir)
    splits = {"train": list_photos(train_dir), "val": list_photos(val_dir) if val_dir.is_dir() else []}
    if not splits["train"]:
        raise PackError(f"no photos in {train_dir}")
    for split, paths in splits.items():
        for p in paths:
            origin = origins.get(f"{split}/{p.name}", "")
            if p.is_symlink():
                origin += f" {p.resolve()}"
            why = forbidden_reason(p.stem, origin)
            if why:
                raise PackError(f"refusing {p}: {why}")

    rng = np.random.default_rng(seed)
    sizes, skipped = {}, []
    for p in splits["train"]:
        with Image.open(p) as im:
            w, h = im.size
        if min(h, w) < crop:
            skipped.append({"photo": f"train/{p.name}", "why": f"{w}x{h} is smaller than the {crop}x{crop} crop"})
        else:
            sizes[p] = (h, w)
    # Round r: every photo's grid at a fresh random offset, in a random order. Later rounds
    # (overlapping the earlier ones, never repeating a box) only where the budget allows.
    tiles, seen = [], set()
    for _ in range(rounds):
        grid = [(p, box) for p, (h, w) in sizes.items() for box in grid_boxes(h, w, crop, rng)]
        for i in rng.permutation(len(grid)) if grid else []:
            if grid[i] not in seen:
                seen.add(grid[i])
                tiles.append(grid[i])
    manifest = {
        "format": FORMAT, "version": VERSION, "photos": os.fspath(photos_dir), "seed": seed, "crop": crop,
        "rounds": rounds, "val_crop": val_crop, "budget_bytes": budget, "files_bytes": 0,
        "tiles_available": len(tiles), "train_crops": 0, "val_photos": len(splits["val"]), "skipped": skipped,
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        packer = Packer(stage, budget, header=len(json.dumps(manifest, indent=1)) + 256)
        if vendor:
            for rel, data in vendor_files():
                if not packer.add(rel, data, {}, group="vendor"):
                    raise PackError(f"the budget ({budget} bytes) is too small even for {rel}")
        for p in splits["val"]:
            pixels = read_photo(p)
            h, w = pixels.shape[:2]
            box = (0, 0, w, h)
            if val_crop and min(h, w) > val_crop:
                top, left = (h - val_crop) // 2, (w - val_crop) // 2
                box = (left, top, left + val_crop, top + val_crop)
            data = encode_png(pixels[box[1]:box[3], box[0]:box[2]])
            info = {"split": "val", "photo": f"val/{p.name}", "origin": origins.get(f"val/{p.name}"), "box": list(box)}
            if not packer.add(f"val/{p.stem}.png", data, info):
                raise PackError(f"the budget ({budget} bytes) is too small for the validation photos")
        cache = {}
        for p, box in tiles:
            if p not in cache:
                cache[p] = read_photo(p)
            data = encode_png(cache[p][box[1]:box[3], box[0]:box[2]])
            info = {"split": "train", "photo": f"train/{p.name}", "origin": origins.get(f"train/{p.name}"),
                    "box": list(box)}
            if not packer.add(f"train/{p.stem}-x{box[0]}-y{box[1]}.png", data, info):
                break
        crops = packer.entries["crops"]
        manifest.update(files_bytes=packer.bytes, train_crops=sum(e["split"] == "train" for e in crops),
                        vendor=packer.entries["vendor"], crops=crops)
        if manifest["train_crops"] == 0:
            raise PackError(f"no training crop fits the budget of {budget} bytes")
        text = (json.dumps(manifest, indent=1) + "\n").encode()
        if packer.bytes + len(text) > budget:
            raise PackError(f"internal error: the manifest ({len(text)} bytes) passes the budget")
        (stage / "manifest.json").write_bytes(text)
        _replace_folder(stage, out_dir)
        return manifest
    finally:
        if stage.exists():
            shutil.rmtree(stage)


def _format_of(path: Path):
    try:
        return json.loads(path.read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return None


def _replace_folder(stage: Path, out_dir: Path) -> None:
    """``stage`` becomes ``out_dir``; an old ``out_dir`` is removed only once it is aside."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    os.replace(stage, out_dir)
    if old is not None:
        shutil.rmtree(old)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", type=Path, help="folder holding train/ and val/ (scripts/make_training_photos.py)")
    parser.add_argument("out", type=Path, help="the crops folder to write")
    parser.add_argument("--crop", type=int, default=256, help="side of the square training crops (default 256)")
    parser.add_argument("--budget-mib", default="auto", help="size budget in MiB for everything written (default auto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-crop", type=int, default=0, metavar="C",
                        help="keep the centre CxC of each validation photo (default 0: whole photos)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="grids per photo, each at a new random offset, while the budget lasts (default 3)")
    parser.add_argument("--no-vendor", dest="vendor", action="store_false",
                        help="do not bundle pytorch_msssim into vendor/")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing crops folder")
    args = parser.parse_args(argv)
    try:
        budget, note = resolve_budget(args.budget_mib, args.out)
        print(f"pack_crops: {note}")
        m = pack(args.photos, args.out, crop=args.crop, budget=budget, seed=args.seed, val_crop=args.val_crop,
                 rounds=args.rounds, vendor=args.vendor, overwrite=args.overwrite)
    except PackError as err:
        print(f"pack_crops: {err}", file=sys.stderr)
        return 2
    total = m["files_bytes"] + (args.out / "manifest.json").stat().st_size
    for s in m["skipped"]:
        print(f"pack_crops: skipped {s['photo']}: {s['why']}")
    print(f"pack_crops: {m['train_crops']} of {m['tiles_available']} training crops ({args.crop}x{args.crop}) and "
          f"{m['val_photos']} validation photos, {total / MIB:.2f} MiB, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
