"""Which implementation of an operator runs: availability, the user's override, "auto".

Backends:
  "torch"   the reference (pure PyTorch, always available, defines correctness)
  "triton"  Triton kernels (``durn::<op>_triton`` ops; GPU, or CPU tensors when
            TRITON_INTERPRET=1 was set before triton was imported)
  "cpp"     C++ CPU kernels of the extension (``durn::<op>`` on CPU tensors)
  "cuda"    CUDA kernels of the extension (``durn::<op>`` on CUDA tensors)

Backend modules load lazily on first use; a backend that cannot load is reported by
``available_backends()`` with the reason, never raised at import time.

Choice, highest priority first: the ``backend=`` argument of an op call, ``use_backend``
(context manager) / ``set_backend``, the ``DURN_BACKEND`` environment variable, "auto".
"auto" takes, per op and device type, the first available backend of ``AUTO_ORDER``
(ordered by measured speed; see benchmarks/).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import threading

import torch

BACKENDS = ("torch", "triton", "cpp", "cuda")
OPS = ("fused_conv2d", "pixel_shuffle_conv2d", "squeeze_excitation")

# Per device type and op: backends in order of preference for "auto".
AUTO_ORDER: dict[str, dict[str, tuple[str, ...]]] = {
    "cuda": {op: ("cuda", "triton", "torch") for op in OPS},
    # CPU, measured on the 2-core Xeon (csrc/benchmark_cpu.py, benchmarks/bench_ops.py):
    # the C++ squeeze-excitation is 1.8-2.4x the reference; C++ convs are 0.74-2.3x
    # oneDNN's depending on the layer, so convs stay "torch" here and
    # durn.optimize_for_inference times both per layer.
    "cpu": {
        "fused_conv2d": ("torch", "cpp"),
        "pixel_shuffle_conv2d": ("torch", "cpp"),
        "squeeze_excitation": ("cpp", "torch"),
    },
}

# Backend name -> module that provides ``load()`` (raises with a reason when unusable)
# and ``implementations() -> {op: callable}``.
_PROVIDERS = {
    "triton": "durn.ops.triton_backend",
    "cpp": "durn.ops.extension",
    "cuda": "durn.ops.extension",
}

_state = threading.local()
_global_choice: str | None = None
_status: dict[str, tuple[bool, str]] = {}
_impls: dict[tuple[str, str], object] = {}


def _reference_impls():
    from . import reference

    return {op: getattr(reference, op) for op in OPS}


def _probe(backend: str) -> tuple[bool, str]:
    if backend in _status:
        return _status[backend]
    if backend == "torch":
        impls, result = _reference_impls(), (True, "pure PyTorch reference")
    else:
        try:
            module = importlib.import_module(_PROVIDERS[backend])
            reason = module.load(backend)
            impls = module.implementations(backend)
            result = (True, reason or "loaded")
        except Exception as err:  # any failure means "not available", with the reason
            impls, result = {}, (False, f"{type(err).__name__}: {err}")
    for op, fn in impls.items():
        _impls[(op, backend)] = fn
    _status[backend] = result
    return result


def available_backends() -> dict[str, tuple[bool, str]]:
    """Backend -> (available, why): what this machine can run, and why not where not."""
    return {name: _probe(name) for name in BACKENDS}


def set_backend(name: str | None) -> None:
    """Choose the backend for all ops process-wide (None or "auto": automatic)."""
    global _global_choice
    _global_choice = _check_name(name)


@contextlib.contextmanager
def use_backend(name: str | None):
    """Choose the backend inside a ``with`` block (this thread only)."""
    previous = getattr(_state, "choice", None)
    _state.choice = _check_name(name)
    try:
        yield
    finally:
        _state.choice = previous


def _check_name(name: str | None) -> str | None:
    if name in (None, "auto"):
        return None
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected 'auto' or one of {BACKENDS}")
    return name


def current_choice() -> str | None:
    choice = getattr(_state, "choice", None) or _global_choice
    if choice is None:
        choice = _check_name(os.environ.get("DURN_BACKEND") or None)
    return choice


def resolve(op: str, device: torch.device, backend: str | None = None):
    """The callable that runs ``op`` for tensors on ``device``."""
    name = _check_name(backend) if backend is not None else current_choice()
    if name is None:
        for candidate in AUTO_ORDER.get(device.type, {}).get(op, ("torch",)):
            if _probe(candidate)[0] and _supports(candidate, device):
                name = candidate
                break
        else:
            name = "torch"
    ok, why = _probe(name)
    if not ok:
        raise RuntimeError(f"backend {name!r} is not available here: {why}")
    if not _supports(name, device):
        raise RuntimeError(f"backend {name!r} does not run on {device.type} tensors")
    return _impls[(op, name)]


def _supports(backend: str, device: torch.device) -> bool:
    if backend == "cpp":
        return device.type == "cpu"
    if backend == "cuda":
        return device.type == "cuda"
    if backend == "triton":
        return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
    return True
