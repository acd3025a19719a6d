"""``Traceable``: a DuRN with its any-size input handling written for whole-graph export.

``DuRN.forward`` mirror-pads its input at the bottom and right to a multiple of
``size_multiple`` (and to at least ``min_size``), runs ``forward_core`` and crops back.
Under ``torch.compile`` that padding is integer arithmetic on symbolic sizes, and the
graph's guards are checked at run time (a failed one recompiles). ``torch.export`` and
the ONNX exporter built on it have no such second chance: every guard must hold for every
size in the exported range, and the export fails where the symbolic-shape engine cannot
prove one. Two such cases in ``durn.nn.network.run_any_size``:

* the padded size ``max(round_up(h, m), min_size)`` loses the fact that it is a multiple
  of ``m``, which the stride-2 / pixel-shuffle shape equalities of durn_u, durn_us and
  durn_s_p need; written ``m * max(min_size // m, ceil(h / m))`` it is one by construction;
* the crop ``out[..., :h, :w]`` guards on ``h <= padded`` and ``h != padded``; a gather of
  rows ``0..h-1`` (``index_select``) needs neither.

And the ONNX translation of ``aten.remainder`` takes no symbolic divisor, so the mirror
index's period is a 0-d tensor here. The values are those of ``DuRN.forward`` (the same
mirror indices, the same crop), with no Python branch on a size: one graph for every
batch size and every height and width >= 2.

The wrapper also fixes the interface of every exported file: input ``image`` and output
``restored`` are float32 (N, C, H, W), values in [0, 1] (the output is not clamped);
with ``dtype=torch.float16`` the weights and the computation are float16, with a cast at
each end, except the layers that reduce over the whole image, the instance norms of
durn_u and the squeeze-excitation pooling of durn_s, durn_us and durn_s_p: in float16
their eps (1e-9) is 0, so a flat channel would give 0 / 0, and a sum over a large image
exceeds float16's range (65504) in runtimes that accumulate in the input's precision.
They run in float32 (:class:`InFloat32`).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..nn import DuRN
from ..nn.norms import DuRNInstanceNorm
from ..nn.squeeze_excitation import SqueezeExcitation

__all__ = ["FLOAT32_LAYERS", "InFloat32", "Traceable", "mirror_index"]

# Layers that reduce over the whole image: float32 in a float16 network.
FLOAT32_LAYERS = (DuRNInstanceNorm, SqueezeExcitation)


def mirror_index(n, length: int, device: torch.device) -> torch.Tensor:
    """Indices ``0..length-1`` folded into ``0..n-1`` by repeated mirror reflection (edge not
    repeated), for ``n >= 2``: the padding of ``durn.nn.network.pad_bottom_right``."""
    i = torch.arange(length, device=device)
    period = torch.full((), 2 * (n - 1), dtype=i.dtype, device=device)
    i = torch.remainder(i, period)
    return torch.where(i < n, i, period - i)


def check_network(model) -> DuRN:
    """``model`` if it is an eager :class:`durn.nn.DuRN`, else a TypeError that says what to pass."""
    if isinstance(model, DuRN):
        return model
    if isinstance(model, nn.Module) and hasattr(model, "forward_core"):
        raise TypeError(
            f"{type(model).__name__} is durn's fused fast path (optimize_for_inference), whose custom "
            "operators do not export; export the eager network (durn.get_model(...)) instead"
        )
    raise TypeError(f"expected a DuRN network (durn.get_model(...)) or a network name, got {type(model).__name__}")


class InFloat32(nn.Module):
    """``module`` (kept in float32) on a float32 copy of its input; the result comes back
    in the input's dtype."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.float()).to(x.dtype)


def _reductions_in_float32(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, FLOAT32_LAYERS):
            setattr(module, name, InFloat32(child))
        else:
            _reductions_in_float32(child)


class Traceable(nn.Module):
    """``network`` (a copy: the caller's module is not changed) on the CPU in eval mode and
    ``dtype``, called on float32 (N, C, H, W) images of any size as described above."""

    def __init__(self, network: DuRN, dtype: torch.dtype = torch.float32):
        super().__init__()
        check_network(network)
        if dtype not in (torch.float32, torch.float16):
            raise ValueError(f"dtype must be torch.float32 or torch.float16, got {dtype}")
        min_size = network.min_size  # the dry run, eagerly: it cannot run while exporting
        self.network = copy.deepcopy(network).to(device="cpu", dtype=dtype).eval()
        self.network.check_inputs = False
        if dtype != torch.float32:
            _reductions_in_float32(self.network)
        self.dtype = dtype
        self.multiple = int(network.size_multiple)
        self.min_size = int(min_size)
        self.min_blocks = -(-self.min_size // self.multiple)  # the smallest padded size, in multiples

    @property
    def in_channels(self) -> int:
        return self.network.in_channels

    def padded_size(self, size):
        """``size`` rounded up to a multiple of ``multiple``, and at least ``min_size``:
        ``durn.nn.network.padded_size``, written as a multiple of ``multiple`` where
        ``min_size`` is one (as the dry run always finds it)."""
        m = self.multiple
        if self.min_size % m:  # a hand-set min_size: the same value, which the exporter may not prove
            return max((size + m - 1) // m * m, self.min_size)
        return m * max(self.min_blocks, (size + m - 1) // m)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2], image.shape[-1]
        x = image.to(self.dtype)
        x = x.index_select(2, mirror_index(h, self.padded_size(h), x.device))
        x = x.index_select(3, mirror_index(w, self.padded_size(w), x.device))
        y = self.network.forward_core(x)
        y = y.index_select(2, torch.arange(h, device=y.device))
        y = y.index_select(3, torch.arange(w, device=y.device))
        return y.to(torch.float32)
