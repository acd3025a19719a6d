"""The optimized network: DuRN's chains, blocks and input handling around fused layers.

A :class:`Chain` runs fused layers in order and, where its pattern allows, absorbs the
way it meets a residual (:class:`Join`) into its last conv's epilogue. The network's
stages stay chains of blocks (:class:`durn.nn.DualResidualChain`), now of
:class:`FusedDualResidualBlock`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from ..nn import DuRNInstanceNorm
from ..nn.network import check_finite, check_image, run_any_size
from ..ops.direct_conv import add_relu_
from .fused_conv import FusedConv2d, FusedConvInstanceNorm, fold_batch_norm, make_conv, set_buffer


class Join(nn.Module):
    """How a chain meets its residual: ``relu(post(y + residual))`` (``with_residual=False``:
    ``relu(post(y))``); ``post`` is a norm module or Identity."""

    def __init__(self, post: nn.Module | None, with_residual: bool = True):
        super().__init__()
        self.post = post if post is not None and not isinstance(post, nn.Identity) else None
        self.with_residual = with_residual

    def forward(self, y: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        if self.with_residual:
            y = y + residual
        if self.post is not None:
            y = self.post(y)
        return torch.relu(y)


class Chain(nn.Module):
    """Stages applied in order; the join is absorbed into the last stage's epilogue where
    its pattern allows, else applied after it."""

    def __init__(self, stages: list[nn.Module], join: Join | None = None):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.join = None
        self.absorbed = False
        if join is not None:
            self.absorbed = self._absorb(join)
            if not self.absorbed:
                self.join = join

    def _absorb(self, join: Join) -> bool:
        if not self.stages:
            return False
        last = self.stages[-1]
        post, res = join.post, join.with_residual
        if isinstance(last, FusedConv2d) and last.is_bare():
            if post is None:
                last.set_epilogue(residual_at="post_affine" if res else "none", activation="relu")
                return True
            if isinstance(post, nn.BatchNorm2d) and post.track_running_stats and post.running_mean is not None:
                scale, shift = fold_batch_norm(post)
                if not res:  # relu(bn(y)): fold into the affine
                    s0 = last.scale.double() if last.scale is not None else torch.ones_like(scale)
                    t0 = last.shift.double() if last.shift is not None else torch.zeros_like(shift)
                    last.set_epilogue(activation="relu", scale=s0 * scale, shift=t0 * scale + shift)
                    return True
                if last.scale is None and last.shift is None:
                    last.set_epilogue(residual_at="pre_affine", activation="relu", scale=scale, shift=shift)
                    return True
                return False
            if isinstance(post, DuRNInstanceNorm):
                last.bias = None  # instance norm removes per-channel constants
                if res:
                    last.set_epilogue(residual_at="post_affine")
                self.stages[-1] = FusedConvInstanceNorm(last, post, residual="pre_norm" if res else "none",
                                                        relu=True)
                return True
            return False
        if isinstance(last, FusedConvInstanceNorm) and not last.relu and last.residual == "none" and post is None:
            last.residual, last.relu = ("post_norm" if res else "none"), True
            return True
        return False

    def absorb_output(self, sign: float) -> bool:
        """Fold DuRN's ``image + sign * tanh(y)`` into the last conv; True when done."""
        if self.stages and isinstance(self.stages[-1], FusedConv2d) and self.stages[-1].is_bare():
            self.stages[-1].set_epilogue(residual_at="post_activation", activation="tanh", residual_alpha=sign)
            self.absorbed = True
            return True
        return False

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        last = len(self.stages) - 1
        for i, stage in enumerate(self.stages):
            x = stage(x, residual) if i == last and self.absorbed else stage(x)
        if self.join is not None:
            x = self.join(x, residual)
        return x


class FusedSEBlock(nn.Module):
    """SEBasicBlock: conv-BN-ReLU, conv-BN, then ``squeeze_excitation`` with the shortcut."""

    def __init__(self, block, *, backend: str | None = None, names: dict | None = None):
        super().__init__()
        names = names or {}
        self.conv1 = make_conv(block.conv1, _bn(block.bn1), True, backend=backend,
                               source=names.get(id(block.conv1), ""))
        self.conv2 = make_conv(block.conv2, _bn(block.bn2), False, backend=backend,
                               source=names.get(id(block.conv2), ""))
        fc1, fc2 = block.se.fc[0], block.se.fc[2]
        like = self.conv1.weight
        set_buffer(self, "w1", fc1.weight.detach(), like)
        set_buffer(self, "b1", fc1.bias.detach() if fc1.bias is not None else torch.zeros(fc1.out_features), like)
        set_buffer(self, "w2", fc2.weight.detach(), like)
        set_buffer(self, "b2", fc2.bias.detach() if fc2.bias is not None else torch.zeros(fc2.out_features), like)
        self.backend = backend or ops.auto_backend("squeeze_excitation", like.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        if self.backend == "torch":
            gate = torch.sigmoid(F.linear(torch.relu(F.linear(y.mean(dim=(2, 3)), self.w1, self.b1)),
                                          self.w2, self.b2))
            y.mul_(gate[:, :, None, None])
            return add_relu_(y, x)
        return ops.squeeze_excitation(y, self.w1, self.b1, self.w2, self.b2, x, backend=self.backend)


def _bn(norm: nn.Module) -> nn.Module | None:
    return norm if isinstance(norm, nn.BatchNorm2d) else None


class FusedDualResidualBlock(nn.Module):
    """A DuRB as four chains: the 3x3 pair (``second`` joins ``x_r``), T1 and T2."""

    def __init__(self, connection: str, first: Chain, second: Chain, t1: Chain, t2: Chain):
        super().__init__()
        self.connection = connection
        self.first, self.second, self.t1, self.t2 = first, second, t1, t2

    def extra_repr(self) -> str:
        return f"connection={self.connection!r}"

    def forward(self, x: torch.Tensor, res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_r = x
        x = self.second(self.first(x), x_r)
        if self.connection == "dual":
            x = self.t1(x, res)
            res = x
            x = self.t2(x, x_r)
        elif self.connection == "paired":
            x = self.t1(x)
            x = self.t2(x, x_r)
        else:
            h = self.t1(x, x)
            x = self.t2(h, h)
        return x, res


class FusedDuRN(nn.Module):
    """The inference-only network ``optimize_for_inference`` returns: the DuRN's input
    handling around fused stem, stages and tail."""

    def __init__(self, model, stem: Chain, entry: Chain, stages: nn.ModuleList, tail: Chain, output_fused: bool):
        super().__init__()
        self.stem, self.entry, self.stages, self.tail = stem, entry, stages, tail
        self.output_fused = output_fused
        self.in_channels = model.in_channels
        self.channel_order = model.channel_order
        self.size_multiple = model.size_multiple
        self.subtract_residual = model.subtract_residual
        self.check_inputs = model.check_inputs
        self.min_size = model.min_size
        self.channels_last = False
        self.tuning_report: dict[str, dict[str, float]] = {}
        self.tuning_defaulted: list[str] = []

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, channels_last={self.channels_last}"

    def set_channels_last(self, flag: bool) -> None:
        self.channels_last = bool(flag)

    def fused_convs(self) -> list[FusedConv2d]:
        return [m for m in self.modules() if isinstance(m, FusedConv2d)]

    def algorithm_choices(self) -> dict[str, str]:
        """``{layer: algorithm}`` (layer: the conv's name in the original model); pass it
        back as ``optimize_for_inference(..., algorithms=choices)`` to skip measuring."""
        return {m.source: (m.algorithm if m.algorithm != "direct" else f"direct:{m.backend}")
                for m in self.fused_convs()}

    def train(self, mode: bool = True):
        if mode:
            raise RuntimeError("an optimize_for_inference module is inference-only; train the original model")
        return super().train(False)

    def forward_core(self, image: torch.Tensor) -> torch.Tensor:
        x_in = image.contiguous(memory_format=torch.channels_last) if self.channels_last else image
        res = self.stem(x_in)
        x = self.entry(res)
        for i, stage in enumerate(self.stages):
            x, _ = stage(x, res if i == 0 else x)
        if self.output_fused:
            return self.tail(x, x_in)
        y = torch.tanh(self.tail(x))
        return x_in - y if self.subtract_residual else x_in + y

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
            # Under torch.compile the metadata checks become guards; check_finite is eager-only.
            check_image(image, self.in_channels, self.channel_order)
            check_finite(image)
            self._check_like_buffers(image)
        out = run_any_size(self.forward_core, image, self.size_multiple, self.min_size)
        if self.channels_last and not _channels_last(image if image.dim() == 4 else image.unsqueeze(0)):
            out = out.contiguous()
        return out

    def _check_like_buffers(self, image: torch.Tensor) -> None:
        probe = next(iter(self.buffers()), None)
        if probe is None:
            return
        if image.dtype != probe.dtype:
            raise ValueError(
                f"the image is {image.dtype} but the network's weights are {probe.dtype}; "
                f"convert one of them (image.to({probe.dtype}) or optimize a model of {image.dtype})"
            )
        if image.device != probe.device:
            raise ValueError(f"the image is on {image.device} but the network is on {probe.device}; "
                             "move one of them with .to(device)")


def _channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
