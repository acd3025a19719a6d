"""The fused conv layer of an optimized DuRN: ``[pad] conv [norm] [relu]`` and an epilogue
(residual, per-channel affine, ReLU/tanh) as one ``durn.ops`` call.

Weights are buffers (no parameters, no autograd); BN is folded in float64 and cast to the
model's dtype. Each :class:`FusedConv2d` runs one *algorithm*, an implementation of the
``fused_conv2d`` contract for its fixed weights:

``"direct"``            the backend's ``fused_conv2d`` (for "torch": ``durn/ops/direct_conv.py``,
                        the reference's math with an in-place epilogue)
``"direct:<backend>"``  the same, pinned to a backend
``"fourier:<tile>"``    overlap-save Fourier tiles of ``tile`` pixels (``durn/ops/fft_conv.py``)
``"winograd:<m>"``      Winograd F(m x m, 3 x 3) (``durn/ops/winograd_conv.py``)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from ..nn import DuRNInstanceNorm
from ..ops.direct_conv import add_relu_, direct_fused_conv2d
from ..ops.fft_conv import default_tile, fft_conv, fourier_matrices
from ..ops.transform_conv import DTYPES, TransformConv2d, flops_per_output
from ..ops.winograd_conv import winograd_conv

TRANSFORM_KINDS = ("fourier", "winograd")
FOURIER_TILES = (16, 24, 32, 48, 64)


def parse_algorithm(algorithm: str) -> tuple[str, str | int | None]:
    """"direct" -> ("direct", None); "direct:cpp"; "fourier:32" -> ("fourier", 32); "winograd:4"."""
    kind, _, arg = str(algorithm).partition(":")
    if kind == "direct":
        if arg and arg not in ops.BACKENDS:
            raise ValueError(f"unknown backend in algorithm {algorithm!r}; expected one of {ops.BACKENDS}")
        return kind, arg or None
    if kind in TRANSFORM_KINDS and arg.isdigit():
        return kind, int(arg)
    raise ValueError(
        f"bad algorithm {algorithm!r}; expected 'direct', 'direct:<backend>', 'fourier:<tile>' or 'winograd:<m>'"
    )


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


def set_buffer(module: nn.Module, name: str, value: torch.Tensor | None, like: torch.Tensor) -> None:
    module.register_buffer(name, None if value is None else value.to(dtype=like.dtype, device=like.device).contiguous())


class FusedConv2d(nn.Module):
    """``act(epilogue(conv(pad(pixel_shuffle?(x)))))`` with folded weights, one operator call."""

    def __init__(self, weight, bias, *, stride, padding, dilation, padding_mode, upscale=1, scale=None,
                 shift=None, residual_at="none", activation="none", residual_alpha=1.0, backend=None,
                 source=""):
        super().__init__()
        like = weight
        set_buffer(self, "weight", weight, like)
        set_buffer(self, "bias", bias, like)
        set_buffer(self, "scale", scale, like)
        set_buffer(self, "shift", shift, like)
        self.stride, self.padding, self.dilation = int(stride), int(padding), int(dilation)
        self.padding_mode = padding_mode if self.padding > 0 else "zeros"
        self.upscale = int(upscale)
        self.residual_at, self.activation, self.residual_alpha = residual_at, activation, float(residual_alpha)
        self.source = source
        op = "pixel_shuffle_conv2d" if self.upscale > 1 else "fused_conv2d"
        self.backend = backend or ops.auto_backend(op, weight.device)
        # With "auto", the other backends that run here are candidates for "direct" too.
        self.alternatives = () if backend else tuple(
            b for b in ops.usable_backends(weight.device) if b != self.backend)
        # While a tuner measures this layer (durn.inference.tuner), every call goes to it.
        self.tuner = None
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
            set_buffer(self, "scale", scale, self.weight)
        if shift is not None:
            set_buffer(self, "shift", shift, self.weight)

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
                plan = fft_conv(self.weight, self.dilation, arg)
            else:
                plan = winograd_conv(self.weight, self.dilation, arg)
            self._plans[algorithm] = plan
        return plan

    # -- pickling: the transform plans (weights in the transform domain, 5-10x the weights)
    # are rebuilt from the algorithm's name instead of travelling ----------------------
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_modules"] = {k: (None if k == "transform" else v) for k, v in state["_modules"].items()}
        state["_plans"], state["tuner"] = {}, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.algorithm != "direct":
            self.transform = self._plan(self.algorithm)

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
        kwargs = dict(scale=self.scale, shift=self.shift, residual=residual, stride=self.stride,
                      padding=self.padding, dilation=self.dilation, padding_mode=self.padding_mode,
                      residual_at=residual_at, activation=self.activation, residual_alpha=self.residual_alpha,
                      backend=backend)
        if self.upscale > 1:
            return ops.pixel_shuffle_conv2d(x, self.upscale, self.weight, self.bias, **kwargs)
        return ops.fused_conv2d(x, self.weight, self.bias, **kwargs)

    def _transform(self, plan: TransformConv2d, x, residual):
        residual_at = self.residual_at if residual is not None else "none"
        return plan(x, self.bias, self.scale, self.shift, residual, self.padding, self.padding_mode, residual_at,
                    self.activation, self.residual_alpha, upscale=self.upscale)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if (residual is None) != (self.residual_at == "none"):
            raise RuntimeError(f"layer {self.source!r}: residual_at={self.residual_at!r} but residual "
                               f"{'missing' if residual is None else 'given'}")
        if torch.compiler.is_compiling():
            # The transform-domain convs are Python loops over tiles with scratch buffers
            # (graph breaks, and a recompile per padding), and the in-place direct conv
            # writes channels-last ``out=`` tensors (a graph break). A traced graph takes
            # the direct conv in functional form: for "torch" the reference's aten ops
            # (which the compiler fuses), else the backend's durn:: custom op (fake kernel).
            if self.backend != "torch":
                return self._direct(x, residual, self.backend)
            residual_at = self.residual_at if residual is not None else "none"
            args = (self.weight, self.bias, self.scale, self.shift, residual, self.stride, self.padding,
                    self.dilation, self.padding_mode, residual_at, self.activation, self.residual_alpha)
            if self.upscale > 1:
                return ops.reference.pixel_shuffle_conv2d(x, self.upscale, *args)
            return ops.reference.fused_conv2d(x, *args)
        if self.tuner is not None:
            return self.tuner(self, x, residual)
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
        set_buffer(self, "norm_scale", norm.scale.detach(), conv.weight)
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
