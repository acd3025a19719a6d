"""``DuRN``: a dual residual network assembled from a stem, chains of DuRBs and a tail,
with the input handling every user-facing network shares (validation, any size).

``torch.compile`` traces all of it (``forward``, the checks, the padding) without graph
breaks: the checks that look at the tensor's metadata become guards, the padding is
integer arithmetic on (symbolic) sizes, and ``min_size``, found by a dry run on first
use, is a constant to the compiler (tests/test_compile.py).
"""
from __future__ import annotations

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


def padded_size(size: int, multiple: int, min_size: int) -> int:
    """``size`` rounded up to a multiple of ``multiple``, and at least ``min_size``
    (integer arithmetic only, so that it stays exact on symbolic sizes)."""
    return max((size + multiple - 1) // multiple * multiple, min_size)


def run_any_size(core, image: torch.Tensor, multiple: int, min_size: int) -> torch.Tensor:
    """``core`` on ``image`` (N, C, H, W) or (C, H, W) of any size: mirror-pad at the bottom
    and right to a multiple of ``multiple`` and at least ``min_size``, run, crop back.

    Under ``torch.compile`` the padding is branch-free (always a gather, the identity where
    no padding is needed, and a crop), so one graph serves every size; eagerly the image
    goes straight to ``core`` when no padding is needed. Both give the same values."""
    unbatched = image.dim() == 3
    x = image.unsqueeze(0) if unbatched else image
    h, w = x.shape[-2:]
    target_h = padded_size(h, multiple, min_size)
    target_w = padded_size(w, multiple, min_size)
    if torch.compiler.is_compiling():
        # target >= size always; the Python branches below would guard on each size
        padded = x.index_select(-2, _reflect_index(h, target_h, x.device))
        padded = padded.index_select(-1, _reflect_index(w, target_w, x.device))
        out = core(padded)[..., :h, :w]
    elif (target_h, target_w) != (h, w):
        out = core(pad_bottom_right(x, target_h, target_w))[..., :h, :w]
    else:
        out = core(x)
    return out.squeeze(0) if unbatched else out


def _constant_for_compiler(fn):
    """What ``torch.compiler.assume_constant_result`` does (it only sets this marker),
    without importing ``torch._dynamo``, which pulls in triton: the networks, and so
    hubconf.py, stay pure PyTorch (tests/test_hub.py). tests/test_compile.py checks
    that the marker is still the one torch sets."""
    fn._dynamo_marked_constant = True
    return fn


@_constant_for_compiler
def _min_size_of(network: "DuRN") -> int:
    """``network.min_size``, found (by a dry run) and stored on first use. Marked constant
    for ``torch.compile``: called while tracing, it runs as plain Python (the dry run's
    hooks and fake tensors are not traced) and its result is baked into the graph."""
    if network._min_size is None:
        found = smallest_input_size(network.forward_core, network, network.in_channels, network.size_multiple)
        network._min_size = found if found is not None else network.size_multiple
    return network._min_size


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
        """Smallest H and W the bare network handles (inputs are padded up to it): found by
        a shape-only dry run on first use (cached per architecture, ``geometry.py``)."""
        # Traced code never reads ``_min_size`` itself: the compiled graph would then guard
        # on it and recompile once the first call has stored it.
        return _min_size_of(self)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
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
    """Raises for NaN or Inf values. Reading the result needs the data, so under
    ``torch.compile`` (where it would break the graph) this check is not made; the checks
    of :func:`check_image` and of dtype and device look only at the tensor's metadata and
    are made there too (they become the compiled graph's guards)."""
    if torch.compiler.is_compiling():
        return
    if not bool(torch.isfinite(image).all()):
        raise ValueError("the image contains NaN or Inf values; expected finite values in [0, 1]")
