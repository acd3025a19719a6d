"""What durn's compiled kernels are built from, and with which flags.

Shared by ``setup.py`` (the installed build: modules ``durn._C`` and ``durn._C_cuda``)
and ``durn/ops/extension.py`` (the build on first use of a checkout, through
``torch.utils.cpp_extension.load``). Standard library only: setup.py loads this file
by path, before durn is importable.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

CSRC = Path(__file__).resolve().parent

# Per build: the sources it compiles, and the folders whose files it depends on.
SOURCES = {
    "cpu": ["binding/op_args.cpp", "cpu/conv_cpu.cpp", "cpu/se_cpu.cpp", "cpu/register_cpu.cpp"],
    "cuda": ["cuda/op_args_cuda.cpp", "cuda/conv_cuda.cu", "cuda/se_cuda.cu", "cuda/register_cuda.cpp"],
}
DEPENDS = {"cpu": ("common", "binding", "cpu"), "cuda": ("common", "binding", "cuda")}

MODULES = {"cpu": "durn._C", "cuda": "durn._C_cuda"}  # installed builds
JIT_NAMES = {"cpu": "durn_cpu", "cuda": "durn_cuda"}  # builds on first use

# -fopenmp: at::parallel_for is an OpenMP loop compiled into the caller (the runtime is
# torch's own libgomp, which the loader shares by soname). -ffp-contract=off: no fused
# multiply-adds, so the epilogue rounds exactly as the reference's separate ops.
CXX_FLAGS = ["-O3", "-fopenmp", "-ffp-contract=off"]
LD_FLAGS = ["-fopenmp"]
CUDA_ARCHS = ("80", "90a")
NVCC_FLAGS = ["-O3", "-std=c++17", "--expt-relaxed-constexpr"] + [
    f"-gencode=arch=compute_{a},code=sm_{a}" for a in CUDA_ARCHS
]


def files(kind: str) -> list[Path]:
    """Every source and header the build of ``kind`` ("cpu" or "cuda") depends on."""
    found = []
    for folder in DEPENDS[kind]:
        found += [p for p in (CSRC / folder).rglob("*") if p.suffix in (".h", ".cpp", ".cu", ".cuh")]
    return sorted(found)


def source_hash(kind: str) -> str:
    """Identifies the sources and flags of a build; compiled into the library as a marker."""
    digest = hashlib.sha256()
    for path in files(kind):
        digest.update(path.relative_to(CSRC).as_posix().encode())
        digest.update(path.read_bytes())
    digest.update(repr((CXX_FLAGS, LD_FLAGS, NVCC_FLAGS if kind == "cuda" else None)).encode())
    return "h" + digest.hexdigest()[:20]


def hash_define(kind: str) -> str:
    # A bare token (stringified in C++), so no shell quoting is involved.
    return f"-DDURN_SOURCE_HASH={source_hash(kind)}"


def sources(kind: str, relative_to: Path | None = None) -> list[str]:
    paths = [CSRC / s for s in SOURCES[kind]]
    if relative_to is None:
        return [str(p) for p in paths]
    return [p.relative_to(relative_to).as_posix() for p in paths]
