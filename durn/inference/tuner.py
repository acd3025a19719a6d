"""Choosing each fused conv layer's algorithm by measuring it, on the layer's real input.

With ``algorithms="auto"`` :func:`tune` runs one forward pass of the optimized network on
a seeded random image; meanwhile every :class:`FusedConv2d` hands its call to the tuner,
which times the layer's candidates and keeps the fastest one whose output matches the
direct conv's. Layers with the same shapes and settings share one measurement, also
across calls in a process (:func:`clear_tuning_cache` forgets them).
"""
from __future__ import annotations

import contextlib
import statistics
import time

import torch

from .fused_conv import FusedConv2d

__all__ = ["TRANSFORM_RTOL", "Tuner", "clear_tuning_cache", "tune"]

# A transform-domain layer is accepted when max|y - y_direct| <= TRANSFORM_RTOL * max|y_direct|.
# Measured on the six networks' layers: Fourier tiles 2e-7 to 2e-6, Winograd F(4,3) up to
# 4e-6, F(6,3) up to 2e-5 (float32); the direct conv itself is off the float64 result by
# about 1e-6.
TRANSFORM_RTOL = {torch.float32: 2e-5, torch.float64: 1e-12}

# (layer signature, candidates, threads) -> algorithm, for the life of the process.
_DECIDED: dict[tuple, str] = {}


def clear_tuning_cache() -> None:
    """Forget the per-layer measurements (they are reused for layers of the same shape)."""
    _DECIDED.clear()


class Tuner:
    """Chooses each layer's algorithm during one forward pass, on the layer's real input.

    Interleaved A/B: each round times "direct" and every candidate back to back (in a
    rotating order), and a candidate's score is the median over rounds of its time
    divided by the direct time of the same round, so a slow spell of a shared machine
    hits both sides of each ratio. A candidate wins with a score below ``margin``, and
    only if its output matches the direct conv's within ``TRANSFORM_RTOL``.
    """

    def __init__(self, rounds: int = 5, margin: float = 0.93):
        self.rounds, self.margin = rounds, margin
        self.report: dict[str, dict[str, float]] = {}

    def __call__(self, layer: FusedConv2d, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        reference = layer.run("direct", x, residual)
        candidates = layer.candidates(x)
        if len(candidates) == 1:
            return reference
        key = (layer.signature(x), tuple(candidates), torch.get_num_threads())
        choice = _DECIDED.get(key)
        if choice is not None:
            if choice != "direct" and self._error(layer, choice, x, residual, reference) is None:
                choice = "direct"
            layer.set_algorithm(choice)
            return reference
        usable = [a for a in candidates[1:] if self._error(layer, a, x, residual, reference) is not None]
        ratios: dict[str, list[float]] = {algo: [] for algo in usable}
        order = ["direct"] + usable
        for r in range(self.rounds):
            times = {}
            for algo in order[r % len(order):] + order[:r % len(order)]:
                start = time.perf_counter()
                layer.run(algo, x, residual)
                times[algo] = time.perf_counter() - start
            for algo in usable:
                ratios[algo].append(times[algo] / times["direct"])
        score = {algo: statistics.median(rs) for algo, rs in ratios.items()}
        choice = min(score, key=score.get) if score else "direct"
        if not score or score[choice] > self.margin:
            choice = "direct"
        layer.set_algorithm(choice)
        _DECIDED[key] = choice
        self.report[layer.source] = {"direct": 1.0, **score}
        return reference

    @staticmethod
    def _error(layer, algo, x, residual, reference) -> float | None:
        """Relative max error of ``algo`` against the direct conv, None when too large."""
        out = layer.run(algo, x, residual)
        scale = float(reference.abs().max()) or 1.0
        err = float((out - reference).abs().max()) / scale
        return err if err <= TRANSFORM_RTOL.get(x.dtype, 0.0) else None

    @contextlib.contextmanager
    def measuring(self, layers: list[FusedConv2d]):
        """Route the calls of ``layers`` (only these: other networks are untouched) to this tuner."""
        for layer in layers:
            layer.tuner = self
        try:
            yield
        finally:
            for layer in layers:
                layer.tuner = None


def tune(optimized, size: tuple[int, int], dtype: torch.dtype, device: torch.device) -> None:
    """Choose the algorithm of every fused conv of ``optimized`` (a ``FusedDuRN``) with one
    measured forward pass at ``size``; the measurements land in ``optimized.tuning_report``."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    image = torch.rand(1, optimized.in_channels, *size, generator=generator, dtype=torch.float64)
    image = image.to(dtype=dtype, device=device)
    tuner = Tuner()
    with tuner.measuring(optimized.fused_convs()), torch.no_grad():
        optimized(image)
    optimized.tuning_report = tuner.report
