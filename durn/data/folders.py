"""Datasets over any folder of clean photos: clean images alone, or synthetic pairs."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .base import PairDatasetBase
from .crops import STREAM_CROP, STREAM_DEGRADE, STREAM_FLIP, STREAM_SCENE, as_size, item_generator, randint
from .degradations import Degradation, make_degradation
from .scene import make_scene
from .images import list_images, read_image, rgb_to_gray, to_tensor


def _image_paths(root) -> list[Path]:
    if isinstance(root, (str, os.PathLike)):
        root = Path(root)
        if root.is_file():
            return [root]
        if not root.is_dir():
            raise FileNotFoundError(f"image folder not found: {root}")
        paths = list_images(root)
        if not paths:
            raise FileNotFoundError(f"no images (.png, .jpg, ...) in {root}")
        return paths
    if isinstance(root, Sequence) and root and all(isinstance(p, (str, os.PathLike)) for p in root):
        paths = [Path(p) for p in root]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"image files not found: {', '.join(missing[:10])}")
        return paths
    raise ValueError(f"expected a folder, an image file or a list of image files, got {root!r}")


def check_images(paths: Sequence[Path]) -> list[tuple[int, int]]:
    """Decode every image once, so that a damaged file stops a run before it starts rather
    than at some step; returns the (width, height) of each. ``ValueError`` names the
    files that cannot be read, and why."""
    from concurrent.futures import ThreadPoolExecutor

    from ..restoration.image_io import shown
    from .images import ImageFileError, read_image

    def size(path):
        try:
            image = read_image(path)
        except ImageFileError as err:
            return str(err)
        return image.shape[1], image.shape[0]

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # Pillow decodes without the GIL
        sizes = list(pool.map(size, paths))
    bad = [s for s in sizes if isinstance(s, str)]
    if bad:
        shown_bad = "; ".join(b.removeprefix("cannot read image ") for b in bad[:5]) + ("; ..." if len(bad) > 5 else "")
        raise ValueError(f"{len(bad)} of {len(paths)} images cannot be read ({shown_bad}); "
                         f"fix or remove {'it' if len(bad) == 1 else 'them'} and run the command again")
    return sizes


def _unique_names(paths: list[Path]) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


class CleanImageFolder(PairDatasetBase):
    """The clean images of a folder (or a list of files), for training loops that degrade on
    the fly (DuRN-P's recipe adds fresh noise every step).

    Items follow :class:`PairDataset` with ``input`` equal to ``target`` (``input`` is its own
    copy, so a loop may add noise to it in place). With ``crop``, a random window per item
    and epoch; ``gray=True`` reads images as 1-channel luma.

    Decoded images are kept in memory as 8-bit arrays, up to ``cache_mb`` megabytes (the
    first ones read; 0: none), since a training loop reads every image again each epoch and
    decoding a large PNG costs more than the crop's degradation (230 ms for 2560 x 1600).
    """

    def __init__(self, root, *, crop=None, gray: bool = False, seed: int = 0, flip: bool = False,
                 cache_mb: float = 1024):
        super().__init__(crop=crop, seed=seed, flip=flip, gray=False)
        if cache_mb < 0:
            raise ValueError(f"cache_mb must be >= 0, got {cache_mb}")
        self.read_gray = bool(gray)
        self.paths = _image_paths(root)
        self.names = _unique_names(self.paths)
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: dict[int, np.ndarray] = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return len(self.paths)

    def _pixels(self, index: int) -> np.ndarray:
        pixels = self._cache.get(index)
        if pixels is None:
            pixels = read_image(self.paths[index], gray=self.read_gray)
            if self._cached_bytes + pixels.nbytes <= self.cache_bytes:
                self._cache[index] = pixels
                self._cached_bytes += pixels.nbytes
        return pixels

    def load(self, index):
        clean = to_tensor(self._pixels(index))
        return clean.clone(), clean, self.names[index]


class SyntheticPairs(Dataset):
    """(degraded, clean) pairs made from clean images by a synthetic degradation.

    ``source`` is a folder, a list of image files, or a dataset whose items have a
    ``"target"``. ``degradation`` is a spec string (``"gaussian:30,50,70"``, ``"blur"``,
    ``"haze"``, ``"rain"``, ``"raindrop"``) or a :class:`Degradation`. Item ``i`` of epoch
    ``e`` is the same for the same ``seed``: the crop and the degradation each draw from
    their own generator seeded by (seed, i, e). With ``crop``, a larger window (the
    degradation's reach on each side, where the image allows) is degraded and its centre
    kept, so blur and streaks have context instead of the crop's mirrored border. ``scene``
    (a :func:`durn.data.scene.make_scene` spec such as ``"lines"``) is drawn into the clean
    window first, from its own generator, so input and target both carry it.
    """

    float_data = False

    def __init__(self, source, degradation, *, crop=None, seed: int = 0, gray: bool = False, flip: bool = False,
                 scene=None):
        self.degradation: Degradation = make_degradation(degradation)
        self.scene = make_scene(scene) if scene is not None else None
        self.crop = as_size(crop)
        self.seed = int(seed)
        self.flip = bool(flip)
        self.gray = bool(gray)
        self.epoch = 0
        if isinstance(source, Dataset):
            self.source = source
        else:
            self.source = CleanImageFolder(source, gray=gray)

    def __len__(self) -> int:
        return len(self.source)

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)
        if hasattr(self.source, "set_epoch"):
            self.source.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        item = self.source[index]
        clean, name = item["target"], item["name"]
        if self.gray and clean.shape[0] == 3:
            clean = rgb_to_gray(clean)
        keep = None
        if self.crop is not None:
            clean, keep = self._crop(clean, index, name)
        if self.scene is not None:
            clean = self.scene(clean, item_generator(self.seed, index, self.epoch, STREAM_SCENE))
        degraded = self.degradation(clean, item_generator(self.seed, index, self.epoch, STREAM_DEGRADE))
        if keep is not None:
            top, left = keep
            ch, cw = self.crop
            clean = clean[:, top:top + ch, left:left + cw]
            degraded = degraded[:, top:top + ch, left:left + cw]
        if self.flip and bool(torch.rand((), generator=item_generator(self.seed, index, self.epoch, STREAM_FLIP)) < 0.5):
            clean, degraded = clean.flip(-1), degraded.flip(-1)
        return {"input": degraded.contiguous(), "target": clean.contiguous(), "name": name}

    def _crop(self, clean: torch.Tensor, index: int, name: str):
        """A random crop window widened by the degradation's margin where the image allows;
        returns the widened window and where the crop sits inside it."""
        h, w = clean.shape[-2:]
        ch, cw = self.crop
        if ch > h or cw > w:
            raise ValueError(f"{name}: image {h}x{w} is smaller than the crop {ch}x{cw}")
        g = item_generator(self.seed, index, self.epoch, STREAM_CROP)
        top, left = randint(0, h - ch, g), randint(0, w - cw, g)
        m = self.degradation.margin
        t0, l0 = max(0, top - m), max(0, left - m)
        t1, l1 = min(h, top + ch + m), min(w, left + cw + m)
        return clean[:, t0:t1, l0:l1], (top - t0, left - l0)
