"""Shape facts of a network, found by a shape-only dry run (no real computation).

``smallest_input_size`` finds the smallest square multiple of ``multiple`` whose every
reflection pad is narrower than the tensor it pads and whose every instance norm sees
at least two pixels; the network pads smaller inputs up to it. The dry run uses
parameters on the meta device (fake tensors for modules that cannot run on meta), and
results are cached per architecture, so a second model of the same shape costs nothing.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call

from .norms import DuRNInstanceNorm

_CACHE: dict[tuple, int | None] = {}


class _TooSmall(Exception):
    pass


def _reflect_pads(module: nn.Module) -> tuple[int, ...]:
    if isinstance(module, nn.Conv2d) and module.padding_mode == "reflect":
        return tuple(module.padding)
    if isinstance(module, nn.ReflectionPad2d):
        return tuple(module.padding)
    return ()


def _check_hook(module, args):
    x = args[0]
    h, w = x.shape[-2], x.shape[-1]
    pads = _reflect_pads(module)
    if pads and max(pads) >= min(h, w):
        raise _TooSmall
    if isinstance(module, DuRNInstanceNorm) and h * w < 2:
        raise _TooSmall
    if h < 1 or w < 1:
        raise _TooSmall


@contextmanager
def quiet_fake_tensor_logs():
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Runner(nn.Module):
    """Lets ``functional_call`` swap in meta tensors and call an arbitrary entry point."""

    def __init__(self, model: nn.Module, run):
        super().__init__()
        self.model = model
        self.run = run

    def forward(self, x):
        return self.run(x)


def _dry_run(run, model: nn.Module, shape: tuple[int, ...], hook, use_meta: bool) -> bool:
    handles = [m.register_forward_pre_hook(hook) for m in model.modules()]
    # eval mode: a dry run in train mode would count a batch in every BatchNorm
    training = {m: m.training for m in model.modules()}
    model.eval()
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    device = param.device if param is not None else torch.device("cpu")
    try:
        with torch.no_grad():
            if use_meta:
                runner = _Runner(model, run)
                state = {
                    name: torch.empty_like(t, device="meta")
                    for name, t in list(runner.named_parameters()) + list(runner.named_buffers())
                }
                out = functional_call(runner, state, (torch.empty(shape, dtype=dtype, device="meta"),))
            else:
                from torch._subclasses.fake_tensor import FakeTensorMode

                with quiet_fake_tensor_logs(), FakeTensorMode(allow_non_fake_inputs=True):
                    out = run(torch.empty(shape, dtype=dtype, device=device))
        return tuple(out.shape[-2:]) == tuple(shape[-2:])
    except (_TooSmall, RuntimeError, ValueError, IndexError, NotImplementedError):
        return False
    finally:
        for handle in handles:
            handle.remove()
        for m, mode in training.items():
            m.training = mode


def fits(run, model: nn.Module, shape: tuple[int, ...], use_meta: bool = True) -> bool:
    """True when ``run(x)`` with x of ``shape`` gets through every padding/norm constraint
    and returns a tensor of the input's spatial size."""
    return _dry_run(run, model, shape, _check_hook, use_meta)


def smallest_input_size(run, model: nn.Module, in_channels: int, multiple: int, limit: int = 1024) -> int | None:
    """Smallest square size (a multiple of ``multiple``) that ``run`` handles, or None.

    One dry run at a large size records the scale at which every reflection pad works;
    that predicts the answer, which one or two more dry runs confirm.
    """
    key = (repr(model), in_channels, multiple)
    if key not in _CACHE:
        _CACHE[key] = _search(run, model, in_channels, multiple, limit)
    return _CACHE[key]


def _search(run, model, in_channels, multiple, limit):
    big = 64 * multiple
    needs = [multiple]

    def record(module, args):
        h = args[0].shape[-2]
        pads = _reflect_pads(module)
        if pads and h > 0:
            needs.append(-(-(max(pads) + 1) * big // h))

    shape = (1, in_channels, big, big)
    use_meta = _dry_run(run, model, shape, record, use_meta=True)
    if not use_meta:
        needs[:] = [multiple]
        if not _dry_run(run, model, shape, record, use_meta=False):
            return None

    def ok(size):
        return fits(run, model, (1, in_channels, size, size), use_meta)

    size = max(-(-n // multiple) * multiple for n in needs)
    if ok(size):
        while size > multiple and ok(size - multiple):
            size -= multiple
        return size
    while size <= limit:
        size += multiple
        if ok(size):
            return size
    return None
