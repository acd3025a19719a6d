"""The item contract every durn dataset follows, and the shared crop / flip / epoch logic."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch.utils.data import Dataset

from .crops import STREAM_CROP, as_size, item_generator, paired_crop
from .images import rgb_to_gray


@runtime_checkable
class PairDataset(Protocol):
    """What durn's datasets return: ``dataset[i]`` is a dict with

    - ``"input"``: float32 (C, H, W) in [0, 1] (the degraded image; Gaussian-noise inputs
      are not clipped and may leave [0, 1], as in the paper),
    - ``"target"``: float32 (C, H, W) in [0, 1], the same size as the input,
    - ``"name"``: str, unique within the dataset.

    ``set_epoch(e)`` changes the random crops, flips and variants (like
    ``DistributedSampler.set_epoch``); item ``i`` of epoch ``e`` is the same on every run,
    process and worker for the same seed.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict: ...

    def set_epoch(self, epoch: int) -> None: ...


class PairDatasetBase(Dataset):
    """Subclasses implement ``__len__`` and ``load(index) -> (input, target, name)`` giving
    whole float32 (C, H, W) images; this class adds gray conversion, crops and flips."""

    #: True where targets are float data that must not be quantised (DCPDN's .h5 files)
    float_data = False

    def __init__(self, *, crop=None, seed: int = 0, flip: bool = False, gray: bool = False):
        self.crop = as_size(crop)
        self.seed = int(seed)
        self.flip = bool(flip)
        self.gray = bool(gray)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:  # pragma: no cover
        raise NotImplementedError

    def _index(self, index: int) -> int:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        return index

    def __getitem__(self, index: int) -> dict:
        index = self._index(index)
        inp, tgt, name = self.load(index)
        if self.gray:
            inp = rgb_to_gray(inp) if inp.shape[0] == 3 else inp
            tgt = rgb_to_gray(tgt) if tgt.shape[0] == 3 else tgt
        if self.crop is not None:
            g = item_generator(self.seed, index, self.epoch, STREAM_CROP)
            inp, tgt = paired_crop([inp, tgt], self.crop, g, flip=self.flip, name=name)
        elif self.flip:
            g = item_generator(self.seed, index, self.epoch, STREAM_CROP)
            if bool(torch.rand((), generator=g) < 0.5):
                inp, tgt = inp.flip(-1), tgt.flip(-1)
        return {"input": inp.contiguous(), "target": tgt.contiguous(), "name": name}
