"""Choosing each fused conv layer's algorithm by measuring it, on the layer's real input.

With ``algorithms="auto"`` :func:`tune` runs one forward pass of the optimized network on
a seeded random image; meanwhile every :class:`FusedConv2d` hands its call to the tuner,
which times the layer's candidates and keeps the fastest one whose output matches the
direct conv's. Layers with the same shapes and settings share one measurement, across
calls in a process (:func:`clear_tuning_cache` forgets them) and across processes through
the on-disk record of ``tuning_cache.py``: a second process measures nothing.

Measuring is bounded: after ``budget_s`` seconds (default :data:`TUNING_BUDGET_S`) the
layers not yet measured get :func:`default_algorithm` (what measurement chose most often
for their kind of layer) and are not recorded, so a later process measures them.
"""
from __future__ import annotations

import contextlib
import statistics
import time

import torch

from . import tuning_cache
from .fused_conv import FusedConv2d

__all__ = ["TRANSFORM_RTOL", "TUNING_BUDGET_S", "Tuner", "clear_tuning_cache", "default_algorithm", "tune"]

# A transform-domain layer is accepted when max|y - y_direct| <= TRANSFORM_RTOL * max|y_direct|.
# Measured on the six networks' layers: Fourier tiles 2e-7 to 2e-6, Winograd F(4,3) up to
# 4e-6, F(6,3) up to 2e-5 (float32); the direct conv itself is off the float64 result by
# about 1e-6.
TRANSFORM_RTOL = {torch.float32: 2e-5, torch.float64: 1e-12}

# Seconds of measuring per tune() call. Measuring every layer of durn_us at 256 x 256
# took about 12 s on one core of a 2-core EPYC (durn_p 8 s); the bound only bites on
# slower machines or bigger tune sizes.
TUNING_BUDGET_S = 20.0

# (layer signature, candidates, threads) -> algorithm, for the life of the process.
_DECIDED: dict[tuple, str] = {}


def clear_tuning_cache() -> None:
    """Forget the per-layer measurements of this process (the on-disk record stays:
    delete ``durn.inference.tuning_cache.path()`` to forget those too)."""
    _DECIDED.clear()


def default_algorithm(layer: FusedConv2d, candidates: list[str]) -> str:
    """The choice for a layer left unmeasured, from what measurement chose on CPU (one
    thread, 256 x 256, durn_p and durn_us): Fourier tiles for 17 of 19 layers of kernel
    7 or 11, the direct conv for 82 of 95 layers of kernel 3 and 4 of 6 of kernel 5. The
    Fourier tile with the fewest multiply-adds comes first among the candidates."""
    if layer.kernel_size >= 7:
        fourier = [c for c in candidates if c.startswith("fourier:")]
        if fourier:
            return fourier[0]
    return "direct"


class Tuner:
    """Chooses each layer's algorithm during one forward pass, on the layer's real input.

    Each candidate runs once untimed (plans built, caches warm; its output checked
    against the direct conv's within ``TRANSFORM_RTOL``), then ``rounds`` interleaved
    rounds time "direct" and every candidate back to back (in a rotating order). A
    candidate's score is the median over rounds of its time divided by the direct time of
    the same round, so a slow spell of a shared machine hits both sides of each ratio; it
    wins with a score below ``margin``.
    """

    PRUNE = 1.5

    def __init__(self, rounds: int = 3, margin: float = 0.93, budget_s: float | None = None,
                 record: bool = True):
        self.rounds, self.margin = rounds, margin
        self.deadline = None if budget_s is None else time.perf_counter() + budget_s
        self.cache_file = tuning_cache.path() if record else None
        self.on_disk = tuning_cache.load(self.cache_file)
        self.measured: dict[str, str] = {}  # disk key -> choice, measured by this tuner
        self.report: dict[str, dict[str, float]] = {}
        self.defaulted: list[str] = []  # layers given default_algorithm: the budget ran out

    def __call__(self, layer: FusedConv2d, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        candidates = layer.candidates(x)
        if len(candidates) == 1:
            return layer.run("direct", x, residual)
        key = (layer.signature(x), tuple(candidates), torch.get_num_threads())
        disk_key = tuning_cache.key(layer.signature(x), tuple(candidates), x.device)
        choice = _DECIDED.get(key)
        if choice is None and self.on_disk.get(disk_key) in candidates:
            choice = self.on_disk[disk_key]
        out_of_time = choice is None and self.deadline is not None and time.perf_counter() > self.deadline
        if out_of_time:
            choice = default_algorithm(layer, candidates)
        if choice is not None:  # recorded, or the default: checked, not measured
            reference = layer.run("direct", x, residual)
            if choice != "direct" and self._error(layer, choice, x, residual, reference) is None:
                choice = "direct"
            layer.set_algorithm(choice)
            if out_of_time:
                self.defaulted.append(layer.source)  # not recorded: a later run measures it
            else:
                _DECIDED[key] = choice
            return reference
        reference = layer.run("direct", x, residual)
        usable = [a for a in candidates[1:] if self._error(layer, a, x, residual, reference) is not None]
        ratios: dict[str, list[float]] = {algo: [] for algo in usable}
        order = ["direct"] + usable
        for r in range(self.rounds if usable else 0):
            times = {}
            for algo in order[r % len(order):] + order[:r % len(order)]:
                start = time.perf_counter()
                layer.run(algo, x, residual)
                times[algo] = time.perf_counter() - start
            for algo in order[1:]:
                ratios[algo].append(times[algo] / times["direct"])
            # A candidate 1.5x slower than direct in a round cannot plausibly win: stop timing it.
            order = ["direct"] + [a for a in order[1:] if ratios[a][-1] < self.PRUNE]
            if len(order) == 1:
                break
        score = {algo: statistics.median(rs) for algo, rs in ratios.items()}
        choice = min(score, key=score.get) if score else "direct"
        if not score or score[choice] > self.margin:
            choice = "direct"
        layer.set_algorithm(choice)
        _DECIDED[key] = choice
        self.measured[disk_key] = choice
        self.report[layer.source] = {"direct": 1.0, **score}
        return reference

    def save(self) -> bool:
        """Add this tuner's measurements to the on-disk record (True when written)."""
        return tuning_cache.save(self.cache_file, self.measured)

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


class _Recall:
    """Stands in for the tuner during a shape-only pass: looks every layer up in the
    process's and the disk's record, and notes whether any is missing."""

    def __init__(self, on_disk: dict[str, str]):
        self.on_disk = on_disk
        self.found: dict[FusedConv2d, tuple[int, str]] = {}  # layer -> (input channels, choice)
        self.missing = False

    def __call__(self, layer: FusedConv2d, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        candidates = layer.candidates(x)
        if len(candidates) > 1:
            key = (layer.signature(x), tuple(candidates), torch.get_num_threads())
            choice = _DECIDED.get(key)
            if choice is None:
                choice = self.on_disk.get(tuning_cache.key(layer.signature(x), tuple(candidates), x.device))
                choice = choice if choice in candidates else None
            if choice is None:
                self.missing = True
            else:
                self.found[layer] = (x.shape[1], choice)
        return layer.run("direct", x, residual)


def _recall(optimized, size, dtype, device, on_disk) -> bool:
    """Set every layer's algorithm from the records without measuring: a shape-only pass
    (FakeTensorMode) finds each layer's input, and each recorded transform is checked on a
    small random input against the direct conv (its accuracy depends on the weights).
    False, with nothing changed, when some layer has no record."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from ..nn.geometry import quiet_fake_tensor_logs

    recall = _Recall(on_disk)
    layers = optimized.fused_convs()
    for layer in layers:
        layer.tuner = recall
    try:
        with torch.no_grad(), quiet_fake_tensor_logs(), FakeTensorMode(allow_non_fake_inputs=True):
            image = torch.empty(1, optimized.in_channels, *size, dtype=dtype, device=device)
            optimized.forward_core(image)
    finally:
        for layer in layers:
            layer.tuner = None
    if recall.missing:
        return False
    generator = torch.Generator(device="cpu").manual_seed(0)
    for layer, (channels, choice) in recall.found.items():
        if choice.startswith("direct"):
            layer.set_algorithm(choice)
        else:
            reach = layer.dilation * (layer.kernel_size - 1) + 2 * layer.padding + 2
            side = -(-max(32, reach) // layer.upscale)
            x = torch.rand(1, channels, side, side, generator=generator,
                           dtype=torch.float64).to(dtype=dtype, device=device)
            if optimized.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            ok = Tuner._error(layer, choice, x, None, layer.run("direct", x, None)) is not None
            layer.set_algorithm(choice if ok else "direct")
    return True


def tune(optimized, size: tuple[int, int], dtype: torch.dtype, device: torch.device, *,
         budget_s: float | None = TUNING_BUDGET_S, record: bool = True) -> None:
    """Choose the algorithm of every fused conv of ``optimized`` (a ``FusedDuRN``) with one
    measured forward pass at ``size``, measuring for at most ``budget_s`` seconds (None:
    no bound); the measurements land in ``optimized.tuning_report`` and, with ``record``,
    in the on-disk record. ``optimized.tuning_defaulted`` lists the layers left to
    ``default_algorithm`` when the budget ran out. When every layer is already recorded
    (in this process or on disk), nothing is measured and no full-size pass runs."""
    tuner = Tuner(budget_s=budget_s, record=record)
    if _recall(optimized, size, dtype, device, tuner.on_disk):
        optimized.tuning_report, optimized.tuning_defaulted = {}, []
        return
    generator = torch.Generator(device="cpu").manual_seed(0)
    image = torch.rand(1, optimized.in_channels, *size, generator=generator, dtype=torch.float64)
    image = image.to(dtype=dtype, device=device)
    with tuner.measuring(optimized.fused_convs()), torch.no_grad():
        optimized(image)
    tuner.save()
    optimized.tuning_report = tuner.report
    optimized.tuning_defaulted = tuner.defaulted
