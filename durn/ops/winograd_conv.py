"""Winograd minimal filtering F(m x m, k x k): ``fused_conv2d`` for small kernels.

For a correlation ``y_i = sum_j d_{i+j} g_j`` with ``m`` outputs and ``k`` taps, Toom-Cook
over ``n = m + k - 1`` points gives ``y = A^T [(G g) * (B^T d)]`` with ``A^T = V_m^T``,
``G = V_k``, ``B^T = V^{-T}`` where ``V_j`` evaluates polynomials of degree < ``j`` at the
points (the point at infinity reads the leading coefficient) and ``V = V_n``; this is the
transpose of the Toom-Cook polynomial product. In 2-D the transform is applied along
both axes, so a ``T x T`` tile (``T = n``) yields ``m x m`` outputs with ``T^2``
multiplications per channel pair instead of ``m^2 k^2``: F(4x4, 3x3) does 36 instead of
144. The price is float rounding amplified by the transform (tests/test_fft_conv.py).
"""
from __future__ import annotations

import functools
from fractions import Fraction

import torch

from .transform_conv import TransformConv2d, TransformMatrices, check_transform_args, real_constants

# Interpolation points (besides infinity) per number of outputs, chosen for small
# float error: 0, +-1, then +-1/2 (whose powers shrink) before +-2.
POINTS = {
    2: (0, 1, -1),
    4: (0, 1, -1, Fraction(1, 2), -2),
    6: (0, 1, -1, Fraction(1, 2), Fraction(-1, 2), 2, -2),
}


def _evaluation(points, degree: int) -> torch.Tensor:
    rows = [[float(Fraction(p) ** i) for i in range(degree)] for p in points]
    rows.append([0.0] * (degree - 1) + [1.0])  # the point at infinity
    return torch.tensor(rows, dtype=torch.float64)


@real_constants
@functools.lru_cache(maxsize=16)
def winograd_matrices(outputs: int, kernel: int) -> TransformMatrices:
    """F(outputs, kernel) as ``TransformMatrices`` (tile = outputs + kernel - 1)."""
    if kernel != 3 or outputs not in POINTS:
        raise ValueError(f"Winograd F({outputs}, {kernel}) is not provided; kernel 3, outputs in {sorted(POINTS)}")
    n = outputs + kernel - 1
    points = POINTS[outputs]
    a_t = _evaluation(points, outputs).T.contiguous()           # (m, n)
    b_t = torch.linalg.inv(_evaluation(points, n)).T.contiguous()  # (n, n)
    return TransformMatrices("winograd", n, kernel, 1, n, n, b_t, b_t, a_t, a_t)


def winograd_spectrum(weight: torch.Tensor, matrices: TransformMatrices) -> torch.Tensor:
    """``(1, T*T, C, O)`` float64: ``G g G^T`` per channel pair."""
    points = POINTS[matrices.out]
    g = _evaluation(points, matrices.kernel).to(weight.device)          # (n, k)
    w = weight.detach().to(torch.float64)                                # (O, C, k, k)
    u = torch.matmul(torch.matmul(g, w), g.T)                            # (O, C, n, n)
    return u.permute(2, 3, 1, 0).reshape(1, matrices.tile * matrices.tile, w.shape[1], w.shape[0])


def winograd_conv(weight: torch.Tensor, dilation: int = 1, outputs: int = 4) -> TransformConv2d:
    """A ``TransformConv2d`` computing F(outputs x outputs, 3x3) for ``weight`` (O, C, 3, 3)."""
    k = weight.shape[-1]
    if k != 3:
        raise ValueError(f"Winograd convolution is implemented for 3x3 kernels, got {k}x{k}")
    matrices = winograd_matrices(outputs, k)
    return TransformConv2d(weight, dilation, matrices, winograd_spectrum(weight, matrices))


def winograd_fused_conv2d(
    x, weight, bias=None, scale=None, shift=None, residual=None, stride=1, padding=0, dilation=1,
    padding_mode="zeros", residual_at="none", activation="none", residual_alpha=1.0, *, outputs=4,
):
    """``reference.fused_conv2d`` for 3x3 kernels computed with Winograd F(outputs, 3)."""
    check_transform_args(x, weight, stride, padding, dilation, padding_mode, residual_at, activation)
    plan = winograd_conv(weight.to(x.dtype), dilation, outputs)
    return plan(x, bias, scale, shift, residual, padding, padding_mode, residual_at, activation, residual_alpha)
