"""The fast path of ``durn.restore`` / ``Restore`` / ``durn restore``: each network is
optimized once per process (``durn.inference.optimize_for_inference``) and its fused
copy reused while the network's weights stay the same.

The copy is keyed by the network object and the device, and checked against a
fingerprint of the weights (each parameter's and buffer's storage and version counter,
which every in-place change such as ``load_state_dict`` bumps), so changed weights are
optimized again. Networks that are not DuRNs, weights that are not float32/float64, and
autocast precisions run eagerly. On CUDA the fused network uses the "torch" backend
(cuDNN convolutions, fused epilogues): durn's Triton and CUDA kernels have not run on a
GPU yet, so they stay opt-in (``optimize_for_inference(model, backend="triton")``).
"""
from __future__ import annotations

import copy
import threading
import weakref

import torch
from torch import nn

from ..inference import optimize_for_inference
from ..nn import DuRN

_FAST: "weakref.WeakKeyDictionary[nn.Module, dict[str, tuple[tuple, nn.Module]]]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _fingerprint(model: nn.Module) -> tuple:
    return tuple((t.dtype, t.device, t.data_ptr(), t._version, tuple(t.shape))
                 for t in (*model.parameters(), *model.buffers()))


def _weights_dtype_device(model: nn.Module):
    p = next(model.parameters(), None)
    return (p.dtype, p.device) if p is not None else (None, None)


def can_optimize(model: nn.Module) -> bool:
    dtype, _ = _weights_dtype_device(model)
    return isinstance(model, DuRN) and dtype in (torch.float32, torch.float64)


def fast_network(model: nn.Module, device: torch.device, on_model_device: bool) -> nn.Module | None:
    """``model``'s fused copy on ``device`` (made on first use; ``on_model_device``: the
    weights are already there), or None when ``model`` cannot be optimized (see the
    module docstring)."""
    if not can_optimize(model):
        return None
    fingerprint = _fingerprint(model)
    where = str(device)
    with _LOCK:
        held = _FAST.get(model, {}).get(where)
        if held is not None and held[0] == fingerprint:
            return held[1]
        source = model if on_model_device else copy.deepcopy(model).to(device)
        backend = "auto" if device.type == "cpu" else "torch"
        fast = optimize_for_inference(source, backend)
        _FAST.setdefault(model, {})[where] = (fingerprint, fast)
        return fast


def forget(model: nn.Module | None = None) -> None:
    """Drop the fused copies of ``model`` (of every network with None)."""
    with _LOCK:
        if model is None:
            _FAST.clear()
        else:
            _FAST.pop(model, None)
