"""Split checkpoints into hash-checked shards of at most ``max_bytes``, and join them again.

For channels that limit file sizes (the lent GPU machine returns at most 8 files of at most
16 MiB each). A shard set in ``out_dir`` is::

    NAME.shards.json    the manifest (written last: present means the shards are complete)
    NAME.shard00, NAME.shard01, ...

The shards are consecutive pieces of one byte stream: the *members* (files as they are, or
objects saved with ``torch.save``) one after another. The manifest gives each member's
offset, size and SHA-256, each shard's size and SHA-256, and the SHA-256 of the whole
stream; reading checks all three, so a missing, truncated or altered shard is an error
naming it, never a silently different checkpoint. Objects are read back with
``torch.load(weights_only=True)``.

    manifest = write_shards("RUN/best.pt", "out")                 # one member, best.pt
    write_shards([("best.pt", "RUN/best.pt"), ("last.pt", state)], "out", name="durn_u")
    state = read_shards("out/durn_u.shards.json", "last.pt")     # the object, checked
    data = read_shards("out", raw=True)                           # the member's bytes
    extract("out/durn_u.shards.json", "release/")                 # release/best.pt, ...

``python -m durn.train.shards MANIFEST_OR_DIR [--extract DIR]`` checks a shard set (and
writes its members out).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import torch

from ..atomic import atomic_write

FORMAT = "durn-shards"
VERSION = 1
MAX_BYTES = 16 * 2**20
MANIFEST_SUFFIX = ".shards.json"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # safe as a file name on any system


class ShardError(ValueError):
    """A shard set that cannot be written or read back exactly; says which file and why."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(MANIFEST_SUFFIX):
        raise ShardError(f"{what} {name!r} must be letters, digits, '_', '.' and '-' (not starting with '.' or '-')")
    return name


def _member_bytes(source) -> tuple[bytes, str]:
    """(bytes, kind): a file's bytes as they are ("file"), or a torch.save'd object ("torch")."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ShardError(f"no file to shard at {path}")
        return path.read_bytes(), "file"
    if isinstance(source, Mapping):
        buffer = io.BytesIO()
        torch.save(dict(source), buffer)
        return buffer.getvalue(), "torch"
    raise ShardError(f"expected a file path or a dict (state dict, checkpoint), got {type(source).__name__}")


def _members(source, name: str | None) -> tuple[list[tuple[str, object]], str]:
    """Normalise ``source`` to [(member name, file path or dict)] and the shard set's name."""
    if isinstance(source, (list, tuple)):
        pairs = list(source)
        if not pairs or not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
            raise ShardError("a list of members must hold (member name, file path or dict) pairs")
        default = "checkpoint"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        pairs, default = [(path.name, source)], path.stem
    else:
        pairs, default = [("checkpoint.pt", source)], "checkpoint"
    names = [_check_name(n, "member name") for n, _ in pairs]
    if len(set(names)) != len(names):
        raise ShardError(f"member names repeat: {names}")
    return pairs, _check_name(name if name is not None else default, "shard set name")


def write_shards(source, out_dir: str | os.PathLike, max_bytes: int = MAX_BYTES, *,
                 name: str | None = None) -> dict:
    """Write ``source`` as ``out_dir/NAME.shard00...`` and ``out_dir/NAME.shards.json``.

    ``source``: a file path (its bytes are kept exactly), a dict (a state dict or training
    checkpoint, saved with ``torch.save``) or a list of ``(member name, path or dict)``
    pairs. ``name`` defaults to the file's stem, else ``"checkpoint"``. Every file is
    written atomically, the manifest last; shards left by an earlier, larger write of the
    same name are removed. Returns the manifest (a dict, as written)."""
    if not isinstance(max_bytes, int) or max_bytes < 1:
        raise ShardError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    pairs, set_name = _members(source, name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    members, chunks, offset = [], [], 0
    for member_name, member_source in pairs:
        data, kind = _member_bytes(member_source)
        members.append({"name": member_name, "kind": kind, "offset": offset, "size": len(data),
                        "sha256": _sha256(data)})
        chunks.append(data)
        offset += len(data)
    stream = b"".join(chunks)
    del chunks
    count = max(1, -(-len(stream) // max_bytes))
    shards = []
    for i in range(count):
        piece = stream[i * max_bytes:(i + 1) * max_bytes]
        file = f"{set_name}.shard{i:02d}"
        atomic_write(out / file, lambda f, piece=piece: f.write(piece))
        shards.append({"file": file, "size": len(piece), "sha256": _sha256(piece)})
    manifest = {"format": FORMAT, "version": VERSION, "name": set_name, "size": len(stream),
                "sha256": _sha256(stream), "max_bytes": max_bytes, "members": members, "shards": shards}
    text = (json.dumps(manifest, indent=1) + "\n").encode()
    atomic_write(out / f"{set_name}{MANIFEST_SUFFIX}", lambda f: f.write(text))
    kept = {s["file"] for s in shards}
    for stale in out.glob(f"{set_name}.shard*"):
        if stale.name not in kept and re.fullmatch(rf"{re.escape(set_name)}\.shard\d+", stale.name):
            stale.unlink()
    return manifest


def find_manifest(manifest_or_dir: str | os.PathLike) -> Path:
    """The manifest file itself, or the only ``*.shards.json`` in a folder."""
    path = Path(manifest_or_dir)
    if path.is_dir():
        found = sorted(path.glob(f"*{MANIFEST_SUFFIX}"))
        if not found:
            raise ShardError(f"no shard manifest (*{MANIFEST_SUFFIX}) in {path}")
        if len(found) > 1:
            raise ShardError(f"{path} holds several shard sets ({', '.join(p.name for p in found)}): name one")
        return found[0]
    if not path.is_file():
        raise ShardError(f"no shard manifest at {path}")
    return path


def read_manifest(manifest_or_dir: str | os.PathLike) -> tuple[dict, Path]:
    """(manifest, its path), after checking that it is a shard manifest this code reads."""
    path = find_manifest(manifest_or_dir)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ShardError(f"{path} is not a readable shard manifest: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ShardError(f"{path} is not a durn shard manifest (no format={FORMAT!r} entry)")
    if manifest.get("version", 0) > VERSION:
        raise ShardError(f"{path} was written by a newer durn (shard format version {manifest['version']})")
    for key in ("size", "sha256", "members", "shards"):
        if key not in manifest:
            raise ShardError(f"{path} lacks its {key!r} entry")
    return manifest, path


def _join(manifest: dict, folder: Path) -> bytes:
    """The whole stream, every shard and the whole checked against the manifest."""
    pieces, n = [], len(manifest["shards"])
    for i, shard in enumerate(manifest["shards"]):
        file = folder / _check_name(shard["file"], "shard file")
        what = f"shard {shard['file']} ({i + 1} of {n}) in {folder}"
        if not file.is_file():
            raise ShardError(f"missing {what}")
        data = file.read_bytes()
        if len(data) != shard["size"]:
            raise ShardError(f"{what} has {len(data)} bytes, the manifest says {shard['size']}: "
                             "it is truncated or replaced")
        if _sha256(data) != shard["sha256"]:
            raise ShardError(f"{what} is corrupt: its SHA-256 differs from the manifest's")
        pieces.append(data)
    stream = b"".join(pieces)
    if len(stream) != manifest["size"] or _sha256(stream) != manifest["sha256"]:
        raise ShardError(f"the shards in {folder} join into a stream other than the manifest's (size or SHA-256)")
    return stream


def _member(manifest: dict, member: str | None, path: Path) -> dict:
    members = manifest["members"]
    if member is None:
        if len(members) != 1:
            raise ShardError(f"{path} holds {len(members)} members ({', '.join(m['name'] for m in members)}): name one")
        return members[0]
    for m in members:
        if m["name"] == member:
            return m
    raise ShardError(f"{path} has no member {member!r}; it holds {', '.join(m['name'] for m in members)}")


def _member_data(stream: bytes, m: dict, path: Path) -> bytes:
    data = stream[m["offset"]:m["offset"] + m["size"]]
    if len(data) != m["size"] or _sha256(data) != m["sha256"]:
        raise ShardError(f"member {m['name']} of {path} fails its SHA-256 check")
    return data


def read_shards(manifest_or_dir: str | os.PathLike, member: str | None = None, *, raw: bool = False):
    """A member of a shard set, every hash checked: the object ``torch.load(weights_only=True)``
    reads from it, or with ``raw=True`` its exact bytes (a file member's original bytes).
    ``member`` may be left out when the set has one."""
    manifest, path = read_manifest(manifest_or_dir)
    m = _member(manifest, member, path)
    data = _member_data(_join(manifest, path.parent), m, path)
    if raw:
        return data
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise ShardError(f"member {m['name']} of {path} is not readable with torch.load(weights_only=True): "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def extract(manifest_or_dir: str | os.PathLike, out_dir: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Write every member of a shard set to ``out_dir/<member name>`` (atomically, bytes
    exactly as sharded, hashes checked); existing files are kept unless ``overwrite``."""
    manifest, path = read_manifest(manifest_or_dir)
    stream = _join(manifest, path.parent)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for m in manifest["members"]:
        data = _member_data(stream, m, path)
        target = out / _check_name(m["name"], "member name")
        atomic_write(target, lambda f, data=data: f.write(data), overwrite=overwrite)
        written.append(target)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m durn.train.shards",
                                     description="Check a shard set, list its members, and optionally write them out.")
    parser.add_argument("manifest", help="NAME.shards.json, or the folder holding one")
    parser.add_argument("--extract", metavar="DIR", help="write the members into DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files in DIR")
    args = parser.parse_args(argv)
    try:
        manifest, path = read_manifest(args.manifest)
        _join(manifest, path.parent)
        written = extract(path, args.extract, overwrite=args.overwrite) if args.extract else []
    except (ShardError, FileExistsError) as err:
        print(f"shards: {err}", file=sys.stderr)
        return 1
    print(f"{path}: {len(manifest['shards'])} shard(s), {manifest['size']} bytes, every SHA-256 checked")
    for m in manifest["members"]:
        print(f"  {m['name']:24} {m['size']:>12} bytes  {m['kind']:5}  sha256 {m['sha256'][:16]}")
    for p in written:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
