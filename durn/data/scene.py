"""Structure drawn into clean training photos before they are degraded, so that the input
and the target both carry it: hard negatives, things a network must learn to keep.

``lines``: long thin straight lines (poles, wires, tripod legs, window frames), dark or
bright, at the slants rain falls at. A rain network trained on photos with few such lines
learns that any thin slanted bright line is a streak and erases scene lines with the rain.
Build one from a spec string with :func:`make_scene`: ``"lines"``, ``"lines:count=2..6"``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .degradations import Degradation, Range, _uniform, parse_params

__all__ = ["SCENES", "ThinLines", "make_scene"]


def segment_coverage(h: int, w: int, p0: tuple[float, float], p1: tuple[float, float], width: float) -> torch.Tensor:
    """(H, W) in [0, 1]: how much of each pixel a segment from ``p0`` to ``p1`` (row, col)
    of ``width`` pixels covers, with a one-pixel linear edge (anti-aliased)."""
    y = torch.arange(h, dtype=torch.float32)[:, None]
    x = torch.arange(w, dtype=torch.float32)[None, :]
    (y0, x0), (y1, x1) = p0, p1
    dy, dx = y1 - y0, x1 - x0
    t = (((y - y0) * dy + (x - x0) * dx) / max(dy * dy + dx * dx, 1e-12)).clamp(0, 1)
    dist = torch.hypot(y - (y0 + t * dy), x - (x0 + t * dx))
    return (width / 2 + 0.5 - dist).clamp(0, 1)


@dataclass(frozen=True)
class ThinLines(Degradation):
    """``count`` straight lines (rounded to a whole number) of ``length`` pixels and
    ``width`` pixels, ``angle`` degrees from vertical, each dark (levels 0-0.25) or bright
    (0.75-1) with equal odds, a little tinted per channel, painted over the image at
    ``opacity``. Centres fall anywhere in the image; lines may leave it."""
    count: Range = Range(0.0, 4.0)
    length: Range = Range(40.0, 300.0)
    width: Range = Range(0.8, 3.0)
    angle: Range = Range(-40.0, 40.0)
    opacity: Range = Range(0.6, 1.0)
    name = "lines"

    def apply(self, clean, g):
        c, h, w = clean.shape
        out = clean.clone()
        for _ in range(int(math.floor(self.count.draw(g) + 0.5))):
            cy, cx = _uniform(g, 0, h - 1), _uniform(g, 0, w - 1)
            half, a = self.length.draw(g) / 2, math.radians(self.angle.draw(g))
            p0 = (cy - half * math.cos(a), cx - half * math.sin(a))
            p1 = (cy + half * math.cos(a), cx + half * math.sin(a))
            alpha = segment_coverage(h, w, p0, p1, self.width.draw(g)) * self.opacity.draw(g)
            base = _uniform(g, 0.0, 0.25) if _uniform(g, 0, 1) < 0.5 else _uniform(g, 0.75, 1.0)
            colour = (base + _uniform(g, -0.05, 0.05, c)).clamp(0, 1).to(clean)
            out = out * (1 - alpha.to(clean)) + colour[:, None, None] * alpha.to(clean)
        return out


SCENES = {"lines": ThinLines}


def make_scene(spec) -> Degradation:
    """A scene transform from ``"lines"`` or ``"lines:count=2..6,width=1..2"``; an instance
    passes through."""
    if isinstance(spec, Degradation):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"scene spec must be a non-empty string, got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r} in {spec!r}; expected one of {sorted(SCENES)}")
    items = [s.strip() for s in rest.split(",") if s.strip()]
    return SCENES[name](**parse_params(SCENES[name], name, items))
