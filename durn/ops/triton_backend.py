"""The "triton" backend: durn's Triton kernels (``durn.kernels``) as ``durn::<op>_triton`` ops.

The ops have the schemas of ``durn/ops/library.py`` (``SCHEMAS``; as ``triton_op``s their
int arguments read SymInt), its fake kernels and its autograd (gradients of the reference
composition); why they are ops of their own and not kernels of ``durn::<op>``, that
module's docstring says. How they are registered depends on how the kernels run:

* compiled for a GPU: ``torch.library.triton_op``, so ``torch.compile`` and export see
  the kernels themselves (``wrap_triton``);
* under Triton's interpreter (``TRITON_INTERPRET=1``, CPU tensors): an opaque custom op.
  ``triton_op`` does not fit there: its fake kernel runs the implementation, and an
  interpreted kernel launched on fake tensors fails ("Cannot access data pointer").

(No ``from __future__ import annotations`` here: ``triton_op`` reads the annotations.)
"""
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Optional

import torch

from . import library

_LIB: torch.library.Library | None = None
_OPS: dict[str, object] = {}
# The durn package folder this module belongs to (durn/ops/ -> durn/).
_DURN_DIR = Path(__file__).resolve().parents[1]


def import_kernels():
    """``durn.kernels``: the repository's ``kernels/`` folder, which pip installs under that
    name (package-dir in pyproject.toml). A clone that is not installed (torch.hub
    ``source="local"``) loads it from ``kernels/`` beside its ``durn`` folder, and so does a
    clone other than the one installed in editable mode (its own kernels, not the other's)."""
    if "durn.kernels" in sys.modules:
        return sys.modules["durn.kernels"]
    checkout = _DURN_DIR.parent / "kernels"
    spec = importlib.util.find_spec("durn.kernels")
    if spec is not None and spec.origin is not None:
        found = Path(spec.origin).resolve().parent
        if found in (_DURN_DIR / "kernels", checkout) or not (checkout / "__init__.py").exists():
            return importlib.import_module("durn.kernels")
    init = checkout / "__init__.py"
    if not init.exists():
        raise ModuleNotFoundError(
            f"durn.kernels is not installed and {init} does not exist; reinstall durn (pip install -e .)",
            name="durn.kernels")
    spec = importlib.util.spec_from_file_location("durn.kernels", init, submodule_search_locations=[str(checkout)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["durn.kernels"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["durn.kernels"]
        raise
    return module


def load(backend: str = "triton") -> str:
    """Make the ops usable; raise with the reason where they cannot be."""
    try:
        import triton
    except ImportError as err:
        raise ImportError(
            "triton is not installed (pip install triton==3.7.1, the release torch 2.13 is built against)"
        ) from err
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    if not interpret and not torch.cuda.is_available():
        raise RuntimeError(
            "no CUDA device, and TRITON_INTERPRET is not '1' (set TRITON_INTERPRET=1 before the first use "
            "of the backend to run the kernels on CPU tensors under Triton's interpreter)")
    kernels = import_kernels()
    if interpret and not kernels.interpreted():
        raise RuntimeError(
            "TRITON_INTERPRET=1 was set after durn's Triton kernels had been compiled for the GPU; "
            "set it before the backend is first used")
    _register(kernels)
    mode = "interpreter, CPU tensors" if kernels.interpreted() else "compiled, CUDA tensors"
    return f"triton {triton.__version__} ({mode})"


def implementations(backend: str = "triton") -> dict[str, object]:
    """Op name -> callable with the reference's positional signature."""
    return {name: getattr(torch.ops.durn, f"{name}_triton").default for name in library.SCHEMAS}


def _typed_functions(kernels) -> dict[str, object]:
    """The kernels' launchers with the annotations ``triton_op`` infers the schemas from."""
    Tensor = torch.Tensor

    def fused_conv2d(
        x: Tensor, weight: Tensor, bias: Optional[Tensor], scale: Optional[Tensor], shift: Optional[Tensor],
        residual: Optional[Tensor], stride: int, padding: int, dilation: int, padding_mode: str,
        residual_at: str, activation: str, residual_alpha: float,
    ) -> Tensor:
        return kernels.conv2d(x, 1, weight, bias, scale, shift, residual, stride, padding, dilation,
                              padding_mode, residual_at, activation, residual_alpha)

    def pixel_shuffle_conv2d(
        x: Tensor, upscale: int, weight: Tensor, bias: Optional[Tensor], scale: Optional[Tensor],
        shift: Optional[Tensor], residual: Optional[Tensor], stride: int, padding: int, dilation: int,
        padding_mode: str, residual_at: str, activation: str, residual_alpha: float,
    ) -> Tensor:
        return kernels.conv2d(x, upscale, weight, bias, scale, shift, residual, stride, padding, dilation,
                              padding_mode, residual_at, activation, residual_alpha)

    def squeeze_excitation(
        x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, identity: Optional[Tensor],
    ) -> Tensor:
        return kernels.squeeze_excitation(x, w1, b1, w2, b2, identity)

    return {"fused_conv2d": fused_conv2d, "pixel_shuffle_conv2d": pixel_shuffle_conv2d,
            "squeeze_excitation": squeeze_excitation}


def _register(kernels) -> None:
    global _LIB
    if _OPS:
        return
    functions = _typed_functions(kernels)
    for name, fn in functions.items():
        # triton_op infers the schema from the annotations (its ``schema`` argument is ignored
        # by torch 2.13) and writes int arguments as SymInt, which callers see as int.
        inferred = torch.library.infer_schema(fn, mutates_args=()).replace("SymInt ", "int ")
        if inferred != library.SCHEMAS[name]:
            raise RuntimeError(f"schema drift for {name}: {inferred} != {library.SCHEMAS[name]}")
    if not kernels.interpreted():
        for name, fn in functions.items():
            op = torch.library.triton_op(f"durn::{name}_triton", fn, mutates_args=(), schema=library.SCHEMAS[name])
            backward, setup_context = library._make_autograd(name)
            op.register_autograd(backward, setup_context=setup_context)
            _OPS[name] = op
        return
    lib = torch.library.Library("durn", "FRAGMENT")
    for name, fn in functions.items():
        qualname = f"durn::{name}_triton"
        torch.library.define(qualname, library.SCHEMAS[name], lib=lib)
        torch.library.impl(qualname, "CompositeExplicitAutograd", fn, lib=lib)
        torch.library.register_fake(qualname, library._make_fake(name), lib=lib)
        backward, setup_context = library._make_autograd(name)
        torch.library.register_autograd(qualname, backward, setup_context=setup_context, lib=lib)
        _OPS[name] = qualname
    _LIB = lib
