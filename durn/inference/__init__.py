"""Inference-only DuRNs: ``optimize_for_inference`` rewrites a :class:`durn.nn.DuRN` into
fused ``durn.ops`` calls and measures, per layer, which implementation runs fastest.

Layering: above ``durn.nn`` (whose patterns it rewrites) and ``durn.ops`` (whose operators
and backend queries it uses); nothing below imports it.

    fast = optimize_for_inference(model)          # backend="auto", algorithms="auto"
    fast.algorithm_choices()                       # {"stages.0.1.t1.3": "fourier:16", ...}
"""
from .fused_conv import FusedConv2d, FusedConvInstanceNorm, parse_algorithm
from .fused_network import Chain, FusedDualResidualBlock, FusedDuRN, FusedSEBlock, Join
from .optimize import ALGORITHMS, optimize_for_inference
from .tuner import TRANSFORM_RTOL, Tuner, clear_tuning_cache

__all__ = [
    "ALGORITHMS",
    "Chain",
    "FusedConv2d",
    "FusedConvInstanceNorm",
    "FusedDuRN",
    "FusedDualResidualBlock",
    "FusedSEBlock",
    "Join",
    "TRANSFORM_RTOL",
    "Tuner",
    "clear_tuning_cache",
    "optimize_for_inference",
    "parse_algorithm",
]
