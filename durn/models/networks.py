"""The six networks as public builders, also torch.hub's entry points (``hubconf.py``).

Each ``name(pretrained=False, progress=True, weights=None, **kwargs)`` returns the
network, randomly initialised or with weights:

* ``weights``: ``None`` (random, for training), a released entry name
  (``durn.weights.list_weights()``), ``"default"`` (the network's default entry),
  ``"authors"`` (the authors' weights, after ``durn import-authors``), ``"untrained"``
  (random weights from a fixed seed, with a warning), a path to a checkpoint file (one of
  the authors' released files or a durn weights file), or a state dict; read by
  ``durn.weights.resolve``, as in every other entry point.
* ``pretrained=True`` (torch.hub's and torchvision's older argument) means
  ``weights="default"``; where no weights are released it raises saying how to use
  the authors' weights.
* ``**kwargs``: ``connection="dual" | "paired" | "separate"`` (the paper's Fig. 1 d/b/c).

The docstrings' facts (parameter counts, the paper's numbers, the authors' file names)
come from the specs in ``registry.py``.
"""
from __future__ import annotations

import importlib

from torch import nn

from .registry import SPECS, get_spec, list_models

__all__ = ["durn_p", "durn_p_real", "durn_s", "durn_s_p", "durn_u", "durn_us",
           "get_model", "get_model_weights", "list_models"]


def _documented(builder):
    """Appends the spec's facts and the common arguments to a builder's docstring."""
    spec = SPECS[builder.__name__]
    results = ", ".join(f"{dataset} {psnr:.2f}/{ssim:.4f}" for dataset, (psnr, ssim) in spec.results.items())
    builder.__doc__ = builder.__doc__.rstrip() + f"""
    {spec.params:,} parameters.

    Args:
        pretrained: load the network's default released weights (durn.weights.DEFAULTS);
            where none are released, raises saying how to use the authors' weights.
        progress: show a download progress bar.
        weights: None, a released entry name (``durn.weights.list_weights()``), ``"authors"``
            (after ``durn import-authors``), ``"untrained"`` (seeded random weights, with a
            warning), a path to the authors' ``{spec.authors_file}`` or a durn weights file, or
            a state dict.
        **kwargs: ``connection="dual" | "paired" | "separate"`` (paper Fig. 1 d/b/c).

    Paper ({spec.paper_name}, authors' protocol, {spec.measured_on}; PSNR/SSIM): {results}.
    """
    return builder


def _build(name: str, pretrained: bool, progress: bool, weights, kwargs) -> nn.Module:
    if pretrained and weights is None:
        weights = "default"
    spec = get_spec(name)
    if weights is None:
        return spec.builder(**kwargs)
    return _weights_layer().resolve(name, weights, progress=progress).build(**kwargs)


def _weights_layer():
    # The one reference from this layer up: durn.weights sits above the networks (it builds
    # them to read checkpoints), so it is imported only when weights are asked for.
    return importlib.import_module("durn.weights")


@_documented
def durn_p(pretrained=False, progress=True, weights=None, **kwargs) -> nn.Module:
    """DuRN-P: removes additive Gaussian noise from grayscale images.

    Input: float tensor (N, 1, H, W) or (1, H, W), values in [0, 1], any H, W >= 2
    (reflection padding needs 16 pixels; smaller images are mirror-padded and cropped
    back). Output: the same shape, ``input + tanh(residual)``, not clamped.
    Six DuRB-P blocks pairing 5x5..11x11 (dilated) convs with 3x3..7x7 convs, BN,
    reflection padding. Purely local: tiles reproduce the whole image.
    """
    return _build("durn_p", pretrained, progress, weights, kwargs)


@_documented
def durn_p_real(pretrained=False, progress=True, weights=None, **kwargs) -> nn.Module:
    """DuRN-P for real-world camera noise on RGB images.

    Input: float tensor (N, 3, H, W) or (3, H, W), RGB in [0, 1], any H, W >= 2 (padded
    to 16 internally when smaller). Output: same shape. DuRN-P without normalisation
    layers; purely local, so tiling is exact.
    """
    return _build("durn_p_real", pretrained, progress, weights, kwargs)


@_documented
def durn_u(pretrained=False, progress=True, weights=None, **kwargs) -> nn.Module:
    """DuRN-U: removes motion blur from RGB images.

    Input: float tensor (N, 3, H, W) or (3, H, W), RGB in [0, 1], any H, W >= 2. The
    network works on multiples of 4; other sizes are mirror-padded at the bottom/right
    and cropped back (instance-norm statistics then include the padding). Output: same
    shape. Encoder to 1/4 resolution, six DuRB-U blocks pairing up-sampling
    (pixel shuffle + dilated conv) with stride-2 down-sampling, the authors' instance
    norm.
    """
    return _build("durn_u", pretrained, progress, weights, kwargs)


@_documented
def durn_us(pretrained=False, progress=True, weights=None, **kwargs) -> nn.Module:
    """DuRN-US: removes haze from RGB images.

    Input: float tensor (N, 3, H, W) or (3, H, W), RGB in [0, 1], any H, W >= 2 (padded
    to a multiple of 4, at least 12, and cropped back). Output: same shape. Twelve
    DuRB-US blocks pairing up-sampling convs (5x5 to 11x11) with squeeze-excitation and
    stride-2 down-sampling; no normalisation.
    """
    return _build("durn_us", pretrained, progress, weights, kwargs)


@_documented
def durn_s(pretrained=False, progress=True, weights=None, **kwargs) -> nn.Module:
    """DuRN-S: removes rain streaks from RGB images.

    Input: float tensor (N, 3, H, W) or (3, H, W), RGB in [0, 1], any H, W >= 2 (padded
    to 16 internally when smaller). Output: same shape. Six DuRB-S blocks pairing large
    dilated convs with squeeze-excitation blocks, BN, reflection padding.
    """
    return _build("durn_s", pretrained, progress, weights, kwargs)


@_documented
def durn_s_p(pretrained=False, progress=True, weights=None, **kwargs) -> nn.Module:
    """DuRN-S-P: removes raindrops (adherent droplets on glass or lens) from images.

    Input: float tensor (N, 3, H, W) or (3, H, W) in [0, 1], any H, W >= 2 (padded to a
    multiple of 4, at least 16, and cropped back). The authors' released weights expect
    **BGR** channel order (``model.channel_order == "BGR"``); the network itself does not
    reorder channels. Output: ``input - tanh(residual)``, same shape. Three attentive
    DuRB-S blocks (dilations 12, 8, 6) then six DuRB-P blocks, BN; one of the parameters
    is an unused PReLU weight the checkpoints carry.
    """
    return _build("durn_s_p", pretrained, progress, weights, kwargs)


_BUILDERS = {fn.__name__: fn for fn in (durn_p, durn_p_real, durn_u, durn_us, durn_s, durn_s_p)}


def get_model(name: str, **kwargs) -> nn.Module:
    """Build a network by name (``"durn_p"``, ..., ``"durn_s_p"``); ``kwargs`` go to its builder."""
    get_spec(name)  # raises for an unknown name, listing the known ones
    return _BUILDERS[name](**kwargs)


def get_model_weights(name: str) -> list:
    """The released weights entries (:class:`durn.weights.Weights`) of network ``name``."""
    get_spec(name)
    weights = _weights_layer()
    return [weights.WEIGHTS[entry] for entry in weights.list_weights(name)]
