"""Overlap-save Fourier convolution: ``fused_conv2d`` for large (and dilated) kernels.

The DFT of each ``T x T`` tile is computed as two small real matrix products (see
``transform_conv.py``), the conv becomes one complex product per frequency between the
tiles' spectra and the weights' conjugate spectra, and the inverse DFT keeps the
``S = T - k + 1`` valid outputs per tile and axis. Any ``T > k`` works (no power of two
needed). Dilated kernels are handled by the polyphase split, so the tile only has to
exceed ``k``, not the dilated extent ``d (k - 1) + 1``.

``fft_fused_conv2d`` has the signature of ``reference.fused_conv2d`` plus ``tile``; it
transforms the weights on every call (for tests). ``durn.optimize_for_inference``
transforms them once per layer (``make_transform_conv``).
"""
from __future__ import annotations

import functools
import math

import torch

from .transform_conv import TransformConv2d, TransformMatrices, check_transform_args, real_constants


@real_constants
@functools.lru_cache(maxsize=64)
def fourier_matrices(tile: int, kernel: int) -> TransformMatrices:
    """DFT matrices for tiles of ``tile`` pixels and a ``kernel``-tap correlation."""
    if not kernel < tile:
        raise ValueError(f"the tile ({tile}) must be larger than the kernel ({kernel})")
    t, s = tile, tile - kernel + 1
    kw = t // 2 + 1  # real input: frequencies 0..T/2 along w carry everything
    f64 = torch.float64
    pos = torch.arange(t, dtype=f64)
    ang_w = -2 * math.pi * torch.outer(torch.arange(kw, dtype=f64), pos) / t       # (fw, tw)
    fwd_w = torch.cat([torch.cos(ang_w), torch.sin(ang_w)], 0)                      # rows (part, fw)
    ang_h = -2 * math.pi * torch.outer(pos, pos) / t                                # (fh, th)
    c, sn = torch.cos(ang_h), torch.sin(ang_h)
    # (A + iB) -> D (A + iB): real = cA - sB, imag = sA + cB; columns (th, part), rows (part, fh).
    fwd_h = torch.zeros(2, t, t, 2, dtype=f64)
    fwd_h[0, :, :, 0], fwd_h[0, :, :, 1] = c, -sn
    fwd_h[1, :, :, 0], fwd_h[1, :, :, 1] = sn, c
    fwd_h = fwd_h.reshape(2 * t, 2 * t)
    # Inverse along h, only the S valid rows: columns (part, fh), rows (th, part).
    ang_ih = 2 * math.pi * torch.outer(torch.arange(s, dtype=f64), pos) / t         # (th, fh)
    ci, si = torch.cos(ang_ih) / t, torch.sin(ang_ih) / t
    inv_h = torch.zeros(s, 2, 2, t, dtype=f64)
    inv_h[:, 0, 0], inv_h[:, 0, 1] = ci, -si
    inv_h[:, 1, 0], inv_h[:, 1, 1] = si, ci
    inv_h = inv_h.reshape(2 * s, 2 * t)
    # Inverse real DFT along w from the half spectrum: the bins 1..ceil(T/2)-1 stand for
    # their mirror images too (weight 2); the imaginary parts of DC and Nyquist drop out.
    ang_iw = 2 * math.pi * torch.outer(torch.arange(s, dtype=f64), torch.arange(kw, dtype=f64)) / t
    weight = torch.full((kw,), 2.0, dtype=f64)
    weight[0] = 1.0
    if t % 2 == 0:
        weight[-1] = 1.0
    inv_w = torch.cat([torch.cos(ang_iw) * weight / t, -torch.sin(ang_iw) * weight / t], 1)
    return TransformMatrices("fourier", t, kernel, 2, kw, t, fwd_w, fwd_h, inv_h, inv_w)


def fourier_spectrum(weight: torch.Tensor, matrices: TransformMatrices) -> torch.Tensor:
    """``(2, T*(T//2+1), C, O)`` float64: real and imaginary parts of the conjugate 2-D DFT
    of each kernel zero-padded to the tile (conjugate: the conv is a correlation)."""
    o, c, k, _ = weight.shape
    t = matrices.tile
    padded = torch.zeros(c, o, t, t, dtype=torch.float64, device=weight.device)
    padded[:, :, :k, :k] = weight.detach().to(torch.float64).transpose(0, 1)
    spec = torch.fft.rfft2(padded).conj().permute(2, 3, 0, 1).reshape(t * (t // 2 + 1), c, o)
    return torch.stack([spec.real, spec.imag])


def fft_conv(weight: torch.Tensor, dilation: int = 1, tile: int | None = None) -> TransformConv2d:
    """A ``TransformConv2d`` for ``weight`` (O, C, k, k) with Fourier tiles of ``tile``."""
    k = weight.shape[-1]
    tile = tile or default_tile(k)
    matrices = fourier_matrices(tile, k)
    return TransformConv2d(weight, dilation, matrices, fourier_spectrum(weight, matrices))


def default_tile(kernel: int) -> int:
    """A tile that keeps the overlap small for the kernel (the optimizer measures others)."""
    return max(16, 2 * kernel + 8 - (2 * kernel + 8) % 8)


def fft_fused_conv2d(
    x, weight, bias=None, scale=None, shift=None, residual=None, stride=1, padding=0, dilation=1,
    padding_mode="zeros", residual_at="none", activation="none", residual_alpha=1.0, *, tile=None,
):
    """``reference.fused_conv2d`` computed with overlap-save Fourier tiles (stride 1)."""
    check_transform_args(x, weight, stride, padding, dilation, padding_mode, residual_at, activation)
    plan = fft_conv(weight.to(x.dtype), dilation, tile)
    return plan(x, bias, scale, shift, residual, padding, padding_mode, residual_at, activation, residual_alpha)
