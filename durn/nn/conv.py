"""Convolutions in the two padding styles of the DuRN networks.

"reflect" (the spec's R-pad): every conv reflection-pads d*(k-1)/2 on each side.
"mixed" (M-pad): reflection padding for undilated convs, zero padding for dilated ones.
Both are plain ``nn.Conv2d`` modules (``padding_mode="reflect"`` pads exactly like the
authors' separate ReflectionPad2d followed by an unpadded conv).
"""
from __future__ import annotations

from torch import nn

PADDING_STYLES = ("reflect", "mixed")


def check_padding_style(style: str) -> str:
    if style not in PADDING_STYLES:
        raise ValueError(f"padding style must be one of {PADDING_STYLES}, got {style!r}")
    return style


def styled_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    style: str,
    dilation: int = 1,
    stride: int = 1,
    bias: bool = True,
) -> nn.Conv2d:
    """A k x k conv that keeps H x W at stride 1, padded the way ``style`` says."""
    check_padding_style(style)
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd to keep the image size, got {kernel_size}")
    pad = dilation * (kernel_size - 1) // 2
    mode = "zeros" if (style == "mixed" and dilation > 1) else "reflect"
    if pad == 0:
        mode = "zeros"
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=pad,
        dilation=dilation,
        bias=bias,
        padding_mode=mode,
    )


def zero_padded_conv(
    in_channels: int, out_channels: int, kernel_size: int, *, padding: int, stride: int = 1, bias: bool = True
) -> nn.Conv2d:
    """The spec's "zero pad p" layers: plain convs whatever the network's style."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
