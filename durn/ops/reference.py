"""Pure-PyTorch reference implementations: they *define* what every backend computes.

fused_conv2d
    ``y = conv2d(pad(x), weight, bias, stride, dilation)`` where ``pad`` is a symmetric
    pad of ``padding`` pixels, zero (``padding_mode="zeros"``) or mirror without edge
    repeat (``"reflect"``, as ``F.pad(mode="reflect")``; requires padding < H and < W).
    Then the epilogue, per output channel ``o``, in this order::

        if residual_at == "pre_affine":  y = y + residual
        if scale is not None:            y = y * scale[o]
        if shift is not None:            y = y + shift[o]
        if residual_at == "post_affine": y = y + residual
        y = act(y)                       # activation: "none" | "relu" | "tanh"
        if residual_at == "post_activation": y = residual + residual_alpha * y

    ``residual`` has the output's shape; ``residual_at`` is "none" when there is none.
    These orders are the ones DuRN needs: ``relu(BN(conv(x)) + res)`` (post_affine),
    ``relu(BN(conv(x) + x_r))`` (pre_affine), ``input ± tanh(conv(x))`` (post_activation).

pixel_shuffle_conv2d
    ``fused_conv2d(pixel_shuffle(x, upscale), ...)``: the conv reads the shuffled
    layout, so an implementation need not materialise the shuffled tensor.

squeeze_excitation
    ``g = sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2)``; ``y = x * g[:, :, None, None]``;
    with ``identity`` (the SE-ResNet block's shortcut): ``y = relu(y + identity)``.
    W1: (hidden, C), W2: (C, hidden).

Shapes: x (N, C, H, W); weight (O, C, k, k) with odd or even k <= 11, dilation <= 12,
stride 1 or 2. Every tensor argument shares x's dtype and device. Outputs are
contiguous in the memory format of ``x`` (NCHW or channels_last).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

RESIDUAL_AT = ("none", "pre_affine", "post_affine", "post_activation")
ACTIVATIONS = ("none", "relu", "tanh")
PADDING_MODES = ("zeros", "reflect")


def _activate(y: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return torch.relu(y)
    if activation == "tanh":
        return torch.tanh(y)
    return y


def epilogue(
    y: torch.Tensor,
    scale: torch.Tensor | None,
    shift: torch.Tensor | None,
    residual: torch.Tensor | None,
    residual_at: str,
    activation: str,
    residual_alpha: float,
) -> torch.Tensor:
    if residual_at == "pre_affine":
        y = y + residual
    if scale is not None:
        y = y * scale[:, None, None]
    if shift is not None:
        y = y + shift[:, None, None]
    if residual_at == "post_affine":
        y = y + residual
    y = _activate(y, activation)
    if residual_at == "post_activation":
        y = residual + residual_alpha * y
    return y


def fused_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    padding_mode: str = "zeros",
    residual_at: str = "none",
    activation: str = "none",
    residual_alpha: float = 1.0,
) -> torch.Tensor:
    if padding_mode == "reflect" and padding > 0:
        x = F.pad(x, (padding,) * 4, mode="reflect")
        padding = 0
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    return epilogue(y, scale, shift, residual, residual_at, activation, residual_alpha)


def pixel_shuffle_conv2d(
    x: torch.Tensor,
    upscale: int,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    padding_mode: str = "zeros",
    residual_at: str = "none",
    activation: str = "none",
    residual_alpha: float = 1.0,
) -> torch.Tensor:
    return fused_conv2d(
        F.pixel_shuffle(x, upscale), weight, bias, scale, shift, residual,
        stride, padding, dilation, padding_mode, residual_at, activation, residual_alpha,
    )


def squeeze_excitation(
    x: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    identity: torch.Tensor | None = None,
) -> torch.Tensor:
    squeezed = x.mean(dim=(2, 3))
    gate = torch.sigmoid(F.linear(torch.relu(F.linear(squeezed, w1, b1)), w2, b2))
    y = x * gate[:, :, None, None]
    return torch.relu(y + identity) if identity is not None else y
