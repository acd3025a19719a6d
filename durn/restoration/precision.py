"""Half precision with a float32 safety net: :class:`Precision`.

A forward runs in float32 (default), bfloat16 or float16 autocast; the global statistics
(instance norm, squeeze-excitation) get float32 inputs, and any result that came out
non-finite is recomputed in float32 with a :class:`NonFiniteFallback` warning.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..nn import DuRNInstanceNorm, SqueezeExcitation

PRECISIONS = {
    None: None, "float32": None, "fp32": None, "full": None,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def parse_precision(precision) -> torch.dtype | None:
    """None (full precision: the network's own dtype), torch.bfloat16 or torch.float16."""
    if isinstance(precision, torch.dtype):
        if precision in (torch.bfloat16, torch.float16):
            return precision
        if precision in (torch.float32, torch.float64):
            return None
    elif precision in PRECISIONS:
        return PRECISIONS[precision]
    raise ValueError(
        f"precision must be one of 'float32' (default), 'bfloat16' ('bf16') or 'float16' ('fp16'), got {precision!r}"
    )


def _float32_input(module, args):
    return (args[0].float(),) + tuple(args[1:])


class EmulatedPrecisionWarning(UserWarning):
    """bfloat16 or float16 asked for on a CPU that emulates it (bfloat16 without AVX-512 BF16 or
    AMX, float16 without AVX-512 FP16 or AMX FP16): two orders of magnitude slower than float32."""


class NonFiniteFallback(UserWarning):
    """A half-precision result had NaN or Inf and was recomputed in float32."""


@dataclass
class Precision:
    """Runs ``fn(x)`` in autocast at ``dtype`` (None: full precision) on ``device_type``.

    Under autocast the convolutions run in half precision while instance norm and
    squeeze-excitation get float32 inputs (their means and variances lose the most in
    half precision). A result with NaN or Inf is recomputed in full precision, once, with
    a :class:`NonFiniteFallback` warning: a half-precision overflow never comes back as a
    black or white image.
    """

    dtype: torch.dtype | None
    device_type: str
    network: nn.Module | None = None
    fallbacks: int = 0

    @contextmanager
    def _autocast(self):
        if self.dtype is None:
            yield
            return
        handles = []
        if self.network is not None:
            for m in self.network.modules():
                if isinstance(m, (DuRNInstanceNorm, SqueezeExcitation, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)):
                    handles.append(m.register_forward_pre_hook(_float32_input))
        try:
            with torch.autocast(self.device_type, dtype=self.dtype):
                yield
        finally:
            for h in handles:
                h.remove()

    def __call__(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        if self.dtype is None:
            return fn(x)
        with self._autocast():
            y = fn(x)
        y = y.to(x.dtype)
        if bool(torch.isfinite(y).all()):
            return y
        self.fallbacks += 1
        if self.fallbacks == 1:
            warnings.warn(
                f"the {self.dtype} result contained NaN or Inf (half-precision overflow); "
                "recomputed in float32", NonFiniteFallback, stacklevel=3,
            )
        y = fn(x)
        if not bool(torch.isfinite(y).all()):
            raise RuntimeError("the network's output contains NaN or Inf in full precision too; "
                               "its weights are probably damaged")
        return y
