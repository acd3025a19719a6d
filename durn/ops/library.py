"""The three operators as ``torch.library`` custom ops in the ``durn`` namespace.

``durn::fused_conv2d``, ``durn::pixel_shuffle_conv2d`` and ``durn::squeeze_excitation``
are defined here with the reference (``reference.py``) as their default kernel, a fake
(meta) kernel so ``torch.compile(fullgraph=True)`` traces through them, and autograd.
The C++/CUDA extension registers device kernels for the same names with
``TORCH_LIBRARY_IMPL(durn, CPU | CUDA, m)``, which take precedence over the default
kernel for tensors on that device.

The Triton kernels are separate ops (``durn::<name>_triton``, same schema), not a third
kernel of these names: the dispatcher keeps one kernel per op and dispatch key, and
Triton's key is taken already (CUDA by the CUDA kernels; CPU, under Triton's interpreter,
by the C++ kernels), so registering it there would replace the other implementation and
take the choice away from the user; and ``torch.library.triton_op``, which lets
``torch.compile`` see into the kernels, defines a new op rather than a kernel of an
existing one (``triton_backend.py``).

Backward: gradients are those of the reference composition, recomputed from the saved
inputs (correct for every backend; the fused kernels accelerate the forward).
"""
from __future__ import annotations

import torch

from . import reference

CONV_SCHEMA_TAIL = (
    "Tensor weight, Tensor? bias, Tensor? scale, Tensor? shift, Tensor? residual, "
    "int stride, int padding, int dilation, str padding_mode, str residual_at, "
    "str activation, float residual_alpha) -> Tensor"
)
SCHEMAS = {
    "fused_conv2d": "(Tensor x, " + CONV_SCHEMA_TAIL,
    "pixel_shuffle_conv2d": "(Tensor x, int upscale, " + CONV_SCHEMA_TAIL,
    "squeeze_excitation": "(Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor? identity) -> Tensor",
}
REFERENCES = {
    "fused_conv2d": reference.fused_conv2d,
    "pixel_shuffle_conv2d": reference.pixel_shuffle_conv2d,
    "squeeze_excitation": reference.squeeze_excitation,
}
# Positions of tensor arguments (those that can need gradients) per op.
TENSOR_ARGS = {
    "fused_conv2d": (0, 1, 2, 3, 4, 5),
    "pixel_shuffle_conv2d": (0, 2, 3, 4, 5, 6),
    "squeeze_excitation": (0, 1, 2, 3, 4, 5),
}


def _contiguous_like(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    fmt = torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format
    return y.contiguous(memory_format=fmt)


def _make_default_kernel(name):
    ref = REFERENCES[name]

    def kernel(*args):
        return _contiguous_like(ref(*args), args[0])

    return kernel


def _make_fake(name):
    ref = REFERENCES[name]

    def fake(*args):
        # The reference's shape logic on fake tensors is exact and cheap.
        return _contiguous_like(ref(*args), args[0])

    return fake


def _make_autograd(name):
    ref = REFERENCES[name]
    positions = TENSOR_ARGS[name]

    def setup_context(ctx, inputs, output):
        ctx.inputs = inputs
        ctx.save_for_backward(*[inputs[i] if inputs[i] is not None else torch.empty(0) for i in positions])

    def backward(ctx, grad):
        saved = ctx.saved_tensors
        args = list(ctx.inputs)
        leaves = {}
        for slot, pos in enumerate(positions):
            if args[pos] is None:
                continue
            t = saved[slot].detach().requires_grad_(ctx.needs_input_grad[pos])
            args[pos] = t
            if ctx.needs_input_grad[pos]:
                leaves[pos] = t
        grads = [None] * len(args)
        if leaves:
            with torch.enable_grad():
                out = ref(*args)
                computed = torch.autograd.grad(out, list(leaves.values()), grad, allow_unused=True)
            for pos, g in zip(leaves, computed):
                grads[pos] = g
        return tuple(grads)

    return backward, setup_context


_LIB = torch.library.Library("durn", "FRAGMENT")  # noqa: F841 - keeps the namespace alive

for _name, _schema in SCHEMAS.items():
    _qualname = f"durn::{_name}"
    torch.library.define(_qualname, _schema, lib=_LIB)
    torch.library.impl(_qualname, "CompositeExplicitAutograd", _make_default_kernel(_name), lib=_LIB)
    torch.library.register_fake(_qualname, _make_fake(_name), lib=_LIB)
    _bw, _setup = _make_autograd(_name)
    torch.library.register_autograd(_qualname, _bw, setup_context=_setup, lib=_LIB)
