"""durn: Dual Residual Networks (Liu et al., CVPR 2019) for image restoration.

``import durn`` runs only this file: every name below is imported from its layer on first
use, so that importing one layer (``durn.ops``, ``durn.nn``, ``durn.models``, ...) never
pulls in the layers above it (tests/test_layering.py).
"""
import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "CheckpointError": "durn.checkpoints",
    "load_reference": "durn.checkpoints",
    "NETWORKS": "durn.models",
    "durn_p": "durn.models",
    "durn_p_real": "durn.models",
    "durn_s": "durn.models",
    "durn_s_p": "durn.models",
    "durn_u": "durn.models",
    "durn_us": "durn.models",
    "export_onnx": "durn.export",
    "export_program": "durn.export",
    "get_model": "durn.models",
    "get_model_weights": "durn.models",
    "list_models": "durn.models",
    "optimize_for_inference": "durn.inference",
    "Restore": "durn.restoration",
    "restore": "durn.restoration",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:  # a submodule (durn.nn, durn.weights, ...), as after ``import durn.nn``
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'durn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
