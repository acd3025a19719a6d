"""Atomic file writes: readers see the old file or the complete new one, never a part.

The data goes to a temporary file in the target's folder, is flushed to disk, then
renamed onto the target (``os.replace``, atomic on POSIX and Windows). With
``overwrite=False`` an existing target is never replaced, even one that appears while
writing (a hard link refuses an existing name).
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = True):
    """Yield a temporary path beside ``path`` to write to; on success it becomes ``path``,
    on any error it is removed. ``FileExistsError`` when ``path`` exists and not ``overwrite``."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists")
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _link_new(tmp: str, path: str) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists") from None
    except OSError:  # file systems without hard links
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists") from None
        os.replace(tmp, path)


def atomic_write(path: str | os.PathLike, write, *, overwrite: bool = True, mode: str = "wb") -> None:
    """Call ``write(file_object)`` on a temporary file that then atomically becomes ``path``."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, mode) as f:
            write(f)
