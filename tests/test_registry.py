"""The network registry: one spec per network, and every per-network table derived from it."""
import inspect

import pytest
import torch

import durn
import durn.weights as W
from conftest import NETWORK_NAMES
from durn import checkpoints
from durn.models import NETWORKS, get_model_weights, get_spec, list_models
from durn.weights import authors


def test_list_models_in_registry_order():
    assert list_models() == list(NETWORK_NAMES) == list(NETWORKS)
    assert durn.list_models() == list_models()


def test_get_model_builds_each_network_and_refuses_unknown_names():
    model = durn.get_model("durn_p_real")
    assert isinstance(model, durn.nn.DuRN) and model.in_channels == 3
    with pytest.raises(ValueError, match=r"unknown network 'durn_x'.*durn_p"):
        durn.get_model("durn_x")


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_spec_facts_match_the_architecture(name):
    spec = get_spec(name)
    with torch.device("meta"):
        model = spec.builder()
    assert (spec.in_channels, spec.size_multiple) == (model.in_channels, model.size_multiple)
    assert sum(p.numel() for p in model.parameters()) == spec.params
    doc = inspect.getdoc(getattr(durn.models, name))
    assert f"{spec.params:,} parameters" in doc and spec.authors_file in doc
    assert all(f"{psnr:.2f}/{ssim:.4f}" in doc for psnr, ssim in spec.results.values())


def test_tables_derive_from_the_specs():
    assert checkpoints.BUILDERS == {n: s.builder for n, s in NETWORKS.items()}
    assert checkpoints.AUTHORS_CHANNEL_ORDER == {n: s.authors_channel_order for n, s in NETWORKS.items()}
    assert checkpoints.AUTHORS_NAMES == {n: list(s.authors_keys) for n, s in NETWORKS.items()}
    assert authors.AUTHORS_ARCHIVE == {n: s.authors_archive for n, s in NETWORKS.items()}
    assert W.DEFAULTS == {n: s.default_weights for n, s in NETWORKS.items() if s.default_weights}
    assert all(W.get_weights(s.default_weights).network == n for n, s in NETWORKS.items() if s.default_weights)


def test_each_spec_names_a_preset_of_its_own_network():
    from durn.train.presets import PRESETS

    assert all(PRESETS[s.preset].network == n for n, s in NETWORKS.items() if s.preset)
    assert {n for n, s in NETWORKS.items() if s.preset} == {p.network for p in PRESETS.values()}


def test_builders_accept_pretrained():
    name = next(iter(W.DEFAULTS), None)
    if name is None:
        pytest.skip("no released weights")
    model = getattr(durn, name)(pretrained=True)
    expected = W.load_weights_file(W.weights_path(W.default_weights(name)), name)[0]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    assert model.channel_order == W.default_weights(name).channel_order and not model.training


def test_pretrained_without_released_weights_raises_the_hub_message(monkeypatch):
    monkeypatch.setattr(W, "DEFAULTS", {})
    with pytest.raises(ValueError, match=r"trainedmodels.*durn import-authors.*weights='authors'"):
        durn.durn_p(pretrained=True)


def test_hub_entry_points_are_the_builders(hubconf):
    assert all(getattr(hubconf, name) is getattr(durn.models, name) for name in NETWORK_NAMES)


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_get_model_weights(name):
    assert get_model_weights(name) == [w for w in W.WEIGHTS.values() if w.network == name]
