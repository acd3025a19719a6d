"""Running a network over images too large for memory: receptive field, tiles, precision.

* :func:`receptive_field` walks the modules a forward pass calls (a shape-only dry run
  records them in execution order) and bounds how far an output pixel can see from the
  kernel, dilation, stride and padding of every conv, transposed conv, pool, pad and
  pixel shuffle, scaled by the resolution each one runs at. It also lists the modules
  with global statistics (instance norm, squeeze-excitation pooling, ...), which make
  a network non-local.
* :func:`run_blended` cuts an image into overlapping tiles and blends them with weights
  that are zero near interior tile edges and ramp up linearly. Where the zero margin is
  at least the receptive-field radius (a local network with ``overlap >= 2 r + 1``),
  every pixel comes only from tiles that saw all of its context: the result equals the
  whole-image result.
* :func:`run_exact` keeps every activation in host memory and runs only the convolutions
  on the device, tile by tile with the halo each one needs; norms, squeeze-excitation
  and everything else see whole tensors, so global statistics are exact.
* :class:`Precision` runs a forward in float32 (default), bfloat16 or float16 autocast,
  keeps the global statistics in float32, and recomputes in float32 any result that
  came out non-finite.
"""
from __future__ import annotations

import copy
import math
import os
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from weakref import WeakKeyDictionary

import torch
import torch.nn.functional as F
from torch import nn

from .nn import DuRNInstanceNorm, SqueezeExcitation, pad_bottom_right
from .nn.geometry import quiet_fake_tensor_logs

# ----------------------------------------------------------------------------------------
# Receptive field
# ----------------------------------------------------------------------------------------

POINTWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Softplus,
    nn.Identity, nn.Dropout, nn.Dropout2d,
)
GLOBAL = (
    DuRNInstanceNorm, SqueezeExcitation, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.GroupNorm,
    nn.LayerNorm, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LocalResponseNorm,
)
PADS = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d, nn.CircularPad2d)


@dataclass(frozen=True)
class ReceptiveField:
    """How far (in input pixels, each side) an output pixel can depend on the input.

    ``radius`` is an upper bound: every spatial module is composed in execution order, as
    if all of them lay on one path (for DuRN's chains of blocks that is the longest path,
    so the bound is tight). ``global_ops`` names modules whose statistics span the whole
    image; ``unknown_ops`` names leaf modules whose spatial reach the walk cannot tell.
    The network is *local* (tiles with enough overlap reproduce the whole image) only when
    both are empty. Spatial work done with ``torch.nn.functional`` calls outside modules is
    invisible to the walk.
    """

    radius: int
    global_ops: tuple[str, ...] = ()
    unknown_ops: tuple[str, ...] = ()

    @property
    def local(self) -> bool:
        return not self.global_ops and not self.unknown_ops

    @property
    def size(self) -> int:
        return 2 * self.radius + 1


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_padding(module: nn.Conv2d) -> tuple[int, int]:
    """Leading (top, left) padding of a conv, including the string forms."""
    k, d = _pair(module.kernel_size), _pair(module.dilation)
    if module.padding == "valid":
        return 0, 0
    if module.padding == "same":
        return tuple(d[i] * (k[i] - 1) // 2 for i in range(2))
    return _pair(module.padding)


def _reach(module: nn.Module, axis: int) -> tuple[Fraction, Fraction, Fraction] | None:
    """(before, after, new_scale / scale) for one spatial module along ``axis`` (0: H, 1: W),
    in units of the module's input pixels; None when the module is not a known spatial op.

    With ``j`` input-image pixels per feature pixel, output pixel ``q`` of a conv of kernel
    ``k``, dilation ``d``, stride ``s`` and leading pad ``p`` reads feature pixels
    ``q s - p .. q s - p + (k-1) d``; relative to the span of image pixels that ``q`` stands
    for, that reaches ``p j`` before and ``((k-1) d + 1 - p - s) j`` after.
    """
    if isinstance(module, nn.Conv2d):
        k, d, s = _pair(module.kernel_size)[axis], _pair(module.dilation)[axis], _pair(module.stride)[axis]
        p = _conv_padding(module)[axis]
        return Fraction(p), Fraction((k - 1) * d + 1 - p - s), Fraction(s)
    if isinstance(module, nn.ConvTranspose2d):
        k, d, s = _pair(module.kernel_size)[axis], _pair(module.dilation)[axis], _pair(module.stride)[axis]
        p = _pair(module.padding)[axis]
        # output q' (span j/s) receives input i for q' = i s - p + t d, t = 0..k-1
        return Fraction((k - 1) * d - p, s), Fraction(p + s - 1, s), Fraction(1, s)
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        k, p = _pair(module.kernel_size)[axis], _pair(module.padding)[axis]
        s = _pair(module.stride or module.kernel_size)[axis]
        d = _pair(getattr(module, "dilation", 1))[axis]
        return Fraction(p), Fraction((k - 1) * d + 1 - p - s), Fraction(s)
    if isinstance(module, PADS):
        left, right, top, bottom = module.padding if len(module.padding) == 4 else (*module.padding, *module.padding)
        before, after = (top, bottom) if axis == 0 else (left, right)
        return Fraction(before), Fraction(-before), Fraction(1)
    if isinstance(module, nn.PixelShuffle):
        r = module.upscale_factor
        return Fraction(r - 1, r), Fraction(r - 1, r), Fraction(1, r)
    if isinstance(module, nn.PixelUnshuffle):
        r = module.downscale_factor
        return Fraction(0), Fraction(0), Fraction(r)
    if isinstance(module, nn.Upsample) and module.size is None:
        sf = module.scale_factor
        r = sf[axis] if isinstance(sf, tuple) else sf
        if float(r).is_integer():
            r = int(r)
            extra = Fraction(0) if module.mode == "nearest" else Fraction(1)  # interpolation reads a neighbour
            return Fraction(r - 1, r) + extra, Fraction(r - 1, r) + extra, Fraction(1, r)
    return None




def _shape_only_run(network: nn.Module, size: int, handles) -> None:
    """One forward of ``network`` on fake tensors of ``size`` x ``size`` with ``handles``
    (already registered hooks) in place; the hooks are removed afterwards."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    try:
        with quiet_fake_tensor_logs(), FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
            _bare_forward(network)(_dry_input(network, size))
    finally:
        for h in handles:
            h.remove()


def _bare_forward(network: nn.Module) -> Callable:
    return getattr(network, "forward_core", network)


def _dry_run_size(network: nn.Module) -> int:
    """A square size every network handles, large enough that one-pixel pads and unpadded
    convs barely change the ratio of sizes that gives each layer's scale."""
    m = getattr(network, "size_multiple", 1)
    size = max(getattr(network, "min_size", 16), 256)
    return -(-size // (4 * m)) * 4 * m


def _dry_input(network: nn.Module, size: int) -> torch.Tensor:
    """An input for a shape-only dry run, on the weights' device and in their dtype (made
    inside FakeTensorMode it allocates nothing)."""
    p = next(network.parameters(), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    device = p.device if p is not None else torch.device("cpu")
    return torch.empty(1, _in_channels(network), size, size, dtype=dtype, device=device)


def _in_channels(network: nn.Module) -> int:
    c = getattr(network, "in_channels", None)
    if c is None:
        conv = next((m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))), None)
        if conv is None:
            raise ValueError("cannot tell the network's input channels: give it an in_channels attribute")
        c = conv.in_channels
    return c


_RF_CACHE: WeakKeyDictionary = WeakKeyDictionary()


def receptive_field(network: nn.Module) -> ReceptiveField:
    """The receptive field of ``network`` (a :class:`durn.nn.DuRN` or any 2-D conv net),
    computed from its modules. Cached per module object; BatchNorm counts as local only in
    eval mode, so call this on a network in the mode it will run in."""
    key = (network.training,)
    cached = _RF_CACHE.get(network)
    if cached is not None and cached[0] == key:
        return cached[1]
    result = _walk(network)
    _RF_CACHE[network] = (key, result)
    return result


def _walk(network: nn.Module) -> ReceptiveField:
    size = _dry_run_size(network)
    calls: list[tuple[nn.Module, str, tuple[int, int]]] = []
    names = {m: n for n, m in network.named_modules()}

    def hook(module, args):
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and x.dim() == 4:
            calls.append((module, names.get(module, type(module).__name__), (x.shape[-2], x.shape[-1])))

    hooked = [m for m in network.modules() if isinstance(m, GLOBAL) or not any(True for _ in m.children())]
    _shape_only_run(network, size, [m.register_forward_pre_hook(hook) for m in hooked])

    extent = [[Fraction(0), Fraction(0)], [Fraction(0), Fraction(0)]]
    global_ops, unknown = [], []
    inside_global: set[nn.Module] = set()
    for module, name, hw in calls:
        if module in inside_global:
            continue
        if isinstance(module, GLOBAL):
            global_ops.append(f"{name} ({type(module).__name__})")
            inside_global.update(module.modules())
            continue
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if module.training:
                global_ops.append(f"{name} ({type(module).__name__} in training mode)")
            continue
        if isinstance(module, POINTWISE):
            continue
        for axis in range(2):
            reach = _reach(module, axis)
            if reach is None:
                if axis == 0:
                    unknown.append(f"{name} ({type(module).__name__})")
                continue
            before, after, _ = reach
            # image pixels per pixel of this module's input (snapped: pads shift sizes slightly)
            j = Fraction(size, hw[axis]).limit_denominator(16)
            # a negative reach (a one-sided pad) is not credited: the bound stays an upper bound
            extent[axis][0] += max(before, Fraction(0)) * j
            extent[axis][1] += max(after, Fraction(0)) * j
    radius = math.ceil(max(max(e) for e in extent))
    return ReceptiveField(radius, tuple(dict.fromkeys(global_ops)), tuple(dict.fromkeys(unknown)))


# ----------------------------------------------------------------------------------------
# Precision
# ----------------------------------------------------------------------------------------

PRECISIONS = {
    None: None, "float32": None, "fp32": None, "full": None,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def parse_precision(precision) -> torch.dtype | None:
    """None (full precision: the network's own dtype), torch.bfloat16 or torch.float16."""
    if isinstance(precision, torch.dtype):
        if precision in (torch.bfloat16, torch.float16):
            return precision
        if precision in (torch.float32, torch.float64):
            return None
    elif precision in PRECISIONS:
        return PRECISIONS[precision]
    raise ValueError(
        f"precision must be one of 'float32' (default), 'bfloat16' ('bf16') or 'float16' ('fp16'), got {precision!r}"
    )


def _float32_input(module, args):
    return (args[0].float(),) + tuple(args[1:])


class NonFiniteFallback(UserWarning):
    """A half-precision result had NaN or Inf and was recomputed in float32."""


@dataclass
class Precision:
    """Runs ``fn(x)`` in autocast at ``dtype`` (None: full precision) on ``device_type``.

    Under autocast the convolutions run in half precision while instance norm and
    squeeze-excitation get float32 inputs (their means and variances lose the most in
    half precision). A result with NaN or Inf is recomputed in full precision, once, with
    a :class:`NonFiniteFallback` warning: a half-precision overflow never comes back as a
    black or white image.
    """

    dtype: torch.dtype | None
    device_type: str
    network: nn.Module | None = None
    fallbacks: int = 0

    @contextmanager
    def _autocast(self):
        if self.dtype is None:
            yield
            return
        handles = []
        if self.network is not None:
            for m in self.network.modules():
                if isinstance(m, (DuRNInstanceNorm, SqueezeExcitation, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)):
                    handles.append(m.register_forward_pre_hook(_float32_input))
        try:
            with torch.autocast(self.device_type, dtype=self.dtype):
                yield
        finally:
            for h in handles:
                h.remove()

    def __call__(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        if self.dtype is None:
            return fn(x)
        with self._autocast():
            y = fn(x)
        y = y.to(x.dtype)
        if bool(torch.isfinite(y).all()):
            return y
        self.fallbacks += 1
        if self.fallbacks == 1:
            warnings.warn(
                f"the {self.dtype} result contained NaN or Inf (half-precision overflow); "
                "recomputed in float32", NonFiniteFallback, stacklevel=3,
            )
        y = fn(x)
        if not bool(torch.isfinite(y).all()):
            raise RuntimeError("the network's output contains NaN or Inf in full precision too; "
                               "its weights are probably damaged")
        return y


# ----------------------------------------------------------------------------------------
# Tiles
# ----------------------------------------------------------------------------------------


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``0..length``, evenly spaced,
    aligned to ``multiple``, each overlapping the next by at least ``overlap``."""
    if length <= tile:
        return [0]
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    count = -(-(length - tile) // stride) + 1
    span = length - tile
    starts = [(i * span // (count - 1)) // multiple * multiple for i in range(count)]
    starts[-1] = span
    return starts


def edge_profile(length: int, margin: int, ramp: int, before: bool, after: bool) -> torch.Tensor:
    """Blend weights along one axis of a tile: zero for ``margin`` pixels at each interior
    edge (``before``/``after`` say which edges are interior), then a linear ramp over
    ``ramp`` pixels, then one."""
    i = torch.arange(length, dtype=torch.float64)
    ramp_w = lambda d: ((d - margin + 1) / (ramp + 1)).clamp(0, 1) if ramp > 0 else (d >= margin).double()  # noqa: E731
    w = torch.ones(length, dtype=torch.float64)
    if before:
        w = torch.minimum(w, ramp_w(i))
    if after:
        w = torch.minimum(w, ramp_w(length - 1 - i))
    return w


@dataclass(frozen=True)
class TilePlan:
    tile: int
    overlap: int
    margin: int  # pixels at interior tile edges given zero weight
    ramp: int
    exact: bool  # the blended result equals the whole-image result


def plan_tiles(network: nn.Module, tile: int, overlap: int | None) -> TilePlan:
    """Tile geometry for ``network``. The overlap defaults to the receptive field; for a
    local network the zero-weight margin is then the receptive-field radius and blending is
    exact. For a network with global operations the default is at most half a tile, and a
    quarter of the overlap is the margin."""
    rf = receptive_field(network)
    m = getattr(network, "size_multiple", 1)
    min_size = getattr(network, "min_size", 1)
    if tile < max(min_size, 2 * m):
        raise ValueError(f"tile must be at least {max(min_size, 2 * m)} pixels for this network, got {tile}")
    tile = tile // m * m
    user_overlap = overlap is not None
    if overlap is None:
        overlap = rf.size if rf.local else min(rf.size, tile // 2)
        overlap = -(-overlap // m) * m
    if overlap < 0:
        raise ValueError(f"tile_overlap must be >= 0, got {overlap}")
    if overlap >= tile:
        if user_overlap:
            raise ValueError(f"tile_overlap ({overlap}) must be smaller than the tile ({tile})")
        overlap = tile // 2 // m * m
    if rf.local and overlap >= rf.size:
        margin = rf.radius
    elif rf.local:
        margin = max(0, (overlap - 1) // 2)
        warnings.warn(
            f"tile_overlap {overlap} is below this network's receptive field ({rf.size} px, radius "
            f"{rf.radius}): tiles will not reproduce the whole-image result exactly; use a tile larger "
            f"than {rf.size} px", stacklevel=3,
        )
    else:
        margin = overlap // 4
        norms = [op for op in rf.global_ops if "Norm" in op]
        if norms:
            warnings.warn(
                f"this network normalises with statistics of the whole image ({norms[0]}, ...): each blended "
                "tile has its own statistics, which can change the result a lot; use tile_mode='exact' "
                "(CLI: --exact-tiles) for the whole-image result", stacklevel=3,
            )
    ramp = max(0, overlap - 2 * margin)
    return TilePlan(tile, overlap, margin, ramp, rf.local and overlap >= rf.size)


def run_blended(
    run: Callable[[torch.Tensor], torch.Tensor],
    network: nn.Module,
    x: torch.Tensor,
    plan: TilePlan,
    *,
    device: torch.device,
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Run ``run`` (the network, in some precision) over overlapping tiles of ``x``
    (N, C, H, W, on the host) on ``device`` and blend them; returns the result on x's device."""
    n, _, h, w = x.shape
    m = getattr(network, "size_multiple", 1)
    hp = max(-(-h // m) * m, getattr(network, "min_size", 1))
    wp = max(-(-w // m) * m, getattr(network, "min_size", 1))
    xp = pad_bottom_right(x, hp, wp)  # the padding the whole-image forward would apply
    th, tw = min(plan.tile, hp), min(plan.tile, wp)
    ys = tile_starts(hp, th, plan.overlap, m)
    xs = tile_starts(wp, tw, plan.overlap, m)
    wy = {y0: edge_profile(th, plan.margin, plan.ramp, y0 > 0, y0 + th < hp) for y0 in ys}
    wx = {x0: edge_profile(tw, plan.margin, plan.ramp, x0 > 0, x0 + tw < wp) for x0 in xs}
    acc_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    out = None
    weight = torch.zeros(hp, wp, dtype=acc_dtype, device=x.device)
    total, done = len(ys) * len(xs), 0
    for y0 in ys:
        for x0 in xs:
            patch = xp[..., y0:y0 + th, x0:x0 + tw].to(device)
            y = run(patch).to(x.device, acc_dtype)
            if out is None:
                out = torch.zeros(n, y.shape[1], hp, wp, dtype=acc_dtype, device=x.device)
            tw_ = (wy[y0][:, None] * wx[x0][None, :]).to(acc_dtype)
            out[..., y0:y0 + th, x0:x0 + tw] += y * tw_
            weight[y0:y0 + th, x0:x0 + tw] += tw_
            done += 1
            if progress is not None:
                progress(done / total)
    return (out / weight)[..., :h, :w].to(x.dtype)


# ----------------------------------------------------------------------------------------
# Exact mode: activations on the host, convolutions on the device in tiles
# ----------------------------------------------------------------------------------------


def _fold_index(idx: torch.Tensor, n: int, mode: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Map indices outside 0..n-1 the way a conv's padding mode would; for zero padding
    also return the mask of indices inside."""
    if mode == "reflect":
        period = max(2 * (n - 1), 1)
        i = idx.remainder(period)
        return torch.where(i < n, i, period - i), None
    if mode == "replicate":
        return idx.clamp(0, n - 1), None
    if mode == "circular":
        return idx.remainder(n), None
    inside = (idx >= 0) & (idx < n)
    return idx.clamp(0, n - 1), inside


def _gather(x: torch.Tensor, rows: range, cols: range, mode: str) -> torch.Tensor:
    """x[..., rows, cols] with out-of-range rows/cols filled the way ``mode`` pads."""
    h, w = x.shape[-2:]
    if rows.start >= 0 and rows.stop <= h and cols.start >= 0 and cols.stop <= w:
        return x[..., rows.start:rows.stop, cols.start:cols.stop]
    ri, rmask = _fold_index(torch.arange(rows.start, rows.stop), h, mode)
    ci, cmask = _fold_index(torch.arange(cols.start, cols.stop), w, mode)
    out = x.index_select(-2, ri.to(x.device)).index_select(-1, ci.to(x.device))
    if rmask is not None:
        mask = (rmask[:, None] & cmask[None, :]).to(x.device, x.dtype)
        out = out * mask
    return out


class _DeviceConv:
    """Replaces the forward of a Conv2d / ConvTranspose2d whose input lives in host memory:
    computes the output tile by tile on ``device``, reading each tile's halo from the host."""

    def __init__(self, module: nn.Module, device: torch.device, tile: int, precision: Precision):
        self.module = module
        self.device = device
        self.tile = tile
        self.precision = precision
        self.weight = module.weight.detach().to(device)
        self.bias = module.bias.detach().to(device) if module.bias is not None else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        k, d, s = _pair(m.kernel_size), _pair(m.dilation), _pair(m.stride)
        h, w = x.shape[-2:]
        if isinstance(m, nn.ConvTranspose2d):
            p, op = _pair(m.padding), _pair(m.output_padding)
            ho = [(n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate((h, w))]
        else:
            p = _conv_padding(m)
            pe = [(2 * p[i] if m.padding != "same" else d[i] * (k[i] - 1)) for i in range(2)]
            ho = [(n + pe[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate((h, w))]
        out = torch.empty(x.shape[0], m.out_channels, ho[0], ho[1], dtype=x.dtype, device=x.device)
        for y0 in range(0, ho[0], self.tile):
            for x0 in range(0, ho[1], self.tile):
                y1, x1 = min(y0 + self.tile, ho[0]), min(x0 + self.tile, ho[1])
                if isinstance(m, nn.ConvTranspose2d):
                    tile = self._transposed_tile(x, (y0, y1), (x0, x1), k, d, s, p)
                else:
                    tile = self._conv_tile(x, (y0, y1), (x0, x1), k, d, s, p)
                out[..., y0:y1, x0:x1] = tile.to(x.device, x.dtype)
        return out

    def _conv_tile(self, x, ys, xs, k, d, s, p):
        rows = range(ys[0] * s[0] - p[0], (ys[1] - 1) * s[0] - p[0] + (k[0] - 1) * d[0] + 1)
        cols = range(xs[0] * s[1] - p[1], (xs[1] - 1) * s[1] - p[1] + (k[1] - 1) * d[1] + 1)
        mode = self.module.padding_mode if any(p) else "zeros"
        patch = _gather(x, rows, cols, mode).to(self.device)
        conv = partial(F.conv2d, weight=self.weight, bias=self.bias, stride=s, dilation=d, groups=self.module.groups)
        return self.precision(conv, patch)

    def _transposed_tile(self, x, ys, xs, k, d, s, p):
        h, w = x.shape[-2:]
        lo, hi = [], []
        for (a, b), kk, dd, ss, pp, n in zip((ys, xs), k, d, s, p, (h, w)):
            lo.append(max(0, -(-(a + pp - (kk - 1) * dd) // ss)))
            hi.append(min(n - 1, (b - 1 + pp) // ss))
        out = torch.zeros(x.shape[0], self.module.out_channels, ys[1] - ys[0], xs[1] - xs[0],
                          dtype=x.dtype, device=self.device)
        if lo[0] <= hi[0] and lo[1] <= hi[1]:
            patch = x[..., lo[0]:hi[0] + 1, lo[1]:hi[1] + 1].to(self.device)
            conv = partial(F.conv_transpose2d, weight=self.weight, bias=None, stride=s, dilation=d,
                           groups=self.module.groups)
            y = self.precision(conv, patch)
            # local output index of global output q is q - lo * s + p
            oy, ox = ys[0] - lo[0] * s[0] + p[0], xs[0] - lo[1] * s[1] + p[1]
            part = y[..., oy:oy + out.shape[-2], ox:ox + out.shape[-1]]
            out[..., :part.shape[-2], :part.shape[-1]] = part.to(out.dtype)
        if self.bias is not None:
            out += self.bias.to(out.dtype)[None, :, None, None]
        return out


def exact_runner(network: nn.Module, device: torch.device, tile: int, precision: Precision) -> nn.Module:
    """A host copy of ``network`` whose convolutions run on ``device`` in tiles of ``tile``
    output pixels; everything else (norms, squeeze-excitation, activations) runs on whole
    host tensors, so global statistics are those of the whole image."""
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    host = copy.deepcopy(network).to("cpu").eval()
    # only the convolutions run in half precision; the host parts stay in full precision
    precision = Precision(precision.dtype, device.type)
    for module in host.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.forward = _DeviceConv(module, device, tile, precision)
    return host


def run_exact(network: nn.Module, x: torch.Tensor, *, device: torch.device, tile: int,
              precision: Precision) -> torch.Tensor:
    """The whole-image result of ``network`` on ``x`` with activations in host memory and
    convolutions on ``device`` in tiles (see :func:`exact_runner`)."""
    host = exact_runner(network, device, tile, precision)
    with torch.no_grad():
        return host(x.to("cpu")).to(x.device)


# ----------------------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------------------


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (CUDA: the driver's figure; CPU: MemAvailable), or None."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return None


_BYTES_CACHE: WeakKeyDictionary = WeakKeyDictionary()


def bytes_per_pixel(network: nn.Module, dtype: torch.dtype, device_type: str) -> float:
    """Estimated peak memory of one forward pass per input pixel: five live activations of
    the widest layer (the block input, ``res``, the running ``x`` and two temporaries),
    plus, on CPU in float64, the unfolded columns of the largest conv."""
    key = (dtype, device_type)
    cached = _BYTES_CACHE.setdefault(network, {})
    if key in cached:
        return cached[key]
    size = _dry_run_size(network)
    widest, columns = 0.0, 0.0

    def hook(module, args, output):
        nonlocal widest, columns
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            per_px = output.shape[1] * output.shape[2] * output.shape[3] / size ** 2
            widest = max(widest, per_px)
            if isinstance(module, nn.Conv2d) and dtype == torch.float64 and device_type == "cpu":
                kh, kw = _pair(module.kernel_size)
                columns = max(columns, per_px / module.out_channels * module.in_channels * kh * kw)

    leaves = [m for m in network.modules() if not any(True for _ in m.children())]
    _shape_only_run(network, size, [m.register_forward_hook(hook) for m in leaves])
    elem = torch.finfo(dtype).bits // 8
    cached[key] = (5 * widest + columns) * elem
    return cached[key]


def auto_tile(network: nn.Module, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype,
              *, fraction: float = 0.5) -> int | None:
    """The largest square tile whose forward pass fits in ``fraction`` of the device's free
    memory (rounded down to the network's size multiple); None when the whole image fits or
    the free memory is unknown."""
    free = free_memory(device)
    if free is None:
        return None
    n = shape[0] if len(shape) == 4 else 1
    h, w = shape[-2:]
    pixels = fraction * free / (bytes_per_pixel(network, dtype, device.type) * n)  # pixels per tile
    if h * w <= pixels:
        return None
    short = min(h, w)
    # square tiles, except that a tile cannot be taller (wider) than a thin image
    tile = int(pixels / short) if pixels >= short * short else int(math.sqrt(pixels))
    m = getattr(network, "size_multiple", 1)
    return max(tile // m * m, getattr(network, "min_size", 1), 2 * m)
