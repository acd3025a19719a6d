"""Training losses: SSIM, L1, L2 and the paper's weighted sums.

SSIM is pytorch-msssim's ``ssim`` (Gaussian window 11, sigma 1.5, K1 = 0.01, K2 = 0.03,
data_range 1 for [0, 1] images, mean over the map of valid window positions; channels
averaged), the definition the spec gives for the authors' training loss. The tests check
it against an independent float64 computation and scikit-image's Gaussian SSIM.

``make_loss(name)`` names:

==================  =========================================  ===========================
``"l2"``            mean squared error                          DuRN-P (Gaussian noise)
``"l1"``            mean absolute error
``"ssim"``          ``-SSIM``
``"psnr"``          ``-PSNR`` per image, averaged (log MSE)     release runs whose cards
                                                                average PSNR over unequal
                                                                conditions (durn_s)
``"ssim_l1"``       ``1.1 * (-SSIM) + 0.75 * L1``               durn_p_real, durn_u, durn_us,
                                                                durn_s, durn_s_p stage 1
``"l1_x1.1"``       ``1.1 * L1``                                durn_s_p stage 2
==================  =========================================  ===========================

Each is a ``torch.nn.Module`` called as ``loss(output, target)`` on (N, C, H, W) tensors,
returning a scalar (the batch mean); ``loss.terms(output, target)`` gives the unweighted
terms too, for logging.

``"psnr"`` is ``mean_i 10 log10(MSE_i + 1e-5)``: minus each image's PSNR (capped at 50 dB),
averaged. Its gradient weights each image by ``1 / MSE_i``, so an image that is nearly
clean (light rain: 32 dB on the card) counts as much in dB as a badly degraded one
(heavy rain: 13 dB), where L2 lets the large errors of the latter set the output and a
network learns to hedge, darkening every image by the rain it usually sees.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LOSSES", "WeightedLoss", "l1_loss", "l2_loss", "make_loss", "psnr_loss", "ssim", "ssim_loss"]


def _check(output: torch.Tensor, target: torch.Tensor) -> None:
    if output.shape != target.shape:
        raise ValueError(f"loss: output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape")
    if output.dim() != 4:
        raise ValueError(f"loss: expected (N, C, H, W) tensors, got {tuple(output.shape)}")


def ssim(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of (N, C, H, W) images in [0, 1] (Gaussian window 11, sigma 1.5,
    C1 = 0.01^2, C2 = 0.03^2, valid window positions, averaged over map, channels, batch)."""
    from pytorch_msssim import ssim as _ssim

    _check(output, target)
    if min(output.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11 x 11 (the Gaussian window), got {tuple(output.shape[-2:])}")
    return _ssim(output, target, data_range=1.0, size_average=True, win_size=11, win_sigma=1.5, K=(0.01, 0.03))


def ssim_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-SSIM`` (the authors' sign: the loss runs from -1 up)."""
    return -ssim(output, target)


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    _check(output, target)
    return F.l1_loss(output, target)


def l2_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    _check(output, target)
    return F.mse_loss(output, target)


PSNR_LOSS_EPS = 1e-5  # caps an image's PSNR at 50 dB, so a crop the identity restores exactly stays finite


def psnr_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-PSNR`` (dB, data range 1) of each image, averaged over the batch:
    ``mean_i 10 log10(MSE_i + PSNR_LOSS_EPS)``."""
    _check(output, target)
    mse = (output.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(mse + PSNR_LOSS_EPS).mean()


_TERMS = {"ssim": ssim_loss, "l1": l1_loss, "l2": l2_loss, "psnr": psnr_loss}


class WeightedLoss(nn.Module):
    """``sum(weight * term(output, target))`` over ``weights = {"ssim": 1.1, "l1": 0.75}``;
    the "ssim" term is ``-SSIM``."""

    def __init__(self, weights: dict[str, float], name: str = ""):
        super().__init__()
        unknown = sorted(set(weights) - set(_TERMS))
        if unknown or not weights:
            raise ValueError(f"loss terms must be some of {sorted(_TERMS)}, got {sorted(weights)}")
        self.weights = {k: float(v) for k, v in weights.items()}
        self.name = name or " + ".join(f"{w:g}*{k}" for k, w in self.weights.items())

    def terms(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: _TERMS[k](output, target) for k in self.weights}

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(self.weights[k] * v for k, v in self.terms(output, target).items())

    def extra_repr(self) -> str:
        return self.name


LOSSES = {
    "l2": {"l2": 1.0},
    "l1": {"l1": 1.0},
    "ssim": {"ssim": 1.0},
    "psnr": {"psnr": 1.0},
    "ssim_l1": {"ssim": 1.1, "l1": 0.75},
    "l1_x1.1": {"l1": 1.1},
}


def make_loss(name: str) -> WeightedLoss:
    """A loss by name: ``"l2"``, ``"l1"``, ``"ssim"``, ``"psnr"``, ``"ssim_l1"`` (the paper's
    ``1.1 * (-SSIM) + 0.75 * L1``) or ``"l1_x1.1"`` (DuRN-S-P's second stage)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return WeightedLoss(LOSSES[name], name)
