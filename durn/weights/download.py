"""Fetching weight files into the torch hub cache, verified by SHA-256."""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

import torch

from ..atomic import atomic_output


class WeightsHashError(RuntimeError):
    """A weights file whose SHA-256 is not the one its registry entry records."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where downloaded weights live: ``<torch hub dir>/checkpoints`` (``TORCH_HOME`` and
    ``torch.hub.set_dir`` move it), as for torchvision's weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def download_verified(url: str, path: Path, sha256: str, *, progress: bool = True) -> Path:
    """Download ``url`` to ``path`` unless a file with the right hash is there already.

    The download goes to a temporary file that becomes ``path`` only once its hash
    matches. A cached file with the wrong hash (damaged or tampered with) is deleted and
    fetched again; a download with the wrong hash is deleted and raises
    :class:`WeightsHashError`."""
    if path.is_file():
        found = sha256_file(path)
        if found == sha256:
            return path
        print(f"durn: {path} has SHA-256 {found[:12]}..., expected {sha256[:12]}...: "
              "deleting it and downloading it again", file=sys.stderr)
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        _fetch(url, tmp, progress)
        found = sha256_file(tmp)
        if found != sha256:  # the temporary file is removed on the way out
            raise WeightsHashError(
                f"the file downloaded from {url} has SHA-256 {found}, expected {sha256}; it was "
                "deleted. The download was damaged or the file on the server is not the released one."
            )
    return path


def _fetch(url: str, dst: str, progress: bool) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "durn"})
    with urllib.request.urlopen(request) as response, open(dst, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url), file=sys.stderr)
        try:
            while block := response.read(1 << 16):
                out.write(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
