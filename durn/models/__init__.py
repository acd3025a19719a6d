"""The six DuRN networks as plain builders: ``durn_p(weights=None)`` and friends.

``weights`` may be ``None`` (random initialisation, for training), a released entry
name (``durn.weights.list_weights()``), ``"default"`` (the network's default entry, what
``pretrained=True`` means in torch.hub), ``"authors"`` (the authors' weights, after
``durn import-authors``), a path to a checkpoint file (one of the authors' released
files or a durn weights file), or a state dict. See :mod:`durn.weights`.
"""
from __future__ import annotations


from torch import nn

from .builders import (
    build_durn_p,
    build_durn_p_real,
    build_durn_s,
    build_durn_s_p,
    build_durn_u,
    build_durn_us,
)
from .info import NETWORKS, NetworkInfo

__all__ = ["NETWORKS", "NetworkInfo", "durn_p", "durn_p_real", "durn_s", "durn_s_p", "durn_u", "durn_us", "get_model"]


def no_released_weights_message(name: str) -> str:
    from ..weights import no_default_message

    return no_default_message(name)


def _build(name: str, builder, weights, progress: bool, kwargs) -> nn.Module:
    if weights is None:
        return builder(**kwargs)
    if kwargs.get("connection", "dual") != "dual":
        raise ValueError("pretrained weights exist only for the paper's wiring, connection='dual'")
    from ..checkpoints import load_reference
    from ..weights import resolve_weights

    checkpoint, channel_order = resolve_weights(name, weights, progress=progress)
    model = load_reference(name, checkpoint)
    if channel_order is not None:
        model.channel_order = channel_order
    return model


def durn_p(*, weights=None, progress: bool = True, **kwargs) -> nn.Module:
    """DuRN-P: Gaussian noise removal on grayscale images (1 channel in [0, 1])."""
    return _build("durn_p", build_durn_p, weights, progress, kwargs)


def durn_p_real(*, weights=None, progress: bool = True, **kwargs) -> nn.Module:
    """DuRN-P for real-world noise on RGB images (3 channels in [0, 1])."""
    return _build("durn_p_real", build_durn_p_real, weights, progress, kwargs)


def durn_u(*, weights=None, progress: bool = True, **kwargs) -> nn.Module:
    """DuRN-U: motion blur removal on RGB images (3 channels in [0, 1])."""
    return _build("durn_u", build_durn_u, weights, progress, kwargs)


def durn_us(*, weights=None, progress: bool = True, **kwargs) -> nn.Module:
    """DuRN-US: haze removal on RGB images (3 channels in [0, 1])."""
    return _build("durn_us", build_durn_us, weights, progress, kwargs)


def durn_s(*, weights=None, progress: bool = True, **kwargs) -> nn.Module:
    """DuRN-S: rain streak removal on RGB images (3 channels in [0, 1])."""
    return _build("durn_s", build_durn_s, weights, progress, kwargs)


def durn_s_p(*, weights=None, progress: bool = True, **kwargs) -> nn.Module:
    """DuRN-S-P: raindrop removal on 3-channel images (the authors' weights expect BGR)."""
    return _build("durn_s_p", build_durn_s_p, weights, progress, kwargs)


_BY_NAME = {
    "durn_p": durn_p, "durn_p_real": durn_p_real, "durn_u": durn_u,
    "durn_us": durn_us, "durn_s": durn_s, "durn_s_p": durn_s_p,
}


def get_model(name: str, **kwargs) -> nn.Module:
    """Build a network by name (``"durn_p"``, ..., ``"durn_s_p"``)."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown network {name!r}; expected one of {sorted(_BY_NAME)}")
    return _BY_NAME[name](**kwargs)
