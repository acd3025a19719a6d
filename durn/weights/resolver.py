"""The one reading of a ``weights=`` argument, for every entry point.

The builders (``durn.durn_p(weights=...)``, torch.hub), ``durn.restore`` / ``durn.Restore``,
``durn restore --weights``, ``durn evaluate --weights`` and ``durn train --init`` all pass
what they were given to :func:`resolve`, which says what to load and what it was::

    resolved = resolve("durn_p", "default")
    model = resolved.build()            # eval mode, channel_order set
    resolved.record()                   # ("durn_p.photos_gaussian", "6983bdbf...")

Accepted forms (:func:`form_of` names them): ``None`` (random weights from the global
RNG, what a builder without weights gives), a released entry name or :class:`Weights`
entry, ``"default"`` / ``"pretrained"`` (the network's default entry), ``"authors"``
(after ``durn import-authors``), ``"untrained"`` (random weights drawn from
:data:`UNTRAINED_SEED`, with a warning: for checking a pipeline), a path to a checkpoint
file (one of the authors' files, a durn weights file, a training run's checkpoint), a
state dict in the authors' or durn's layout, or a :class:`ResolvedWeights` (returned as it is).
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..models.registry import get_spec
from . import default_weights, get_weights, list_weights, load_weights_file, no_default_message, weights_path
from .download import sha256_file
from .registry import Weights

__all__ = ["DEFAULT_NAMES", "UNTRAINED_SEED", "ResolvedWeights", "UntrainedWeightsWarning", "form_of", "resolve"]

UNTRAINED_SEED = 0  # "untrained" is the same random network everywhere
DEFAULT_NAMES = ("default", "pretrained")  # "pretrained": torch.hub's and torchvision's older word


class UntrainedWeightsWarning(UserWarning):
    """A network with random weights was requested: its output is not a restoration."""


@dataclass(frozen=True)
class ResolvedWeights:
    """What a ``weights=`` argument means for one network."""

    network: str
    name: str | None                   # for records: the entry, "authors", "untrained" or the file's absolute path
    checkpoint: Mapping | None = None  # what durn.checkpoints.load_reference takes; None: random weights
    channel_order: str | None = None   # what the weights expect, where they say
    seed: int | None = None            # random weights drawn from this seed
    sha256: str | None = None          # known without reading the file again (entries, the authors' import)
    path: Path | None = None           # the file read, hashed for the record on demand

    def record(self) -> tuple[str | None, str | None]:
        """(name, SHA-256) of the weights, as ``durn evaluate --json`` writes them; the hash
        is None for random weights and state dicts. A registry entry's file was verified
        against its recorded hash when it was read."""
        if self.sha256 is None and self.path is not None:
            return self.name, sha256_file(self.path)
        return self.name, self.sha256

    def build(self, **kwargs) -> nn.Module:
        """The network with these weights, in eval mode (random weights: as the builder
        leaves it, except that seeded ones come in eval mode too). ``kwargs`` go to the
        architecture's builder (``connection=``, for random weights only)."""
        spec = get_spec(self.network)
        if self.checkpoint is None:
            if self.seed is None:
                return spec.builder(**kwargs)
            warnings.warn(
                f"{self.network} has random (untrained) weights: its output is NOT a restoration. Use it only "
                "to check a pipeline.", UntrainedWeightsWarning, stacklevel=3,
            )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                return spec.builder(**kwargs).eval()
        if kwargs.get("connection", "dual") != "dual":
            raise ValueError("pretrained weights exist only for the paper's wiring, connection='dual'")
        from ..checkpoints import load_reference

        model = load_reference(self.network, self.checkpoint)
        if self.channel_order is not None:
            model.channel_order = self.channel_order
        return model


def form_of(weights) -> str:
    """Which form a ``weights=`` value has: ``"none"``, ``"resolved"``, ``"entry"``,
    ``"default"``, ``"authors"``, ``"untrained"``, ``"state_dict"`` or ``"path"`` (a file
    that may not exist); TypeError for anything else."""
    if weights is None:
        return "none"
    if isinstance(weights, ResolvedWeights):
        return "resolved"
    if isinstance(weights, Weights):
        return "entry"
    if isinstance(weights, Mapping):
        return "state_dict"
    if isinstance(weights, str) and weights in DEFAULT_NAMES:
        return "default"
    if isinstance(weights, str) and weights in ("authors", "untrained"):
        return weights
    if isinstance(weights, str) and weights in list_weights():
        return "entry"
    if isinstance(weights, (str, os.PathLike)):
        return "path"
    raise TypeError(f"weights must be a name, a path, a Weights entry or a state dict, got {type(weights).__name__}")


def resolve(network: str, weights, *, progress: bool = True) -> ResolvedWeights:
    """``weights=`` for ``network`` -> :class:`ResolvedWeights`. Released files are read
    (downloaded once, with a progress bar unless ``progress=False``) and verified here;
    errors say what was expected."""
    get_spec(network)  # an unknown network says so first
    form = form_of(weights)
    if form == "none":
        return ResolvedWeights(network, None)
    if form == "resolved":
        if weights.network != network:
            raise ValueError(f"weights resolved for {weights.network}, not {network}")
        return weights
    if form == "untrained":
        return ResolvedWeights(network, "untrained", seed=UNTRAINED_SEED)
    if form == "state_dict":
        return ResolvedWeights(network, None, checkpoint=weights)
    if form == "authors":
        from .authors import read_imported

        state_dict, channel_order, sha256 = read_imported(network)
        return ResolvedWeights(network, "authors", state_dict, channel_order, sha256=sha256)
    if form == "path":
        return _resolve_path(network, weights)
    if form == "default":
        entry = default_weights(network)
        if entry is None:
            raise ValueError(no_default_message(network))
    else:
        entry = weights if isinstance(weights, Weights) else get_weights(weights)
    if entry.network != network:
        raise ValueError(f"weights {entry.name} are for {entry.network}, not {network}")
    state_dict, channel_order = load_weights_file(weights_path(entry, progress=progress), network)
    return ResolvedWeights(network, entry.name, state_dict, channel_order or entry.channel_order,
                           sha256=entry.sha256)


def _resolve_path(network: str, path) -> ResolvedWeights:
    text = os.fspath(path)
    if os.path.exists(text):
        checkpoint, channel_order = load_weights_file(text, network)
        absolute = Path(text).resolve()
        return ResolvedWeights(network, str(absolute), checkpoint, channel_order, path=absolute)
    if os.sep in text or text.endswith((".pt", ".pth")):
        raise FileNotFoundError(f"weights file not found: {text}")
    raise ValueError(
        f"unknown weights {text!r} for {network}: expected a released entry "
        f"({list_weights(network) or 'none yet'}), 'default', 'authors', a file path or a state dict. "
        + no_default_message(network)
    )
