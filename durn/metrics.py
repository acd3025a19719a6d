"""PSNR and SSIM under named protocols, so numbers say how they were made.

``"authors"``: the DuRN authors' test scripts exactly.
  Outputs clamped to [0, 1], multiplied by 255 in float32 and **truncated** to uint8; the
  ground truth (read as uint8, divided by 255 in float32) goes through the same
  ``* 255`` and truncation. PSNR with data_range 255 over all pixels and channels. SSIM is
  the 2019 scikit-image ``compare_ssim`` with its defaults: a 7 x 7 uniform window, sample
  covariance (N / (N - 1)), K1 = 0.01, K2 = 0.03, data_range 255, mean over the valid
  window positions, channels averaged. Colour space per task (the spec's table): gray for
  DuRN-P, RGB for real noise, blur and haze, and Y of OpenCV's YCrCb (full range,
  ``cv2.cvtColor(..., COLOR_RGB2YCrCb)`` on the uint8 image) for rain streaks and
  raindrops. DCPDN's float data is measured without quantising (data_range 1). GoPro's
  640 x 360 resize and RainDrop's crop to a multiple of 4 are done by the dataset
  (``paper_dataset(..., authors_geometry=True)``).

``"standard"``: BasicSR's conventions.
  Clamped to [0, 1], multiplied by 255 and **rounded** to uint8; RGB images measured on
  the Y channel of ITU-R BT.601 studio swing, ``Y = 16 + (65.481 R + 128.553 G +
  24.966 B) / 255`` (R, G, B in 0..255; Y kept as a float, not rounded), gray images as
  they are; PSNR with data_range 255; SSIM with an 11 x 11 Gaussian window (sigma 1.5),
  population covariance, valid window positions; no border cropped.

Everything is computed in float64 with PyTorch (no OpenCV or scikit-image needed); the
tests check both SSIMs against scikit-image's ``structural_similarity``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "COLOR_SPACES", "PROTOCOLS", "compare", "psnr", "quantize", "ssim_gaussian", "ssim_uniform",
    "y_bt601", "y_opencv",
]

PROTOCOLS = {
    "authors": "DuRN authors' scripts: truncation to uint8, 7x7 uniform-window SSIM with sample "
               "covariance (scikit-image 2019 compare_ssim defaults), colour space per task "
               "(gray / RGB / OpenCV YCrCb Y), DCPDN on floats",
    "standard": "BasicSR: rounding to uint8, 11x11 Gaussian-window SSIM (sigma 1.5), "
                "ITU-R BT.601 studio-swing Y for RGB images, no border crop",
}
COLOR_SPACES = ("gray", "rgb", "y")


# ----------------------------------------------------------------------------- conversions
def quantize(x: torch.Tensor, rounding: str) -> torch.Tensor:
    """Float image in [0, 1] -> uint8: clamp, ``* 255`` in float32, then ``"truncate"``
    (towards zero, as ``numpy.astype(uint8)``) or ``"round"`` (half to even, as numpy)."""
    v = x.detach().to(torch.float32).clamp(0, 1) * 255.0
    if rounding == "round":
        v = torch.round(v)
    elif rounding != "truncate":
        raise ValueError(f"rounding must be 'truncate' or 'round', got {rounding!r}")
    return v.to(torch.uint8)


def y_opencv(rgb: torch.Tensor) -> torch.Tensor:
    """Y of OpenCV's ``COLOR_RGB2YCrCb`` for uint8 (3, H, W) RGB: full range, OpenCV's 14-bit
    fixed point ``(4899 R + 9617 G + 1868 B + 8192) >> 14``. Returns uint8 (1, H, W)."""
    if rgb.dtype != torch.uint8 or rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"y_opencv expects uint8 (3, H, W), got {rgb.dtype} {tuple(rgb.shape)}")
    r, g, b = rgb.to(torch.int64)
    return ((4899 * r + 9617 * g + 1868 * b + 8192) >> 14).to(torch.uint8)[None]


def y_bt601(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 studio-swing luma of (3, H, W) RGB on the 0..255 scale, float64, not
    rounded: ``16 + (65.481 R + 128.553 G + 24.966 B) / 255`` (BasicSR's ``to_y_channel``)."""
    if rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"y_bt601 expects (3, H, W), got {tuple(rgb.shape)}")
    r, g, b = rgb.to(torch.float64)
    return (16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0)[None]


# ----------------------------------------------------------------------------- metrics
def _pair(a: torch.Tensor, b: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape:
        raise ValueError(f"{what}: images differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() == 2:
        a, b = a[None], b[None]
    if a.dim() != 3:
        raise ValueError(f"{what}: expected (C, H, W) or (H, W) images, got {tuple(a.shape)}")
    return a.to(torch.float64), b.to(torch.float64)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float) -> float:
    """``10 log10(data_range^2 / MSE)`` over all pixels and channels, in float64; ``inf``
    for identical images."""
    a, b = _pair(a, b, "psnr")
    mse = float(torch.mean((a - b) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def _filter_valid(x: torch.Tensor, k1d: torch.Tensor) -> torch.Tensor:
    """Separable filtering of (C, H, W) with a 1D kernel, valid positions only."""
    c = x.shape[0]
    n = k1d.numel()
    y = F.conv2d(x[:, None], k1d.view(1, 1, n, 1))
    return F.conv2d(y, k1d.view(1, 1, 1, n))[:, 0]


def _ssim(a, b, k1d, data_range, cov_norm, what):
    a, b = _pair(a, b, what)
    win = k1d.numel()
    if min(a.shape[-2:]) < win:
        raise ValueError(f"{what}: images of {tuple(a.shape[-2:])} are smaller than the {win} x {win} window")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, k1d), _filter_valid(b, k1d)
    var_a = cov_norm * (_filter_valid(a * a, k1d) - mu_a * mu_a)
    var_b = cov_norm * (_filter_valid(b * b, k1d) - mu_b * mu_b)
    cov = cov_norm * (_filter_valid(a * b, k1d) - mu_a * mu_b)
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean(dim=(1, 2)).mean())


def ssim_uniform(a: torch.Tensor, b: torch.Tensor, data_range: float, win_size: int = 7) -> float:
    """SSIM with a ``win_size`` uniform window and sample covariance, mean over valid window
    positions, channels averaged: scikit-image's ``structural_similarity`` defaults (and
    2019's ``compare_ssim``)."""
    k = torch.full((win_size,), 1.0 / win_size, dtype=torch.float64)
    n = win_size * win_size
    return _ssim(a, b, k, data_range, n / (n - 1), "ssim_uniform")


def ssim_gaussian(a: torch.Tensor, b: torch.Tensor, data_range: float, sigma: float = 1.5, win_size: int = 11) -> float:
    """SSIM of Wang et al. with a Gaussian window (11 x 11, sigma 1.5), population
    covariance, mean over valid window positions, channels averaged (BasicSR's
    ``calculate_ssim``; scikit-image's with ``gaussian_weights=True,
    use_sample_covariance=False``)."""
    t = torch.arange(win_size, dtype=torch.float64) - (win_size - 1) / 2
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return _ssim(a, b, k / k.sum(), data_range, 1.0, "ssim_gaussian")


# ----------------------------------------------------------------------------- protocols
def _space(x: torch.Tensor, color_space: str, y) -> torch.Tensor:
    if color_space == "gray":
        if x.shape[0] != 1:
            raise ValueError(f"color space 'gray' needs 1-channel images, got {x.shape[0]} channels")
        return x
    if x.shape[0] != 3:
        raise ValueError(f"color space {color_space!r} needs 3-channel RGB images, got {x.shape[0]} channels")
    return x if color_space == "rgb" else y(x)


def compare(output: torch.Tensor, target: torch.Tensor, *, protocol: str, color_space: str,
            float_data: bool = False) -> dict[str, float]:
    """PSNR and SSIM of one restored image against its ground truth, both float (C, H, W)
    (RGB order) in [0, 1], under ``protocol`` (``"authors"`` or ``"standard"``) in
    ``color_space`` (``"gray"``, ``"rgb"`` or ``"y"``; ``"standard"`` always measures RGB
    images on BT.601 Y). ``float_data``: the authors' DCPDN rule, no quantisation."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {sorted(PROTOCOLS)}")
    if color_space not in COLOR_SPACES:
        raise ValueError(f"unknown color space {color_space!r}; expected one of {COLOR_SPACES}")
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape")
    if protocol == "authors":
        if float_data:
            out = _space(output.detach().to(torch.float32).clamp(0, 1), color_space, _no_float_y)
            tgt = _space(target.detach().to(torch.float32), color_space, _no_float_y)
            return {"psnr": psnr(out, tgt, 1.0), "ssim": ssim_uniform(out, tgt, 1.0)}
        out = _space(quantize(output, "truncate"), color_space, y_opencv)
        tgt = _space(quantize(target, "truncate"), color_space, y_opencv)
        return {"psnr": psnr(out, tgt, 255.0), "ssim": ssim_uniform(out, tgt, 255.0)}
    out, tgt = quantize(output, "round"), quantize(target, "round")
    if out.shape[0] == 3:
        out, tgt = y_bt601(out), y_bt601(tgt)
    elif out.shape[0] != 1:
        raise ValueError(f"expected 1- or 3-channel images, got {out.shape[0]} channels")
    return {"psnr": psnr(out, tgt, 255.0), "ssim": ssim_gaussian(out, tgt, 255.0)}


def _no_float_y(x):
    raise ValueError("the authors measured float data (DCPDN) in RGB; color space 'y' is not defined for it")
