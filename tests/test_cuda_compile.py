"""The CUDA kernels (csrc/cuda).

Everywhere nvcc exists (no GPU needed): every .cu file compiles for sm_80 and sm_90a
with the build's own flags, without errors and without register spills, and includes
no torch header (the kernels see raw pointers; register_cuda.cpp does the torch work).
The torch bindings are syntax-checked against the installed torch headers.

Where a GPU exists: the CUDA kernels against the reference (skipped here, with the
reason from ``durn.ops.available_backends()``).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sysconfig

import pytest
import torch

from conftest import REPO

CSRC = REPO / "csrc"
CU_FILES = sorted((CSRC / "cuda").glob("*.cu"))


def _build_config():
    spec = importlib.util.spec_from_file_location("durn_csrc_build_config", CSRC / "build_config.py")
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    return config


def _cuda_home() -> str | None:
    """A CUDA toolkit folder (bin/nvcc and include/cuda_runtime.h), if any."""
    from torch.utils.cpp_extension import CUDA_HOME

    candidates = [os.environ.get("CUDA_HOME"), CUDA_HOME, "/usr/local/cuda"]
    on_path = shutil.which("nvcc")
    if on_path:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(on_path))))
    for home in filter(None, candidates):
        if os.path.exists(os.path.join(home, "bin", "nvcc")) and \
                os.path.exists(os.path.join(home, "include", "cuda_runtime.h")):
            return home
    return None


CUDA_HOME_DIR = _cuda_home()
NVCC = os.path.join(CUDA_HOME_DIR, "bin", "nvcc") if CUDA_HOME_DIR else None
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found (install the CUDA toolkit or set CUDA_HOME)")


def test_there_are_cuda_sources():
    assert {p.name for p in CU_FILES} >= {"conv_cuda.cu", "se_cuda.cu"}


@pytest.mark.parametrize("path", CU_FILES, ids=lambda p: p.name)
def test_cu_files_include_no_torch_headers(path):
    includes = re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', path.read_text(), flags=re.M)
    heavy = [i for i in includes if i.split("/")[0] in ("torch", "ATen", "c10", "pybind11")]
    assert not heavy, f"{path.name} includes {heavy}; keep torch in register_cuda.cpp"


@needs_nvcc
@pytest.mark.parametrize("path", CU_FILES, ids=lambda p: p.name)
def test_cu_file_compiles_for_sm80_and_sm90a_without_spills(path, tmp_path):
    from torch.utils.cpp_extension import COMMON_NVCC_FLAGS  # what torch's build adds (no half operators...)

    config = _build_config()
    assert {"80", "90a"} <= set(config.CUDA_ARCHS)
    command = [NVCC, "-c", *COMMON_NVCC_FLAGS, *config.NVCC_FLAGS, "-Xptxas", "-v", str(path),
               "-o", str(tmp_path / "out.o")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"nvcc failed on {path.name}:\n{log[-4000:]}"
    # ptxas reports every kernel for every architecture: make sure both were compiled.
    for arch in ("sm_80", "sm_90a"):
        assert re.search(rf"for '{arch}'", log), f"no ptxas report for {arch}:\n{log[-2000:]}"
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    assert spills, f"no spill report in the ptxas output:\n{log[-2000:]}"
    spilling = [s for s in spills if s != ("0", "0")]
    assert not spilling, f"{path.name} spills registers: {spilling}\n{log[-4000:]}"


@needs_nvcc
def test_cuda_bindings_compile_against_torch_headers(tmp_path):
    """register_cuda.cpp, syntax-checked with the installed torch's headers.

    A CPU-only torch wheel ships c10/cuda headers but not the one generated at build
    time (c10/cuda/impl/cuda_cmake_macros.h, one #define); a stand-in is used there.
    """
    from torch.utils.cpp_extension import include_paths

    cxx = shutil.which(os.environ.get("CXX", "c++"))
    if cxx is None:
        pytest.skip("no C++ compiler")
    cuda_include = os.path.join(CUDA_HOME_DIR, "include")
    includes = list(include_paths()) + [cuda_include, sysconfig.get_paths()["include"]]
    if not any(os.path.exists(os.path.join(i, "c10/cuda/impl/cuda_cmake_macros.h")) for i in includes):
        stub = tmp_path / "c10" / "cuda" / "impl"
        stub.mkdir(parents=True)
        (stub / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
        includes.insert(0, str(tmp_path))
    command = [cxx, "-std=c++20", "-fsyntax-only", *(f"-I{i}" for i in includes),
               str(CSRC / "cuda" / "register_cuda.cpp")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]


# ---------------------------------------------------------------- on a GPU


def _cuda_backend():
    from durn import ops

    ok, why = ops.available_backends()["cuda"]
    if not ok:
        pytest.skip(f"CUDA kernels not available here: {why}")


CUDA_CONVS = [  # (upscale, k, dilation, stride, padding, mode): the networks' layouts
    (1, 3, 1, 1, 1, "reflect"), (1, 3, 1, 2, 1, "zeros"), (1, 3, 12, 1, 12, "zeros"), (1, 5, 1, 1, 1, "zeros"),
    (1, 7, 2, 1, 6, "reflect"), (1, 11, 3, 1, 15, "reflect"), (1, 1, 1, 1, 0, "zeros"),
    (2, 3, 3, 1, 3, "zeros"), (2, 11, 1, 1, 5, "reflect"),
]


@pytest.mark.parametrize("layer", CUDA_CONVS, ids=lambda c: "u{}-k{}-d{}-s{}-{}".format(*c[:4], c[5]))
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_cuda_conv_equals_reference(layer, channels_last):
    _cuda_backend()
    from durn.ops import reference

    upscale, k, dilation, stride, padding, mode = layer
    dev, d = torch.device("cuda"), torch.float64
    c, o = 5, 70  # o > 64: two channel tiles
    h, w = 23, 29
    x = torch.randn(2, c * upscale * upscale, h, w, dtype=d, device=dev)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(o, c, k, k, dtype=d, device=dev) / (c * k * k) ** 0.5
    hh, ww = h * upscale, w * upscale
    ho = (hh + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wo = (ww + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    vec = lambda: torch.randn(o, dtype=d, device=dev)  # noqa: E731
    for residual_at, activation in (("post_affine", "relu"), ("pre_affine", "relu"), ("post_activation", "tanh")):
        r = torch.randn(2, o, ho, wo, dtype=d, device=dev)
        args = (weight, vec(), vec().abs() + 0.5, vec(), r, stride, padding, dilation, mode, residual_at, activation,
                -1.0)
        if upscale > 1:
            got = torch.ops.durn.pixel_shuffle_conv2d(x, upscale, *args)
            want = reference.pixel_shuffle_conv2d(x, upscale, *args)
        else:
            got, want = torch.ops.durn.fused_conv2d(x, *args), reference.fused_conv2d(x, *args)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)  # float64, as tests/test_cpp_ops.py
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        assert got.is_contiguous(memory_format=fmt)
        for low in (torch.float32, torch.bfloat16):
            cast = tuple(a.to(low) if torch.is_tensor(a) else a for a in args)
            xl = x.to(low)
            got_l = (torch.ops.durn.pixel_shuffle_conv2d(xl, upscale, *cast) if upscale > 1
                     else torch.ops.durn.fused_conv2d(xl, *cast))
            tol = 1e-4 if low == torch.float32 else 5e-2  # float accumulation; bf16 output rounding
            torch.testing.assert_close(got_l.double(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_cuda_squeeze_excitation_equals_reference(channels_last):
    _cuda_backend()
    from durn.ops import reference

    dev, d = torch.device("cuda"), torch.float64
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for c, hidden, hw in ((64, 32, (33, 65)), (128, 64, (7, 5)), (300, 20, (3, 300))):
        x = torch.randn(2, c, *hw, dtype=d, device=dev).contiguous(memory_format=fmt)
        identity = torch.randn_like(x)
        params = (torch.randn(hidden, c, dtype=d, device=dev) / c ** 0.5, torch.randn(hidden, dtype=d, device=dev),
                  torch.randn(c, hidden, dtype=d, device=dev) / hidden ** 0.5, torch.randn(c, dtype=d, device=dev))
        for ident in (None, identity):
            got = torch.ops.durn.squeeze_excitation(x, *params, ident)
            torch.testing.assert_close(got, reference.squeeze_excitation(x, *params, ident), rtol=0, atol=1e-12)
            assert got.is_contiguous(memory_format=fmt)
