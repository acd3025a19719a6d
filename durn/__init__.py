"""durn: Dual Residual Networks (Liu et al., CVPR 2019) for image restoration."""
from .checkpoints import CheckpointError, load_reference
from .models import NETWORKS, durn_p, durn_p_real, durn_s, durn_s_p, durn_u, durn_us, get_model

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "NETWORKS",
    "durn_p",
    "durn_p_real",
    "durn_s",
    "durn_s_p",
    "durn_u",
    "durn_us",
    "get_model",
    "load_reference",
]
