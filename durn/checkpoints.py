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

from .models.builders import (
    build_durn_p,
    build_durn_p_real,
    build_durn_s,
    build_durn_s_p,
    build_durn_u,
    build_durn_us,
)

BUILDERS = {
    "durn_p": build_durn_p,
    "durn_p_real": build_durn_p_real,
    "durn_u": build_durn_u,
    "durn_us": build_durn_us,
    "durn_s": build_durn_s,
    "durn_s_p": build_durn_s_p,
}

# Channel order that the authors' released weights expect.
AUTHORS_CHANNEL_ORDER = {
    "durn_p": "L",
    "durn_p_real": "RGB",
    "durn_u": "RGB",
    "durn_us": "RGB",
    "durn_s": "RGB",
    "durn_s_p": "BGR",  # trained and evaluated on images read with OpenCV
}

# The authors' file names in their ``trainedmodels`` archive, for messages. Each sits in
# a folder named after its training set (the paths their test scripts load;
# durn.weights.authors.AUTHORS_ARCHIVE has the folders): BSD_gray, RealNoiseHKPoly,
# GoPro, RESIDE (also DCPDNData), DIDMDN_Data (also DDN_Data), RainDrop.
AUTHORS_FILES = {
    "durn_p": "DuRN_P_model.pt",
    "durn_p_real": "DuRN_P_no_norm_model.pt",
    "durn_u": "DuRN_U_model.pt",
    "durn_us": "DuRN-US_model.pt",
    "durn_s": "DuRN_S_model.pt",
    "durn_s_p": "DuRN_S_P_model.pt",
}

WRAPPER_KEYS = ("state_dict", "model_state_dict", "params_ema", "params", "model", "net", "network", "weights")
STRIPPED_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for the requested network; the message says why."""


def _durb_names(author: str, project: str, variant: str) -> list[tuple[str, str]]:
    pairs = [
        (f"{author}.conv1.conv2d", f"{project}.conv1"),
        (f"{author}.norm1.norm", f"{project}.norm1"),
        (f"{author}.conv2.conv2d", f"{project}.conv2"),
        (f"{author}.norm2.norm", f"{project}.norm2"),
    ]
    if variant == "P":
        pairs += [
            (f"{author}.up_conv.conv2d", f"{project}.t1.0"),
            (f"{author}.up_norm.norm", f"{project}.t1.1"),
            (f"{author}.down_conv.conv2d", f"{project}.t2.0"),
            (f"{author}.down_norm.norm", f"{project}.t2.1"),
        ]
    elif variant == "S":
        pairs += [
            (f"{author}.up_conv.conv2d", f"{project}.t1.0"),
            (f"{author}.up_norm.norm", f"{project}.t1.1"),
            (f"{author}.se", f"{project}.t2.0"),
            (f"{author}.down_conv.conv2d", f"{project}.t2.1"),
            (f"{author}.down_norm.norm", f"{project}.t2.2"),
        ]
    elif variant == "U":
        pairs += [
            (f"{author}.conv_pre.conv2d", f"{project}.t1.0"),
            (f"{author}.norm_pre.norm", f"{project}.t1.1"),
            (f"{author}.up_conv.conv2d", f"{project}.t1.3"),
            (f"{author}.up_norm.norm", f"{project}.t1_post"),
            (f"{author}.down_conv.conv2d", f"{project}.t2"),
            (f"{author}.down_norm.norm", f"{project}.t2_post"),
        ]
    elif variant == "US":
        pairs += [
            (f"{author}.conv_pre.conv2d", f"{project}.t1.0"),
            (f"{author}.up_conv.conv2d", f"{project}.t1.2"),
            (f"{author}.se", f"{project}.t2.0"),
            (f"{author}.down_conv.conv2d", f"{project}.t2.1"),
        ]
    return pairs


def _p_family_names(variant: str) -> list[tuple[str, str]]:
    pairs = [
        ("conv1.conv2d", "stem.0"), ("norm1.norm", "stem.1"),
        ("conv2.conv2d", "stem.3"), ("norm2.norm", "stem.4"),
        ("conv3.conv2d", "tail.0"), ("norm3.norm", "tail.1"),
        ("conv4.conv2d", "tail.3"),
    ]
    for i in range(6):
        pairs += _durb_names(f"block{i + 1}", f"stages.0.{i}", variant)
    return pairs


def _durn_u_names() -> list[tuple[str, str]]:
    pairs = [
        ("conv1", "stem.0"), ("norm1.norm", "stem.1"),
        ("conv2", "stem.3"), ("norm2.norm", "stem.4"),
        ("conv3", "entry.0"), ("norm3.norm", "entry.1"),
        ("upconv1.conv2d", "tail.0"), ("upnorm1.norm", "tail.1"),
        ("conv4.conv2d", "tail.3"), ("norm4.norm", "tail.4"),
        ("upconv2.conv2d", "tail.6"), ("upnorm2.norm", "tail.7"),
        ("conv5.conv2d", "tail.9"), ("norm5.norm", "tail.10"),
        ("end_conv", "tail.12"),
    ]
    for i in range(6):
        pairs += _durb_names(f"rud{i + 1}", f"stages.0.{i}", "U")
    return pairs


def _durn_us_names() -> list[tuple[str, str]]:
    pairs = [
        ("conv1", "stem.0"), ("conv2", "stem.2"), ("conv3", "entry.0"),
        ("upconv1.conv2d", "tail.0"), ("conv4.conv2d", "tail.2"),
        ("upconv2.conv2d", "tail.4"), ("conv5.conv2d", "tail.6"),
        ("end_conv", "tail.8"),
    ]
    for i in range(12):
        pairs += _durb_names(f"rud{i + 1}", f"stages.0.{i}", "US")
    return pairs


def _durn_s_p_names() -> list[tuple[str, str]]:
    pairs = [
        ("conv1", "stem.0"), ("norm1.norm", "stem.1"),
        ("conv2", "stem.3"), ("norm2.norm", "stem.4"),
        ("conv3", "stem.6"), ("norm3.norm", "stem.7"),
        ("deconv1.0", "tail.0.0"), ("conv4.conv2d", "tail.1"), ("norm4.norm", "tail.2"),
        ("deconv2.0", "tail.4.0"), ("end_conv.conv2d", "tail.5"),
        ("prelu", "unused_prelu"),
    ]
    for i in range(3):
        pairs += _durb_names(f"rud{i + 1}", f"stages.0.{i}", "S")
    for i in range(6):
        pairs += _durb_names(f"rud{i + 4}", f"stages.1.{i}", "P")
    return pairs


AUTHORS_NAMES: dict[str, list[tuple[str, str]]] = {
    "durn_p": _p_family_names("P"),
    "durn_p_real": _p_family_names("P"),
    "durn_u": _durn_u_names(),
    "durn_us": _durn_us_names(),
    "durn_s": _p_family_names("S"),
    "durn_s_p": _durn_s_p_names(),
}


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
        for prefix in STRIPPED_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
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
    expected = authors_layout(name)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"{k} {tuple(sd[k].shape)} (expected {expected[k]})" for k in sd
             if k in expected and tuple(sd[k].shape) != expected[k]]
    lines = [f"{source} does not match {name} (the authors' {AUTHORS_FILES[name]} has {len(expected)} keys):"]
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
