"""Blended tiles: overlapping tiles of an image, run one at a time and blended.

Each tile's weight is zero near its interior edges and ramps up linearly. Where the zero
margin is at least the receptive-field radius (a local network with ``overlap >= 2 r + 1``),
every pixel comes only from tiles that saw all of its context: the result equals the
whole-image result. The receptive field comes from the architecture's dry run
(:func:`durn.nn.geometry.receptive_field`).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..nn import pad_bottom_right
from ..nn.geometry import receptive_field


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
