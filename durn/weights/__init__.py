"""Pretrained weights: the registry of released files, the authors' imported files, and
the one reading of a ``weights=`` argument (:func:`resolve`, in ``resolver.py``).

``weights=`` (in every builder, ``durn.restore`` / ``durn.Restore``, torch.hub and the
``durn`` commands) accepts

* an entry name from :data:`WEIGHTS` (``"durn_p.photos_gaussian"``) or a
  :class:`Weights` entry; ``"default"`` (what ``pretrained=True`` means) is the
  network's default entry;
* ``"authors"``: the authors' released weights, after ``durn import-authors``;
* ``"untrained"``: random weights from one fixed seed, with a warning (pipeline checks);
* a path to a checkpoint file (the authors' file or a durn weights file), or a state dict.

Entries that ship with durn are verified by SHA-256 on every load; entries hosted as
release assets are downloaded once into the torch hub cache and verified there.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ..models.registry import SPECS
from .download import WeightsHashError, cache_dir, download_verified, sha256_file
from .registry import ENTRIES, RELEASED_DIR, Weights

__all__ = [
    "DEFAULTS", "WEIGHTS", "ResolvedWeights", "UntrainedWeightsWarning", "Weights", "WeightsHashError", "cache_dir",
    "default_weights", "form_of", "get_weights", "list_weights", "load_weights_file", "resolve", "resolve_weights",
    "save_weights_file", "weights_path",
]

WEIGHTS: dict[str, Weights] = {w.name: w for w in ENTRIES}
# The entry `pretrained=True` loads, per network (each network's spec names it).
DEFAULTS: dict[str, str] = {name: spec.default_weights for name, spec in SPECS.items() if spec.default_weights}
FORMAT = "durn-weights-1"


def list_weights(network: str | None = None) -> list[str]:
    """Names of the released entries, for one network or all."""
    return [n for n, w in WEIGHTS.items() if network is None or w.network == network]


def get_weights(name: str) -> Weights:
    if name not in WEIGHTS:
        raise KeyError(f"unknown weights {name!r}; released entries: {sorted(WEIGHTS) or 'none'}")
    return WEIGHTS[name]


def default_weights(network: str) -> Weights | None:
    name = DEFAULTS.get(network)
    return WEIGHTS[name] if name else None


def no_default_message(network: str) -> str:
    from .authors import AUTHORS_ARCHIVE_URL, archive_path

    others = list_weights(network)
    return (
        f"durn has released no pretrained weights for {network} yet"
        + (f" (work in progress, below the quality a default must reach, loadable by name: "
           f"{', '.join(repr(n) for n in others)}; see docs/weights.md)" if others else "")
        + f". To use the authors' weights, download their 'trainedmodels' archive ({AUTHORS_ARCHIVE_URL}, "
        f"linked from the DuRN authors' GitHub README), run `durn import-authors path/to/archive` once, then "
        f"pass weights='authors'; or pass the file itself: weights='path/to/{archive_path(network)}'."
    )


def weights_path(entry: Weights, *, progress: bool = True) -> Path:
    """The entry's verified local file: the packaged file, or the cached download."""
    if entry.in_package:
        path = RELEASED_DIR / entry.file
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing from this durn installation; reinstall durn")
        found = sha256_file(path)
        if found != entry.sha256:
            raise WeightsHashError(
                f"{path} has SHA-256 {found}, but the registry entry {entry.name} records {entry.sha256}: "
                "the file was modified. Restore it (git checkout, or reinstall durn)."
            )
        return path
    return download_verified(entry.url, cache_dir() / entry.file, entry.sha256, progress=progress)


def save_weights_file(path, network: str, state_dict: Mapping[str, torch.Tensor], *, channel_order: str,
                      storage: torch.dtype = torch.float16, value_range=(0.0, 1.0), **meta) -> None:
    """Write a durn weights file: floating tensors stored as ``storage``; a plain dict that
    ``torch.load(weights_only=True)`` reads. ``meta``: extra str/number/list fields."""
    from ..atomic import atomic_output

    sd = {k: (v.detach().to(storage) if v.is_floating_point() else v.detach()).contiguous().cpu()
          for k, v in state_dict.items()}
    obj = {"format": FORMAT, "network": network, "channel_order": channel_order,
           "value_range": [float(v) for v in value_range], **meta, "state_dict": sd}
    with atomic_output(path, overwrite=False) as tmp:
        torch.save(obj, tmp)


def load_weights_file(path, network: str) -> tuple[dict[str, torch.Tensor], str | None]:
    """(float32 state dict, channel order or None) from a durn weights file or any checkpoint
    :func:`durn.checkpoints.read_checkpoint` reads; a file made for another network says so."""
    from ..checkpoints import CheckpointError, read_checkpoint

    obj = read_checkpoint(path)
    order = None
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        if obj.get("network") != network:
            raise CheckpointError(f"{os.fspath(path)} holds weights for {obj.get('network')}, not {network}")
        order = obj.get("channel_order")
        obj = obj["state_dict"]
    if isinstance(obj, Mapping):
        obj = {k: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in obj.items()}
    return obj, order


def resolve_weights(network: str, weights, *, progress: bool = True) -> tuple[object, str | None]:
    """(checkpoint, channel order or None) of :func:`resolve` (``durn.weights.resolve``)."""
    resolved = resolve(network, weights, progress=progress)
    return resolved.checkpoint, resolved.channel_order


# The resolver reads the tables and files above; it is imported last, once they exist.
from .resolver import ResolvedWeights, UntrainedWeightsWarning, form_of, resolve  # noqa: E402
