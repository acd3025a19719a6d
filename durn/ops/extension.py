"""The compiled backends of durn.ops: "cpp" (C++ CPU kernels) and "cuda" (CUDA kernels).

Both register kernels for the ``durn::`` operators with the dispatcher
(``TORCH_LIBRARY_IMPL(durn, CPU | CUDA, m)`` in csrc/), so once loaded,
``torch.ops.durn.<op>`` on CPU (CUDA) tensors runs them; autograd and the fake kernels
stay the ones ``durn.ops.library`` registers. ``load(backend)`` finds them in order:

1. the installed build, ``durn._C`` / ``durn._C_cuda`` (``pip install --no-build-isolation
   -e .`` compiles them), unless this checkout's csrc/ has changed since it was built;
2. for a checkout used without installing (torch.hub), a build of csrc/ with
   ``torch.utils.cpp_extension.load`` on first use, cached in ``TORCH_EXTENSIONS_DIR``
   (about a minute for the CPU kernels on 2 cores; ``DURN_JIT_BUILD=0`` disables it).

``load`` returns a one-line description, or raises ``ExtensionUnavailable`` with the
reason, which ``durn.ops.available_backends()`` reports.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import torch

from .backends import OPS

__all__ = ["ExtensionUnavailable", "implementations", "library_path", "load"]

logger = logging.getLogger(__name__)

_REPO = Path(__file__).resolve().parents[2]
_CSRC = _REPO / "csrc"
_KIND = {"cpp": "cpu", "cuda": "cuda"}
_DISPATCH_KEY = {"cpp": "CPU", "cuda": "CUDA"}

_lock = threading.Lock()
_loaded: dict[str, tuple[str, str]] = {}  # backend -> (description, library path)
_failed: dict[str, str] = {}


class ExtensionUnavailable(RuntimeError):
    """The compiled kernels of a backend cannot be used here; the message says why."""


def load(backend: str) -> str:
    """Loads the kernels of ``backend`` ("cpp" or "cuda"); returns what was loaded."""
    if backend not in _KIND:
        raise ValueError(f"the extension provides backends 'cpp' and 'cuda', not {backend!r}")
    with _lock:
        if backend in _loaded:
            return _loaded[backend][0]
        if backend in _failed:
            raise ExtensionUnavailable(_failed[backend])
        try:
            description, path = _load(backend)
            _check_registered(backend)
        except ExtensionUnavailable as err:
            _failed[backend] = str(err)
            raise
        _loaded[backend] = (description, path)
        return description


def implementations(backend: str) -> dict:
    """``{op: torch.ops.durn.<op>}``: the dispatcher picks the kernel by device."""
    load(backend)
    return {op: getattr(torch.ops.durn, op) for op in OPS}


def library_path(backend: str) -> str | None:
    """The shared library that provides ``backend``'s kernels, once loaded."""
    entry = _loaded.get(backend)
    return entry[1] if entry else None


def _load(backend: str) -> tuple[str, str]:
    kind = _KIND[backend]
    if kind == "cuda":
        _require_cuda()
    config = _build_config()
    module = config.MODULES[kind] if config else {"cpu": "durn._C", "cuda": "durn._C_cuda"}[kind]
    installed = _installed_library(module)
    stale = None
    if installed is not None:
        built = _marker(installed)
        if config is None or built == config.source_hash(kind):
            try:
                importlib.import_module(module)
                return f"installed build ({installed.name})", str(installed)
            except (ImportError, OSError) as err:  # e.g. built against another torch
                stale = f"the installed {installed.name} does not load ({err})"
                if config is None:
                    raise ExtensionUnavailable(f"{stale}; reinstall durn to rebuild it") from err
        else:
            stale = f"the installed {installed.name} was built from other sources than this checkout's csrc/"
    if config is None:
        raise ExtensionUnavailable(
            f"{module} is not built (the install could not compile it; reinstall with "
            "`pip install --no-build-isolation -e .` to see why) and this copy of durn has no csrc/ to build from"
        )
    path = _build_on_first_use(config, kind, stale)
    note = f"; {stale}, so it was rebuilt" if stale else ""
    return f"built from csrc/ on first use ({path}){note}", path


def _require_cuda() -> None:
    if torch.version.cuda is None:
        raise ExtensionUnavailable(f"torch {torch.__version__} is a CPU-only build (no CUDA)")
    if not torch.cuda.is_available():
        raise ExtensionUnavailable("torch has CUDA but no CUDA device is available (torch.cuda.is_available() is False)")


def _build_config():
    """csrc/build_config.py of this checkout, or None where durn was installed without csrc/."""
    path = _CSRC / "build_config.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("durn_csrc_build_config", path)
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    return config


def _installed_library(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return None
    return Path(spec.origin)


def _marker(path: Path) -> str | None:
    """The source hash compiled into a built library (read from the file, not loaded)."""
    found = re.search(rb"DURN_SOURCE_HASH=([A-Za-z0-9_]+);", path.read_bytes())
    return found.group(1).decode() if found else None


def _build_on_first_use(config, kind: str, stale: str | None) -> str:
    if os.environ.get("DURN_JIT_BUILD", "1") == "0":
        why = stale or f"{config.MODULES[kind]} is not built"
        raise ExtensionUnavailable(f"{why}, and DURN_JIT_BUILD=0 disables building it on first use")
    from torch.utils import cpp_extension

    # One build folder per source hash (and Python/torch version): a cached library is
    # loaded as it is, and a changed csrc/ never loads an old build.
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root())
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}_torch{torch.__version__}".replace("+", "_")
    source_hash = config.source_hash(kind)
    name = config.JIT_NAMES[kind]
    build_dir = root / tag / f"{name}_{source_hash}"
    library = build_dir / f"{name}.so"
    if library.exists() and _marker(library) == source_hash:
        torch.ops.load_library(str(library))
        return str(library)
    failure = build_dir / "build_failed.txt"
    if failure.exists():  # these sources failed to build before: don't retry in every process
        raise ExtensionUnavailable(f"{failure.read_text().strip()} (an earlier build; delete {build_dir} to retry)")

    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise ExtensionUnavailable(f"no C++ compiler: {compiler!r} is not on PATH (install g++ or set CXX)")
    try:
        cpp_extension.verify_ninja_availability()
    except RuntimeError:
        raise ExtensionUnavailable("building on first use needs ninja (`pip install ninja`)") from None
    kwargs = {}
    if kind == "cuda":
        nvcc = os.path.join(cpp_extension.CUDA_HOME or "", "bin", "nvcc")
        if cpp_extension.CUDA_HOME is None or not os.path.exists(nvcc):
            raise ExtensionUnavailable("no CUDA toolkit: nvcc not found (set CUDA_HOME)")
        kwargs = dict(extra_cuda_cflags=list(config.NVCC_FLAGS), with_cuda=True)
    logger.warning("durn: building the %s kernels from %s on first use (cached in %s)...",
                   "C++ CPU" if kind == "cpu" else "CUDA", _CSRC, build_dir)
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
        path = cpp_extension.load(
            name=name,
            sources=config.sources(kind),
            extra_cflags=config.CXX_FLAGS + [config.hash_define(kind)],
            extra_ldflags=list(config.LD_FLAGS),
            build_directory=str(build_dir),
            is_python_module=False,
            verbose=False,
            **kwargs,
        )
    except Exception as err:  # a failed build must leave durn usable: report why
        reason = f"building csrc/ failed: {_first_error_lines(str(err))}"
        try:
            failure.write_text(reason + "\n")
        except OSError:
            pass
        raise ExtensionUnavailable(reason) from err
    return str(path)


def _first_error_lines(message: str, limit: int = 4) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    diagnostics = [line for line in lines if re.search(r"(^|: )(fatal )?error\b", line)]
    errors = [line for line in lines if re.search(r"\berror\b", line, re.IGNORECASE)]
    picked = (diagnostics or errors or lines)[:limit]
    return " | ".join(line[:300] for line in picked) or "unknown error"


def _check_registered(backend: str) -> None:
    key = _DISPATCH_KEY[backend]
    has_kernel = getattr(torch._C, "_dispatch_has_kernel_for_dispatch_key", None)
    if has_kernel is None:  # private API; skip the check where it is gone
        return
    missing = [op for op in OPS if not has_kernel(f"durn::{op}", key)]
    if missing:
        raise ExtensionUnavailable(f"the library loaded but registers no {key} kernel for {', '.join(missing)}")
