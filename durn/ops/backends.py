"""Which implementation of an operator runs: availability, the caller's choice, "auto".

Backends:
  "torch"   the reference (pure PyTorch, always available, defines correctness)
  "triton"  Triton kernels (``durn::<op>_triton`` ops; GPU, or CPU tensors when
            TRITON_INTERPRET=1 was set before triton was imported)
  "cpp"     C++ CPU kernels of the extension (``durn::<op>`` on CPU tensors)
  "cuda"    CUDA kernels of the extension (``durn::<op>`` on CUDA tensors)

Backend modules load lazily on first use; a backend that cannot load is reported by
``available_backends()`` with the reason, never raised at import time.

Choice, highest priority first: the ``backend=`` argument of an op call, then
``use_backend`` (a context manager, this thread only), then "auto": per op and device
type, the first available backend of ``AUTO_ORDER`` that runs on the tensors' device
(ordered by measured speed; see benchmarks/). Once a compiled backend is chosen, the
dispatcher runs its kernel for the tensors' device (``TORCH_LIBRARY_IMPL`` per device).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import threading

import torch


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX. Without either PyTorch emulates bf16 on the CPU: measured on an
    AVX2-only EPYC, a dilated 3x3 conv ran 134x slower than in float32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without the probes: assume emulation
        return False


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_native_fp16() -> bool:
    """AVX-512 FP16 or AMX FP16 (torch has a probe only for the latter; the former is read
    from /proc/cpuinfo). Without them float16 is emulated: measured on an AVX2-only EPYC,
    a dilated 3x3 conv ran 514x slower than in float32."""
    try:
        if torch.cpu._is_amx_fp16_supported():
            return True
    except AttributeError:
        pass
    return "avx512_fp16" in _cpu_flags()


# What a CPU needs for each half type to be native: (the instruction sets, lscpu's flags).
NATIVE_HALF = {torch.bfloat16: ("AVX-512 BF16 or AMX", "avx512_bf16 or amx_bf16"),
               torch.float16: ("AVX-512 FP16 or AMX FP16", "avx512_fp16 or amx_fp16")}


def cpu_has_native(dtype: torch.dtype) -> bool:
    """Whether this CPU computes ``dtype`` (bfloat16 or float16) natively, not emulated."""
    if dtype == torch.bfloat16:
        return cpu_has_native_bf16()
    if dtype == torch.float16:
        return cpu_has_native_fp16()
    return True


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

_choice = threading.local()
_status: dict[str, tuple[bool, str]] = {}
_impls: dict[tuple[str, str], object] = {}


def backend_status(name: str) -> tuple[bool, str]:
    """(available, why) for one backend; loads it on first call (probing "cpp" may build it)."""
    name = _known(name)
    if name in _status:
        return _status[name]
    if name == "torch":
        from . import reference

        impls, result = {op: getattr(reference, op) for op in OPS}, (True, "pure PyTorch reference")
    else:
        try:
            module = importlib.import_module(_PROVIDERS[name])
            reason = module.load(name)
            impls = module.implementations(name)
            result = (True, reason or "loaded")
        except Exception as err:  # any failure means "not available", with the reason
            impls, result = {}, (False, f"{type(err).__name__}: {err}")
    for op, fn in impls.items():
        _impls[(op, name)] = fn
    _status[name] = result
    return result


def available_backends() -> dict[str, tuple[bool, str]]:
    """Backend -> (available, why): what this machine can run, and why not where not."""
    return {name: backend_status(name) for name in BACKENDS}


def runs_on(name: str, device: torch.device) -> bool:
    """Whether backend ``name`` takes tensors on ``device`` (whether it loads is separate)."""
    name = _known(name)
    if name == "cpp":
        return device.type == "cpu"
    if name == "cuda":
        return device.type == "cuda"
    if name == "triton":
        return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
    return True


def check_backend(name: str, device: torch.device) -> str:
    """``name`` itself when it is available and runs on ``device``; else a clear error."""
    ok, why = backend_status(name)
    if not ok:
        raise RuntimeError(f"backend {name!r} is not available here: {why}")
    if not runs_on(name, device):
        raise RuntimeError(f"backend {name!r} does not run on {device.type} tensors")
    return name


def auto_backend(op: str, device: torch.device) -> str:
    """The backend "auto" takes for ``op`` on ``device``: the first of ``AUTO_ORDER`` that
    is available and runs there ("torch" when none does)."""
    for candidate in AUTO_ORDER.get(device.type, {}).get(op, ("torch",)):
        if backend_status(candidate)[0] and runs_on(candidate, device):
            return candidate
    return "torch"


def usable_backends(device: torch.device) -> tuple[str, ...]:
    """Backends that are available and run on ``device``, Triton's interpreter excepted
    (it is for checking, never worth timing)."""
    return tuple(
        name for name in BACKENDS
        if not (name == "triton" and device.type != "cuda")
        and backend_status(name)[0] and runs_on(name, device)
    )


@contextlib.contextmanager
def use_backend(name: str | None):
    """Choose the backend for the ops called inside a ``with`` block, on this thread
    (None or "auto": automatic)."""
    previous = getattr(_choice, "name", None)
    _choice.name = _auto_or_known(name)
    try:
        yield
    finally:
        _choice.name = previous


def resolve(op: str, device: torch.device, backend: str | None = None):
    """The callable that runs ``op`` for tensors on ``device``."""
    name = _auto_or_known(backend) if backend is not None else getattr(_choice, "name", None)
    return _impls[(op, check_backend(name or auto_backend(op, device), device))]


def _known(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected 'auto' or one of {BACKENDS}")
    return name


def _auto_or_known(name: str | None) -> str | None:
    return None if name in (None, "auto") else _known(name)
