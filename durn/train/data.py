"""The training and validation data of a run, built from durn.data's datasets.

Two sources:

* a paper dataset (``--data ROOT``, the preset's dataset or ``--dataset NAME``): its
  training split, less a seeded choice of images held out for validation (the test sets
  stay untouched, for ``durn evaluate``);
* your own clean photos (``--data DIR --degrade SPEC``): a seeded choice of photos is
  held out for validation; the rest are cropped and degraded on the fly. For durn_p's
  recipe (``gaussian`` noise) the loop adds the noise itself, fresh at every step.

Validation pairs are fixed for the whole run (their own seed), centre-cropped to
``val_crop``; each process keeps only its share.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Dataset

from .config import val_conditions
from .stream import generator

VAL_SEED_OFFSET = 1_000_003  # validation pairs are drawn with their own seed, fixed for the run


class EpochKeyed(Dataset):
    """``dataset[(index, epoch)]``: item ``index`` as drawn in ``epoch`` (see
    :mod:`durn.train.stream`). Stateless across calls, so DataLoader workers agree."""

    def __init__(self, dataset):
        if not hasattr(dataset, "set_epoch"):
            raise TypeError(f"{type(dataset).__name__} has no set_epoch(); durn.train needs datasets "
                            "whose random choices are keyed by (seed, index, epoch)")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, epoch = key
        self.dataset.set_epoch(epoch)
        item = self.dataset[index]
        return {"input": item["input"], "target": item["target"]}


class CentreCropped(Dataset):
    """Items of ``dataset`` cut to their central ``size`` x ``size`` (where larger)."""

    def __init__(self, dataset, size: int | None):
        self.dataset, self.size = dataset, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        if self.size:
            for key in ("input", "target"):
                if key in item:
                    h, w = item[key].shape[-2:]
                    top, left = max(0, (h - self.size) // 2), max(0, (w - self.size) // 2)
                    item[key] = item[key][..., top:top + self.size, left:left + self.size].contiguous()
        return item


class ValidationSet:
    """The validation pairs this process evaluates (indices ``rank::world``), read once."""

    def __init__(self, dataset, *, limit: int, rank: int, world_size: int, noise_sigmas=None, seed: int = 0,
                 groups: list[str] | None = None):
        self.dataset, self.noise_sigmas, self.seed = dataset, noise_sigmas, seed
        self.groups = groups  # per pair: the condition it was degraded under (None: one draw each)
        self.count = min(len(dataset), limit)
        self.mine = list(range(rank, self.count, world_size))
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        """(index, pair) for each of this process's pairs."""
        for i in self.mine:
            if i not in self._cache:
                self._cache[i] = self._read(i)
            yield i, self._cache[i]

    def _read(self, i: int) -> dict:
        item = self.dataset[i]
        if self.noise_sigmas is not None:  # noisy input from the clean target, fixed per image
            from ..data import add_gaussian_noise

            sigma = self.noise_sigmas[i % len(self.noise_sigmas)]
            g = generator(self.seed, "val-noise", i)
            item = {**item, "input": add_gaussian_noise(item["target"], [sigma], g)}
        return item


@dataclass
class TrainData:
    train: EpochKeyed
    val: ValidationSet | None
    description: str
    # (file name, bytes) of each training photo, for own-photo runs: a resumed run checks
    # that --data still holds the photos it started on (a new photo would shift every batch)
    photos: tuple[tuple[str, int], ...] = ()

    @property
    def train_size(self) -> int:
        return len(self.train)


def _check_photos(train_paths, val_paths, crop: int) -> None:
    """Every photo readable and every training photo at least one crop big, before the run
    folder is touched."""
    from ..data.folders import check_images
    from ..restoration.image_io import shown

    sizes = check_images(list(train_paths) + list(val_paths))
    small = [f"{shown(p.name)} ({w}x{h})" for p, (w, h) in zip(train_paths, sizes) if min(w, h) < crop]
    if small:
        raise ValueError(
            f"{len(small)} photo(s) are smaller than the {crop}x{crop} training crop: {', '.join(small[:5])}; "
            "remove them or choose a smaller --crop"
        )


def _holdout(n: int, limit: int, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: about a tenth of the images (1 to ``limit``) held out,
    chosen by the seed; none when there are fewer than 3 images or ``limit`` is 0."""
    k = 0 if n < 3 or limit == 0 else min(limit, max(1, n // 10))
    order = torch.randperm(n, generator=generator(seed, "holdout")).tolist()
    val = sorted(order[:k])
    return sorted(set(range(n)) - set(val)), val


def _own_photos(c, dist) -> TrainData:
    from ..data import CleanImageFolder, SyntheticPairs

    preset = c.preset_obj
    gray = preset.gray
    paths = CleanImageFolder(c.data).paths
    if c.val_data:
        train_paths, val_paths = paths, CleanImageFolder(c.val_data).paths
    else:
        t, v = _holdout(len(paths), c.val_images, c.seed)
        train_paths, val_paths = [paths[i] for i in t], [paths[i] for i in v]
    _check_photos(train_paths, val_paths, c.crop_size)
    sigmas = c.noise_sigmas
    if sigmas is not None:  # durn_p's recipe: clean crops; the loop adds fresh noise every step
        train = CleanImageFolder(train_paths, crop=c.crop_size, gray=gray, seed=c.seed, flip=c.use_hflip)
    else:
        train = SyntheticPairs(CleanImageFolder(train_paths, gray=gray), c.degrade, crop=c.crop_size,
                               seed=c.seed, gray=gray, flip=c.use_hflip, scene=c.scene)
    val = None
    if val_paths:
        conditions = val_conditions(c)
        if conditions is None:
            clean = CentreCropped(CleanImageFolder(val_paths, gray=gray), c.val_crop)
            val = ValidationSet(SyntheticPairs(clean, c.degrade, seed=c.seed + VAL_SEED_OFFSET, gray=gray),
                                limit=c.val_images, rank=dist.rank, world_size=dist.world_size)
        else:  # every validation photo under every condition: the mean is the conditions' mean
            clean = CentreCropped(CleanImageFolder(val_paths[:c.val_images], gray=gray), c.val_crop)
            pairs = ConcatDataset([SyntheticPairs(clean, spec, seed=c.seed + VAL_SEED_OFFSET, gray=gray)
                                   for spec in conditions.values()])
            val = ValidationSet(pairs, limit=len(pairs), rank=dist.rank, world_size=dist.world_size,
                                groups=[label for label in conditions for _ in range(len(clean))])
    drawn = f" with {c.scene} drawn in first" if c.scene else ""
    what = (f"{len(train_paths)} photos from {c.data}{drawn} degraded by {c.degrade}; "
            f"{len(val_paths)} held out for validation")
    photos = tuple((Path(p).name, os.path.getsize(p)) for p in train_paths)
    return TrainData(EpochKeyed(train), val, what, photos)


class _Subset(Dataset):
    """Items ``indices`` of ``dataset``, keeping its ``set_epoch`` (and so its random draws,
    which stay keyed by the original index)."""

    def __init__(self, dataset, indices: list[int]):
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[self.indices[i]]


def _paper(c, dist) -> TrainData:
    from .. import data as durn_data

    preset = c.preset_obj
    name = c.dataset or preset.dataset
    if name not in durn_data.PAPER_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(durn_data.PAPER_DATASETS)}")
    if "train" not in durn_data.PAPER_DATASETS[name].splits:
        trainable = sorted(n for n, i in durn_data.PAPER_DATASETS.items() if "train" in i.splits)
        raise ValueError(f"dataset {name!r} has no training split; datasets to train on: {trainable}")
    if not c.data:
        raise ValueError(
            f"--data is required: the root folder of the {name} dataset, or a folder of your own clean "
            f"photos together with --degrade (e.g. --degrade {preset.degradation or 'gaussian:30,50,70'})"
        )
    if c.val_data:
        raise ValueError("--val-data is for your own photos; with a paper dataset, validation holds out "
                         "training images (--val-images N, 0 for none), leaving its test set to `durn evaluate`")
    gray = True if preset.gray else None
    full = durn_data.paper_dataset(name, c.data, split="train", crop=c.crop_size, seed=c.seed,
                                   flip=c.use_hflip, gray=gray)
    t, v = _holdout(len(full), c.val_images, c.seed)
    val = None
    if v:
        whole = durn_data.paper_dataset(name, c.data, split="train", crop=None, seed=c.seed + VAL_SEED_OFFSET,
                                        flip=False, gray=gray)
        val = ValidationSet(CentreCropped(_Subset(whole, v), c.val_crop), limit=c.val_images, rank=dist.rank,
                            world_size=dist.world_size, noise_sigmas=c.noise_sigmas,
                            seed=c.seed + VAL_SEED_OFFSET)
    what = f"{name} from {c.data}: {len(t)} training items, {len(v)} held out for validation"
    return TrainData(EpochKeyed(_Subset(full, t) if v else full), val, what)


def build_data(c, dist) -> TrainData:
    if c.degrade:
        if not c.data:
            raise ValueError("--degrade needs --data DIR, a folder of your own clean photos")
        return _own_photos(c, dist)
    return _paper(c, dist)
