"""Inference modules that run DuRN layer patterns as fused operator calls.

``durn.optimize_for_inference`` builds a :class:`FusedDuRN` out of these. Weights are
buffers (no parameters, no autograd); BN is folded in float64 and cast to the model's
dtype. Each :class:`FusedConv2d` runs one *algorithm*, an implementation of the
``fused_conv2d`` contract for its fixed weights:

``"direct"``            the backend's ``fused_conv2d`` (for "torch": ``direct_conv.py``,
                        the reference's math with an in-place epilogue)
``"direct:<backend>"``  the same, pinned to a backend
``"fourier:<tile>"``    overlap-save Fourier tiles of ``tile`` pixels (``fft_conv.py``)
``"winograd:<m>"``      Winograd F(m x m, 3 x 3) (``winograd_conv.py``)
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import backends as _backends
from .direct_conv import add_relu_, direct_fused_conv2d
from .transform_conv import DTYPES, TransformConv2d, flops_per_output

TRANSFORM_KINDS = ("fourier", "winograd")
FOURIER_TILES = (16, 24, 32, 48, 64)

_TUNER = None


@contextlib.contextmanager
def tuning(tuner):
    """While active, every FusedConv2d call goes to ``tuner(layer, x, residual)``."""
    global _TUNER
    previous, _TUNER = _TUNER, tuner
    try:
        yield
    finally:
        _TUNER = previous


def parse_algorithm(algorithm: str) -> tuple[str, str | int | None]:
    """"direct" -> ("direct", None); "direct:cpp"; "fourier:32" -> ("fourier", 32); "winograd:4"."""
    kind, _, arg = str(algorithm).partition(":")
    if kind == "direct":
        if arg and arg not in _backends.BACKENDS:
            raise ValueError(f"unknown backend in algorithm {algorithm!r}; expected one of {_backends.BACKENDS}")
        return kind, arg or None
    if kind in TRANSFORM_KINDS and arg.isdigit():
        return kind, int(arg)
    raise ValueError(
        f"bad algorithm {algorithm!r}; expected 'direct', 'direct:<backend>', 'fourier:<tile>' or 'winograd:<m>'"
    )


def auto_backend(op: str, device: torch.device) -> str:
    """The backend "auto" picks for ``op`` on ``device`` (AUTO_ORDER, availability)."""
    for candidate in _backends.AUTO_ORDER.get(device.type, {}).get(op, ("torch",)):
        if _backends._probe(candidate)[0] and _backends._supports(candidate, device):
            return candidate
    return "torch"


def usable_backends(device: torch.device) -> tuple[str, ...]:
    """Backends that run on ``device`` and are worth timing (not Triton's interpreter)."""
    out = []
    for name in _backends.BACKENDS:
        if name == "triton" and device.type != "cuda":
            continue
        if _backends._probe(name)[0] and _backends._supports(name, device):
            out.append(name)
    return tuple(out)


def fold_batch_norm(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) in float64 with ``bn(y) == y * scale + shift`` (eval mode)."""
    var = bn.running_var.detach().double()
    scale = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    shift = -bn.running_mean.detach().double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    return scale, shift


def _buffer(module: nn.Module, name: str, value: torch.Tensor | None, like: torch.Tensor) -> None:
    module.register_buffer(name, None if value is None else value.to(dtype=like.dtype, device=like.device).contiguous())


class FusedConv2d(nn.Module):
    """``act(epilogue(conv(pad(pixel_shuffle?(x)))))`` with folded weights, one operator call."""

    def __init__(self, weight, bias, *, stride, padding, dilation, padding_mode, upscale=1, scale=None,
                 shift=None, residual_at="none", activation="none", residual_alpha=1.0, backend=None,
                 source=""):
        super().__init__()
        like = weight
        _buffer(self, "weight", weight, like)
        _buffer(self, "bias", bias, like)
        _buffer(self, "scale", scale, like)
        _buffer(self, "shift", shift, like)
        self.stride, self.padding, self.dilation = int(stride), int(padding), int(dilation)
        self.padding_mode = padding_mode if self.padding > 0 else "zeros"
        self.upscale = int(upscale)
        self.residual_at, self.activation, self.residual_alpha = residual_at, activation, float(residual_alpha)
        self.source = source
        op = "pixel_shuffle_conv2d" if self.upscale > 1 else "fused_conv2d"
        self.backend = backend or auto_backend(op, weight.device)
        # With "auto", the other backends that run here are candidates for "direct" too.
        self.alternatives = () if backend else tuple(
            b for b in usable_backends(weight.device) if b != self.backend)
        self.algorithm = "direct"
        self.transform: TransformConv2d | None = None
        self._plans: dict[str, TransformConv2d] = {}

    @property
    def kernel_size(self) -> int:
        return self.weight.shape[-1]

    def extra_repr(self) -> str:
        o, c, k, _ = self.weight.shape
        parts = [f"{c}, {o}, kernel_size={k}", f"stride={self.stride}", f"padding={self.padding}"]
        if self.dilation > 1:
            parts.append(f"dilation={self.dilation}")
        if self.padding_mode != "zeros":
            parts.append(f"padding_mode={self.padding_mode!r}")
        if self.upscale > 1:
            parts.append(f"pixel_shuffle={self.upscale}")
        if self.scale is not None or self.shift is not None:
            parts.append("affine")
        if self.residual_at != "none":
            parts.append(f"residual_at={self.residual_at!r}")
        if self.activation != "none":
            parts.append(f"activation={self.activation!r}")
        parts.append(f"backend={self.backend!r}, algorithm={self.algorithm!r}")
        return ", ".join(parts)

    # -- epilogue surgery (used while rewriting) ------------------------------------------
    def is_bare(self) -> bool:
        return self.residual_at == "none" and self.activation == "none"

    def set_epilogue(self, *, residual_at=None, activation=None, residual_alpha=None, scale=None, shift=None):
        if residual_at is not None:
            self.residual_at = residual_at
        if activation is not None:
            self.activation = activation
        if residual_alpha is not None:
            self.residual_alpha = float(residual_alpha)
        if scale is not None:
            _buffer(self, "scale", scale, self.weight)
        if shift is not None:
            _buffer(self, "shift", shift, self.weight)

    # -- algorithms ------------------------------------------------------------------------
    def transform_kinds(self, dtype: torch.dtype, device: torch.device) -> tuple[str, ...]:
        """Transform algorithms that can run this layer for tensors of ``dtype`` on ``device``."""
        if self.stride != 1 or dtype not in DTYPES or device.type != "cpu" or self.backend != "torch":
            return ()
        k = self.kernel_size
        if k == 3:
            return ("winograd",)
        if k >= 5:
            return ("fourier",)
        return ()

    def signature(self, x: torch.Tensor) -> tuple:
        """What decides this layer's speed: shapes, settings, memory format."""
        return (tuple(self.weight.shape), self.stride, self.padding, self.dilation, self.padding_mode,
                self.upscale, self.residual_at, self.activation, self.scale is not None, self.shift is not None,
                tuple(x.shape), x.stride(), x.dtype, x.device, self.backend)

    def candidates(self, x: torch.Tensor) -> list[str]:
        """Algorithms worth measuring for input ``x``: "direct" first."""
        out = ["direct"] + [f"direct:{b}" for b in self.alternatives]
        kinds = self.transform_kinds(x.dtype, x.device)
        if "winograd" in kinds:
            out += ["winograd:4", "winograd:6"]
        if "fourier" in kinds:
            out += [f"fourier:{t}" for t in self._fourier_tiles(x)]
        return out

    def _fourier_tiles(self, x: torch.Tensor, keep: int = 2) -> list[int]:
        """The ``keep`` tiles with the fewest multiply-adds for this input, overhang included."""
        from .fft_conv import fourier_matrices

        k, d = self.kernel_size, self.dilation
        h, w = x.shape[-2] * self.upscale, x.shape[-1] * self.upscale
        out_h, out_w = h + 2 * self.padding - d * (k - 1), w + 2 * self.padding - d * (k - 1)
        sub_h, sub_w = math.ceil(out_h / d), math.ceil(out_w / d)
        o, c = self.weight.shape[:2]
        costs = {}
        for t in FOURIER_TILES:
            if t < k + 4:
                continue
            m = fourier_matrices(t, k)
            s = m.out
            overhang = (math.ceil(sub_h / s) * s / sub_h) * (math.ceil(sub_w / s) * s / sub_w)
            costs[t] = flops_per_output(m, c, o) * overhang
        return sorted(costs, key=costs.get)[:keep]

    def default_transform(self, kind: str) -> str | None:
        """The algorithm ``kind`` ("fourier", "winograd", "transform") means for this layer."""
        kinds = self.transform_kinds(self.weight.dtype, self.weight.device)
        if kind == "transform":
            kind = kinds[0] if kinds else None
        if kind not in kinds:
            return None
        if kind == "winograd":
            return "winograd:4"
        from .fft_conv import default_tile

        return f"fourier:{default_tile(self.kernel_size)}"

    def use_transform(self, kind: str) -> None:
        algo = self.default_transform(kind)
        if algo is not None:
            self.set_algorithm(algo)

    def set_algorithm(self, algorithm: str) -> None:
        kind, arg = parse_algorithm(algorithm)
        if kind == "direct":
            if arg is not None and arg != self.backend:
                self.backend = arg
            self.algorithm, self.transform = "direct", None
        else:
            if kind not in self.transform_kinds(self.weight.dtype, self.weight.device):
                raise ValueError(f"layer {self.source!r} cannot run {algorithm!r} (kernel {self.kernel_size}, "
                                 f"stride {self.stride}, backend {self.backend!r}, {self.weight.dtype})")
            self.transform = self._plan(algorithm)
            self.algorithm = algorithm
        self._plans = {}

    def _plan(self, algorithm: str) -> TransformConv2d:
        plan = self._plans.get(algorithm)
        if plan is None:
            kind, arg = parse_algorithm(algorithm)
            if kind == "fourier":
                from .fft_conv import fft_conv

                plan = fft_conv(self.weight, self.dilation, arg)
            else:
                from .winograd_conv import winograd_conv

                plan = winograd_conv(self.weight, self.dilation, arg)
            self._plans[algorithm] = plan
        return plan

    def run(self, algorithm: str, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        kind, arg = parse_algorithm(algorithm)
        if kind == "direct":
            return self._direct(x, residual, arg or self.backend)
        return self._transform(self._plan(algorithm), x, residual)

    def _direct(self, x, residual, backend: str):
        residual_at = self.residual_at if residual is not None else "none"
        if backend == "torch":
            return direct_fused_conv2d(
                x, self.weight, self.bias, self.scale, self.shift, residual, self.stride, self.padding,
                self.dilation, self.padding_mode, residual_at, self.activation, self.residual_alpha, self.upscale,
            )
        from . import fused_conv2d, pixel_shuffle_conv2d

        kwargs = dict(scale=self.scale, shift=self.shift, residual=residual, stride=self.stride,
                      padding=self.padding, dilation=self.dilation, padding_mode=self.padding_mode,
                      residual_at=residual_at, activation=self.activation, residual_alpha=self.residual_alpha,
                      backend=backend)
        if self.upscale > 1:
            return pixel_shuffle_conv2d(x, self.upscale, self.weight, self.bias, **kwargs)
        return fused_conv2d(x, self.weight, self.bias, **kwargs)

    def _transform(self, plan: TransformConv2d, x, residual):
        residual_at = self.residual_at if residual is not None else "none"
        return plan(x, self.bias, self.scale, self.shift, residual, self.padding, self.padding_mode, residual_at,
                    self.activation, self.residual_alpha, upscale=self.upscale)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if (residual is None) != (self.residual_at == "none"):
            raise RuntimeError(f"layer {self.source!r}: residual_at={self.residual_at!r} but residual "
                               f"{'missing' if residual is None else 'given'}")
        if _TUNER is not None:
            return _TUNER(self, x, residual)
        plan = self.transform
        if plan is not None and x.dtype == plan.spec_re.dtype and x.device == plan.spec_re.device:
            return self._transform(plan, x, residual)
        return self._direct(x, residual, self.backend)


def instance_norm(x: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    """The authors' instance norm ``(x - mean) / sqrt(var + eps) * scale + scale`` (biased
    variance), in x's memory format: NCHW through ``F.instance_norm``; channels-last as a
    two-pass mean/variance over the pixels (reductions along the outer dimension, which
    vectorise over channels) and one normalising pass."""
    if x.dim() != 4 or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return F.instance_norm(x, weight=scale, bias=scale, eps=eps)
    n, c, h, w = x.shape
    v = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
    mean = v.sum(1, keepdim=True) / (h * w)
    var = (v - mean).square_().sum(1, keepdim=True) / (h * w)
    a = scale * torch.rsqrt(var + eps)
    return torch.addcmul(scale - mean * a, v, a).view(n, h, w, c).permute(0, 3, 1, 2)


class FusedConvInstanceNorm(nn.Module):
    """``relu?(IN(conv(x) [+ residual]) [+ residual])`` for DuRN's instance norm: the conv's
    bias is dropped (instance norm subtracts every per-channel constant)."""

    def __init__(self, conv: FusedConv2d, norm: nn.Module, *, residual: str = "none", relu: bool = False):
        super().__init__()
        self.conv = conv
        self.eps = float(norm.eps)
        _buffer(self, "norm_scale", norm.scale.detach(), conv.weight)
        self.residual, self.relu = residual, relu  # residual: "none" | "pre_norm" | "post_norm"

    def extra_repr(self) -> str:
        return f"eps={self.eps}, residual={self.residual!r}, relu={self.relu}"

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x, residual if self.residual == "pre_norm" else None)
        y = instance_norm(y, self.norm_scale, self.eps)
        if self.residual == "post_norm":
            return add_relu_(y, residual) if self.relu else y.add_(residual)
        return y.relu_() if self.relu else y


def make_conv(conv: nn.Conv2d, norm: nn.Module | None, relu: bool, *, upscale: int = 1, pad_module=None,
              backend: str | None = None, source: str = "") -> nn.Module:
    """The fused module for ``[pad] conv [norm] [relu]`` (``upscale``: a PixelShuffle before)."""
    from ..nn import DuRNInstanceNorm

    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else None
    padding, mode = conv.padding[0], conv.padding_mode
    if pad_module is not None:
        padding, mode = pad_module.padding[0], "reflect"
    common = dict(stride=conv.stride[0], padding=padding, dilation=conv.dilation[0], padding_mode=mode,
                  upscale=upscale, backend=backend, source=source)
    if isinstance(norm, DuRNInstanceNorm):
        fused = FusedConv2d(weight, None, **common)
        return FusedConvInstanceNorm(fused, norm, relu=relu)
    if isinstance(norm, nn.BatchNorm2d):
        scale, shift = fold_batch_norm(norm)
        folded_w = (weight.double() * scale[:, None, None, None]).to(weight.dtype)
        folded_b = shift if bias is None else bias.double() * scale + shift
        weight, bias = folded_w, folded_b.to(weight.dtype)
    return FusedConv2d(weight, bias, activation="relu" if relu else "none", **common)


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
        from ..nn import DuRNInstanceNorm

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
        _buffer(self, "w1", fc1.weight.detach(), like)
        _buffer(self, "b1", fc1.bias.detach() if fc1.bias is not None else torch.zeros(fc1.out_features), like)
        _buffer(self, "w2", fc2.weight.detach(), like)
        _buffer(self, "b2", fc2.bias.detach() if fc2.bias is not None else torch.zeros(fc2.out_features), like)
        self.backend = backend or auto_backend("squeeze_excitation", like.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        if self.backend == "torch":
            gate = torch.sigmoid(F.linear(torch.relu(F.linear(y.mean(dim=(2, 3)), self.w1, self.b1)),
                                          self.w2, self.b2))
            y.mul_(gate[:, :, None, None])
            return add_relu_(y, x)
        from . import squeeze_excitation

        return squeeze_excitation(y, self.w1, self.b1, self.w2, self.b2, x, backend=self.backend)


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


class BlockChain(nn.ModuleList):
    """Blocks applied in order, threading ``(x, res)``."""

    def forward(self, x: torch.Tensor, res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self:
            x, res = block(x, res)
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
        from ..nn.network import DuRN, run_any_size

        if self.check_inputs and not torch.compiler.is_compiling():
            DuRN._check(self, image)
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
