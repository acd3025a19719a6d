"""How much fits: free device memory and the tile sizes it allows.

The per-pixel costs come from the architecture's shape-only dry run
(:func:`durn.nn.geometry.memory_profile`), as its minimum size and receptive field do.
"""
from __future__ import annotations

import math
import os

import torch
from torch import nn

from ..nn.geometry import bytes_per_pixel, memory_profile


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (CUDA: the driver's figure; CPU: MemAvailable), or None."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return None


def auto_tile(network: nn.Module, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype,
              *, fraction: float = 0.5) -> int | None:
    """The largest square tile whose forward pass fits in ``fraction`` of the device's free
    memory (rounded down to the network's size multiple); None when the whole image fits or
    the free memory is unknown.

    The budget is rounded down to a power of two pixels: results depend (a little) on the
    tiles, so the plan should not follow every change in free memory between two runs;
    it changes only where free memory crosses a power of two."""
    free = free_memory(device)
    if free is None:
        return None
    n = shape[0] if len(shape) == 4 else 1
    h, w = shape[-2:]
    pixels = fraction * free / (bytes_per_pixel(network, dtype, device.type) * n)  # pixels per tile
    if pixels >= 1:
        pixels = 2.0 ** math.floor(math.log2(pixels))
    if h * w <= pixels:
        return None
    short = min(h, w)
    # square tiles, except that a tile cannot be taller (wider) than a thin image
    tile = int(pixels / short) if pixels >= short * short else int(math.sqrt(pixels))
    m = getattr(network, "size_multiple", 1)
    return max(tile // m * m, getattr(network, "min_size", 1), 2 * m)


def auto_exact_tile(network: nn.Module, device: torch.device, dtype: torch.dtype, *,
                    fraction: float = 0.5) -> int | None:
    """Exact tiles: the largest conv output tile whose input (with halo) and output fit in
    ``fraction`` of the device's free memory; None when the free memory is unknown."""
    free = free_memory(device)
    if free is None:
        return None
    per_px = memory_profile(network, dtype, device.type).conv_bytes_per_pixel
    return max(16, int((fraction * free / per_px) ** 0.5))
