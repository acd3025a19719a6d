"""Random numbers that depend only on (seed, index, epoch), and paired random crops."""
from __future__ import annotations

import numpy as np
import torch

# Streams keep independent draws apart: the crop of item i never shares numbers with the
# degradation of item i.
STREAM_CROP, STREAM_DEGRADE, STREAM_VARIANT, STREAM_FLIP, STREAM_SCENE = 0, 1, 2, 3, 4


def item_generator(seed: int, index: int, epoch: int = 0, stream: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from (seed, index, epoch, stream) by NumPy's SeedSequence
    hashing, so nearby integers give unrelated streams and the result never depends on the
    order in which items are read or on the worker that reads them."""
    if min(seed, index, epoch, stream) < 0:
        raise ValueError(f"seed, index, epoch and stream must be >= 0, got {(seed, index, epoch, stream)}")
    state = np.random.SeedSequence([seed, epoch, index, stream]).generate_state(2, dtype=np.uint32)
    g = torch.Generator()
    g.manual_seed(int(state[0]) << 31 ^ int(state[1]))
    return g


def as_size(crop) -> tuple[int, int] | None:
    if crop is None:
        return None
    if isinstance(crop, int):
        crop = (crop, crop)
    h, w = (int(v) for v in crop)
    if h < 1 or w < 1:
        raise ValueError(f"crop size must be positive, got {crop}")
    return h, w


def randint(low: int, high: int, generator: torch.Generator) -> int:
    """An integer uniform in [low, high] (both included)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def paired_crop(
    images: list[torch.Tensor], size: tuple[int, int], generator: torch.Generator,
    *, flip: bool = False, name: str = "",
) -> list[torch.Tensor]:
    """The same random ``size`` window of every (C, H, W) tensor in ``images``; with ``flip``,
    all of them flipped left-right with probability 1/2."""
    h, w = images[0].shape[-2:]
    for im in images[1:]:
        if im.shape[-2:] != (h, w):
            raise ValueError(f"{name}: paired images differ in size: {tuple(im.shape[-2:])} vs {(h, w)}")
    ch, cw = size
    if ch > h or cw > w:
        raise ValueError(f"{name}: image {h}x{w} is smaller than the crop {ch}x{cw}")
    top = randint(0, h - ch, generator)
    left = randint(0, w - cw, generator)
    out = [im[..., top:top + ch, left:left + cw] for im in images]
    if flip and bool(torch.rand((), generator=generator) < 0.5):
        out = [im.flip(-1) for im in out]
    return [im.contiguous() for im in out]
