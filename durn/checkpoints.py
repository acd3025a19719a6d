"""The authors' checkpoint files: safe loading, recognition and key conversion.

The authors' networks name their layers differently (``block3.up_conv.conv2d.weight``
where this project has ``stages.0.2.t1.0.weight``). ``AUTHORS_NAMES`` lists, per
network, which authors' module prefix becomes which project prefix; everything else
(the layouts used to recognise a file, the inverse mapping) is derived from it.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from functools import lru_cache

import torch

from .models.registry import SPECS

# Per-network tables, derived from the network specs (durn/models/registry.py).
BUILDERS = {name: spec.builder for name, spec in SPECS.items()}
# Channel order that the authors' released weights expect.
AUTHORS_CHANNEL_ORDER = {name: spec.authors_channel_order for name, spec in SPECS.items()}
# The authors' file names in their ``trainedmodels`` archive, for messages.
AUTHORS_FILES = {name: spec.authors_file for name, spec in SPECS.items()}
# Which authors' module prefix becomes which project prefix (durn/models/authors_keys.py).
AUTHORS_NAMES: dict[str, list[tuple[str, str]]] = {name: list(spec.authors_keys) for name, spec in SPECS.items()}

WRAPPER_KEYS = ("state_dict", "model_state_dict", "params_ema", "params", "model", "net", "network", "weights")
STRIPPED_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for the requested network; the message says why."""


def _rename(key: str, pairs: list[tuple[str, str]]) -> str | None:
    """Replace the longest matching module prefix of ``key``; None when nothing matches."""
    best = None
    for src, dst in pairs:
        if key.startswith(src + ".") and (best is None or len(src) > len(best[0])):
            best = (src, dst)
    if best is None:
        return None
    return best[1] + key[len(best[0]):]


@lru_cache(maxsize=None)
def project_layout(name: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the project's state dict for network ``name``."""
    with torch.device("meta"):
        model = BUILDERS[name]()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@lru_cache(maxsize=None)
def authors_layout(name: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the authors' checkpoint for ``name``, derived from the project layout."""
    inverse = [(dst, src) for src, dst in AUTHORS_NAMES[name]]
    layout = {}
    for key, shape in project_layout(name).items():
        renamed = _rename(key, inverse)
        if renamed is None:
            raise AssertionError(f"no authors' name for {name} key {key}")
        layout[renamed] = shape
    return layout


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> Mapping:
    """``torch.load(..., weights_only=True)`` with errors that say what the file is."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder; expected a checkpoint file such as DuRN-US_model.pt")
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); the download or copy did not finish")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if not _looks_like_torch_file(path):  # text and other files fail to unpickle too
            with open(path, "rb") as f:
                head = f.read(16)
            raise CheckpointError(f"{path} ({size} bytes) is not a PyTorch checkpoint: it starts with {head!r}, "
                                  "not as torch.save files do") from None
        raise CheckpointError(
            f"{path} holds Python objects other than tensors (for example a whole pickled model), "
            "which durn does not unpickle because that can run arbitrary code. Load it once in a "
            "trusted session and save its state_dict() instead. Details: "
            f"{str(err).splitlines()[0]}"
        ) from None
    except Exception as err:  # torch.load raises many kinds for damaged or foreign files
        looks_zip = _starts_with(path, b"PK")
        what = "a truncated or corrupted PyTorch checkpoint" if looks_zip else "not a PyTorch checkpoint"
        raise CheckpointError(f"{path} ({size} bytes) is {what}: {str(err).splitlines()[0]}") from None
    return obj


def _starts_with(path: str, magic: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def _looks_like_torch_file(path: str) -> bool:
    """torch.save writes a zip archive, or (before PyTorch 1.6) a pickle of protocol 2."""
    return _starts_with(path, b"PK\x03\x04") or _starts_with(path, b"\x80")


def canonical_state_dict(obj) -> dict[str, torch.Tensor]:
    """Unwrap common checkpoint wrappers and strip DataParallel / torch.compile prefixes."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not _is_state_dict(obj):
            inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        found = type(obj).__name__
        if isinstance(obj, Mapping):
            found = f"a dict with keys {sorted(map(str, obj))[:8]}"
        raise CheckpointError(f"expected a state dict of tensors, found {found}")
    sd = {}
    for key, value in obj.items():
        while key.startswith(STRIPPED_PREFIXES):  # in any order: "_orig_mod.module.x", "module._orig_mod.x"
            key = key[len(next(p for p in STRIPPED_PREFIXES if key.startswith(p))):]
        sd[key] = value
    return sd


def _is_state_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _match(sd: Mapping[str, torch.Tensor], layout: Mapping[str, tuple[int, ...]]) -> float:
    """Share of the union of keys present in both with equal shapes (1.0: exact layout)."""
    keys = set(sd) | set(layout)
    same = sum(1 for k in sd if k in layout and tuple(sd[k].shape) == layout[k])
    return same / len(keys) if keys else 0.0


def identify(sd: Mapping[str, torch.Tensor]) -> list[tuple[float, str, str]]:
    """(score, network, "authors" | "project") for every known layout, best first."""
    scores = []
    for name in BUILDERS:
        scores.append((_match(sd, authors_layout(name)), name, "authors"))
        scores.append((_match(sd, project_layout(name)), name, "project"))
    return sorted(scores, key=lambda s: -s[0])


def to_project_state_dict(name: str, checkpoint) -> tuple[dict[str, torch.Tensor], str]:
    """Convert a checkpoint (path, or state dict in the authors' or the project's layout)
    into the project's state dict for network ``name``. Returns (state dict, layout kind)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown network {name!r}; expected one of {sorted(BUILDERS)}")
    source = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "the state dict"
    obj = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    sd = canonical_state_dict(obj)
    for key, value in sd.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{source}: tensor {key} contains NaN or Inf; the file is damaged")
    ranking = identify(sd)
    exact = [(net, kind) for score, net, kind in ranking if score == 1.0]
    if (name, "authors") not in exact and (name, "project") not in exact:
        upgraded = with_batch_counters(sd)
        if upgraded is not sd and _match(upgraded, authors_layout(name)) == 1.0:
            sd, exact = upgraded, [(name, "authors")]
    if (name, "authors") in exact:
        pairs = AUTHORS_NAMES[name]
        sd, kind = {_rename(k, pairs): v for k, v in sd.items()}, "authors"
    elif (name, "project") in exact:
        kind = "project"
    else:
        raise CheckpointError(_mismatch_message(name, source, sd, ranking))
    return sd, kind


def with_batch_counters(sd: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """Checkpoints saved before PyTorch 0.4 (the authors used 0.3.1) have no BatchNorm
    ``num_batches_tracked``; add zeros, as ``BatchNorm`` does when it loads such files.
    Returns ``sd`` itself when it has counters already or no BatchNorm statistics."""
    if any(k.endswith(".num_batches_tracked") for k in sd) or not any(k.endswith(".running_mean") for k in sd):
        return sd
    out = dict(sd)
    for key in sd:
        if key.endswith(".running_mean"):
            out[key[: -len("running_mean")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return out


def _mismatch_message(name: str, source: str, sd, ranking) -> str:
    best_score, best_net, best_kind = ranking[0]
    if best_score == 1.0:
        layout = "the authors'" if best_kind == "authors" else "durn's own"
        return (
            f"{source} is a checkpoint of {best_net} ({layout} layout, all {len(sd)} keys match), "
            f"not of {name}; load it with load_reference({best_net!r}, ...)"
        )
    # compared with the layout of name it comes closest to, so that the one wrong key shows
    ours = _match(sd, project_layout(name)) > _match(sd, authors_layout(name))
    expected = project_layout(name) if ours else authors_layout(name)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"{k} {tuple(sd[k].shape)} (expected {expected[k]})" for k in sd
             if k in expected and tuple(sd[k].shape) != expected[k]]
    reference = f"durn's own layout of {name}" if ours else f"the authors' {AUTHORS_FILES[name]}"
    lines = [f"{source} does not match {name} ({reference} has {len(expected)} keys):"]
    if missing:
        lines.append(f"  missing {len(missing)} keys, e.g. {missing[:3]}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected keys, e.g. {unexpected[:3]}")
    if wrong:
        lines.append(f"  {len(wrong)} shapes differ, e.g. {wrong[:3]}")
    if best_score >= 0.5 and best_net != name:
        lines.append(f"  its keys look most like {best_net} ({best_score:.0%} of keys match the {best_kind} layout)")
    return "\n".join(lines)


def load_reference(name: str, checkpoint, *, map_location="cpu") -> torch.nn.Module:
    """Build network ``name`` and load one of the authors' checkpoints into it.

    ``checkpoint`` is a path to one of the authors' released files (``DuRN-US_model.pt``
    and the like; ``module.`` prefixes and wrapper dicts are handled) or a state dict in
    the authors' or this project's layout. Files are read with ``weights_only=True``.
    Returns the network in eval mode; ``model.channel_order`` says which channel order
    the weights expect (the authors' raindrop weights: ``"BGR"``; files in durn's own
    layout: the builder's default, RGB or L).
    """
    sd, kind = to_project_state_dict(name, checkpoint)
    model = BUILDERS[name]()
    model.load_state_dict(sd, strict=True)
    if kind == "authors":
        model.channel_order = AUTHORS_CHANNEL_ORDER[name]
    if map_location is not None and not isinstance(checkpoint, Mapping):
        model.to(map_location)
    return model.eval()
