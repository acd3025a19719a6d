"""The dual residual block (DuRB) and its four instances from the paper.

A DuRB maps ``(x, res)`` to ``(x, res)``::

    x_r = x
    x = relu(n1(c1(x))); x = relu(n2(c2(x) + x_r))      # the block's own residual pair
    x = relu(t1_post(t1(x) + res)); res = x             # T1 joins the incoming res
    x = relu(t2_post(t2(x) + x_r))                       # T2 joins the block input
    return x, res

``t1`` and ``t2`` are any modules (the paper's point: paired operations such as
up/down-sampling or large/small kernels). ``t1_post``/``t2_post`` are the norms that
some variants apply *after* the residual addition (DuRB-U); norms before the
addition belong inside ``t1``/``t2``.

``connection`` selects the wiring of the paper's Fig. 1 for the Table 1 ablation:

* ``"dual"`` (Fig. 1d, default): T1's output is added to the ``res`` of the previous
  block, so ``f_i`` pairs with every ``g_j`` with ``j >= i``.
* ``"paired"`` (Fig. 1b): ``x = relu(t2_post(t2(relu(t1_post(t1(x))))) + x_r)``; ``res``
  passes through untouched, so ``f_i`` pairs only with ``g_i``.
* ``"separate"`` (Fig. 1c): T1 and T2 each get their own identity shortcut
  (``h = relu(t1_post(t1(x) + x)); x = relu(t2_post(t2(h) + h))``), so any ``f_i`` and
  ``g_j`` meet, in either order. T1 must keep the tensor's shape for this wiring.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv import styled_conv
from .norms import make_norm
from .squeeze_excitation import SEBasicBlock

CONNECTIONS = ("dual", "paired", "separate")


class DualResidualBlock(nn.Module):
    def __init__(
        self,
        channels: int,
        t1: nn.Module,
        t2: nn.Module,
        *,
        padding: str = "reflect",
        norm: str | None = None,
        t1_post: nn.Module | None = None,
        t2_post: nn.Module | None = None,
        connection: str = "dual",
    ):
        super().__init__()
        if connection not in CONNECTIONS:
            raise ValueError(f"connection must be one of {CONNECTIONS}, got {connection!r}")
        self.connection = connection
        self.conv1 = styled_conv(channels, channels, 3, style=padding)
        self.norm1 = make_norm(norm, channels)
        self.conv2 = styled_conv(channels, channels, 3, style=padding)
        self.norm2 = make_norm(norm, channels)
        self.t1 = t1
        self.t1_post = t1_post if t1_post is not None else nn.Identity()
        self.t2 = t2
        self.t2_post = t2_post if t2_post is not None else nn.Identity()

    def forward(self, x: torch.Tensor, res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_r = x
        x = F.relu(self.norm1(self.conv1(x)))
        x = F.relu(self.norm2(self.conv2(x) + x_r))
        if self.connection == "dual":
            x = F.relu(self.t1_post(self.t1(x) + res))
            res = x
            x = F.relu(self.t2_post(self.t2(x) + x_r))
        elif self.connection == "paired":
            x = F.relu(self.t1_post(self.t1(x)))
            x = F.relu(self.t2_post(self.t2(x) + x_r))
        else:
            t1_out = self.t1(x)
            if t1_out.shape != x.shape:
                raise ValueError(
                    "connection='separate' gives T1 an identity shortcut, so T1 must keep the "
                    f"shape of its input; T1 maps {tuple(x.shape)} to {tuple(t1_out.shape)}"
                )
            x = F.relu(self.t1_post(t1_out + x))
            x = F.relu(self.t2_post(self.t2(x) + x))
        return x, res

    def extra_repr(self) -> str:
        return f"connection={self.connection!r}"


class DualResidualChain(nn.ModuleList):
    """Blocks applied in order, threading ``(x, res)`` through them."""

    def forward(self, x: torch.Tensor, res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self:
            x, res = block(x, res)
        return x, res


def durb_p(
    channels: int, k1: int, k2: int, dilation: int = 1, *, padding: str = "reflect",
    norm: str | None = None, connection: str = "dual",
) -> DualResidualBlock:
    """DuRB-P: T1 = conv(k1, dilation) -> norm, T2 = conv(k2) -> norm (paired kernel sizes)."""
    t1 = nn.Sequential(
        styled_conv(channels, channels, k1, style=padding, dilation=dilation), make_norm(norm, channels)
    )
    t2 = nn.Sequential(styled_conv(channels, channels, k2, style=padding), make_norm(norm, channels))
    return DualResidualBlock(channels, t1, t2, padding=padding, norm=norm, connection=connection)


def durb_s(
    channels: int, k1: int, k2: int, dilation: int = 1, *, se_hidden: int, padding: str = "reflect",
    norm: str | None = "batch", connection: str = "dual",
) -> DualResidualBlock:
    """DuRB-S: T1 = conv(k1, dilation) -> norm, T2 = SE-ResNet block -> conv(k2) -> norm."""
    t1 = nn.Sequential(
        styled_conv(channels, channels, k1, style=padding, dilation=dilation), make_norm(norm, channels)
    )
    t2 = nn.Sequential(
        SEBasicBlock(channels, se_hidden, norm=True),
        styled_conv(channels, channels, k2, style=padding),
        make_norm(norm, channels),
    )
    return DualResidualBlock(channels, t1, t2, padding=padding, norm=norm, connection=connection)


def durb_u(
    channels: int, kernel: int, dilation: int = 1, *, padding: str = "mixed", norm: str | None = "instance",
    connection: str = "dual",
) -> DualResidualBlock:
    """DuRB-U: T1 up-samples (1x1 conv to 2C -> norm -> PixelShuffle(2) -> conv on C/2 channels),
    T2 down-samples (stride-2 3x3 conv C/2 -> C); both norms sit after the residual addition."""
    half = channels // 2
    t1 = nn.Sequential(
        styled_conv(channels, 2 * channels, 1, style=padding),
        make_norm(norm, 2 * channels),
        nn.PixelShuffle(2),
        styled_conv(half, half, kernel, style=padding, dilation=dilation),
    )
    t2 = styled_conv(half, channels, 3, style=padding, stride=2)
    return DualResidualBlock(
        channels, t1, t2, padding=padding, norm=norm,
        t1_post=make_norm(norm, half), t2_post=make_norm(norm, channels), connection=connection,
    )


def durb_us(
    channels: int, kernel: int, *, se_hidden: int = 32, padding: str = "mixed", connection: str = "dual",
) -> DualResidualBlock:
    """DuRB-US: T1 up-samples (3x3 conv to 4C -> PixelShuffle(2) -> conv(kernel)), T2 is an
    SE-ResNet block (no norms) followed by a stride-2 3x3 conv. No norms anywhere."""
    t1 = nn.Sequential(
        styled_conv(channels, 4 * channels, 3, style=padding),
        nn.PixelShuffle(2),
        styled_conv(channels, channels, kernel, style=padding),
    )
    t2 = nn.Sequential(
        SEBasicBlock(channels, se_hidden, norm=False),
        styled_conv(channels, channels, 3, style=padding, stride=2),
    )
    return DualResidualBlock(channels, t1, t2, padding=padding, norm=None, connection=connection)
