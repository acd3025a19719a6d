"""Inside a DuRN: per-block feature maps, attention, the final residual, and how the
features correlate with a known transmission map (``durn explain``, docs/explain.md).

    explanation = explain(model, image, transmission=t)    # image: (C, H, W) in [0, 1]
    save(explanation, "explained/")                         # PNG grids + summary.json

What is recorded, from one eval-mode forward pass with forward hooks (the network's code
is not changed):

* **blocks**: for every :class:`~durn.nn.DualResidualBlock`, in execution order, the
  outputs of its two containers ``t1`` and ``t2`` (T1 and T2 of the paper: what each
  paired operation produces, before it is added to ``res`` / the block input, before any
  ``t1_post``/``t2_post`` norm and ReLU). Shapes (C, h, w) at the container's resolution.
* **attention** (DuRN-S-P only): its three "attentive" DuRB-S blocks (the first stage)
  gate the channels of their SE-ResNet block with squeeze-excitation. Per block: the
  ``gates`` (C,) (the sigmoid weights of SE) and a spatial ``map`` (h, w), the mean over
  channels of the gated SE output's magnitude, ``mean_c gate_c * |y_c|`` (where the
  attended channels respond).
* **residual**: ``output - input`` of the network call, i.e. ``+tanh(tail(x))`` for five
  networks and ``-tanh(tail(x))`` for DuRN-S-P, unclamped, at the image's size.
* **correlation** (when a transmission map (H, W) is given): per block, for T1 and T2,
  the Pearson r of every channel with the transmission resized to the channel's size
  (area averaging), and the best ``|r|``.

Inputs the network pads (sizes that are not a multiple of ``size_multiple`` or under
``min_size``) are run as the network runs them; every map is cropped back to the part
that covers the image.

:func:`haze_with_transmission` hazes an image exactly as ``durn.data``'s ``haze``
degradation does for the same generator and also returns the transmission it used.
"""
from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_write, remove_stale_temp_files
from .data.degradations import Haze, make_degradation
from .nn import DualResidualBlock, SEBasicBlock

__all__ = [
    "GRID_BACKGROUND", "Attention", "BlockMaps", "Explanation", "attentive_blocks", "channel_grid", "dual_blocks",
    "grid_columns",
    "explain", "haze_with_transmission", "output_files", "pearson", "residual_image", "resize_map", "save",
    "summary",
]

GRID_BACKGROUND = 255  # separators and unused cells of a channel grid (white)
SUMMARY = "summary.json"


# ----------------------------------------------------------------------------- haze
def haze_with_transmission(clean: torch.Tensor, generator: torch.Generator,
                           haze="haze") -> tuple[torch.Tensor, torch.Tensor]:
    """(hazed, transmission): ``haze`` (a spec such as ``"haze:beta=1.2"`` or a
    :class:`~durn.data.Haze`) applied to ``clean`` (C, H, W) with ``generator``, exactly
    what ``make_degradation(haze)(clean, generator)`` gives (same draws, same values, and
    the generator advanced alike), and the transmission ``t`` (H, W) of ``I = J t + A (1 - t)``.

    The transmission is the degradation's own (:meth:`~durn.data.degradations.Haze.scattering`)."""
    haze = make_degradation(haze)
    if not isinstance(haze, Haze):
        raise ValueError(f"haze_with_transmission needs a haze degradation, got {haze.spec!r}")
    state = generator.get_state()
    hazed = haze(clean, generator)
    replay = torch.Generator()
    replay.set_state(state)
    t, _ = haze.scattering(clean, replay)
    t = t[0]
    return hazed, t.to(torch.float32)


# ----------------------------------------------------------------------------- the maps
@dataclass
class BlockMaps:
    index: int          # 0-based, over all blocks of all stages, in execution order
    module: str         # the block's module name, e.g. "stages.0.3"
    t1: np.ndarray      # (C, h, w) float32: the output of the block's T1 container
    t2: np.ndarray      # (C, h, w) float32: the output of its T2 container


@dataclass
class Attention:
    block: int          # the block's index (BlockMaps.index)
    module: str
    gates: np.ndarray   # (C,) float32: squeeze-excitation's sigmoid gates
    map: np.ndarray     # (h, w) float32: mean over channels of gate_c * |y_c|


@dataclass
class Explanation:
    input: np.ndarray            # (C, H, W) float32: the image given to explain (RGB or gray order)
    output: np.ndarray           # (C, H, W): the network's output, same order, unclamped
    residual: np.ndarray         # (C, H, W): output - input
    blocks: list[BlockMaps]
    attention: list[Attention] = field(default_factory=list)
    transmission: np.ndarray | None = None  # (H, W) float32, when given
    correlation: list[dict] | None = None   # per block: {"index", "module", "t1": {...}, "t2": {...}, "best_abs_r"}
    padded_size: tuple[int, int] = (0, 0)   # (H, W) the network ran on
    channel_order: str = "RGB"               # what the network was given (the maps are in its terms)
    network: str | None = None


def dual_blocks(model: nn.Module) -> list[tuple[str, DualResidualBlock]]:
    """(name, block) of every dual residual block of ``model``, in registration order (the
    order a :class:`~durn.nn.DuRN` runs them)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, DualResidualBlock)]


def attentive_blocks(model: nn.Module, network: str | None = None) -> list[tuple[str, DualResidualBlock]]:
    """DuRN-S-P's attentive part: the blocks of its first stage (three DuRB-S). Empty for
    the other networks. ``network`` names the network; by default it is recognised from
    the model's class."""
    from .models.builders import _DuRNSP

    if network is None:
        network = "durn_s_p" if isinstance(model, _DuRNSP) else None
    if network != "durn_s_p":
        return []
    first = model.stages[0]
    return [(name, m) for name, m in dual_blocks(model) if any(m is b for b in first)]


def _se_of(block: DualResidualBlock):
    for m in block.t2.modules():
        if isinstance(m, SEBasicBlock):
            return m
    raise ValueError("an attentive block without a squeeze-excitation block in T2")


def output_files(model: nn.Module, *, transmission: bool, network: str | None = None) -> list[str]:
    """The file names :func:`save` writes for ``model`` (``summary.json`` last)."""
    names = ["input.png", "output.png", "residual.png"]
    blocks = dual_blocks(model)
    names += [f"block{i:02d}_{part}.png" for i in range(len(blocks)) for part in ("t1", "t2")]
    names += [f"attention{k:02d}.png" for k in range(len(attentive_blocks(model, network)))]
    if transmission:
        names.append("transmission.png")
    return names + [SUMMARY]


def _crop(feature: torch.Tensor, size: tuple[int, int], padded: tuple[int, int]) -> torch.Tensor:
    """The part of ``feature`` (..., h, w), computed on a ``padded`` image, that covers the
    top-left ``size`` (the network pads at the bottom and right)."""
    h, w = feature.shape[-2:]
    keep_h = min(h, math.ceil(size[0] * h / padded[0]))
    keep_w = min(w, math.ceil(size[1] * w / padded[1]))
    return feature[..., :keep_h, :keep_w]


def resize_map(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (H, W) map resized to ``size`` by area averaging (each output pixel the mean of the
    input pixels it covers; repeated where the output is larger)."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if tuple(t.shape) == tuple(size):
        return t
    return F.interpolate(t[None, None], size=tuple(size), mode="area")[0, 0]


def pearson(features: torch.Tensor, t: torch.Tensor) -> list[float | None]:
    """Pearson r of each channel of ``features`` (C, h, w) with ``t`` (h, w), in float64;
    None for a channel (or a map) that is constant."""
    f = features.double().flatten(1)
    v = t.double().flatten()
    fc = f - f.mean(1, keepdim=True)
    vc = v - v.mean()
    nf, nv = fc.norm(dim=1), vc.norm()
    scale_f = f.abs().amax(1).clamp(min=1e-300)
    flat = (fc.abs().amax(1) <= 1e-6 * scale_f) | (nf == 0)
    if float(vc.abs().max()) <= 1e-9 * max(float(v.abs().max()), 1e-300):
        return [None] * f.shape[0]
    r = (fc @ vc) / (nf * nv).clamp(min=1e-300)
    return [None if bool(flat[c]) else float(r[c].clamp(-1, 1)) for c in range(f.shape[0])]


def _correlate(features: torch.Tensor, transmission: torch.Tensor) -> dict:
    r = pearson(features, resize_map(transmission, tuple(features.shape[-2:])))
    valid = [(abs(v), c) for c, v in enumerate(r) if v is not None]
    best, channel = max(valid) if valid else (None, None)
    return {"r": r, "best_abs_r": best, "best_channel": channel}


@torch.no_grad()
def explain(model: nn.Module, image: torch.Tensor, *, transmission=None, network: str | None = None) -> Explanation:
    """Run ``model`` once (eval mode; its mode is restored afterwards) on ``image``, a float
    (C, H, W) or (1, C, H, W) tensor in [0, 1] with the network's channel count, in RGB
    order (gray for 1-channel networks; a network whose ``channel_order`` is ``"BGR"`` is
    given the channels reversed, as ``durn.restore`` does). ``transmission``: an (H, W)
    map to correlate the block features with. ``network``: the network's name (for the
    attention of ``"durn_s_p"``; recognised from the model when None)."""
    x = torch.as_tensor(image)
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"explain takes one image, got a batch of {x.shape[0]}")
        x = x[0]
    if x.dim() != 3 or not x.is_floating_point():
        raise ValueError(f"expected a float image (C, H, W) in [0, 1], got {x.dtype} of shape {tuple(x.shape)}")
    param = next(model.parameters(), None)
    x = x.to(device=param.device if param is not None else "cpu",
             dtype=param.dtype if param is not None else torch.float32)
    h, w = x.shape[-2:]
    t_map = None
    if transmission is not None:
        t_map = torch.as_tensor(np.asarray(transmission), dtype=torch.float64)
        if tuple(t_map.shape) != (h, w):
            raise ValueError(f"the transmission map is {tuple(t_map.shape)}; expected the image's size ({h}, {w})")
        if not bool(torch.isfinite(t_map).all()):
            raise ValueError("the transmission map holds NaN or Inf values")
    order = getattr(model, "channel_order", "RGB")
    bgr = order == "BGR"

    blocks = dual_blocks(model)
    if not blocks:
        raise ValueError("the model has no dual residual blocks (durn.nn.DualResidualBlock) to explain")
    attentive = attentive_blocks(model, network)
    seen: dict[str, torch.Tensor] = {}
    handles = []

    def keep(key):
        def hook(module, args, output):
            seen[key] = output.detach().float().cpu().clone()
        return hook

    for name, block in blocks:
        handles += [block.t1.register_forward_hook(keep(name + ".t1")),
                    block.t2.register_forward_hook(keep(name + ".t2"))]
    for name, block in attentive:
        se = _se_of(block).se
        handles += [se.fc.register_forward_hook(keep(name + ".gate_logits")),
                    se.register_forward_hook(keep(name + ".gated"))]
    stem = getattr(model, "stem", None)
    if isinstance(stem, nn.Module):
        handles.append(stem.register_forward_pre_hook(
            lambda module, args: seen.__setitem__("padded", torch.tensor(args[0].shape[-2:]))))
    was_training = model.training
    model.eval()
    try:
        y = model((x.flip(0) if bgr else x)[None])[0]
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    y = (y.flip(0) if bgr else y).float().cpu()
    x = x.float().cpu()
    padded = tuple(int(v) for v in seen["padded"]) if "padded" in seen else (h, w)

    maps, correlation = [], [] if t_map is not None else None
    for i, (name, _) in enumerate(blocks):
        missing = [p for p in ("t1", "t2") if f"{name}.{p}" not in seen]
        if missing:
            raise ValueError(f"block {name}'s {' and '.join(missing)} did not run (connection or model not supported)")
        t1, t2 = (_crop(seen[f"{name}.{p}"][0], (h, w), padded) for p in ("t1", "t2"))
        maps.append(BlockMaps(i, name, t1.numpy(), t2.numpy()))
        if t_map is not None:
            entry = {"index": i, "module": name, "t1": _correlate(t1, t_map), "t2": _correlate(t2, t_map)}
            bests = [entry[p]["best_abs_r"] for p in ("t1", "t2") if entry[p]["best_abs_r"] is not None]
            entry["best_abs_r"] = max(bests) if bests else None
            correlation.append(entry)
    index = {name: i for i, (name, _) in enumerate(blocks)}
    attention = []
    for name, _ in attentive:
        gates = torch.sigmoid(seen[name + ".gate_logits"][0])
        gated = _crop(seen[name + ".gated"][0], (h, w), padded)  # gate_c * y_c
        attention.append(Attention(index[name], name, gates.numpy(), gated.abs().mean(0).numpy()))
    return Explanation(
        input=x.numpy(), output=y.numpy(), residual=(y - x).numpy(), blocks=maps, attention=attention,
        transmission=None if t_map is None else t_map.float().numpy(), correlation=correlation,
        padded_size=padded, channel_order=order,
        network=network if network is not None else ("durn_s_p" if attentive else None),
    )


# ----------------------------------------------------------------------------- pictures
def _normalise(channel: np.ndarray) -> np.ndarray:
    """One channel min-max scaled to 0..255 (rounded); a constant channel is all 0."""
    c = np.nan_to_num(channel.astype(np.float64))
    lo, hi = float(c.min()), float(c.max())
    if hi <= lo:
        return np.zeros(c.shape, np.uint8)
    return np.round((c - lo) / (hi - lo) * 255).astype(np.uint8)


def grid_columns(channels: int) -> int:
    """Columns of a channel grid: ceil(sqrt(C)) (32 -> 6, 64 -> 8, 128 -> 12, 256 -> 16)."""
    return max(1, math.ceil(math.sqrt(channels)))


def channel_grid(features: np.ndarray) -> np.ndarray:
    """All C channels of ``features`` (C, h, w) as one uint8 picture: each channel min-max
    normalised on its own to 0..255, row-major in ``ceil(sqrt(C))`` columns (channel k at
    row k // columns, column k % columns), 1-pixel white separators between cells, unused
    cells white. Size: (rows * (h + 1) - 1, columns * (w + 1) - 1)."""
    c, h, w = features.shape
    cols = grid_columns(c)
    rows = math.ceil(c / cols)
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), GRID_BACKGROUND, np.uint8)
    for k in range(c):
        r, q = divmod(k, cols)
        grid[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = _normalise(features[k])
    return grid


def residual_image(residual: np.ndarray) -> tuple[np.ndarray, float]:
    """(uint8 picture (H, W) or (H, W, 3), scale s): ``128 + 127 * r / s`` with
    ``s = max |r|`` over all channels (one scale, so colours compare); 128 is no change."""
    s = float(np.abs(residual).max()) if residual.size else 0.0
    v = np.full(residual.shape, 128.0) if s == 0 else 128 + 127 * residual.astype(np.float64) / s
    return _hwc(np.round(v).clip(0, 255).astype(np.uint8)), s


def _hwc(chw: np.ndarray) -> np.ndarray:
    return chw[0] if chw.shape[0] == 1 else np.ascontiguousarray(chw.transpose(1, 2, 0))


def _picture(x: np.ndarray) -> np.ndarray:
    """An image (C, H, W) in [0, 1] as 8-bit (clamped, rounded)."""
    return _hwc(np.round(np.clip(x.astype(np.float64), 0, 1) * 255).astype(np.uint8))


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _stats(a: np.ndarray) -> dict:
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean())}


def _pictures(explanation: Explanation) -> tuple[dict[str, np.ndarray], dict]:
    pictures = {"input.png": _picture(explanation.input), "output.png": _picture(explanation.output)}
    pictures["residual.png"], scale = residual_image(explanation.residual)
    blocks = []
    for b in explanation.blocks:
        entry = {"index": b.index, "module": b.module}
        for part, features in (("t1", b.t1), ("t2", b.t2)):
            name = f"block{b.index:02d}_{part}.png"
            pictures[name] = channel_grid(features)
            entry[part] = {"file": name, "shape": list(features.shape), "grid_shape": list(pictures[name].shape),
                           "columns": grid_columns(features.shape[0]), **_stats(features)}
        blocks.append(entry)
    attention = []
    for k, a in enumerate(explanation.attention):
        name = f"attention{k:02d}.png"
        pictures[name] = _normalise(a.map)
        attention.append({"block": a.block, "module": a.module, "file": name, "shape": list(a.map.shape),
                          "gates": [float(g) for g in a.gates], **_stats(a.map)})
    transmission = None
    if explanation.transmission is not None:
        pictures["transmission.png"] = np.round(np.clip(explanation.transmission, 0, 1) * 255).astype(np.uint8)
        transmission = {"file": "transmission.png", "shape": list(explanation.transmission.shape),
                        **_stats(explanation.transmission)}
    c, h, w = explanation.input.shape
    info = {
        "format": 1,
        "network": explanation.network,
        "image": {"channels": c, "height": h, "width": w, "padded_height": explanation.padded_size[0],
                  "padded_width": explanation.padded_size[1]},
        "channel_order": explanation.channel_order,
        "files": {"input.png": "the image the network was given, clamped to [0, 1], 8-bit",
                  "output.png": "the network's output, clamped to [0, 1], 8-bit"},
        "grid": "all channels, each min-max normalised to 0..255 on its own (a constant channel is black); "
                "row-major, ceil(sqrt(C)) columns, 1-pixel white separators, unused cells white",
        "blocks": blocks,
        "residual": {"file": "residual.png", "shape": list(explanation.residual.shape),
                     "definition": "output - input (what the network adds: +tanh(tail), or -tanh(tail) for "
                                   "durn_s_p), unclamped; picture: 128 + 127 * r / scale",
                     "scale": scale, "mean_abs": float(np.abs(explanation.residual).mean()),
                     **_stats(explanation.residual)},
        "attention": attention if explanation.attention else None,
        "attention_definition": ("per attentive DuRB-S block: gates = SE's sigmoid channel weights; map = "
                                 "mean over channels of gate_c * |y_c| (y: the SE-ResNet branch before "
                                 "gating), min-max normalised in the picture") if explanation.attention else None,
        "transmission": transmission,
        "correlation": None if explanation.correlation is None else {
            "method": "Pearson r per channel with the transmission resized to the channel's size "
                      "(area averaging); null for a constant channel; input_intensity_r: the same for the "
                      "input's mean over channels at full size (a brightness baseline)",
            "input_intensity_r": _intensity_r(explanation),
            "blocks": explanation.correlation,
        },
    }
    return pictures, info


def _intensity_r(explanation: Explanation) -> float | None:
    """r of the input's mean over channels with the transmission: what a feature that only
    follows the brightness would reach, a baseline for the blocks' values."""
    intensity = torch.from_numpy(explanation.input).double().mean(0, keepdim=True)
    return pearson(intensity, torch.from_numpy(explanation.transmission))[0]


def summary(explanation: Explanation) -> dict:
    """What ``summary.json`` holds (shapes, statistics, correlations, attention gates)."""
    return _pictures(explanation)[1]


def save(explanation: Explanation, folder, *, overwrite: bool = False, info: dict | None = None) -> list[Path]:
    """Write ``explanation`` into ``folder`` (created if needed): the PNGs of
    :func:`output_files` and ``summary.json`` (with ``info`` added at the top level), each
    atomically; ``summary.json`` last, so it marks a complete set. Without ``overwrite``,
    nothing is written when any of these files exists (``FileExistsError``)."""
    folder = Path(folder)
    pictures, data = _pictures(explanation)
    if info:
        data = {**info, **data}
    names = [*pictures, SUMMARY]
    targets = [folder / n for n in names]
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a folder")
    if not overwrite:
        existing = [p for p in targets if os.path.lexists(p)]
        if existing:
            raise FileExistsError(f"{existing[0]} exists ({len(existing)} of the {len(targets)} files to write do)")
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(targets)
    for name, array in pictures.items():
        payload = _png(array)
        atomic_write(folder / name, lambda f, payload=payload: f.write(payload), overwrite=overwrite)
    text = json.dumps(_plain(data), indent=2, allow_nan=False) + "\n"
    atomic_write(folder / SUMMARY, lambda f: f.write(text), overwrite=overwrite, mode="w")
    return targets


def _plain(x):
    """JSON-safe: non-finite floats become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
