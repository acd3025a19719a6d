"""Restore real images with a DuRN: :func:`restore` (``durn.restore``) and :class:`Restore`.

Images come as float tensors (C, H, W) / (N, C, H, W) in [0, 1], numpy arrays (H, W) or
(H, W, C) of uint8, uint16 or float, PIL images, or a list of any of these (sizes may
differ); each result is of the same kind. Channels: 1 gray, 2 gray + alpha, 3 RGB,
4 RGBA. Alpha is passed through unchanged. A gray image given to an RGB network is
replicated to three channels and the result converted back to gray (ITU-R BT.601 luma);
an RGB image given to a gray network has each channel restored as a gray image. Callers
always pass and get RGB: weights that expect BGR (``model.channel_order == "BGR"``, the
authors' raindrop weights) get their channels reversed on the way in and out.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn

from ..nn.geometry import in_channels_of
from ..ops import backends
from . import fast, memory, tiles
from .convert import LUMA, array_to_chw, check_float_range, chw_to_array
from .exact import run_exact
from .precision import EmulatedPrecisionWarning, Precision, parse_precision

__all__ = ["Restore", "load_network", "restore"]

TILE_MODES = ("blend", "exact")


def load_network(name: str, weights="default") -> nn.Module:
    """Network ``name`` in eval mode with ``weights`` (read by ``durn.weights.resolve``):
    ``"default"`` (also for None: the network's default released weights), a released
    entry name, ``"authors"`` (after ``durn import-authors``), a checkpoint path (the
    authors' file or a durn weights file), a state dict, or ``"untrained"`` (random
    weights, seeded, with a warning; for checking a pipeline)."""
    from ..models import get_model
    from ..weights import form_of

    if weights is None:
        weights = "default"
    try:
        return get_model(name, weights=weights).eval()
    except ValueError as err:
        if form_of(weights) == "default":
            raise ValueError(f"{err} To check a pipeline without weights, pass weights='untrained' "
                             "(random weights).") from None
        raise


@dataclass(frozen=True)
class _Options:
    tile: int | str | None
    tile_overlap: int | None
    tile_mode: str
    precision: torch.dtype | None
    device: torch.device | None
    progress: object = None
    optimize: bool = True


def _parse_tile(tile):
    if tile is None or (isinstance(tile, str) and tile.lower() in ("none", "off", "0")) or tile == 0:
        return None
    if isinstance(tile, str) and tile.lower() == "auto":
        return "auto"
    if isinstance(tile, (int, np.integer)) and not isinstance(tile, bool) and tile > 0:
        return int(tile)
    if isinstance(tile, str) and tile.isdigit():
        return int(tile)
    raise ValueError(f"tile must be None, 'auto' or a positive number of pixels, got {tile!r}")


def _options(tile, tile_overlap, tile_mode, precision, device, progress=None, optimize=True) -> _Options:
    if tile_overlap is not None and (not isinstance(tile_overlap, (int, np.integer)) or tile_overlap < 0):
        raise ValueError(f"tile_overlap must be None or a number of pixels >= 0, got {tile_overlap!r}")
    if tile_mode not in TILE_MODES:
        raise ValueError(f"tile_mode must be one of {TILE_MODES}, got {tile_mode!r}")
    if not isinstance(optimize, bool):
        raise TypeError(f"optimize must be True or False, got {optimize!r}")
    return _Options(
        _parse_tile(tile), None if tile_overlap is None else int(tile_overlap), tile_mode,
        parse_precision(precision), None if device is None else torch.device(device), progress, optimize,
    )


def restore(model: nn.Module, image, *, tile=None, tile_overlap=None, tile_mode: str = "blend",
            precision=None, device=None, progress=None, optimize: bool = True):
    """Restore ``image`` with ``model`` (a DuRN); returns a result of the same kind.

    Args:
        model: a network from ``durn.get_model`` / ``durn.load_reference`` / torch.hub. It
            runs in eval mode for the call (its mode is restored afterwards), without
            gradients.
        image: a float tensor (C, H, W) or (N, C, H, W) with values in [0, 1]; a numpy array
            (H, W) or (H, W, C) of uint8, uint16 (scaled by 255 / 65535) or float in [0, 1];
            a PIL image; or a list of these. Integer and PIL results are rounded and
            clamped; float results are the network's output, not clamped.
        tile: None (whole image), a tile size in pixels, or ``"auto"`` (tiles only when the
            image does not fit in half of the device's free memory). Results are
            deterministic for the same input, weights, device, precision, thread count,
            tiles and fast-path choices (recorded on disk once measured; see ``optimize``); as tiles change results slightly and ``"auto"`` follows the free memory,
            pass None or a size where runs must match bit for bit.
        tile_overlap: pixels shared by neighbouring tiles. Default: the receptive field,
            computed from the architecture, so local networks (durn_p, durn_p_real) give the
            whole-image result; half of it, at most half a tile, for the others.
        tile_mode: ``"blend"`` (overlapping tiles, blended) or ``"exact"`` (activations in
            host memory, convolutions on the device in tiles: exact for every network,
            including instance norm and squeeze-excitation, but slower).
        precision: ``"float32"`` (default; the network's own dtype), ``"bfloat16"`` or
            ``"float16"`` (autocast; a result with NaN/Inf is recomputed in float32).
        device: where to run; default the model's device. Results come back where the input
            was (numpy and PIL results on the host).
        progress: optional callable receiving the fraction of tiles done.
        optimize: True (default): run durn's fused fast path, built once per process and
            network (``durn.optimize_for_inference``; the first call measures each layer
            for at most 20 s, recorded on disk so later processes measure nothing); the
            result agrees with the eager network within float32 rounding (2e-5). It
            applies to DuRNs with float32/float64 weights in full precision and blended
            or whole-image runs; others run eagerly. False: always the eager network.
    """
    opts = _options(tile, tile_overlap, tile_mode, precision, device, progress, optimize)
    return _restore_any(model, image, opts)


def _restore_any(model: nn.Module, image, opts: _Options):
    if isinstance(image, (list, tuple)):
        return type(image)(_restore_any(model, item, opts) for item in image)
    if isinstance(image, torch.Tensor):
        return _restore_tensor(model, image, opts)
    if isinstance(image, np.ndarray):
        return _restore_array(model, image, opts)
    if _is_pil(image):
        from .convert import array_to_pil, pil_to_array

        array, mode = pil_to_array(image)
        return array_to_pil(_restore_array(model, array, opts), mode)
    raise TypeError(
        f"expected a torch.Tensor, a numpy array, a PIL image or a list of them, got {type(image).__name__}"
    )


def _is_pil(obj) -> bool:
    import sys

    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(obj, pil.Image)


def _restore_tensor(model: nn.Module, image: torch.Tensor, opts: _Options) -> torch.Tensor:
    if image.dim() not in (3, 4):
        raise ValueError(f"expected a tensor of shape (C, H, W) or (N, C, H, W), got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(
            f"expected a floating-point tensor with values in [0, 1], got {image.dtype}; "
            "convert with image.float() / 255 (8-bit) or / 65535 (16-bit), or pass a numpy array"
        )
    check_float_range(image)
    x = image if image.dim() == 4 else image.unsqueeze(0)
    y = _restore_nchw(model, x, opts)
    return (y if image.dim() == 4 else y.squeeze(0)).to(image.dtype)


def _restore_array(model: nn.Module, image: np.ndarray, opts: _Options) -> np.ndarray:
    x, scale = array_to_chw(image)
    if scale is None:
        check_float_range(x)
    y = _restore_nchw(model, x[None], opts)[0]
    return chw_to_array(y, image.dtype, scale, image.ndim == 2)


def _restore_nchw(model: nn.Module, x: torch.Tensor, opts: _Options) -> torch.Tensor:
    """x: float (N, C, H, W) with C in 1..4 (gray, gray+alpha, RGB, RGBA)."""
    c = x.shape[1]
    if c not in (1, 2, 3, 4):
        raise ValueError(
            f"expected 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels, got {c} (shape {tuple(x.shape)})"
        )
    colour_c = 1 if c <= 2 else 3
    colour, alpha = x[:, :colour_c], x[:, colour_c:]
    net_c = in_channels_of(model)
    n, _, h, w = x.shape
    if net_c == colour_c:
        y = _run_in_order(model, colour, opts)
    elif net_c == 1 and colour_c == 3:
        y = _run_in_order(model, colour.reshape(n * 3, 1, h, w), opts).reshape(n, 3, h, w)
    elif net_c == 3 and colour_c == 1:
        rgb = _run_in_order(model, colour.expand(n, 3, h, w), opts)
        luma = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
        y = (rgb * luma).sum(dim=1, keepdim=True)
    else:
        raise ValueError(f"the network takes {net_c} channels; cannot restore an image with {colour_c}")
    return torch.cat([y, alpha.to(y.device, y.dtype)], dim=1) if alpha.shape[1] else y


def _run_in_order(model: nn.Module, rgb: torch.Tensor, opts: _Options) -> torch.Tensor:
    bgr = getattr(model, "channel_order", "RGB") == "BGR"
    y = _run(model, rgb.flip(1) if bgr else rgb, opts)
    return y.flip(1) if bgr else y


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters(), None)
    return (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.float32)


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type == "cuda":  # "cuda" means the current device
        return (a.index if a.index is not None else torch.cuda.current_device()) == \
            (b.index if b.index is not None else torch.cuda.current_device())
    return a.index == b.index or a.index is None or b.index is None


def _run(model: nn.Module, x: torch.Tensor, opts: _Options) -> torch.Tensor:
    """The network on x (in its own channel layout), whole or in tiles, in eval mode."""
    model_device, model_dtype = _model_device_dtype(model)
    device = opts.device or model_device
    half = opts.precision
    if half is not None and model_dtype != torch.float32:
        raise ValueError(f"precision {half} needs float32 weights; the network's are {model_dtype}")
    if half is not None and device.type == "cpu" and not backends.cpu_has_native(half):
        name = "bfloat16" if half == torch.bfloat16 else "float16"
        warnings.warn(f"precision='{name}' on this CPU is emulated (it has no {backends.NATIVE_HALF[half][0]}): over 100x "
                      "slower than float32 here; leave precision at 'float32'", EmulatedPrecisionWarning, stacklevel=4)
    home, in_dtype = x.device, x.dtype
    x = x.to(model_dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            y = _run_eval(model, x, opts, device, model_device, model_dtype, half)
        if opts.progress is not None:
            opts.progress(1.0)
        return y.to(home, in_dtype)
    finally:
        model.train(was_training)


def _run_eval(model, x, opts, device, model_device, model_dtype, half) -> torch.Tensor:
    tile = opts.tile
    if tile == "auto":  # tiles only when the whole image does not fit
        tile = memory.auto_tile(model, tuple(x.shape), device, model_dtype)
        if tile is not None and opts.tile_mode == "exact":
            tile = memory.auto_exact_tile(model, device, model_dtype) or tile
    if opts.tile_mode == "exact" and tile is not None:
        return run_exact(model, x.cpu(), device=device, tile=tile, precision=Precision(half, device.type))
    same = _same_device(device, model_device)
    net = fast.fast_network(model, device, same) if opts.optimize and half is None else None
    if net is None:
        net = model if same else copy.deepcopy(model).to(device)
    precision = Precision(half, device.type, net)
    m = getattr(model, "size_multiple", 1)
    padded = [max(-(-s // m) * m, getattr(model, "min_size", 1)) for s in x.shape[-2:]]
    if tile is None or (padded[0] <= tile and padded[1] <= tile):
        return precision(net, x.to(device))
    plan = tiles.plan_tiles(model, tile, opts.tile_overlap)
    return tiles.run_blended(partial(precision, net), model, x, plan, device=device, progress=opts.progress)


class Restore(nn.Module):
    """Image restoration as a module: ``Restore("durn_us", weights="authors")``.

    Call it on anything :func:`restore` takes (tensor, numpy array, PIL image, list); the
    result is of the same kind, so it fits in ``torchvision.transforms.Compose`` before or
    after ``ToTensor``. It pickles (the network travels with it), so it works in DataLoader
    workers. Results carry no autograd history.

    Args:
        network_or_name: a network module, or a name (``"durn_p"``, ...) loaded with
            ``weights``.
        weights: with a name, what :func:`load_network` takes; None (the default) loads
            the network's released weights, and where none are released raises an error
            saying how to get the authors' weights or check a pipeline with
            ``"untrained"``.
        tile, tile_overlap, tile_mode, precision: as :func:`restore`.
        device: moves the network there (default: leave it where it is).
        optimize: as :func:`restore` (default True: the fused fast path, built in each
            process on its first call, never pickled: a pickled ``Restore`` carries the
            eager network only).
    """

    def __init__(self, network_or_name, *, weights=None, tile=None, tile_overlap=None, tile_mode: str = "blend",
                 precision=None, device=None, optimize: bool = True):
        super().__init__()
        if isinstance(network_or_name, str):
            network = load_network(network_or_name, weights)
        elif isinstance(network_or_name, nn.Module):
            if weights is not None:
                raise ValueError("weights= is for a network name; load weights into the module yourself")
            network = network_or_name
        else:
            raise TypeError(f"expected a network module or name, got {type(network_or_name).__name__}")
        _options(tile, tile_overlap, tile_mode, precision, device, optimize=optimize)  # fail now, not in a worker
        self.network = network.eval()
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.tile_mode = tile_mode
        self.precision = precision
        self.optimize = optimize
        if device is not None:
            self.network.to(device)

    def forward(self, image):
        return restore(self.network, image, tile=self.tile, tile_overlap=self.tile_overlap,
                       tile_mode=self.tile_mode, precision=self.precision, optimize=self.optimize)

    def __setstate__(self, state):
        state.setdefault("optimize", True)  # pickled before durn had the fast path
        super().__setstate__(state)

    def extra_repr(self) -> str:
        return (f"tile={self.tile!r}, tile_overlap={self.tile_overlap!r}, tile_mode={self.tile_mode!r}, "
                f"precision={self.precision!r}, optimize={self.optimize!r}, channel_order={getattr(self.network, 'channel_order', 'RGB')!r}")
