"""Data flows one way: image -> restoration -> (inference rewrite) -> network -> ops.

Each layer, imported with all its submodules in a fresh interpreter, must pull in nothing
of durn above it (``sys.modules`` after the imports). Every durn module belongs to exactly
one layer, so a new module has to be placed here.
"""
import json
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

# Lowest first. A module may import modules of its own layer and of the layers below.
LAYERS = {
    "base": ("durn", "durn.atomic"),  # the package's lazy __init__ and a file utility
    "ops": ("durn.ops", "durn.kernels", "durn._C", "durn._C_cuda"),
    "nn": ("durn.nn",),
    "models": ("durn.models",),
    "weights": ("durn.weights", "durn.checkpoints"),
    "inference": ("durn.inference",),
    "restoration": ("durn.restoration",),
    "export": ("durn.export",),  # deployment files of the networks (models, weights)
    "train/evaluate": ("durn.train", "durn.data", "durn.evaluate", "durn.metrics", "durn.losses",
                       "durn.distributed", "durn.heldout", "durn.explain", "durn.ablation", "durn.downstream",
                       "durn.classical"),
    "cli": ("durn.cli", "durn.__main__"),
}
ORDER = list(LAYERS)
NOT_IMPORTED = ("durn.__main__",)  # running it is `python -m durn`

_SCRIPT = textwrap.dedent("""
    import importlib, importlib.util, json, pkgutil, sys
    for name in json.loads(sys.argv[1]):
        if name == "durn.kernels" and importlib.util.find_spec("triton") is None:
            continue  # the Triton kernels need the optional triton package
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # an optional compiled extension that is not built here
                continue
            raise
        if name != "durn":  # the package itself: its __init__ only, not every layer below it
            for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
                importlib.import_module(info.name)
    print(json.dumps(sorted(m for m in sys.modules if m == "durn" or m.startswith("durn."))))
""")


def layer_of(module: str) -> str | None:
    for layer, roots in LAYERS.items():
        if any(module == root or module.startswith(root + ".") for root in roots if root != "durn"):
            return layer
    return "base" if module == "durn" else None


@pytest.fixture(scope="module")
def imported():
    """Layer -> the durn modules its import pulled in; the interpreters run side by side."""
    procs = {
        layer: subprocess.Popen([sys.executable, "-c", _SCRIPT, json.dumps([r for r in roots if r not in NOT_IMPORTED])],
                                cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for layer, roots in LAYERS.items()
    }
    results = {}
    for layer, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        results[layer] = (proc.returncode, out, err)
    return results


@pytest.mark.parametrize("layer", ORDER)
def test_layer_imports_nothing_above_it(imported, layer):
    rc, out, err = imported[layer]
    assert rc == 0, err[-3000:]
    modules = json.loads(out.splitlines()[-1])
    unplaced = [m for m in modules if layer_of(m) is None]
    assert not unplaced, f"modules in no layer (add them to LAYERS): {unplaced}"
    above = {m: layer_of(m) for m in modules if ORDER.index(layer_of(m)) > ORDER.index(layer)}
    assert not above, f"importing the {layer} layer pulls in modules of layers above it: {above}"
