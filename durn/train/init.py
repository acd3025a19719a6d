"""Data-dependent initialisation for networks without norm layers (``--unit-init``).

durn_p_real (durn_p without its BatchNorms) trained from PyTorch's default init sat on
the identity: its features shrink layer after layer (the default conv init keeps a third
of the variance), so the tail learns to output nothing long before the body learns to
see noise (1,000 CPU steps at lr 2e-4 to 1e-3 on L1 and L2, every card gain under 0.2
dB; fitting one 48 x 48 crop took 120 steps to go from 0.0112 to 0.0088 MSE). Scaling each
convolution, in forward order, so that its output has unit variance on a real batch
(Mishkin and Matas 2016, "All you need is a good init", without the orthogonal start)
and the last one to a small residual gives the body healthy features from the first
step: the same crop went from 0.0112 to 0.0033 in 80 steps at lr 1e-4. Unit-variance
features make the network sensitive to the learning rate: at 1e-3 it saturates its
tanh and stops (measured), so runs with --unit-init use 1e-4 as the authors did.
"""
from __future__ import annotations

import torch
from torch import nn

RESIDUAL_STD = 0.01  # the last convolution's output: the first residual, far from tanh's bends


@torch.no_grad()
def unit_variance_init_(model: nn.Module, batch: torch.Tensor, *, last_std: float = RESIDUAL_STD) -> nn.Module:
    """Rescale every Conv2d of ``model`` (weights and bias, in the order they run) so that
    its output on ``batch`` has standard deviation 1, the last one ``last_std``."""
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: order.append(mod))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    try:
        model(batch)
    finally:
        for h in hooks:
            h.remove()
    convs = list(dict.fromkeys(order))
    if not convs:
        raise ValueError("unit_variance_init_ needs a network with Conv2d layers")
    for conv in convs:
        seen: dict[str, float] = {}

        def measure(mod, inp, out):  # in the hook: an in-place ReLU overwrites the output right after
            seen.setdefault("std", float(out.float().std()))

        hook = conv.register_forward_hook(measure)
        try:
            model(batch)
        finally:
            hook.remove()
        std = seen["std"]
        if not std > 0:
            raise ValueError(f"a convolution's output has no variance on this batch ({std}); use a batch of real images")
        scale = (last_std if conv is convs[-1] else 1.0) / std
        conv.weight.mul_(scale)
        if conv.bias is not None:
            conv.bias.mul_(scale)
    model.train(was_training)
    return model
