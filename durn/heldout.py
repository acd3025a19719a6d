"""The held-out measurement behind the model cards (``scripts/model_cards.py``).

Held-out photos: scikit-image's ``camera`` and ``astronaut`` (never trained or validated
on: ``scripts/make_training_photos.py`` leaves them out).

* Denoising (durn_p): gray, 8-bit (astronaut: BT.601 luma, rounded), with white Gaussian
  noise of sigma/255 added in float32, not clipped or quantised (the DuRN-P training and
  test input), from a generator seeded per (image, sigma).
* The colour tasks: RGB (camera, a gray photo, as three equal channels), degraded by
  :mod:`durn.data.degradations` at fixed settings (:data:`CONDITIONS`), the remaining
  random draws (haze: the depth field and tint; blur: the trajectory or direction and the
  noise) seeded per image, so an image gets the same scene at every strength.

So every method sees the same degraded image. Every output is scored under both
protocols of :mod:`durn.metrics`.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable

import torch

from .metrics import compare
from .restoration.convert import LUMA

HELDOUT = ("camera", "astronaut")
SIGMAS = (30, 50, 70)
PROTOCOLS = ("authors", "standard")

# Per network (other than durn_p): condition label -> degradation spec. Haze: three
# strengths from RESIDE's scattering range, fixed airlight and depth range, with the
# scene-blind depth proxy and a neutral airlight (scene=0,hue=0,thick=0: the card's haze is
# bit for bit what it was before the generator learnt those, so cards stay comparable).
# Blur: camera shake and straight linear motion, each over 9 and 18 pixels (a fraction
# 0.3 / 0.6 of the 31-pixel kernel), with sensor noise of sigma 1 and 8-bit rounding, no JPEG;
# the seed per image makes both strengths the same trajectory (or direction), scaled.
_BLUR = "camera_blur:{kind},length={length},noise=1,jpeg=0"
_BLUR_KINDS = {"shake": "shake=1,linear=0,defocus=0", "linear": "shake=0,linear=1,defocus=0"}
CONDITIONS: dict[str, dict[str, str]] = {
    "durn_us": {f"haze-beta{b}": f"haze:beta={b},airlight=0.85,near=0.1,far=1.2,scene=0,hue=0,thick=0"
                for b in ("0.8", "1.2", "1.6")},
    "durn_u": {f"{kind}-{px}px": _BLUR.format(kind=weights, length=length)
               for kind, weights in _BLUR_KINDS.items() for px, length in ((9, "0.3"), (18, "0.6"))},
    # Camera noise at three shot levels (about ISO 400, 1600 and 6400 on a phone sensor),
    # read noise from the shot level, fixed white balance, no mosaic, 8-bit, no JPEG.
    "durn_p_real": {f"camera-shot{shot}": f"camera_noise:shot={shot},red_gain=2.1,blue_gain=1.7,bayer=0,jpeg=0"
                    for shot in ("0.001", "0.004", "0.012")},
    # Rain streaks: light (one layer, sparse, faint, no veil) and heavy (up to three
    # layers, dense, bright, with the veil of heavy rain); direction, depths and lengths
    # seeded per image.
    "durn_s": {"rain-light": "rain:density=0.001,brightness=0.4,layers=1,veil=0",
               "rain-heavy": "rain:density=0.004,brightness=0.6,layers=3,veil=0.25"},
    # Raindrops on glass: few and many drops (10 and 30 on each photo: the count is per
    # 256-pixel frame at the photo's own scale); sizes, focus and positions seeded per image.
    "durn_s_p": {"drops-few": "raindrop:count=10", "drops-many": "raindrop:count=30"},
}


def _photo(name: str):
    """The held-out photo as scikit-image gives it: uint8 (H, W) or (H, W, C)."""
    import skimage.data

    if name not in HELDOUT:
        raise ValueError(f"held-out images are {HELDOUT}, got {name!r}")
    return getattr(skimage.data, name)()


def heldout_gray(name: str) -> torch.Tensor:
    """(1, H, W) float32 in [0, 1], exactly k/255 values."""
    import numpy as np

    pixels = np.asarray(_photo(name), dtype=np.float64)
    if pixels.ndim == 3:
        pixels = pixels[..., :3] @ np.array(LUMA)
    return torch.from_numpy(np.round(pixels).astype(np.uint8)).float().div(255.0)[None]


def heldout_rgb(name: str) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1], exactly k/255 values; camera as three equal channels."""
    import numpy as np

    pixels = np.asarray(_photo(name), dtype=np.uint8)
    pixels = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels[..., :3]
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float().div(255.0)


def degraded(clean: torch.Tensor, name: str, spec: str) -> torch.Tensor:
    """``clean`` degraded by ``spec``, its random draws seeded by the image."""
    from .data.degradations import make_degradation

    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    return make_degradation(spec)(clean, g)


def noise_seed(name: str, sigma: float) -> int:
    return 1000 * (HELDOUT.index(name) + 1) + int(sigma)


def noisy(clean: torch.Tensor, name: str, sigma: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(noise_seed(name, sigma))
    return clean + torch.randn(clean.shape, generator=g, dtype=torch.float32) * (sigma / 255.0)


def score(output: torch.Tensor, target: torch.Tensor, color_space: str = "gray") -> dict[str, float]:
    """PSNR/SSIM under both protocols; ``color_space`` is the authors' protocol's (the
    standard protocol measures RGB on Y)."""
    out = {}
    for protocol in PROTOCOLS:
        m = compare(output, target, protocol=protocol, color_space=color_space)
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


def measure_restorer(restore: Callable[[torch.Tensor], torch.Tensor], network: str, *,
                     images=HELDOUT, conditions: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """``restore(degraded (3, H, W)) -> (3, H, W)`` scored on every (image, condition) of
    ``network``'s task (:data:`CONDITIONS`), in the colour space the authors measured that
    task in: ``{"camera/haze-beta0.8": {"psnr_authors": ..., ...}, ...}``."""
    from .evaluate import color_space_for

    if conditions is None:
        if network not in CONDITIONS:
            raise ValueError(f"no held-out conditions for {network!r}; networks with some: {sorted(CONDITIONS)}")
        conditions = CONDITIONS[network]
    space = color_space_for(network, "authors", 3)
    results = {}
    for name in images:
        clean = heldout_rgb(name)
        for label, spec in conditions.items():
            with torch.inference_mode():
                output = restore(degraded(clean, name, spec))
            results[f"{name}/{label}"] = score(output, clean, space)
    return results
