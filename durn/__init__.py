"""durn: Dual Residual Networks (Liu et al., CVPR 2019) for image restoration."""
from .checkpoints import CheckpointError, load_reference
from .models import NETWORKS, durn_p, durn_p_real, durn_s, durn_s_p, durn_u, durn_us, get_model
from .restore import Restore, restore  # after this import, durn.restore is the function

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "NETWORKS",
    "Restore",
    "durn_p",
    "durn_p_real",
    "durn_s",
    "durn_s_p",
    "durn_u",
    "durn_us",
    "get_model",
    "load_reference",
    "optimize_for_inference",
    "restore",
]


def __getattr__(name):
    # Loaded on first use, so that ``import durn`` stays light.
    if name == "optimize_for_inference":
        from .optimize import optimize_for_inference

        return optimize_for_inference
    raise AttributeError(f"module 'durn' has no attribute {name!r}")
