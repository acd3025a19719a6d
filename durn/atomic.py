"""Atomic file writes: readers see the old file or the complete new one, never a part.

The data goes to a temporary file in the target's folder, is flushed to disk, then
renamed onto the target (``os.replace``, atomic on POSIX and Windows). With
``overwrite=False`` an existing target is never replaced, even one that appears while
writing (a hard link refuses an existing name).

The temporary file of ``NAME`` is the hidden ``.NAME.PID.XXXXXXXX.part`` (PID: the writing
process, X: random). A process killed while writing leaves it behind; commands call
:func:`remove_stale_temp_files` for the files they write, which removes the leftovers of
writers that are gone and keeps those of a write still in progress in another process
(on POSIX systems; elsewhere every leftover counts as stale).
"""
from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager

# tempfile.mkstemp's random part is 8 characters of [a-z0-9_]; earlier durn wrote no PID
_TEMP_NAME = re.compile(r"\.(?P<target>.+?)(?:\.(?P<pid>\d+))?\.[a-z0-9_]{8}\.part")


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
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".part", dir=folder)
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


def temp_target(entry: str) -> str | None:
    """The name whose temporary file ``entry`` (a name in a folder) is, or None."""
    m = _TEMP_NAME.fullmatch(entry)
    return m["target"] if m else None


def _writer_running(pid: str | None) -> bool:
    if pid is None or os.name != "posix":
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OverflowError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def remove_stale_temp_files(paths) -> list[str]:
    """Remove the temporary files that interrupted writes of ``paths`` left beside them
    (those whose writing process is gone); returns the paths removed."""
    wanted: dict[str, set[str]] = {}
    for path in paths:
        folder, name = os.path.split(os.path.abspath(os.fspath(path)))
        wanted.setdefault(folder, set()).add(name)
    removed = []
    for folder, names in wanted.items():
        try:
            entries = os.listdir(folder)
        except OSError:  # no such folder (yet), or not a folder
            continue
        for entry in entries:
            m = _TEMP_NAME.fullmatch(entry)
            if m and m["target"] in names and not _writer_running(m["pid"]):
                try:
                    os.unlink(os.path.join(folder, entry))
                    removed.append(os.path.join(folder, entry))
                except FileNotFoundError:
                    pass
    return removed
