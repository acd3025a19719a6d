"""Exponential moving average of a network's weights (for validation and best.pt)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``shadow = decay * shadow + (1 - decay) * weights`` after every optimiser step;
    buffers (BatchNorm statistics) are copied. ``module`` is an eval-ready copy."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        src = [p for p in model.parameters() if p.requires_grad]
        dst = [p for p, q in zip(self.module.parameters(), model.parameters()) if q.requires_grad]
        torch._foreach_lerp_(dst, src, 1.0 - self.decay)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
