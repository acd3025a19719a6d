"""Package build. Metadata lives in pyproject.toml.

Besides the pure-Python package this builds durn's compiled kernels from csrc/ when
torch can be imported at build time (install with ``--no-build-isolation`` after torch,
otherwise pip builds in a fresh environment without torch):

* ``durn._C``: the C++ CPU kernels (always tried);
* ``durn._C_cuda``: the CUDA kernels, only where torch has CUDA and nvcc exists.

A build that fails only warns: durn then installs without it, works on its other
backends, and ``durn.ops.available_backends()`` says why "cpp" or "cuda" is missing.
``DURN_BUILD_EXTENSION=0`` skips both builds, ``DURN_BUILD_CUDA=0`` the CUDA one.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent


def _say(message: str) -> None:
    print(f"durn setup: {message}", file=sys.stderr)


def _load_build_config():
    path = ROOT / "csrc" / "build_config.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("durn_csrc_build_config", path)
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    return config


def _cuda_buildable(torch, cpp_extension) -> str | None:
    """None when the CUDA kernels can be built here, else why not."""
    if os.environ.get("DURN_BUILD_CUDA", "1") == "0":
        return "DURN_BUILD_CUDA=0"
    if torch.version.cuda is None:
        return f"torch {torch.__version__} has no CUDA"
    if cpp_extension.CUDA_HOME is None:
        return "no CUDA toolkit found (set CUDA_HOME)"
    if not os.path.exists(os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc")):
        return f"nvcc not found under {cpp_extension.CUDA_HOME}"
    return None


def _extension_options() -> dict:
    if os.environ.get("DURN_BUILD_EXTENSION", "1") == "0":
        _say("DURN_BUILD_EXTENSION=0: not building the compiled kernels")
        return {}
    config = _load_build_config()
    if config is None:
        return {}
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:
        _say("torch is not importable at build time, so the compiled kernels are not built (install torch "
             "first and use `pip install --no-build-isolation`); a checkout builds them on first use instead")
        return {}

    extensions = [
        cpp_extension.CppExtension(
            config.MODULES["cpu"],
            config.sources("cpu", relative_to=ROOT),
            extra_compile_args=config.CXX_FLAGS + [config.hash_define("cpu")],
            extra_link_args=list(config.LD_FLAGS),
        )
    ]
    why_not_cuda = _cuda_buildable(torch, cpp_extension)
    if why_not_cuda is None:
        extensions.append(
            cpp_extension.CUDAExtension(
                config.MODULES["cuda"],
                config.sources("cuda", relative_to=ROOT),
                extra_compile_args={
                    "cxx": config.CXX_FLAGS + [config.hash_define("cuda")],
                    "nvcc": list(config.NVCC_FLAGS),
                },
            )
        )
    else:
        _say(f"not building the CUDA kernels: {why_not_cuda}")

    class OptionalBuildExt(cpp_extension.BuildExtension):
        """Builds each extension it can; a failure warns and installs durn without it."""

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as err:  # the kernels are optional: never fail the install
                # Rebinding (not mutating) the list keeps the loop over it intact and
                # stops setuptools from looking for the missing library afterwards.
                self.extensions = [e for e in self.extensions if e is not ext]
                first = str(err).strip().splitlines()[:3]
                _say(f"building {ext.name} failed, installing durn without it: {' | '.join(first)}")

    return {
        "ext_modules": extensions,
        "cmdclass": {"build_ext": OptionalBuildExt.with_options(no_python_abi_suffix=False)},
    }


# Packages: durn/* plus the Triton kernels, which live in the top-level kernels/ folder and
# install as durn.kernels (package-dir in pyproject.toml; a pyproject "packages" entry would
# override this list).
setup(packages=find_packages(include=["durn", "durn.*"]) + ["durn.kernels"], **_extension_options())
