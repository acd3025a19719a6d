"""``optimize_for_inference``: a DuRN rewritten into fused ``durn.ops`` calls.

The rewrite knows the layer patterns of ``durn.nn`` and replaces each by one fused
module (``durn/ops/fused_modules.py``):

* ``Conv2d`` (or ``ReflectionPad2d`` + unpadded ``Conv2d``) [+ ``BatchNorm2d``] [+ ``ReLU``]:
  one ``fused_conv2d`` with the BN folded into the weights and bias;
* ``PixelShuffle`` + ``Conv2d`` ...: one ``pixel_shuffle_conv2d``;
* ``Conv2d`` [+ residual] + ``DuRNInstanceNorm`` [+ ``ReLU``]: the conv (its bias dropped,
  instance norm removes it), then one instance-norm-and-ReLU pass;
* DuRB joins ``relu(norm(conv(x) + x_r))``: the add, the norm and the ReLU go into the
  conv's epilogue (a BN after the add stays a per-channel affine applied after it:
  ``residual_at="pre_affine"``; before the add it is folded: ``"post_affine"``);
* ``SEBasicBlock``: two fused convs and one ``squeeze_excitation`` (with the shortcut and
  the ReLU);
* the network's output ``input ± tanh(tail(x))``: the last conv's epilogue
  (``activation="tanh"``, ``residual_at="post_activation"``).

Anything else (a user's own T1/T2 modules, transposed convs, pooling, other norms) is
kept as the original module, so every DuRN works. The input handling of ``DuRN.forward``
(validation, mirror padding to the size multiple and the minimum size, cropping) is kept.

Per layer the conv *algorithm* is chosen among implementations of the same operator
contract: "direct" (the backend's ``fused_conv2d``) and, on CPU in float32/float64 for
stride-1 layers, the transform-domain convolutions of ``durn/ops/transform_conv.py``
(Fourier tiles for kernels >= 5, Winograd F(4x4, 3x3) / F(6x6, 3x3) for 3x3). With
``algorithms="auto"`` one forward pass at ``tune_size`` times each candidate on the
layer's real input, and keeps the fastest whose output matches the direct conv's within
``TRANSFORM_RTOL``.
"""
from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Mapping

import torch
from torch import nn

from .nn import DuRN, DuRNInstanceNorm, DualResidualBlock, DualResidualChain, SEBasicBlock
from .ops import fused_modules as fused
from .ops.fused_modules import Chain, FusedConv2d, FusedDualResidualBlock, FusedDuRN, FusedSEBlock, Join

__all__ = ["ALGORITHMS", "TRANSFORM_RTOL", "clear_tuning_cache", "optimize_for_inference"]

ALGORITHMS = ("auto", "direct", "fourier", "winograd", "transform")
# A transform-domain layer is accepted when max|y - y_direct| <= TRANSFORM_RTOL * max|y_direct|.
# Measured on the six networks' layers: Fourier tiles 2e-7 to 2e-6, Winograd F(4,3) up to
# 4e-6, F(6,3) up to 2e-5 (float32); the direct conv itself is off the float64 result by
# about 1e-6.
TRANSFORM_RTOL = {torch.float32: 2e-5, torch.float64: 1e-12}


def optimize_for_inference(
    model: nn.Module,
    backend: str = "auto",
    *,
    channels_last: bool | None = None,
    algorithms: str | Mapping[str, str] = "auto",
    tune_size: int | tuple[int, int] | None = None,
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
    ``tune_size``: image size of the measuring pass (default 256, or the smallest size
    the network accepts if larger).

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
    rewriter = _Rewriter(backend_name)
    optimized = rewriter.network(source)
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
        _tune(optimized, _tune_size(tune_size, model), dtype, device)
    return optimized


# -- argument checks ----------------------------------------------------------------------

def _check_algorithms(algorithms) -> None:
    if isinstance(algorithms, Mapping):
        for algo in algorithms.values():
            fused.parse_algorithm(algo)  # raises with the accepted forms
        return
    if algorithms not in ALGORITHMS:
        raise ValueError(f"algorithms must be one of {ALGORITHMS} or a mapping {{layer: algorithm}}, "
                         f"got {algorithms!r}")


def _check_backend(backend: str, device: torch.device) -> str | None:
    from . import ops

    if backend in (None, "auto"):
        return None
    if backend not in ops.BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected 'auto' or one of {ops.BACKENDS}")
    ok, why = ops.backends._probe(backend)  # only this one: probing "cpp" may compile it
    if not ok:
        raise RuntimeError(f"backend {backend!r} is not available here: {why}")
    if not ops.backends._supports(backend, device):
        raise RuntimeError(f"backend {backend!r} does not run on {device.type} tensors (the model is on {device})")
    return backend


def _tune_size(tune_size, model: DuRN) -> tuple[int, int]:
    if tune_size is None:
        tune_size = 256
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


# -- measuring ----------------------------------------------------------------------------

class _Tuner:
    """Chooses each layer's algorithm during one forward pass, on the layer's real input.

    Interleaved A/B: each round times "direct" and every candidate back to back (in a
    rotating order), and a candidate's score is the median over rounds of its time
    divided by the direct time of the same round, so a slow spell of a shared machine
    hits both sides of each ratio. A candidate wins with a score below ``margin``, and
    only if its output matches the direct conv's within ``TRANSFORM_RTOL``. Layers with
    the same shapes and settings share one measurement (also across calls in a process).
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


# (layer signature, candidates, threads) -> algorithm, for the life of the process.
_DECIDED: dict[tuple, str] = {}


def clear_tuning_cache() -> None:
    """Forget the per-layer measurements (they are reused for layers of the same shape)."""
    _DECIDED.clear()


def _tune(optimized: FusedDuRN, size: tuple[int, int], dtype, device) -> None:
    generator = torch.Generator(device="cpu").manual_seed(0)
    image = torch.rand(1, optimized.in_channels, *size, generator=generator, dtype=torch.float64)
    image = image.to(dtype=dtype, device=device)
    tuner = _Tuner()
    with fused.tuning(tuner), torch.no_grad():
        optimized(image)
    optimized.tuning_report = tuner.report


# -- the rewrite ---------------------------------------------------------------------------

class _Rewriter:
    def __init__(self, backend: str | None):
        self.backend = backend

    def network(self, model: DuRN) -> FusedDuRN:
        names = {id(m): name for name, m in model.named_modules()}
        self.names = names
        stem = self.chain(_children(model.stem))
        entry = self.chain(_children(model.entry))
        stages = nn.ModuleList()
        for stage in model.stages:
            if isinstance(stage, DualResidualChain):
                stages.append(fused.BlockChain(self.block(b) if isinstance(b, DualResidualBlock) else b
                                               for b in stage))
            else:
                stages.append(stage)
        tail = self.chain(_children(model.tail))
        final = tail.absorb_output(-1.0 if model.subtract_residual else 1.0)
        return FusedDuRN(model, stem, entry, stages, tail, final)

    def name(self, module: nn.Module) -> str:
        return self.names.get(id(module), "?")

    def block(self, block: DualResidualBlock) -> nn.Module:
        first = self.chain([block.conv1, block.norm1, nn.ReLU()])
        second = self.chain([block.conv2], Join(block.norm2))
        t1 = self.chain(_children(block.t1), Join(block.t1_post, with_residual=block.connection != "paired"))
        t2 = self.chain(_children(block.t2), Join(block.t2_post))
        return FusedDualResidualBlock(block.connection, first, second, t1, t2)

    def chain(self, modules: list[nn.Module], join: Join | None = None) -> Chain:
        modules = [m for m in modules if not isinstance(m, nn.Identity)]
        stages: list[nn.Module] = []
        i, n = 0, len(modules)
        while i < n:
            m = modules[i]
            upscale, pad_module = 1, None
            if isinstance(m, nn.PixelShuffle) and i + 1 < n and _plain_conv(modules[i + 1]):
                upscale, i, m = m.upscale_factor, i + 1, modules[i + 1]
            elif isinstance(m, nn.ReflectionPad2d) and i + 1 < n and _reflect_pad_conv(m, modules[i + 1]):
                pad_module, i, m = m, i + 1, modules[i + 1]
            if _plain_conv(m):
                conv = m
                i += 1
                norm = None
                if i < n and isinstance(modules[i], (nn.BatchNorm2d, DuRNInstanceNorm)) and \
                        _norm_fits(modules[i], conv.out_channels):
                    norm, i = modules[i], i + 1
                relu = i < n and isinstance(modules[i], nn.ReLU)
                if relu:
                    i += 1
                stages.append(fused.make_conv(conv, norm, relu, upscale=upscale, pad_module=pad_module,
                                              backend=self.backend, source=self.name(conv)))
                continue
            if upscale > 1:  # PixelShuffle before something we do not fuse
                stages.append(nn.PixelShuffle(upscale))
                continue
            if isinstance(m, SEBasicBlock) and _se_fits(m):
                stages.append(FusedSEBlock(m, backend=self.backend, names=self.names))
            elif isinstance(m, nn.Sequential):
                stages.extend(self.chain(_children(m)).stages)
            else:
                stages.append(m)
            i += 1
        return Chain(stages, join)


def _children(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return list(module)
    if isinstance(module, nn.Identity):
        return []
    return [module]


def _plain_conv(m: nn.Module) -> bool:
    """A Conv2d the operators express: square kernel, groups 1, symmetric padding,
    stride 1 or 2, zero or reflect padding."""
    if type(m) is not nn.Conv2d:
        return False
    k = m.kernel_size
    return (
        k[0] == k[1]
        and m.groups == 1
        and isinstance(m.padding, tuple) and m.padding[0] == m.padding[1]
        and m.stride[0] == m.stride[1] and m.stride[0] in (1, 2)
        and m.dilation[0] == m.dilation[1]
        and (m.padding_mode in ("zeros", "reflect"))
    )


def _reflect_pad_conv(pad: nn.ReflectionPad2d, conv: nn.Module) -> bool:
    p = pad.padding
    return len(set(p)) == 1 and _plain_conv(conv) and conv.padding == (0, 0)


def _norm_fits(norm: nn.Module, channels: int) -> bool:
    if isinstance(norm, nn.BatchNorm2d):
        return norm.track_running_stats and norm.running_mean is not None and norm.num_features == channels
    return norm.scale.numel() == channels


def _se_fits(block: SEBasicBlock) -> bool:
    return all(_plain_conv(c) for c in (block.conv1, block.conv2)) and \
        isinstance(block.se.fc[0], nn.Linear) and isinstance(block.se.fc[2], nn.Linear)
