"""Normalisation layers of the DuRN networks."""
from __future__ import annotations

import torch
from torch import nn

NORMS = (None, "batch", "instance")


class DuRNInstanceNorm(nn.Module):
    """The authors' instance norm, which is *not* ``nn.InstanceNorm2d``.

    Per sample and channel: ``(x - mean) / sqrt(var + eps) * scale + scale`` with the
    biased variance over H*W and eps = 1e-9. The second term really is ``scale``: the
    ``shift`` parameter exists (every checkpoint carries it) but the forward never reads
    it, so it is frozen (``requires_grad=False``) to keep optimisers and DDP honest.
    No running statistics: train and eval behave the same.
    """

    def __init__(self, channels: int, eps: float = 1e-9):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.rand(channels))
        self.shift = nn.Parameter(torch.zeros(channels), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2] * x.shape[-1]
        flat = x.flatten(2)
        mean = flat.mean(dim=2)[..., None, None]
        # The authors' formula: unbiased variance times (n - 1) / n. Other ways of
        # computing the biased variance differ in float32 by ~2e-5 at 64x64.
        var = (flat.var(dim=2, unbiased=True) * ((n - 1) / n))[..., None, None]
        scale = self.scale[None, :, None, None]
        return (x - mean) / torch.sqrt(var + self.eps) * scale + scale

    def extra_repr(self) -> str:
        return f"{self.scale.numel()}, eps={self.eps}"


def make_norm(kind: str | None, channels: int) -> nn.Module:
    """``None`` -> Identity, ``"batch"`` -> BatchNorm2d, ``"instance"`` -> DuRNInstanceNorm."""
    if kind is None:
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return DuRNInstanceNorm(channels)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")
