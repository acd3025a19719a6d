"""What every launcher needs: argument checks, the output layout, the execution mode."""
from __future__ import annotations

import torch
import triton
from triton.runtime.interpreter import InterpretedFunction

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@triton.jit
def _mode_probe():
    pass


def interpreted() -> bool:
    """True when the kernels run under Triton's interpreter (TRITON_INTERPRET=1 was set before
    this package was imported); then they take CPU tensors. False: compiled for a GPU."""
    return isinstance(_mode_probe, InterpretedFunction)


def next_pow2(n: int) -> int:
    return triton.next_power_of_2(max(int(n), 1))


def output_format(x: torch.Tensor) -> torch.memory_format:
    """x's memory format, as ``durn.ops.library`` decides it (channels_last only when x is
    channels_last and not also plain contiguous)."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def check_dtypes(x: torch.Tensor, **others: torch.Tensor | None) -> None:
    """Every tensor shares x's dtype (one of DTYPES) and device, and the device suits the mode."""
    if x.dtype not in DTYPES:
        raise TypeError(
            f"the Triton kernels take float32, float16 or bfloat16 tensors, got {x.dtype} "
            "(float64 is not supported: use the 'torch' backend)")
    for name, t in others.items():
        if t is None:
            continue
        if t.dtype != x.dtype:
            raise TypeError(f"{name} has dtype {t.dtype}, but x has {x.dtype}; all tensors must share it")
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device}, but x is on {x.device}")
    if not interpreted() and x.device.type != "cuda" and x.device.type != "meta":
        raise RuntimeError(
            f"the Triton kernels were compiled for the GPU and need CUDA tensors, got {x.device}; "
            "to run them on CPU tensors set TRITON_INTERPRET=1 before durn's Triton backend is first used")


def kernel_output(shape, x: torch.Tensor) -> torch.Tensor:
    """The tensor a kernel writes its result to: x's dtype and memory format, except for
    bfloat16 under the interpreter, whose float32 -> bfloat16 cast truncates (Triton 3.7)
    where a GPU rounds to nearest even; there the kernel writes float32 and ``finish``
    rounds with PyTorch."""
    dtype = torch.float32 if x.dtype == torch.bfloat16 and interpreted() else x.dtype
    return torch.empty(shape, dtype=dtype, device=x.device, memory_format=output_format(x))


def finish(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return y if y.dtype == x.dtype else y.to(x.dtype)


def dot_precision(x: torch.Tensor) -> str:
    """float32 products on a GPU use TF32 exactly when PyTorch's own convolutions do
    (``torch.backends.cudnn.allow_tf32``); otherwise they are exact (IEEE) float32."""
    if x.dtype == torch.float32 and x.is_cuda and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "ieee"
