"""The six DuRN networks as plain builders: ``durn_p(weights=None)`` and friends.

``weights`` may be ``None`` (random initialisation, for training), a path to a
checkpoint file (one of the authors' released files or a project weights file), or a
state dict. Released project weights and ``weights="authors"`` come with the weights
registry; until then such names raise an error that says how to load the authors' files.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

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
    from ..checkpoints import AUTHORS_FILES

    return (
        f"durn has no released weights for {name} yet, so pretrained weights cannot be downloaded. "
        f"To use the authors' weights, download their 'trainedmodels' archive (linked from the "
        f"DuRN authors' GitHub README), then pass the file: "
        f"{name}(weights='path/to/{AUTHORS_FILES[name]}') or "
        f"durn.load_reference({name!r}, 'path/to/{AUTHORS_FILES[name]}')."
    )


def _build(name: str, builder, weights, progress: bool, kwargs) -> nn.Module:
    if weights is None:
        return builder(**kwargs)
    is_path = isinstance(weights, (str, os.PathLike))
    if isinstance(weights, Mapping) or (is_path and os.path.exists(weights)):
        from ..checkpoints import load_reference

        if kwargs.get("connection", "dual") != "dual":
            raise ValueError("pretrained weights exist only for the paper's wiring, connection='dual'")
        return load_reference(name, weights)
    if is_path and (os.sep in os.fspath(weights) or os.fspath(weights).endswith((".pt", ".pth"))):
        raise FileNotFoundError(f"weights file not found: {os.fspath(weights)}")
    raise ValueError(f"unknown weights {weights!r} for {name}. " + no_released_weights_message(name))


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
