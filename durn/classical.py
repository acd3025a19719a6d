"""Classical restorers a user would run instead of a network, as baselines for the model
cards (``scripts/model_cards.py``).

:func:`dark_channel_prior` is He, Sun and Tang's dehazing (CVPR 2009 / TPAMI 2011) with
the guided-filter refinement of He, Sun and Tang (ECCV 2010 / TPAMI 2013), at the
papers' settings: a 15 x 15 dark channel, omega 0.95, the airlight from the brightest
0.1% of the dark channel, transmission floored at 0.1, a guided filter of radius 60 and
eps 1e-4 on the gray image.
"""
from __future__ import annotations

import numpy as np
import torch

from .restoration.convert import LUMA


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window clipped to the image (the guided filter's box filter)."""
    def cumulative_window(a: np.ndarray, axis: int) -> np.ndarray:
        n = a.shape[axis]
        c = np.cumsum(a, axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        hi = np.minimum(np.arange(n) + radius + 1, n)
        lo = np.maximum(np.arange(n) - radius, 0)
        return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)

    ones = np.ones(x.shape[:2])
    count = cumulative_window(cumulative_window(ones, 0), 1)
    return cumulative_window(cumulative_window(x, 0), 1) / count


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` by the gray ``guide`` (both (H, W) float64)."""
    mean_i, mean_p = _box_mean(guide, radius), _box_mean(src, radius)
    cov_ip = _box_mean(guide * src, radius) - mean_i * mean_p
    var_i = _box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box_mean(a, radius) * guide + _box_mean(b, radius)


def dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """Min over the colour channels, then over a ``patch`` x ``patch`` window: (H, W)."""
    from scipy.ndimage import minimum_filter

    return minimum_filter(image.min(axis=2), size=patch, mode="nearest")


def dark_channel_prior(hazy: torch.Tensor, *, patch: int = 15, omega: float = 0.95, t0: float = 0.1,
                       radius: int = 60, eps: float = 1e-4, top: float = 0.001) -> torch.Tensor:
    """Dehaze one RGB image, (3, H, W) float in [0, 1], by the dark channel prior."""
    if not isinstance(hazy, torch.Tensor) or hazy.ndim != 3 or hazy.shape[0] != 3:
        got = tuple(hazy.shape) if isinstance(hazy, torch.Tensor) else type(hazy).__name__
        raise ValueError(f"dark_channel_prior expects one RGB image as a (3, H, W) tensor in [0, 1], got {got}")
    if not 0 < omega <= 1 or not 0 < t0 < 1:
        raise ValueError(f"omega must be in (0, 1] and t0 in (0, 1), got omega={omega}, t0={t0}")
    image = hazy.detach().double().cpu().permute(1, 2, 0).numpy()
    dark = dark_channel(image, patch)
    # airlight: among the brightest `top` of the dark channel, the brightest input pixel
    n = max(1, int(round(dark.size * top)))
    candidates = np.argpartition(dark.ravel(), -n)[-n:]
    flat = image.reshape(-1, 3)
    airlight = flat[candidates[np.argmax(flat[candidates].sum(axis=1))]]
    airlight = np.maximum(airlight, 1e-3)
    transmission = 1 - omega * dark_channel(image / airlight, patch)
    gray = image @ np.array(LUMA)
    transmission = guided_filter(gray, transmission, radius, eps)
    t = np.maximum(transmission, t0)[..., None]
    out = (image - airlight) / t + airlight
    return torch.from_numpy(np.clip(out, 0, 1)).permute(2, 0, 1).to(hazy.dtype)
