"""Exact tiles: activations in host memory, convolutions on the device in tiles.

Every convolution computes its output tile by tile with the halo each tile needs
(reflection or zero padding reproduced at the image border); norms, squeeze-excitation
and everything else see whole host tensors, so global statistics are those of the whole
image and the result is the whole-image result for every network.
"""
from __future__ import annotations

import copy
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.geometry import _conv_padding, _pair
from .precision import Precision


def _fold_index(idx: torch.Tensor, n: int, mode: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Map indices outside 0..n-1 the way a conv's padding mode would; for zero padding
    also return the mask of indices inside."""
    if mode == "reflect":
        period = max(2 * (n - 1), 1)
        i = idx.remainder(period)
        return torch.where(i < n, i, period - i), None
    if mode == "replicate":
        return idx.clamp(0, n - 1), None
    if mode == "circular":
        return idx.remainder(n), None
    inside = (idx >= 0) & (idx < n)
    return idx.clamp(0, n - 1), inside


def _gather(x: torch.Tensor, rows: range, cols: range, mode: str) -> torch.Tensor:
    """x[..., rows, cols] with out-of-range rows/cols filled the way ``mode`` pads."""
    h, w = x.shape[-2:]
    if rows.start >= 0 and rows.stop <= h and cols.start >= 0 and cols.stop <= w:
        return x[..., rows.start:rows.stop, cols.start:cols.stop]
    ri, rmask = _fold_index(torch.arange(rows.start, rows.stop), h, mode)
    ci, cmask = _fold_index(torch.arange(cols.start, cols.stop), w, mode)
    out = x.index_select(-2, ri.to(x.device)).index_select(-1, ci.to(x.device))
    if rmask is not None:
        mask = (rmask[:, None] & cmask[None, :]).to(x.device, x.dtype)
        out = out * mask
    return out


class _DeviceConv:
    """Replaces the forward of a Conv2d / ConvTranspose2d whose input lives in host memory:
    computes the output tile by tile on ``device``, reading each tile's halo from the host."""

    def __init__(self, module: nn.Module, device: torch.device, tile: int, precision: Precision):
        self.module = module
        self.device = device
        self.tile = tile
        self.precision = precision
        self.weight = module.weight.detach().to(device)
        self.bias = module.bias.detach().to(device) if module.bias is not None else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        k, d, s = _pair(m.kernel_size), _pair(m.dilation), _pair(m.stride)
        h, w = x.shape[-2:]
        if isinstance(m, nn.ConvTranspose2d):
            p, op = _pair(m.padding), _pair(m.output_padding)
            ho = [(n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate((h, w))]
        else:
            p = _conv_padding(m)
            pe = [(2 * p[i] if m.padding != "same" else d[i] * (k[i] - 1)) for i in range(2)]
            ho = [(n + pe[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate((h, w))]
        out = torch.empty(x.shape[0], m.out_channels, ho[0], ho[1], dtype=x.dtype, device=x.device)
        for y0 in range(0, ho[0], self.tile):
            for x0 in range(0, ho[1], self.tile):
                y1, x1 = min(y0 + self.tile, ho[0]), min(x0 + self.tile, ho[1])
                if isinstance(m, nn.ConvTranspose2d):
                    tile = self._transposed_tile(x, (y0, y1), (x0, x1), k, d, s, p)
                else:
                    tile = self._conv_tile(x, (y0, y1), (x0, x1), k, d, s, p)
                out[..., y0:y1, x0:x1] = tile.to(x.device, x.dtype)
        return out

    def _conv_tile(self, x, ys, xs, k, d, s, p):
        rows = range(ys[0] * s[0] - p[0], (ys[1] - 1) * s[0] - p[0] + (k[0] - 1) * d[0] + 1)
        cols = range(xs[0] * s[1] - p[1], (xs[1] - 1) * s[1] - p[1] + (k[1] - 1) * d[1] + 1)
        mode = self.module.padding_mode if any(p) else "zeros"
        patch = _gather(x, rows, cols, mode).to(self.device)
        conv = partial(F.conv2d, weight=self.weight, bias=self.bias, stride=s, dilation=d, groups=self.module.groups)
        return self.precision(conv, patch)

    def _transposed_tile(self, x, ys, xs, k, d, s, p):
        h, w = x.shape[-2:]
        lo, hi = [], []
        for (a, b), kk, dd, ss, pp, n in zip((ys, xs), k, d, s, p, (h, w)):
            lo.append(max(0, -(-(a + pp - (kk - 1) * dd) // ss)))
            hi.append(min(n - 1, (b - 1 + pp) // ss))
        out = torch.zeros(x.shape[0], self.module.out_channels, ys[1] - ys[0], xs[1] - xs[0],
                          dtype=x.dtype, device=self.device)
        if lo[0] <= hi[0] and lo[1] <= hi[1]:
            patch = x[..., lo[0]:hi[0] + 1, lo[1]:hi[1] + 1].to(self.device)
            conv = partial(F.conv_transpose2d, weight=self.weight, bias=None, stride=s, dilation=d,
                           groups=self.module.groups)
            y = self.precision(conv, patch)
            # local output index of global output q is q - lo * s + p
            oy, ox = ys[0] - lo[0] * s[0] + p[0], xs[0] - lo[1] * s[1] + p[1]
            part = y[..., oy:oy + out.shape[-2], ox:ox + out.shape[-1]]
            out[..., :part.shape[-2], :part.shape[-1]] = part.to(out.dtype)
        if self.bias is not None:
            out += self.bias.to(out.dtype)[None, :, None, None]
        return out


def exact_runner(network: nn.Module, device: torch.device, tile: int, precision: Precision) -> nn.Module:
    """A host copy of ``network`` whose convolutions run on ``device`` in tiles of ``tile``
    output pixels; everything else (norms, squeeze-excitation, activations) runs on whole
    host tensors, so global statistics are those of the whole image."""
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    host = copy.deepcopy(network).to("cpu").eval()
    # only the convolutions run in half precision; the host parts stay in full precision
    precision = Precision(precision.dtype, device.type)
    for module in host.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.forward = _DeviceConv(module, device, tile, precision)
    return host


def run_exact(network: nn.Module, x: torch.Tensor, *, device: torch.device, tile: int,
              precision: Precision) -> torch.Tensor:
    """The whole-image result of ``network`` on ``x`` with activations in host memory and
    convolutions on ``device`` in tiles (see :func:`exact_runner`)."""
    host = exact_runner(network, device, tile, precision)
    with torch.no_grad():
        return host(x.to("cpu")).to(x.device)
