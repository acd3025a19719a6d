"""The six DuRN networks: builders over ``durn.nn`` and one spec per network.

    model = durn.models.durn_p(weights="default")      # or pretrained=True
    durn.models.list_models()                          # ["durn_p", ..., "durn_s_p"]
    durn.models.get_model("durn_us", weights="authors")
    durn.models.get_model_weights("durn_p")            # [Weights(name="durn_p.photos_gaussian", ...)]

``NETWORKS`` maps each name to its :class:`NetworkSpec` (task, parameter count, the
paper's numbers, the authors' files and channel order, default weights, preset).
"""
from .networks import durn_p, durn_p_real, durn_s, durn_s_p, durn_u, durn_us, get_model, get_model_weights
from .registry import SPECS, NetworkSpec, get_spec, list_models

NETWORKS = SPECS

__all__ = [
    "NETWORKS", "NetworkSpec", "durn_p", "durn_p_real", "durn_s", "durn_s_p", "durn_u", "durn_us",
    "get_model", "get_model_weights", "get_spec", "list_models",
]
