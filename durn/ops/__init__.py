"""durn's fused operators: one contract each (see ``reference.py``), several backends.

    from durn import ops
    y = ops.fused_conv2d(x, w, b, padding=5, dilation=5, padding_mode="reflect",
                         residual=res, residual_at="post_affine", activation="relu")
    ops.available_backends()     # {"torch": (True, ...), "triton": (False, "why"), ...}
    with ops.use_backend("triton"): ...

Importing this package loads no compiled or Triton code; backends load on first use.
It imports nothing else of durn: the layers above (``durn.inference``) ask it which
backends exist and run where through the queries exported here.
"""
from __future__ import annotations

import torch

from . import library  # noqa: F401  (registers the durn:: custom ops)
from .backends import (
    BACKENDS,
    auto_backend,
    available_backends,
    backend_status,
    check_backend,
    resolve,
    runs_on,
    usable_backends,
    use_backend,
)
from .reference import ACTIVATIONS, PADDING_MODES, RESIDUAL_AT

__all__ = [
    "BACKENDS",
    "auto_backend",
    "available_backends",
    "backend_status",
    "check_backend",
    "fused_conv2d",
    "pixel_shuffle_conv2d",
    "runs_on",
    "squeeze_excitation",
    "usable_backends",
    "use_backend",
]


def _conv_args(x, weight, bias, scale, shift, residual, stride, padding, dilation, padding_mode,
               residual_at, activation, residual_alpha):
    if residual_at is None:
        residual_at = "none" if residual is None else "post_affine"
    if residual_at not in RESIDUAL_AT:
        raise ValueError(f"residual_at must be one of {RESIDUAL_AT}, got {residual_at!r}")
    if (residual is None) != (residual_at == "none"):
        raise ValueError("residual and residual_at must be given together")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    return (weight, bias, scale, shift, residual, int(stride), int(padding), int(dilation),
            padding_mode, residual_at, activation, float(residual_alpha))


def fused_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
    scale: torch.Tensor | None = None, shift: torch.Tensor | None = None,
    residual: torch.Tensor | None = None, stride: int = 1, padding: int = 0, dilation: int = 1,
    padding_mode: str = "zeros", residual_at: str | None = None, activation: str = "none",
    residual_alpha: float = 1.0, backend: str | None = None,
) -> torch.Tensor:
    """Padded conv + bias + epilogue (residual, per-channel affine, ReLU/tanh); see reference.py."""
    args = _conv_args(x, weight, bias, scale, shift, residual, stride, padding, dilation, padding_mode,
                      residual_at, activation, residual_alpha)
    return resolve("fused_conv2d", x.device, backend)(x, *args)


def pixel_shuffle_conv2d(
    x: torch.Tensor, upscale: int, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
    scale: torch.Tensor | None = None, shift: torch.Tensor | None = None,
    residual: torch.Tensor | None = None, stride: int = 1, padding: int = 0, dilation: int = 1,
    padding_mode: str = "zeros", residual_at: str | None = None, activation: str = "none",
    residual_alpha: float = 1.0, backend: str | None = None,
) -> torch.Tensor:
    """``fused_conv2d(pixel_shuffle(x, upscale), ...)`` without materialising the shuffle."""
    args = _conv_args(x, weight, bias, scale, shift, residual, stride, padding, dilation, padding_mode,
                      residual_at, activation, residual_alpha)
    return resolve("pixel_shuffle_conv2d", x.device, backend)(x, int(upscale), *args)


def squeeze_excitation(
    x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
    identity: torch.Tensor | None = None, *, backend: str | None = None,
) -> torch.Tensor:
    """Channel gating ``x * sigmoid(fc2(relu(fc1(mean(x)))))``, then ``relu(. + identity)``."""
    return resolve("squeeze_excitation", x.device, backend)(x, w1, b1, w2, b2, identity)
