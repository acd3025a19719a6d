"""torch.hub entry points for durn: Dual Residual Networks (Liu et al., CVPR 2019).

    model = torch.hub.load("path/to/durn", "durn_p", source="local")
    model = torch.hub.load("path/to/durn", "durn_us", source="local", pretrained=True)

Each entry point is durn's builder itself, ``name(pretrained=False, progress=True,
weights=None, **kwargs)``; ``help()`` on it (``torch.hub.help``) says what the network
takes, its released and the authors' weights, and what the paper reports. Only
pure-PyTorch code is imported here; fast kernels load lazily elsewhere.
"""
dependencies = ["torch"]

from durn.models import durn_p, durn_p_real, durn_s, durn_s_p, durn_u, durn_us  # noqa: E402, F401
