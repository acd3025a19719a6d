"""The DuRN authors' released weights, imported once from their ``trainedmodels`` archive.

The authors publish their checkpoints as one archive on Google Drive, which cannot be
fetched without a browser, so durn does not download it: the user downloads it once and
``durn import-authors ARCHIVE`` (:func:`import_authors`) converts every checkpoint it
recognises into durn's layout, stored in the torch hub cache (:func:`authors_dir`) with
a ``manifest.json`` of SHA-256 hashes. ``weights="authors"`` then loads them offline
(:func:`load_authors`), verified against that manifest.

Files are recognised by their keys and shapes, not their names (names are only used to
choose between training sets and in messages). Nothing already imported is replaced
with different weights unless ``force=True``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import torch

from ..atomic import atomic_write
from ..checkpoints import (
    AUTHORS_CHANNEL_ORDER,
    BUILDERS,
    CheckpointError,
    canonical_state_dict,
    identify,
    project_layout,
    to_project_state_dict,
    with_batch_counters,
)
from ..models.registry import SPECS
from . import FORMAT
from .download import sha256_file

# The "Models" link of the authors' README (github.com/liu-vis/DualResidualNetworks).
AUTHORS_ARCHIVE_URL = "https://drive.google.com/file/d/1Fi6B3Lm_8afu_Ak8LxGihXJTd2XGx9Y2/view?usp=sharing"

# Where each network's checkpoint sits in the archive (``trainedmodels/<folder>/<file>``,
# the paths the authors' test scripts load), from the network specs. The first entry is
# the one ``weights="authors"`` means; later ones are the same network trained on another
# dataset of the paper, which are reported, not imported.
AUTHORS_ARCHIVE: dict[str, tuple[tuple[str, str], ...]] = {name: spec.authors_archive for name, spec in SPECS.items()}

# The largest DuRN checkpoint (durn_u) is about 52 MB; anything far beyond is not one.
MAX_MEMBER_BYTES = 1 << 30
CHECKPOINT_SUFFIXES = (".pt", ".pth")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ImportedWeights:
    network: str
    path: Path
    sha256: str          # of the file written in durn's format
    source: str          # the original file's path inside the archive or folder
    status: str          # "imported", "already imported" or "replaced"


@dataclass(frozen=True)
class SkippedFile:
    source: str
    reason: str


class ImportReport(list):
    """The imported networks (a list of :class:`ImportedWeights`); ``skipped`` lists the
    checkpoint files that were passed over, each with the reason."""

    def __init__(self, imported=(), skipped=()):
        super().__init__(imported)
        self.skipped: list[SkippedFile] = list(skipped)


@dataclass
class _Found:
    network: str
    source: str
    source_sha256: str
    state_dict: dict[str, torch.Tensor]


def authors_dir() -> Path:
    """``<torch hub dir>/checkpoints/durn-authors``; ``TORCH_HOME`` and ``torch.hub.set_dir`` move it."""
    return Path(torch.hub.get_dir()) / "checkpoints" / "durn-authors"


def archive_path(network: str) -> str:
    """``trainedmodels/<folder>/<file>`` of ``network``'s checkpoint in the authors' archive."""
    folder, name = AUTHORS_ARCHIVE[network][0]
    return f"trainedmodels/{folder}/{name}"


def not_imported_message(network: str) -> str:
    return (
        f"the authors' weights for {network} are not imported: download the trainedmodels archive from "
        f"{AUTHORS_ARCHIVE_URL} and run `durn import-authors path/to/archive` "
        f"(it holds {archive_path(network)})"
    )


# ---------------------------------------------------------------- reading the source

def _members(source: Path) -> Iterator[tuple[str, bytes | str]]:
    """(path inside the source, file bytes or a reason it was not read) of every
    checkpoint-like file in a folder, zip or tar archive, or a single checkpoint file."""
    if source.is_dir():
        yield from _folder_members(source)
    elif source.suffix.lower() in CHECKPOINT_SUFFIXES:  # a .pt file is itself a zip: test it first
        yield source.name, _read_bounded(source)
    elif zipfile.is_zipfile(source):
        yield from _zip_members(source)
    elif tarfile.is_tarfile(source):
        yield from _tar_members(source)
    else:
        raise CheckpointError(
            f"{source} is neither a folder, a zip or tar archive, nor a .pt checkpoint; expected the authors' "
            f"trainedmodels archive (from {AUTHORS_ARCHIVE_URL}) or the folder it unpacks to"
        )


def _wanted(path: str) -> bool:
    parts = PurePosixPath(path).parts
    if not parts or "__MACOSX" in parts or parts[-1].startswith("._"):  # macOS resource forks
        return False
    return parts[-1].lower().endswith(CHECKPOINT_SUFFIXES)


def _too_large(size: int) -> str:
    return (f"{size} bytes, more than the {MAX_MEMBER_BYTES} bytes allowed (the largest DuRN checkpoint is "
            "about 52 MB); not read")


def _read_bounded(path: Path) -> bytes | str:
    size = path.stat().st_size
    if size > MAX_MEMBER_BYTES:
        return _too_large(size)
    try:
        return path.read_bytes()
    except OSError as err:
        return f"cannot be read: {err}"


def _folder_members(root: Path) -> Iterator[tuple[str, bytes | str]]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__MACOSX")
        for name in sorted(files):
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if _wanted(rel) and path.is_file():
                yield rel, _read_bounded(path)


def _zip_members(path: Path) -> Iterator[tuple[str, bytes | str]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"{path} is not a readable zip archive: {err}") from None
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.is_dir() or not _wanted(info.filename):
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                yield info.filename, _too_large(info.file_size)
                continue
            try:
                with archive.open(info) as f:
                    data = f.read(MAX_MEMBER_BYTES + 1)  # the header's size may lie
            except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, NotImplementedError) as err:
                yield info.filename, f"damaged or encrypted in the archive: {err}"
                continue
            yield info.filename, data if len(data) <= MAX_MEMBER_BYTES else _too_large(len(data))


def _tar_members(path: Path) -> Iterator[tuple[str, bytes | str]]:
    try:
        archive = tarfile.open(path)
    except (tarfile.TarError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable tar archive: {err}") from None
    with archive:
        for info in sorted(archive.getmembers(), key=lambda i: i.name):
            if not info.isfile() or not _wanted(info.name):
                continue
            if info.size > MAX_MEMBER_BYTES:
                yield info.name, _too_large(info.size)
                continue
            try:
                yield info.name, archive.extractfile(info).read()
            except (tarfile.TarError, OSError, EOFError) as err:
                yield info.name, f"damaged in the archive: {err}"


# ---------------------------------------------------------------- recognising a checkpoint

def _load(data: bytes):
    if not data:
        raise CheckpointError("empty (0 bytes)")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            "holds Python objects other than tensors, which durn does not unpickle (that can run code): "
            f"{str(err).splitlines()[0]}"
        ) from None
    except Exception as err:  # torch.load raises many kinds for damaged or foreign files
        what = "a truncated or corrupted PyTorch checkpoint" if data[:2] in (b"PK", b"\x80\x02") else \
            "not a PyTorch checkpoint"
        raise CheckpointError(f"{what} ({len(data)} bytes): {str(err).splitlines()[0]}") from None


def _authors_networks(sd) -> list[str]:
    return sorted({net for score, net, kind in identify(sd) if score == 1.0 and kind == "authors"})


def _recognise(source: str, data: bytes) -> _Found:
    """The network of one checkpoint file, converted to durn's layout; CheckpointError
    (its first line: why) when it is not one of the authors' DuRN checkpoints."""
    sd = canonical_state_dict(_load(data))
    networks = _authors_networks(sd)
    if not networks:
        upgraded = with_batch_counters(sd)
        if upgraded is not sd and _authors_networks(upgraded):
            sd, networks = upgraded, _authors_networks(upgraded)
    if len(networks) > 1:  # no two DuRN layouts coincide today; let the file name decide if they ever do
        named = [n for n in networks if any(PurePosixPath(source).name == f for _, f in AUTHORS_ARCHIVE[n])]
        if len(named) != 1:
            raise CheckpointError(f"its keys fit several networks ({', '.join(networks)})")
        networks = named
    if not networks:
        raise CheckpointError(_unrecognised_reason(sd))
    network = networks[0]
    converted, _ = to_project_state_dict(network, sd)  # also refuses NaN / Inf
    converted = {k: (converted[k].to(torch.float32) if converted[k].is_floating_point() else converted[k]).contiguous()
                 for k in project_layout(network)}  # in the network's own order
    return _Found(network, source, _sha256_bytes(data), converted)


def _unrecognised_reason(sd) -> str:
    ranking = identify(sd)
    if any(score == 1.0 and kind == "project" for score, _, kind in ranking):
        net = next(n for s, n, k in ranking if s == 1.0 and k == "project")
        return f"a {net} state dict in durn's own layout, not one of the authors' files"
    score, net, kind = ranking[0]
    if score >= 0.5:
        return (f"not one of the authors' DuRN checkpoints: closest is {net} ({score:.0%} of the keys of the "
                f"{'authors' if kind == 'authors' else 'durn'} layout match)")
    return f"not a checkpoint of any DuRN network ({len(sd)} tensors, e.g. {sorted(sd)[:2]})"


def _is_alternative(found: _Found) -> bool:
    parent = PurePosixPath(found.source).parent.name
    return any(parent == folder for folder, _ in AUTHORS_ARCHIVE[found.network][1:])


def _is_primary(found: _Found) -> bool:
    path = PurePosixPath(found.source)
    return (path.parent.name, path.name) == AUTHORS_ARCHIVE[found.network][0]


def _choose(found: list[_Found], skipped: list[SkippedFile]) -> dict[str, _Found]:
    """One file per network: files of the other training sets are reported, byte-identical
    copies collapse into one, and two different files for one network are an error."""
    chosen: dict[str, _Found] = {}
    for network in BUILDERS:
        mine = [f for f in found if f.network == network]
        for f in mine:
            if _is_alternative(f):
                folder, name = AUTHORS_ARCHIVE[network][0]
                skipped.append(SkippedFile(f.source, (
                    f"{network} trained on {PurePosixPath(f.source).parent.name}; durn's weights='authors' is "
                    f"the {folder} one ({folder}/{name}). Load this file directly with "
                    f"durn.load_reference({network!r}, path)")))
        mine = sorted((f for f in mine if not _is_alternative(f)), key=lambda f: (not _is_primary(f), f.source))
        distinct = list({f.source_sha256: f for f in reversed(mine)}.values())[::-1]
        if len(distinct) > 1:
            raise CheckpointError(
                f"{len(distinct)} different checkpoints of {network} were found: "
                + ", ".join(f.source for f in distinct)
                + f". Keep only the authors' one ({archive_path(network)}) in what you import, or import that "
                "file on its own"
            )
        if mine:
            chosen[network] = mine[0]
            for f in mine[1:]:
                skipped.append(SkippedFile(f.source, f"the same file as {mine[0].source}"))
    return chosen


# ---------------------------------------------------------------- writing and reading the cache

def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serialise(found: _Found) -> bytes:
    payload = {
        "format": FORMAT,
        "network": found.network,
        "channel_order": AUTHORS_CHANNEL_ORDER[found.network],
        "value_range": [0.0, 1.0],
        "source": found.source,
        "source_sha256": found.source_sha256,
        "state_dict": found.state_dict,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _read_manifest(dest: Path) -> dict:
    path = dest / MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path} is damaged ({err}); delete the folder {dest} and run `durn import-authors` again"
        ) from None
    if not isinstance(manifest, dict) or not all(isinstance(v, dict) for v in manifest.values()):
        raise CheckpointError(f"{path} is not a durn-authors manifest; delete the folder {dest} and import again")
    return manifest


def import_authors(source: str | os.PathLike, *, dest: str | os.PathLike | None = None,
                   force: bool = False) -> ImportReport:
    """Convert the authors' checkpoints found in ``source`` (their ``trainedmodels`` zip,
    the folder it unpacks to, or one checkpoint file) into durn's layout under ``dest``
    (default :func:`authors_dir`).

    Returns one :class:`ImportedWeights` per network found; ``.skipped`` lists the files
    passed over and why. Raises :class:`~durn.checkpoints.CheckpointError` when nothing
    is recognised, when two different files claim one network, or when a network
    imported before would get different weights and not ``force``; nothing is written
    then. Every file is written atomically.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} not found; expected the authors' trainedmodels archive or its folder")
    dest = Path(dest) if dest is not None else authors_dir()
    found, skipped, searched = [], [], 0
    for name, data in _members(source):
        searched += 1
        if isinstance(data, str):
            skipped.append(SkippedFile(name, data))
            continue
        try:
            found.append(_recognise(name, data))
        except CheckpointError as err:
            skipped.append(SkippedFile(name, str(err).splitlines()[0]))
    chosen = _choose(found, skipped)
    if not chosen:
        raise CheckpointError(_nothing_found_message(source, searched, skipped))

    manifest = _read_manifest(dest)
    plans, conflicts = [], []
    for network, f in chosen.items():
        data = _serialise(f)
        sha = _sha256_bytes(data)
        path = dest / f"{network}.pt"
        status, existing = "imported", None
        if path.exists():
            existing = sha256_file(path)
            entry = manifest.get(network, {})
            intact = entry.get("sha256") == existing
            if existing == sha or (intact and entry.get("source_sha256") == f.source_sha256):
                status = "already imported"
            elif force:
                status = "replaced"
            else:
                was = f"imported from {entry['source']}" if intact and "source" in entry else "changed since import"
                conflicts.append(f"{path} ({was}) differs from {f.source}")
        plans.append((network, f, data, sha, path, status, existing))
    if conflicts:
        raise CheckpointError(
            "not replacing weights imported before: " + "; ".join(conflicts)
            + ". Pass --force (force=True) to replace them"
        )

    dest.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report = ImportReport(skipped=skipped)
    for network, f, data, sha, path, status, existing in plans:
        entry = manifest.get(network, {})
        if status == "already imported" and entry.get("sha256") == existing:
            # keep the file and its manifest entry (it may name another path of the same original file)
            report.append(ImportedWeights(network, path, existing, entry.get("source", f.source), status))
            continue
        if status != "already imported":
            atomic_write(path, lambda out, data=data: out.write(data))
        manifest[network] = {"file": path.name, "sha256": sha, "size": len(data), "source": f.source,
                             "source_sha256": f.source_sha256, "imported_at": now}
        report.append(ImportedWeights(network, path, sha, f.source, status))
    text = json.dumps(dict(sorted(manifest.items())), indent=2) + "\n"
    atomic_write(dest / MANIFEST, lambda out: out.write(text), mode="w")
    return report


def _nothing_found_message(source: Path, searched: int, skipped: list[SkippedFile]) -> str:
    expected = ", ".join(archive_path(n) for n in BUILDERS)
    what = f"{searched} .pt/.pth file{'s' if searched != 1 else ''}" if searched else "no .pt/.pth files"
    lines = [f"no checkpoint of the DuRN authors found in {source} (searched {what}); expected the "
             f"trainedmodels archive from {AUTHORS_ARCHIVE_URL}, holding {expected}"]
    lines += [f"  {s.source}: {s.reason}" for s in skipped[:10]]
    if source.is_dir() and any(source.glob("*.zip")):
        lines.append("  (this folder holds .zip files: pass the archive itself)")
    return "\n".join(lines)


def load_authors(network: str, *, dest: str | os.PathLike | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """(durn state dict, channel order) of the authors' weights for ``network``, imported
    before with :func:`import_authors`; the file is verified against the manifest's SHA-256."""
    state_dict, channel_order, _ = read_imported(network, dest=dest)
    return state_dict, channel_order


def read_imported(network: str, *, dest: str | os.PathLike | None = None) -> tuple[dict[str, torch.Tensor], str, str]:
    """:func:`load_authors` and the SHA-256 of the imported file (the manifest's, verified)."""
    if network not in BUILDERS:
        raise ValueError(f"unknown network {network!r}; expected one of {sorted(BUILDERS)}")
    dest = Path(dest) if dest is not None else authors_dir()
    entry = _read_manifest(dest).get(network)
    path = dest / (entry.get("file", f"{network}.pt") if entry else f"{network}.pt")
    if entry is None or not path.is_file():
        raise FileNotFoundError(not_imported_message(network))
    data = path.read_bytes()
    if _sha256_bytes(data) != entry.get("sha256"):
        raise CheckpointError(
            f"{path} changed since it was imported (its SHA-256 is not the one in {dest / MANIFEST}); "
            "run `durn import-authors path/to/archive --force` again"
        )
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} cannot be read ({str(err).splitlines()[0]}); import it again") from None
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT or obj.get("network") != network:
        found = obj.get("network") if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(f"{path} does not hold durn's {network} weights (found {found}); import it again")
    sd = obj["state_dict"]
    layout = project_layout(network)
    if set(sd) != set(layout) or any(tuple(sd[k].shape) != layout[k] for k in layout):
        raise CheckpointError(f"{path} does not have {network}'s layout; import it again")
    return dict(sd), obj["channel_order"], entry["sha256"]
