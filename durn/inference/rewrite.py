"""The rewrite of a DuRN into fused ``durn.ops`` calls: it knows the layer patterns of
``durn.nn`` and replaces each by one fused module (``fused_conv.py``, ``fused_network.py``):

* ``Conv2d`` (or ``ReflectionPad2d`` + unpadded ``Conv2d``) [+ ``BatchNorm2d``] [+ ``ReLU``]:
  one ``fused_conv2d`` with the BN folded into the weights and bias;
* ``PixelShuffle`` + ``Conv2d`` ...: one ``pixel_shuffle_conv2d``;
* ``Conv2d`` [+ residual] + ``DuRNInstanceNorm`` [+ ``ReLU``]: the conv (its bias dropped,
  instance norm removes it), then one instance-norm-and-ReLU pass;
* DuRB joins ``relu(norm(conv(x) + x_r))``: the add, the norm and the ReLU go into the
  conv's epilogue (a BN after the add stays a per-channel affine applied after it:
  ``residual_at="pre_affine"``; before the add it is folded: ``"post_affine"``);
* ``SEBasicBlock``: two fused convs and one ``squeeze_excitation`` (with the shortcut and
  the ReLU);
* the network's output ``input ± tanh(tail(x))``: the last conv's epilogue
  (``activation="tanh"``, ``residual_at="post_activation"``).

Anything else (a user's own T1/T2 modules, transposed convs, pooling, other norms) is
kept as the original module, so every DuRN works.
"""
from __future__ import annotations

from torch import nn

from ..nn import DuRN, DuRNInstanceNorm, DualResidualBlock, DualResidualChain, SEBasicBlock
from .fused_conv import make_conv
from .fused_network import Chain, FusedDualResidualBlock, FusedDuRN, FusedSEBlock, Join


class Rewriter:
    """Rewrites one DuRN into a :class:`FusedDuRN` (see the module docstring)."""

    def __init__(self, backend: str | None):
        self.backend = backend

    def network(self, model: DuRN) -> FusedDuRN:
        names = {id(m): name for name, m in model.named_modules()}
        self.names = names
        stem = self.chain(_children(model.stem))
        entry = self.chain(_children(model.entry))
        stages = nn.ModuleList()
        for stage in model.stages:
            if isinstance(stage, DualResidualChain):
                stages.append(DualResidualChain(self.block(b) if isinstance(b, DualResidualBlock) else b
                                                for b in stage))
            else:
                stages.append(stage)
        tail = self.chain(_children(model.tail))
        final = tail.absorb_output(-1.0 if model.subtract_residual else 1.0)
        return FusedDuRN(model, stem, entry, stages, tail, final)

    def name(self, module: nn.Module) -> str:
        return self.names.get(id(module), "?")

    def block(self, block: DualResidualBlock) -> nn.Module:
        first = self.chain([block.conv1, block.norm1, nn.ReLU()])
        second = self.chain([block.conv2], Join(block.norm2))
        t1 = self.chain(_children(block.t1), Join(block.t1_post, with_residual=block.connection != "paired"))
        t2 = self.chain(_children(block.t2), Join(block.t2_post))
        return FusedDualResidualBlock(block.connection, first, second, t1, t2)

    def chain(self, modules: list[nn.Module], join: Join | None = None) -> Chain:
        modules = [m for m in modules if not isinstance(m, nn.Identity)]
        stages: list[nn.Module] = []
        i, n = 0, len(modules)
        while i < n:
            m = modules[i]
            upscale, pad_module = 1, None
            if isinstance(m, nn.PixelShuffle) and i + 1 < n and _plain_conv(modules[i + 1]):
                upscale, i, m = m.upscale_factor, i + 1, modules[i + 1]
            elif isinstance(m, nn.ReflectionPad2d) and i + 1 < n and _reflect_pad_conv(m, modules[i + 1]):
                pad_module, i, m = m, i + 1, modules[i + 1]
            if _plain_conv(m):
                conv = m
                i += 1
                norm = None
                if i < n and isinstance(modules[i], (nn.BatchNorm2d, DuRNInstanceNorm)) and \
                        _norm_fits(modules[i], conv.out_channels):
                    norm, i = modules[i], i + 1
                relu = i < n and isinstance(modules[i], nn.ReLU)
                if relu:
                    i += 1
                stages.append(make_conv(conv, norm, relu, upscale=upscale, pad_module=pad_module,
                                              backend=self.backend, source=self.name(conv)))
                continue
            if upscale > 1:  # PixelShuffle before something we do not fuse
                stages.append(nn.PixelShuffle(upscale))
                continue
            if isinstance(m, SEBasicBlock) and _se_fits(m):
                stages.append(FusedSEBlock(m, backend=self.backend, names=self.names))
            elif isinstance(m, nn.Sequential):
                stages.extend(self.chain(_children(m)).stages)
            else:
                stages.append(m)
            i += 1
        return Chain(stages, join)


def _children(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return list(module)
    if isinstance(module, nn.Identity):
        return []
    return [module]


def _plain_conv(m: nn.Module) -> bool:
    """A Conv2d the operators express: square kernel, groups 1, symmetric padding,
    stride 1 or 2, zero or reflect padding."""
    if type(m) is not nn.Conv2d:
        return False
    k = m.kernel_size
    return (
        k[0] == k[1]
        and m.groups == 1
        and isinstance(m.padding, tuple) and m.padding[0] == m.padding[1]
        and m.stride[0] == m.stride[1] and m.stride[0] in (1, 2)
        and m.dilation[0] == m.dilation[1]
        and (m.padding_mode in ("zeros", "reflect"))
    )


def _reflect_pad_conv(pad: nn.ReflectionPad2d, conv: nn.Module) -> bool:
    p = pad.padding
    return len(set(p)) == 1 and _plain_conv(conv) and conv.padding == (0, 0)


def _norm_fits(norm: nn.Module, channels: int) -> bool:
    if isinstance(norm, nn.BatchNorm2d):
        return norm.track_running_stats and norm.running_mean is not None and norm.num_features == channels
    return norm.scale.numel() == channels


def _se_fits(block: SEBasicBlock) -> bool:
    return all(_plain_conv(c) for c in (block.conv1, block.conv2)) and \
        isinstance(block.se.fc[0], nn.Linear) and isinstance(block.se.fc[2], nn.Linear)
