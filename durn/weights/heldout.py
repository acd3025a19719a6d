"""The held-out measurement behind the model cards (``scripts/model_cards.py``).

Held-out photos: scikit-image's ``camera`` and ``astronaut`` (never trained or validated
on: ``scripts/make_training_photos.py`` leaves them out). For denoising they are gray,
8-bit (astronaut: BT.601 luma, rounded), with white Gaussian noise of sigma/255 added in
float32, not clipped or quantised (the DuRN-P training and test input), from a generator
seeded per (image, sigma), so every method sees the same noisy image.

Every output is scored under both protocols of :mod:`durn.metrics`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..metrics import compare

HELDOUT = ("camera", "astronaut")
SIGMAS = (30, 50, 70)
PROTOCOLS = ("authors", "standard")


def heldout_gray(name: str) -> torch.Tensor:
    """(1, H, W) float32 in [0, 1], exactly k/255 values."""
    import numpy as np
    import skimage.data

    if name not in HELDOUT:
        raise ValueError(f"held-out images are {HELDOUT}, got {name!r}")
    pixels = np.asarray(getattr(skimage.data, name)(), dtype=np.float64)
    if pixels.ndim == 3:
        pixels = pixels[..., :3] @ np.array([0.299, 0.587, 0.114])
    return torch.from_numpy(np.round(pixels).astype(np.uint8)).float().div(255.0)[None]


def noise_seed(name: str, sigma: float) -> int:
    return 1000 * (HELDOUT.index(name) + 1) + int(sigma)


def noisy(clean: torch.Tensor, name: str, sigma: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(noise_seed(name, sigma))
    return clean + torch.randn(clean.shape, generator=g, dtype=torch.float32) * (sigma / 255.0)


def score(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    out = {}
    for protocol in PROTOCOLS:
        m = compare(output, target, protocol=protocol, color_space="gray")
        out[f"psnr_{protocol}"] = round(float(m["psnr"]), 4)
        out[f"ssim_{protocol}"] = round(float(m["ssim"]), 5)
    return out


def measure_denoiser(denoise: Callable[[torch.Tensor, float], torch.Tensor], *, images=HELDOUT,
                     sigmas=SIGMAS) -> dict[str, dict[str, float]]:
    """``denoise(noisy (1, H, W), sigma) -> (1, H, W)`` scored on every (image, sigma):
    ``{"camera/sigma30": {"psnr_authors": ..., ...}, ...}``."""
    results = {}
    for name in images:
        clean = heldout_gray(name)
        for sigma in sigmas:
            with torch.inference_mode():
                output = denoise(noisy(clean, name, sigma), sigma)
            results[f"{name}/sigma{int(sigma)}"] = score(output, clean)
    return results
