"""Shape facts of a network, found by a shape-only dry run (no real computation).

``smallest_input_size`` finds the smallest square multiple of ``multiple`` whose every
reflection pad is narrower than the tensor it pads and whose every instance norm sees
at least two pixels; the network pads smaller inputs up to it.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
from torch import nn

from .norms import DuRNInstanceNorm


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
def _quiet_fake_tensor_logs():
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _dry_run(run, model: nn.Module, shape: tuple[int, ...], hook) -> bool:
    from torch._subclasses.fake_tensor import FakeTensorMode

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()]
    try:
        with _quiet_fake_tensor_logs(), FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
            out = run(torch.empty(shape))
        return tuple(out.shape[-2:]) == tuple(shape[-2:])
    except (_TooSmall, RuntimeError, ValueError, IndexError):
        return False
    finally:
        for handle in handles:
            handle.remove()


def fits(run, model: nn.Module, shape: tuple[int, ...]) -> bool:
    """True when ``run(x)`` with x of ``shape`` gets through every padding/norm constraint
    and returns a tensor of the input's spatial size."""
    return _dry_run(run, model, shape, _check_hook)


def smallest_input_size(run, model: nn.Module, in_channels: int, multiple: int, limit: int = 1024) -> int | None:
    """Smallest square size (a multiple of ``multiple``) that ``run`` handles, or None.

    One dry run at a large size records the scale at which every reflection pad works;
    that predicts the answer, which two or three more dry runs confirm.
    """
    big = 64 * multiple
    needs = [multiple]

    def record(module, args):
        h = args[0].shape[-2]
        pads = _reflect_pads(module)
        if pads and h > 0:
            needs.append(-(-(max(pads) + 1) * big // h))

    if not _dry_run(run, model, (1, in_channels, big, big), record):
        return None
    size = max(-(-n // multiple) * multiple for n in needs)
    if fits(run, model, (1, in_channels, size, size)):
        while size > multiple and fits(run, model, (1, in_channels, size - multiple, size - multiple)):
            size -= multiple
        return size
    while size <= limit:
        size += multiple
        if fits(run, model, (1, in_channels, size, size)):
            return size
    return None
