"""``optimize_for_inference``: a DuRN rewritten into fused ``durn.ops`` calls.

The rewrite (``rewrite.py``) replaces each layer pattern of ``durn.nn`` by one fused
module and keeps anything else as it is. The input handling of ``DuRN.forward``
(validation, mirror padding to the size multiple and the minimum size, cropping) is kept.

Per layer the conv *algorithm* is chosen among implementations of the same operator
contract: "direct" (the backend's ``fused_conv2d``) and, on CPU in float32/float64 for
stride-1 layers, the transform-domain convolutions of ``durn/ops/transform_conv.py``
(Fourier tiles for kernels >= 5, Winograd F(4x4, 3x3) / F(6x6, 3x3) for 3x3). With
``algorithms="auto"`` one forward pass at ``tune_size`` times each candidate on the
layer's real input (``tuner.py``), and keeps the fastest whose output matches the direct
conv's within ``TRANSFORM_RTOL``; the choices are recorded on disk
(``tuning_cache.py``) and reused by later processes.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from .. import ops
from ..nn import DuRN
from .fused_conv import parse_algorithm
from .fused_network import FusedDuRN
from .rewrite import Rewriter
from .tuner import TUNING_BUDGET_S, tune

__all__ = ["ALGORITHMS", "optimize_for_inference"]

ALGORITHMS = ("auto", "direct", "fourier", "winograd", "transform")

# The measuring pass's image size. Measured (one shared core, durn_p / durn_us, unbounded):
# tuning at 128 took 2.8 / 24 s against 10.6 / 67 s at 256, and the networks it chose
# ran a 512 x 512 image no slower (fastest of 5: 5.26 vs 4.73 s and 8.53 vs 9.30 s;
# medians 5.67 vs 5.64 and 16.2 vs 14.7 s, within that machine's spread).
TUNE_SIZE = 128


def optimize_for_inference(
    model: nn.Module,
    backend: str = "auto",
    *,
    channels_last: bool | None = None,
    algorithms: str | Mapping[str, str] = "auto",
    tune_size: int | tuple[int, int] | None = None,
    tune_budget_s: float | None = TUNING_BUDGET_S,
) -> FusedDuRN:
    """An inference-only copy of ``model`` (a :class:`durn.nn.DuRN`: the six networks or a
    user-built one) made of fused operators; ``model`` itself is not modified.

    ``backend``: "torch", "triton", "cpp", "cuda" or "auto" (the fastest available for the
    model's device; see ``durn.ops.available_backends()``).
    ``channels_last``: run in channels-last memory format (None: on CPU, where it measured
    faster; on a GPU the input's format is kept).
    ``algorithms``: "auto" (measure per layer, "torch"/"auto" backends on CPU), "direct"
    (only the backend's ``fused_conv2d``), "fourier" / "winograd" / "transform" (every
    eligible layer; for tests), or a mapping ``{layer name: algorithm}`` as returned by
    ``.algorithm_choices()`` (reproducible: no measurement).
    ``tune_size``: image size of the measuring pass (default ``TUNE_SIZE``, 128, or the
    smallest size the network accepts if larger).
    ``tune_budget_s``: seconds of measuring at most (None: no bound); layers left when it
    runs out get ``durn.inference.tuner.default_algorithm``. Measurements are recorded on
    disk (``durn.inference.tuning_cache``), so later processes on the same machine
    measure nothing.

    The result's output equals ``model``'s within float32 rounding: at most 2e-5 max abs
    difference from the exact (float64) eager output on images in [0, 1], the bound the
    eager float32 networks meet (1e-11 in float64); tests/test_optimize.py checks it.
    Move the model to its device and dtype *before* optimizing.
    """
    if not isinstance(model, DuRN):
        raise TypeError(
            f"optimize_for_inference expects a durn.nn.DuRN (durn.durn_p(), ... or your own DuRN), "
            f"got {type(model).__name__}"
        )
    _check_algorithms(algorithms)
    probe = next(iter(model.parameters()), None)
    device = probe.device if probe is not None else torch.device("cpu")
    dtype = probe.dtype if probe is not None else torch.float32
    backend_name = _check_backend(backend, device)
    source = copy.deepcopy(model).eval().requires_grad_(False)
    optimized = Rewriter(backend_name).network(source)
    optimized.eval()

    transforms_allowed = (
        dtype in (torch.float32, torch.float64)
        and device.type == "cpu"
        and backend_name in (None, "torch")
    )
    if isinstance(algorithms, Mapping):
        _apply_choices(optimized, algorithms)
    elif algorithms in ("fourier", "winograd", "transform"):
        for layer in optimized.fused_convs():
            layer.use_transform(algorithms)
    if channels_last is None:
        # CPU: oneDNN's direct convs measured 1.04-1.29x faster channels-last on the six
        # networks, and the transforms work in it. GPU: unmeasured, keep the input's format.
        channels_last = device.type == "cpu"
    optimized.set_channels_last(bool(channels_last))
    if isinstance(algorithms, str) and algorithms == "auto" and transforms_allowed:
        tune(optimized, _tune_size(tune_size, model), dtype, device, budget_s=tune_budget_s)
    return optimized


# -- argument checks ----------------------------------------------------------------------

def _check_algorithms(algorithms) -> None:
    if isinstance(algorithms, Mapping):
        for algo in algorithms.values():
            parse_algorithm(algo)  # raises with the accepted forms
        return
    if algorithms not in ALGORITHMS:
        raise ValueError(f"algorithms must be one of {ALGORITHMS} or a mapping {{layer: algorithm}}, "
                         f"got {algorithms!r}")


def _check_backend(backend: str, device: torch.device) -> str | None:
    if backend in (None, "auto"):
        return None
    return ops.check_backend(backend, device)  # only this one: probing "cpp" may compile it


def _tune_size(tune_size, model: DuRN) -> tuple[int, int]:
    if tune_size is None:
        tune_size = TUNE_SIZE
    h, w = (tune_size, tune_size) if isinstance(tune_size, int) else tuple(tune_size)
    m = model.size_multiple
    low = model.min_size
    return max(-(-h // m) * m, low), max(-(-w // m) * m, low)


def _apply_choices(optimized: FusedDuRN, choices: Mapping[str, str]) -> None:
    layers = {layer.source: layer for layer in optimized.fused_convs()}
    unknown = sorted(set(choices) - set(layers))
    if unknown:
        raise ValueError(f"no fused conv layer named {unknown[0]!r}; layers: {sorted(layers)}")
    for name, algo in choices.items():
        layers[name].set_algorithm(algo)
