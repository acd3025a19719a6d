"""Shape facts of a network, all found by one shape-only dry run (no real computation).

The dry run (:func:`dry_run`) calls a network on an input that holds no data: its
parameters swapped for meta tensors, or, for modules that cannot run on meta, under
``FakeTensorMode``. Forward hooks watch what each module sees. Three analyses use it:

* :func:`smallest_input_size`: the smallest square multiple of ``multiple`` whose every
  reflection pad is narrower than the tensor it pads and whose every instance norm sees
  at least two pixels; the network pads smaller inputs up to it. Cached per architecture,
  so a second model of the same shape costs nothing.
* :func:`receptive_field`: walks the modules a forward pass calls, in execution order, and
  bounds how far an output pixel can see from the kernel, dilation, stride and padding
  of every conv, transposed conv, pool, pad and pixel shuffle, scaled by the resolution
  each one runs at. It also lists the modules with global statistics (instance norm,
  squeeze-excitation pooling, ...), which make a network non-local.
* :func:`memory_profile`: the peak memory of one forward pass per input pixel, from the
  widest activation (:func:`bytes_per_pixel`), and of one conv run alone in tiles per
  output pixel (what exact tiles need).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from weakref import WeakKeyDictionary

import torch
from torch import nn
from torch.func import functional_call

from .norms import DuRNInstanceNorm
from .squeeze_excitation import SqueezeExcitation

# ----------------------------------------------------------------------------------------
# The dry run
# ----------------------------------------------------------------------------------------


@contextmanager
def quiet_fake_tensor_logs():
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Runner(nn.Module):
    """Lets ``functional_call`` swap in meta tensors and call an arbitrary entry point."""

    def __init__(self, model: nn.Module, run):
        super().__init__()
        self.model = model
        self.run = run

    def forward(self, x):
        return self.run(x)


def dry_run(run: Callable, model: nn.Module, shape: tuple[int, ...], hooks=(), *, meta: bool = False):
    """``run(x)`` (``model``'s forward or another entry point) on an ``x`` of ``shape`` that
    holds no data, in the dtype of ``model``'s weights; returns the (fake) output.
    ``hooks``: handles of hooks already registered on ``model``'s modules, removed after.
    ``meta``: run on meta tensors (fastest; some modules cannot), else under
    ``FakeTensorMode`` on the weights' device."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    device = param.device if param is not None else torch.device("cpu")
    try:
        with torch.no_grad():
            if meta:
                runner = _Runner(model, run)
                state = {
                    name: torch.empty_like(t, device="meta")
                    for name, t in list(runner.named_parameters()) + list(runner.named_buffers())
                }
                return functional_call(runner, state, (torch.empty(shape, dtype=dtype, device="meta"),))
            from torch._subclasses.fake_tensor import FakeTensorMode

            with quiet_fake_tensor_logs(), FakeTensorMode(allow_non_fake_inputs=True):
                return run(torch.empty(shape, dtype=dtype, device=device))
    finally:
        for handle in hooks:
            handle.remove()


def in_channels_of(network: nn.Module) -> int:
    """The input channels of ``network``: its ``in_channels``, else its first conv's."""
    c = getattr(network, "in_channels", None)
    if c is None:
        conv = next((m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))), None)
        if conv is None:
            raise ValueError("cannot tell the network's input channels: give it an in_channels attribute")
        c = conv.in_channels
    return c


def _bare_forward(network: nn.Module) -> Callable:
    return getattr(network, "forward_core", network)


def _dry_run_size(network: nn.Module) -> int:
    """A square size every network handles, large enough that one-pixel pads and unpadded
    convs barely change the ratio of sizes that gives each layer's scale."""
    m = getattr(network, "size_multiple", 1)
    size = max(getattr(network, "min_size", 16), 256)
    return -(-size // (4 * m)) * 4 * m


def _shape_only_run(network: nn.Module, size: int, handles) -> None:
    """The network's bare forward on a fake ``size`` x ``size`` input, with ``handles``."""
    dry_run(_bare_forward(network), network, (1, in_channels_of(network), size, size), handles)


# ----------------------------------------------------------------------------------------
# Smallest input size
# ----------------------------------------------------------------------------------------

_CACHE: dict[tuple, int | None] = {}


class _TooSmall(Exception):
    pass


def _reflect_pads(module: nn.Module) -> tuple[int, ...]:
    if isinstance(module, nn.Conv2d) and module.padding_mode == "reflect":
        return tuple(module.padding)
    if isinstance(module, nn.ReflectionPad2d):
        return tuple(module.padding)
    return ()


def _check_hook(module, args):
    x = args[0]
    h, w = x.shape[-2], x.shape[-1]
    pads = _reflect_pads(module)
    if pads and max(pads) >= min(h, w):
        raise _TooSmall
    if isinstance(module, DuRNInstanceNorm) and h * w < 2:
        raise _TooSmall
    if h < 1 or w < 1:
        raise _TooSmall


def _dry_run(run, model: nn.Module, shape: tuple[int, ...], hook, use_meta: bool) -> bool:
    """True when ``run`` gets through a dry run with ``hook`` on every module (in eval mode)
    and keeps the input's spatial size."""
    handles = [m.register_forward_pre_hook(hook) for m in model.modules()]
    # eval mode: a dry run in train mode would count a batch in every BatchNorm
    training = {m: m.training for m in model.modules()}
    model.eval()
    try:
        out = dry_run(run, model, shape, handles, meta=use_meta)
        return tuple(out.shape[-2:]) == tuple(shape[-2:])
    except (_TooSmall, RuntimeError, ValueError, IndexError, NotImplementedError):
        return False
    finally:
        for m, mode in training.items():
            m.training = mode


def fits(run, model: nn.Module, shape: tuple[int, ...], use_meta: bool = True) -> bool:
    """True when ``run(x)`` with x of ``shape`` gets through every padding/norm constraint
    and returns a tensor of the input's spatial size."""
    return _dry_run(run, model, shape, _check_hook, use_meta)


def smallest_input_size(run, model: nn.Module, in_channels: int, multiple: int, limit: int = 1024) -> int | None:
    """Smallest square size (a multiple of ``multiple``) that ``run`` handles, or None.

    One dry run at a large size records the scale at which every reflection pad works;
    that predicts the answer, which one or two more dry runs confirm.
    """
    key = (repr(model), in_channels, multiple)
    if key not in _CACHE:
        _CACHE[key] = _search(run, model, in_channels, multiple, limit)
    return _CACHE[key]


def _search(run, model, in_channels, multiple, limit):
    big = 64 * multiple
    needs = [multiple]

    def record(module, args):
        h = args[0].shape[-2]
        pads = _reflect_pads(module)
        if pads and h > 0:
            needs.append(-(-(max(pads) + 1) * big // h))

    shape = (1, in_channels, big, big)
    use_meta = _dry_run(run, model, shape, record, use_meta=True)
    if not use_meta:
        needs[:] = [multiple]
        if not _dry_run(run, model, shape, record, use_meta=False):
            return None

    def ok(size):
        return fits(run, model, (1, in_channels, size, size), use_meta)

    size = max(-(-n // multiple) * multiple for n in needs)
    if ok(size):
        while size > multiple and ok(size - multiple):
            size -= multiple
        return size
    while size <= limit:
        size += multiple
        if ok(size):
            return size
    return None


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
# Memory
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryProfile:
    """Bytes a forward pass needs, per pixel, in one dtype on one kind of device."""

    bytes_per_pixel: float       # one whole forward pass, per input pixel
    conv_bytes_per_pixel: float  # the most one conv needs per output pixel when run alone in tiles
                                 # (its input with the halo, on host and device, and its output)


_MEMORY_CACHE: WeakKeyDictionary = WeakKeyDictionary()


def memory_profile(network: nn.Module, dtype: torch.dtype, device_type: str) -> MemoryProfile:
    """The peak memory of ``network``, from one dry run. A whole forward pass holds five
    live activations of the widest layer (the block input, ``res``, the running ``x`` and
    two temporaries), plus, on CPU in float64, the unfolded columns of the largest conv.
    A conv run alone in tiles holds its input tile (twice: gathered on the host, copied to
    the device), its output tile, and the same columns."""
    key = (dtype, device_type)
    cached = _MEMORY_CACHE.setdefault(network, {})
    if key in cached:
        return cached[key]
    size = _dry_run_size(network)
    unfolds = dtype == torch.float64 and device_type == "cpu"
    widest, columns, conv = 0.0, 0.0, 0.0

    def hook(module, args, output):
        nonlocal widest, columns, conv
        if not (isinstance(output, torch.Tensor) and output.dim() == 4):
            return
        per_px = output.shape[1] * output.shape[2] * output.shape[3] / size ** 2
        widest = max(widest, per_px)
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            x = args[0]
            kh, kw = _pair(module.kernel_size)
            cols = x.shape[1] * kh * kw if unfolds else 0
            in_per_out = x.shape[-2] * x.shape[-1] / (output.shape[-2] * output.shape[-1])
            conv = max(conv, x.shape[1] * in_per_out * 2 + output.shape[1] + cols)
            if isinstance(module, nn.Conv2d) and unfolds:
                columns = max(columns, per_px / module.out_channels * module.in_channels * kh * kw)

    leaves = [m for m in network.modules() if not any(True for _ in m.children())]
    _shape_only_run(network, size, [m.register_forward_hook(hook) for m in leaves])
    elem = torch.finfo(dtype).bits // 8
    cached[key] = MemoryProfile((5 * widest + columns) * elem, max(1.0, conv * elem))
    return cached[key]


def bytes_per_pixel(network: nn.Module, dtype: torch.dtype, device_type: str) -> float:
    """Estimated peak memory of one forward pass per input pixel (:func:`memory_profile`)."""
    return memory_profile(network, dtype, device_type).bytes_per_pixel
