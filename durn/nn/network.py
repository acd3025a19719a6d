"""``DuRN``: a dual residual network assembled from a stem, chains of DuRBs and a tail,
with the input handling every user-facing network shares (validation, any size)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .block import DualResidualChain
from .geometry import smallest_input_size


def _reflect_index(n: int, length: int, device: torch.device) -> torch.Tensor:
    """Indices 0..length-1 folded into 0..n-1 by repeated mirror reflection (edge not repeated)."""
    i = torch.arange(length, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = i % period
    return torch.where(i < n, i, period - i)


def pad_bottom_right(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Mirror-pad ``x`` (…, H, W) at the bottom and right to ``height`` x ``width``, any amount."""
    h, w = x.shape[-2:]
    if height > h:
        x = x.index_select(-2, _reflect_index(h, height, x.device))
    if width > w:
        x = x.index_select(-1, _reflect_index(w, width, x.device))
    return x


def run_any_size(core, image: torch.Tensor, multiple: int, min_size: int) -> torch.Tensor:
    """``core`` on ``image`` (N, C, H, W) or (C, H, W) of any size: mirror-pad at the bottom
    and right to a multiple of ``multiple`` and at least ``min_size``, run, crop back."""
    unbatched = image.dim() == 3
    x = image.unsqueeze(0) if unbatched else image
    h, w = x.shape[-2:]
    target_h = max(math.ceil(h / multiple) * multiple, min_size)
    target_w = max(math.ceil(w / multiple) * multiple, min_size)
    if (target_h, target_w) != (h, w):
        out = core(pad_bottom_right(x, target_h, target_w))[..., :h, :w]
    else:
        out = core(x)
    return out.squeeze(0) if unbatched else out


class DuRN(nn.Module):
    """A dual residual network: ``res = stem(input); x = entry(res)``; each stage is a
    :class:`DualResidualChain` (every stage after the first restarts with ``res = x``);
    ``out = input ± tanh(tail(x))``.

    Calling the module accepts float tensors (N, C, H, W) or (C, H, W) of any H, W >= 2:
    it pads (mirror, bottom/right) to ``size_multiple`` and to the smallest size the
    reflection pads allow, runs, and crops back. ``forward_core`` is the bare function
    with no checks and no padding.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: Sequence[DualResidualChain],
        tail: nn.Module,
        *,
        in_channels: int,
        entry: nn.Module | None = None,
        subtract_residual: bool = False,
        size_multiple: int = 1,
        channel_order: str | None = None,
    ):
        super().__init__()
        self.stem = stem
        self.entry = entry if entry is not None else nn.Identity()
        self.stages = nn.ModuleList(stages)
        self.tail = tail
        self.in_channels = in_channels
        self.subtract_residual = subtract_residual
        self.size_multiple = size_multiple
        # Channel order the loaded weights expect ("RGB", "BGR" or "L"); the restoration
        # API converts to it. The network itself never reorders channels.
        self.channel_order = channel_order or ("L" if in_channels == 1 else "RGB")
        self.check_inputs = True
        self._min_size: int | None = None

    def forward_core(self, image: torch.Tensor) -> torch.Tensor:
        res = self.stem(image)
        x = self.entry(res)
        for i, stage in enumerate(self.stages):
            x, _ = stage(x, res if i == 0 else x)
        residual = torch.tanh(self.tail(x))
        return image - residual if self.subtract_residual else image + residual

    @torch.no_grad()
    def zero_residual_(self) -> "DuRN":
        """Zero the tail's last convolution (weights and bias), so that the network starts
        as the identity (``tanh(0) = 0``: output = input) with the checkpoint layout
        unchanged; training then learns only the correction. Returns ``self``."""
        convs = [m for m in self.tail.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        if not convs:
            raise ValueError("the tail has no convolution to zero")
        convs[-1].weight.zero_()
        if convs[-1].bias is not None:
            convs[-1].bias.zero_()
        return self

    @property
    def min_size(self) -> int:
        """Smallest H and W the bare network handles (inputs are padded up to it)."""
        if self._min_size is None:
            found = smallest_input_size(self.forward_core, self, self.in_channels, self.size_multiple)
            self._min_size = found if found is not None else self.size_multiple
        return self._min_size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.check_inputs and not torch.compiler.is_compiling():
            self._check(image)
        return run_any_size(self.forward_core, image, self.size_multiple, self.min_size)

    def _check(self, image: torch.Tensor) -> None:
        check_image(image, self.in_channels, self.channel_order)
        param = next(self.parameters(), None)
        if param is not None:
            if image.dtype != param.dtype:
                raise ValueError(
                    f"the image is {image.dtype} but the network's weights are {param.dtype}; "
                    f"convert one of them (image.to({param.dtype}) or model.to({image.dtype}))"
                )
            if image.device != param.device:
                raise ValueError(
                    f"the image is on {image.device} but the network is on {param.device}; "
                    "move one of them with .to(device)"
                )
        check_finite(image)


def check_image(image: torch.Tensor, in_channels: int, channel_order: str) -> None:
    """What every network entry point requires of an image: a float tensor (N, C, H, W) or
    (C, H, W) with ``in_channels`` channels and at least 2 x 2 pixels."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(image).__name__}")
    if image.dim() not in (3, 4):
        raise ValueError(
            f"expected a tensor of shape (N, C, H, W) or (C, H, W), got shape {tuple(image.shape)}"
        )
    if not image.is_floating_point():
        raise ValueError(
            f"expected a floating-point image in [0, 1], got dtype {image.dtype}; "
            "convert with image.float() / 255 (8-bit) or / 65535 (16-bit)"
        )
    c = image.shape[-3]
    if c != in_channels:
        raise ValueError(
            f"expected {in_channels} channel{'s' if in_channels > 1 else ''} ({channel_order}) "
            f"in dimension {image.dim() - 3}, got {c} (shape {tuple(image.shape)})"
        )
    if image.numel() == 0:
        raise ValueError(f"expected a non-empty image, got shape {tuple(image.shape)}")
    h, w = image.shape[-2:]
    if h < 2 or w < 2:
        raise ValueError(f"expected an image of at least 2 x 2 pixels, got {h} x {w}")


def check_finite(image: torch.Tensor) -> None:
    if not bool(torch.isfinite(image).all()):
        raise ValueError("the image contains NaN or Inf values; expected finite values in [0, 1]")
