"""torch.hub entry points from a local clone."""
import inspect
import subprocess
import sys

import pytest
import torch

from conftest import NETWORK_NAMES, REPO


def _entry_points(module):
    return sorted(
        name for name, obj in vars(module).items()
        if callable(obj) and not name.startswith("_") and not inspect.isclass(obj)
    )


def test_exactly_the_six_networks(hubconf):
    assert _entry_points(hubconf) == sorted(NETWORK_NAMES)
    assert hubconf.dependencies == ["torch"]


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_signature_and_docstring(hubconf, name):
    fn = getattr(hubconf, name)
    params = inspect.signature(fn).parameters
    assert list(params)[:3] == ["pretrained", "progress", "weights"]
    assert params["pretrained"].default is False and params["progress"].default is True
    assert params["weights"].default is None
    doc = inspect.getdoc(fn)
    assert len(doc) > 400 and "Input:" in doc and "Paper" in doc and "parameters" in doc


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_hub_load_local(name):
    model = torch.hub.load(str(REPO), name, source="local")
    assert isinstance(model, torch.nn.Module)
    x = torch.rand(model.in_channels, 18, 22)
    with torch.no_grad():
        assert model.eval()(x).shape == x.shape


def test_pretrained_without_released_weights_explains(hubconf, monkeypatch):
    import durn.weights

    monkeypatch.setattr(durn.weights, "DEFAULTS", {})
    with pytest.raises(ValueError, match=r"trainedmodels.*durn import-authors.*weights='authors'"):
        torch.hub.load(str(REPO), "durn_us", source="local", pretrained=True)


def test_hub_passes_weights_file(tmp_path):
    model = torch.hub.load(str(REPO), "durn_p_real", source="local")
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    loaded = torch.hub.load(str(REPO), "durn_p_real", source="local", weights=str(path))
    assert torch.equal(loaded.tail[3].weight, model.tail[3].weight)


def test_hubconf_imports_no_compiled_or_triton_code():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import hubconf; "
        "bad = [m for m in sys.modules if m.startswith(('triton', 'durn.kernels', 'durn._C', 'durn.ops'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["durn_p", "durn_us", "durn_p_real"])
def test_hub_pretrained_loads_the_released_weights_offline(name):
    import durn.weights

    entry = durn.weights.default_weights(name)
    if entry is None:
        pytest.skip(f"no released {name} weights")
    model = torch.hub.load(str(REPO), name, source="local", pretrained=True)
    expected = durn.weights.load_weights_file(durn.weights.RELEASED_DIR / entry.file, name)[0]
    assert not model.training and model.channel_order == entry.channel_order
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
