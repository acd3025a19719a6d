"""Adapters for the datasets of the DuRN paper, in the folder layouts their publishers
distribute (and the layout of the DuRN authors' ``data/`` folder where it differs).

``paper_dataset(name, root, split=...)`` finds the files under ``root`` and returns a
dataset of ``{"input", "target", "name"}`` items (see :class:`durn.data.PairDataset`).
A missing folder or an unmatched file raises an error that names what is missing and
shows the layout expected. ``PAPER_DATASETS`` lists the names with their layouts.

Rules taken from the authors' loaders and test scripts (``authors_geometry=True``, the
default): GoPro images resized to 640 x 360 (training and test), the Car dataset to
360 x 360 at test time, RainDrop test images cropped to a multiple of 4 (top-left kept).
Where a RESIDE clear image is larger than its hazy one by an even margin (the published
indoor sets pair 640 x 480 clear images with 620 x 460 hazy ones), the clear image is
centre-cropped to the hazy one's size. Datasets with several degraded versions of one
clean image (RESIDE ITS: 10 hazy, DDN: 14 rainy, DID-MDN: 3 rain densities) yield one item
per clean image when training, the version drawn anew each epoch (as the authors' loaders
do), and every version when testing.
"""
from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .base import PairDatasetBase
from .crops import STREAM_DEGRADE, STREAM_VARIANT, item_generator
from .degradations import add_gaussian_noise
from .images import is_image_file, read_image, resize_bilinear_uint8, to_tensor

__all__ = ["PAPER_DATASETS", "PaperDatasetInfo", "paper_dataset", "AUTHORS_NOISE_SEED"]

#: The fixed seed of the authors' Gaussian-noise test inputs (their ``AddGaussianNoise``):
#: the CPU generator is reset to it for every test image.
AUTHORS_NOISE_SEED = 8526081014239199321


@dataclass(frozen=True)
class PaperDatasetInfo:
    name: str
    title: str
    network: str
    splits: tuple
    layout: str
    flip: bool = False  # random horizontal flips in the authors' training recipe


PAPER_DATASETS: dict[str, PaperDatasetInfo] = {}


def _register(name, title, network, splits, layout, flip=False):
    PAPER_DATASETS[name] = PaperDatasetInfo(name, title, network, tuple(splits), layout.strip("\n"), flip)


_register("bsd_gray", "BSD gray (Berkeley Segmentation Dataset, BSDS500)", "durn_p", ("train", "test"), """
  ROOT/train/*.jpg  ROOT/val/*.jpg  ROOT/test/*.jpg     (BSDS500's BSR/BSDS500/data/images;
                                                       ROOT may also be the BSR folder)
  or the DuRN authors' ROOT/train_and_val/  ROOT/test/
  train = train + val (300 images), test = test (BSD200); colour images are read as gray""")
_register("polyu", "PolyU real-world noisy images (Xu et al. 2018)", "durn_p_real", ("train", "test"), """
  ROOT/OriginalImages/<camera>_<scene>_mean.JPG + <camera>_<scene>_Real.JPG   (train)
  ROOT/CroppedImages/<camera>_<scene>_<k>_mean.PNG + ..._<k>_real.PNG          (test)
  (the DuRN authors' test1/ is accepted for CroppedImages/); training uses the originals
  of scenes that have no test crops""")
_register("gopro", "GoPro (Nah et al. 2017, GOPRO_Large)", "durn_u", ("train", "test"), """
  ROOT/train/<sequence>/blur/*.png  ROOT/train/<sequence>/sharp/*.png
  ROOT/test/<sequence>/blur/*.png   ROOT/test/<sequence>/sharp/*.png""")
_register("car", "Car dataset (blurred / sharp pairs)", "durn_u", ("test",), """
  ROOT/blurred/<name>  ROOT/sharp/<name>   (same file names)""")
_register("reside_its", "RESIDE ITS, indoor training set (Li et al. 2018)", "durn_us", ("train",), """
  ROOT/hazy/<id>_<k>_<beta>.png  ROOT/clear/<id>.png
  (or the DuRN authors' ROOT/images/<id>_<k>.png  ROOT/labels/<id>.png)""")
_register("reside_sots", "RESIDE SOTS indoor (Li et al. 2018)", "durn_us", ("test",), """
  ROOT/hazy/<id>_<k>.png  ROOT/gt/<id>.png     (SOTS/indoor; ROOT may also be SOTS)
  (or the DuRN authors' ROOT/images/  ROOT/labels/)""")
_register("dcpdn", "DCPDN synthetic haze (Zhang and Patel 2018), .h5 files", "durn_us", ("train", "test"), """
  ROOT/training/*.h5 (or train512/, train/)   ROOT/TestA/*.h5 (or testA/, test/)
  each file holding datasets 'haze' and 'gt' (H x W x 3 floats in [0, 1]); needs h5py""")
_register("raindrop_train", "RainDrop training set (Qian et al. 2018)", "durn_s_p", ("train",), """
  ROOT/train/data/<n>_rain.png  ROOT/train/gt/<n>_clean.png""")
_register("raindrop_test_a", "RainDrop test_a (Qian et al. 2018)", "durn_s_p", ("test",), """
  ROOT/test_a/data/<n>_rain.png  ROOT/test_a/gt/<n>_clean.png""")
_register("raindrop_test_b", "RainDrop test_b (Qian et al. 2018)", "durn_s_p", ("test",), """
  ROOT/test_b/data/<n>_rain.jpg  ROOT/test_b/gt/<n>_clean.jpg""")
_register("didmdn", "DID-MDN rain streaks (Zhang and Patel 2018)", "durn_s", ("train", "test"), """
  ROOT/Rain_Heavy/train2018new/*.jpg  ROOT/Rain_Medium/train2018new/*.jpg
  ROOT/Rain_Light/train2018new/*.jpg                              (train; ROOT may hold
                                                                  DID-MDN-training/)
  ROOT/test/*.jpg  (or DID-MDN-test/, testing/)                    (test)
  each file is rainy (left half) and clean (right half) side by side""", flip=True)
_register("ddn", "DDN rain streaks (Fu et al. 2017)", "durn_s", ("train", "test"), """
  ROOT/training/rainy_image/<id>_<k>.jpg  ROOT/training/ground_truth/<id>.jpg
  ROOT/testing/rainy_image/<id>_<k>.jpg   ROOT/testing/ground_truth/<id>.jpg
  (train/ and test/ also accepted; or one flat ROOT/rainy_image + ROOT/ground_truth, or the
  DuRN authors' ROOT/rain_image + ROOT/label, with list_file= naming the ids of the split)""", flip=True)


# ----------------------------------------------------------------------------- errors
def _not_found(name: str, root: Path, missing: list[str]) -> FileNotFoundError:
    info = PAPER_DATASETS[name]
    listed = "\n".join(f"  - {m}" for m in missing[:12])
    more = f"\n  ... and {len(missing) - 12} more" if len(missing) > 12 else ""
    return FileNotFoundError(
        f"{info.title} ({name!r}) not found under {root}. Missing:\n{listed}{more}\n"
        f"Expected layout:\n{info.layout}"
    )


def _first_dir(root: Path, candidates) -> Path | None:
    for c in candidates:
        p = root / c
        if p.is_dir():
            return p
    return None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith("."))


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _read_list(list_file) -> set[str] | None:
    if list_file is None:
        return None
    path = Path(list_file)
    if not path.is_file():
        raise FileNotFoundError(f"list file not found: {path}")
    names = {line.strip() for line in path.read_text().splitlines() if line.strip()}
    if not names:
        raise ValueError(f"list file {path} names no images")
    return names


def _in_list(names: set[str] | None, *candidates: str) -> bool:
    if names is None:
        return True
    return any(c in names or Path(c).stem in names for c in candidates)


# ----------------------------------------------------------------------------- dataset
class PaperPairs(PairDatasetBase):
    """Items built from ``groups``: (name, [sources]) where each source is loaded by
    ``loader(source, gray) -> (input, target)`` as uint8 or float numpy arrays. One source
    per group, or (training) several versions of which one is drawn per epoch."""

    def __init__(self, dataset_name, groups, loader, *, resize=None, align=None, float_data=False,
                 crop=None, seed=0, flip=False, gray=False, centre_crop_target=False):
        super().__init__(crop=crop, seed=seed, flip=flip, gray=gray and float_data)
        self.dataset_name = dataset_name
        self.groups = groups
        self.loader = loader
        self.resize = resize
        self.align = align
        self.float_data = float_data
        self.read_gray = bool(gray) and not float_data
        self.centre_crop_target = centre_crop_target

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.groups]

    def load(self, index):
        name, sources = self.groups[index]
        if len(sources) == 1:
            source = sources[0]
        else:
            g = item_generator(self.seed, index, self.epoch, STREAM_VARIANT)
            source = sources[int(torch.randint(len(sources), (1,), generator=g))]
        inp, tgt = self.loader(source, self.read_gray)
        if self.centre_crop_target and all(t >= i and (t - i) % 2 == 0 for t, i in zip(tgt.shape[:2], inp.shape[:2])):
            dy, dx = (tgt.shape[0] - inp.shape[0]) // 2, (tgt.shape[1] - inp.shape[1]) // 2
            tgt = tgt[dy:dy + inp.shape[0], dx:dx + inp.shape[1]]
        if inp.shape[:2] != tgt.shape[:2]:
            raise ValueError(f"{self.dataset_name} {name}: input {inp.shape[:2]} and target {tgt.shape[:2]} differ in size")
        if self.resize is not None:
            inp, tgt = resize_bilinear_uint8(inp, self.resize), resize_bilinear_uint8(tgt, self.resize)
        if self.align:
            k = self.align
            h, w = (inp.shape[0] // k) * k, (inp.shape[1] // k) * k
            inp, tgt = inp[:h, :w], tgt[:h, :w]
        return to_tensor(inp), to_tensor(tgt), name


class BSDGray(PaperPairs):
    """Clean gray BSD images. ``sigma``: the noise level(s) on the 0..255 scale, not clipped.
    Test split: the authors' noise (a fixed seed reset for every image). Training split: a
    sigma drawn from the list and fresh noise per item and epoch; ``None`` gives the clean
    image as input (the recipe's loop adds fresh noise itself, see ``add_gaussian_noise``)."""

    def __init__(self, *args, sigma=None, authors_noise=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.sigma = sigma
        self.authors_noise = authors_noise

    def load(self, index):
        clean, target, name = super().load(index)
        if self.sigma is None:
            return clean, target, name
        sigmas = [self.sigma] if isinstance(self.sigma, (int, float)) else list(self.sigma)
        if len(sigmas) == 1 and self.authors_noise:
            return target + authors_gaussian_noise(target.shape, sigmas[0]), target, name
        g = item_generator(self.seed, index, self.epoch, STREAM_DEGRADE)
        return add_gaussian_noise(target, sigmas, g), target, name


def authors_gaussian_noise(shape, sigma: float) -> torch.Tensor:
    """The authors' Gaussian test noise for one gray image: a CPU generator seeded with
    ``AUTHORS_NOISE_SEED``, a float32 normal(0, sigma) tensor of shape (3, H, W) (they read
    gray images as RGB), its first channel, divided by 255. Same seed and shape as their
    script; whether torch still draws the same numbers as their torch 0.3.1 is unverified."""
    _, h, w = shape
    g = torch.Generator().manual_seed(AUTHORS_NOISE_SEED)
    noise = torch.empty(3, h, w, dtype=torch.float32).normal_(0.0, float(sigma), generator=g)
    return (noise[0:1] / 255.0).expand(shape[0], h, w).clone()


def _read_pair(paths, gray):
    inp_path, tgt_path = paths
    return read_image(inp_path, gray=gray), read_image(tgt_path, gray=gray)


def _read_clean(path, gray):
    img = read_image(path, gray=gray)
    return img, img


def _read_side_by_side(path, gray):
    img = read_image(path, gray=gray)
    half = img.shape[1] // 2
    return np.ascontiguousarray(img[:, :half]), np.ascontiguousarray(img[:, half:2 * half])


def _read_h5(path, gray):
    try:
        import h5py
    except ImportError as err:
        raise ImportError("reading DCPDN's .h5 files needs h5py: pip install h5py") from err
    with h5py.File(path, "r") as f:
        missing = [k for k in ("haze", "gt") if k not in f]
        if missing:
            raise ValueError(f"{path}: no dataset {missing} in the .h5 file (found {sorted(f.keys())})")
        haze, gt = (np.asarray(f[k], dtype=np.float32) for k in ("haze", "gt"))
    out = []
    for arr in (haze, gt):
        if arr.ndim != 3 or 3 not in (arr.shape[0], arr.shape[-1]):
            raise ValueError(f"{path}: expected H x W x 3 arrays, got {arr.shape}")
        if arr.shape[-1] != 3:
            arr = arr.transpose(1, 2, 0)
        if arr.max() > 1 or arr.min() < 0:
            raise ValueError(f"{path}: DCPDN data outside [0, 1] (min {arr.min()}, max {arr.max()})")
        out.append(np.ascontiguousarray(arr))
    return out[0], out[1]


# ----------------------------------------------------------------------------- finders
def _bsd(root, split, list_names):
    bases = [root, root / "BSR" / "BSDS500" / "data" / "images", root / "BSDS500" / "data" / "images",
             root / "data" / "images"]
    for base in bases:
        if split == "test" and (base / "test").is_dir():
            folders = [base / "test"]
            break
        if split == "train":
            if (base / "train_and_val").is_dir():
                folders = [base / "train_and_val"]
                break
            if (base / "train").is_dir() and (base / "val").is_dir():
                folders = [base / "train", base / "val"]
                break
    else:
        raise _not_found("bsd_gray", root, ["test/" if split == "test" else "train/ and val/ (or train_and_val/)"])
    paths = [p for f in folders for p in _images(f) if _in_list(list_names, p.name)]
    return [(p.name if len(folders) == 1 else f"{p.parent.name}/{p.name}", [p]) for p in paths]


def _case_map(folder: Path) -> dict[str, Path]:
    return {p.name.lower(): p for p in _images(folder)}


def _polyu(root, split, list_names):
    originals = _first_dir(root, ["OriginalImages"])
    crops = _first_dir(root, ["CroppedImages", "test1"])
    if crops is None or (split == "train" and originals is None):
        missing = (["OriginalImages/"] if split == "train" and originals is None else []) + \
                  (["CroppedImages/ (or test1/)"] if crops is None else [])
        raise _not_found("polyu", root, missing)
    crop_files = _case_map(crops)
    test_scenes = {re.sub(r"_\d+_mean\.png$", "", n) for n in crop_files if n.endswith("_mean.png")}
    groups, missing = [], []
    if split == "test":
        for lname, path in sorted(crop_files.items()):
            if not lname.endswith("_mean.png") or not _in_list(list_names, path.name):
                continue
            noisy = crop_files.get(lname[: -len("_mean.png")] + "_real.png")
            if noisy is None:
                missing.append(f"{crops.name}/{path.name[:-len('_mean.PNG')]}_real.PNG")
                continue
            groups.append((path.name, [(noisy, path)]))
    else:
        orig_files = _case_map(originals)
        for lname, path in sorted(orig_files.items()):
            if not lname.endswith("_mean.jpg") or not _in_list(list_names, path.name):
                continue
            scene = lname[: -len("_mean.jpg")]
            if scene in test_scenes:
                continue
            noisy = orig_files.get(scene + "_real.jpg")
            if noisy is None:
                missing.append(f"OriginalImages/{path.name[:-len('_mean.JPG')]}_Real.JPG")
                continue
            groups.append((path.name, [(noisy, path)]))
    if missing:
        raise _not_found("polyu", root, missing)
    return groups


def _gopro(root, split, list_names):
    base = _first_dir(root, [split, f"GOPRO_Large/{split}"])
    if base is None:
        raise _not_found("gopro", root, [f"{split}/"])
    seqs = sorted(d for d in base.iterdir() if d.is_dir())
    groups, missing = [], []
    for seq in seqs:
        if not (seq / "blur").is_dir() or not (seq / "sharp").is_dir():
            missing.append(f"{split}/{seq.name}/blur/ and {split}/{seq.name}/sharp/")
            continue
        for blur in _images(seq / "blur"):
            name = f"{seq.name}/{blur.name}"
            if not _in_list(list_names, name, blur.name):
                continue
            sharp = seq / "sharp" / blur.name
            if not sharp.is_file():
                missing.append(f"{split}/{seq.name}/sharp/{blur.name}")
                continue
            groups.append((name, [(blur, sharp)]))
    if not seqs:
        missing.append(f"{split}/<sequence>/blur/ and sharp/ (no sequence folders in {base})")
    if missing:
        raise _not_found("gopro", root, missing)
    return groups


def _named_pairs(name, root, inp_dirs, tgt_dirs, list_names):
    inp_dir, tgt_dir = _first_dir(root, inp_dirs), _first_dir(root, tgt_dirs)
    if inp_dir is None or tgt_dir is None:
        missing = ([" or ".join(f"{d}/" for d in inp_dirs)] if inp_dir is None else []) + \
                  ([" or ".join(f"{d}/" for d in tgt_dirs)] if tgt_dir is None else [])
        raise _not_found(name, root, missing)
    groups, missing = [], []
    for p in _images(inp_dir):
        if not _in_list(list_names, p.name):
            continue
        t = tgt_dir / p.name
        if not t.is_file():
            missing.append(f"{tgt_dir.name}/{p.name}")
            continue
        groups.append((p.name, [(p, t)]))
    if missing:
        raise _not_found(name, root, missing)
    return groups


def _versions_by_id(name, root, inp_dirs, tgt_dirs, split, list_names):
    """Degraded files named <id>_<anything> matched to clean <id>.<ext>."""
    inp_dir, tgt_dir = _first_dir(root, inp_dirs), _first_dir(root, tgt_dirs)
    if inp_dir is None or tgt_dir is None:
        missing = ([" or ".join(f"{d}/" for d in inp_dirs)] if inp_dir is None else []) + \
                  ([" or ".join(f"{d}/" for d in tgt_dirs)] if tgt_dir is None else [])
        raise _not_found(name, root, missing)
    clean = {p.stem: p for p in _images(tgt_dir)}
    versions = defaultdict(list)
    missing = []
    for p in sorted(_images(inp_dir), key=lambda q: _natural_key(q.name)):
        cid = p.stem.split("_")[0]
        if cid not in clean:
            missing.append(f"{tgt_dir.name}/{cid}.* (for {inp_dir.name}/{p.name})")
            continue
        if _in_list(list_names, clean[cid].name, cid):
            versions[cid].append(p)
    if missing:
        raise _not_found(name, root, missing)
    ids = sorted(versions, key=_natural_key)
    if split == "train":
        return [(clean[c].name, [(v, clean[c]) for v in versions[c]]) for c in ids]
    return [(v.name, [(v, clean[c])]) for c in ids for v in versions[c]]


def _reside(name, root, split, list_names):
    base = root
    if name == "reside_sots" and _first_dir(root, ["hazy", "images"]) is None and (root / "indoor").is_dir():
        base = root / "indoor"
    tgt = ["clear", "gt", "labels"] if name == "reside_its" else ["gt", "clear", "labels"]
    return _versions_by_id(name, base, ["hazy", "images"], tgt, split, list_names)


def _dcpdn(root, split, list_names):
    folder = _first_dir(root, ["training", "train512", "train"] if split == "train" else ["TestA", "testA", "test"])
    if folder is None:
        raise _not_found("dcpdn", root, ["training/ (or train512/, train/)" if split == "train" else "TestA/ (or testA/, test/)"])
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".h5"), key=lambda q: _natural_key(q.name))
    files = [p for p in files if _in_list(list_names, p.name)]
    if not files:
        raise _not_found("dcpdn", root, [f"{folder.name}/*.h5 (the folder has no .h5 files)"])
    return [(p.name, [p]) for p in files]


def _raindrop(name, root, split_dir, list_names):
    base = None
    for cand in (root / split_dir / split_dir, root / split_dir, root):
        if (cand / "data").is_dir() and (cand / "gt").is_dir():
            base = cand
            break
    if base is None:
        raise _not_found(name, root, [f"{split_dir}/data/ and {split_dir}/gt/"])
    groups, missing = [], []
    for p in sorted(_images(base / "data"), key=lambda q: _natural_key(q.name)):
        m = re.match(r"^(.*)_rain(\.[^.]+)$", p.name)
        if not m:
            continue
        stem, ext = m.groups()
        if not _in_list(list_names, stem, p.name):
            continue
        t = base / "gt" / f"{stem}_clean{ext}"
        if not t.is_file():
            missing.append(f"{split_dir}/gt/{stem}_clean{ext}")
            continue
        groups.append((p.name, [(p, t)]))
    if not groups and not missing:
        missing.append(f"{split_dir}/data/<n>_rain.<ext> (no such files in {base / 'data'})")
    if missing:
        raise _not_found(name, root, missing)
    return groups


def _didmdn(root, split, list_names):
    if split == "test":
        folder = _first_dir(root, ["test", "DID-MDN-test", "testing"])
        if folder is None:
            raise _not_found("didmdn", root, ["test/ (or DID-MDN-test/, testing/)"])
        files = [p for p in sorted(_images(folder), key=lambda q: _natural_key(q.name)) if _in_list(list_names, p.name)]
        if not files:
            raise _not_found("didmdn", root, [f"{folder.name}/*.jpg (no images)"])
        return [(p.name, [p]) for p in files]
    base = root if (root / "Rain_Heavy").is_dir() or (root / "Rain_Medium").is_dir() else root / "DID-MDN-training"
    densities = ["Rain_Heavy", "Rain_Medium", "Rain_Light"]
    dirs = {d: base / d / "train2018new" for d in densities}
    absent = [f"{d}/train2018new/" for d, p in dirs.items() if not p.is_dir()]
    if absent:
        raise _not_found("didmdn", root, absent)
    by_name = defaultdict(list)
    for d in densities:
        for p in _images(dirs[d]):
            by_name[p.name].append(p)
    missing = [f"{d}/train2018new/{n}" for n, ps in by_name.items() if len(ps) < len(densities)
               for d in densities if dirs[d] / n not in ps]
    if missing:
        raise _not_found("didmdn", root, missing)
    names = [n for n in sorted(by_name, key=_natural_key) if _in_list(list_names, n)]
    return [(n, by_name[n]) for n in names]


def _ddn(root, split, list_names):
    sub = _first_dir(root, ["training", "train"] if split == "train" else ["testing", "test"])
    if sub is not None:
        return _versions_by_id("ddn", sub, ["rainy_image", "rain_image"], ["ground_truth", "label"], split, list_names)
    if _first_dir(root, ["rainy_image", "rain_image"]) is not None:
        if list_names is None:
            raise ValueError(
                f"DDN under {root} is one flat folder with no train/test split; pass list_file= naming the "
                f"clean images of the {split} split (e.g. the DuRN authors' lists/DDN_Data/{split}list.txt)")
        return _versions_by_id("ddn", root, ["rainy_image", "rain_image"], ["ground_truth", "label"], split, list_names)
    raise _not_found("ddn", root, [f"{'training' if split == 'train' else 'testing'}/rainy_image/ and ground_truth/"])


# ----------------------------------------------------------------------------- entry point
def paper_dataset(name: str, root, *, split: str | None = None, crop=None, seed: int = 0, gray: bool | None = None,
                  flip: bool | None = None, sigma=None, list_file=None, authors_geometry: bool = True) -> PaperPairs:
    """One of the paper's datasets, found under ``root``.

    ``name``: a key of :data:`PAPER_DATASETS`. ``split``: ``"train"`` or ``"test"``
    (default: ``"train"`` where the dataset has one, else ``"test"``). ``crop``: random
    crops of this size (int or (h, w)), deterministic under ``seed``, the item index and
    the epoch (``dataset.set_epoch``). ``flip``: random horizontal flips (default: the
    authors' recipe, on for DID-MDN and DDN training). ``gray``: 1-channel luma (default:
    gray for ``bsd_gray`` only). ``sigma``: ``bsd_gray`` noise level(s) on the 0..255 scale
    (needed for its test split). ``list_file``: restrict to the file names or ids listed
    (one per line, e.g. the DuRN authors' ``lists/`` files). ``authors_geometry``: apply
    the authors' resize / crop rules (module docstring).
    """
    if name not in PAPER_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(PAPER_DATASETS)}")
    info = PAPER_DATASETS[name]
    if split is None:
        split = "train" if "train" in info.splits else info.splits[0]
    if split not in info.splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; it has {list(info.splits)}")
    root = Path(os.fspath(root)).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{info.title} ({name!r}): root folder {root} does not exist.\nExpected layout:\n{info.layout}")
    list_names = _read_list(list_file)
    train = split == "train"
    if gray is None:
        gray = name == "bsd_gray"
    if flip is None:
        flip = info.flip and train and crop is not None
    resize = align = None
    loader = _read_pair

    if name == "bsd_gray":
        groups, loader = _bsd(root, split, list_names), _read_clean
        if split == "test" and sigma is None:
            raise ValueError("bsd_gray test split needs sigma= (the noise level: 30, 50 or 70 in the paper)")
    elif name == "polyu":
        groups = _polyu(root, split, list_names)
    elif name == "gopro":
        groups = _gopro(root, split, list_names)
        resize = (640, 360) if authors_geometry else None
    elif name == "car":
        groups = _named_pairs("car", root, ["blurred", "blur"], ["sharp"], list_names)
        resize = (360, 360) if authors_geometry else None
    elif name in ("reside_its", "reside_sots"):
        groups = _reside(name, root, split, list_names)
    elif name == "dcpdn":
        groups, loader = _dcpdn(root, split, list_names), _read_h5
    elif name.startswith("raindrop_"):
        groups = _raindrop(name, root, name[len("raindrop_"):], list_names)
        align = 4 if authors_geometry and not train else None
    elif name == "didmdn":
        groups, loader = _didmdn(root, split, list_names), _read_side_by_side
    elif name == "ddn":
        groups = _ddn(root, split, list_names)
    else:  # pragma: no cover - every registered name is handled above
        raise AssertionError(name)
    if not groups:
        raise _not_found(name, root, ["images of the split" + (" named in the list file" if list_names else "")])
    kwargs = dict(resize=resize, align=align, float_data=name == "dcpdn", crop=crop, seed=seed, flip=flip, gray=gray,
                  centre_crop_target=name.startswith("reside_"))
    if name == "bsd_gray":
        return BSDGray(name, groups, loader, sigma=sigma, authors_noise=not train, **kwargs)
    if sigma is not None:
        raise ValueError(f"sigma= applies to bsd_gray only, not {name!r}")
    return PaperPairs(name, groups, loader, **kwargs)
