"""The direct convolution with an in-place epilogue, in pure PyTorch.

Computes exactly what ``reference.fused_conv2d`` computes (same conv call, same epilogue
order), but works on the conv's fresh output in place: the bias rides in the conv call,
``relu(y + residual)`` is one fused pass (``aten::_add_relu``) and nothing else is
allocated. ``durn.optimize_for_inference`` runs it as the "direct" algorithm of the
"torch" backend; the reference stays the readable definition.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_ADD_RELU = getattr(torch.ops.aten, "_add_relu_", None)


def add_relu_(y: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``relu(y + other)`` into ``y``: one pass on CPU (``aten::_add_relu_``, float32 and
    float64 only: for bfloat16 it fails an internal assert in torch 2.13), two elsewhere."""
    if _ADD_RELU is not None and y.device.type == "cpu" and other.shape == y.shape and \
            y.dtype in (torch.float32, torch.float64):
        return _ADD_RELU(y, other)
    return y.add_(other).relu_()


def direct_fused_conv2d(
    x, weight, bias=None, scale=None, shift=None, residual=None, stride=1, padding=0, dilation=1,
    padding_mode="zeros", residual_at="none", activation="none", residual_alpha=1.0, upscale=1,
):
    """``reference.fused_conv2d`` (``pixel_shuffle_conv2d`` when ``upscale`` > 1), in place."""
    if upscale > 1:
        x = F.pixel_shuffle(x, upscale)
    if padding_mode == "reflect" and padding > 0:
        x = F.pad(x, (padding,) * 4, mode="reflect")
        padding = 0
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    if residual_at == "pre_affine":
        y.add_(residual)
    if scale is not None:
        if shift is not None:
            torch.addcmul(shift[:, None, None], y, scale[:, None, None], out=y)
        else:
            y.mul_(scale[:, None, None])
    elif shift is not None:
        y.add_(shift[:, None, None])
    if residual_at == "post_affine":
        if activation == "relu":
            return add_relu_(y, residual)
        y.add_(residual)
    if activation == "relu":
        y.relu_()
    elif activation == "tanh":
        y.tanh_()
    if residual_at == "post_activation":
        torch.add(residual, y, alpha=residual_alpha, out=y)
    return y
