"""The six networks: parameter counts, any input size, the authors' instance norm."""
import pytest
import torch

import durn
from conftest import NETWORK_NAMES
from durn.nn import DuRNInstanceNorm, pad_bottom_right


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: durn.get_model(name).eval() for name in NETWORK_NAMES}


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_parameter_count_matches_spec(models, name):
    assert sum(p.numel() for p in models[name].parameters()) == durn.NETWORKS[name].params


@pytest.mark.parametrize("name", NETWORK_NAMES)
@pytest.mark.parametrize("hw", [(2, 2), (3, 17), (13, 10), (21, 23)])
def test_odd_sizes_give_input_shape(models, name, hw):
    model = models[name]
    c = model.in_channels
    x = torch.rand(2, c, *hw)
    with torch.no_grad():
        y = model(x)
        y_single = model(x[1])
    assert y.shape == x.shape
    assert y_single.shape == x[1].shape
    assert torch.isfinite(y).all()
    # the batch dimension is independent (eval mode): an unbatched call equals its batch row
    torch.testing.assert_close(y_single, y[1], rtol=0, atol=1e-5)


@pytest.mark.filterwarnings(r"ignore:var\(\)")
@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_min_size_is_tight(models, name):
    model = models[name]
    m, s, c = model.size_multiple, model.min_size, model.in_channels
    with torch.no_grad():
        assert model.forward_core(torch.rand(1, c, s, s)).shape == (1, c, s, s)
        if s > m:
            with pytest.raises(RuntimeError):
                model.forward_core(torch.rand(1, c, s - m, s - m))


def test_size_dry_run_leaves_the_model_untouched():
    model = durn.durn_s().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    from durn.nn.geometry import _CACHE

    _CACHE.clear()
    assert model.min_size == 16
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_min_size_of_a_float64_model():
    from durn.nn.geometry import _CACHE

    _CACHE.clear()
    model = durn.durn_p().double().eval()
    assert model.min_size == 16
    assert model(torch.rand(1, 1, 5, 5, dtype=torch.float64)).shape == (1, 1, 5, 5)


@pytest.mark.parametrize("name", ["durn_u", "durn_us", "durn_s_p"])
def test_non_multiple_of_4_is_padded_then_cropped(models, name):
    model = models[name].double()
    x = torch.rand(1, 3, 30, 25, dtype=torch.float64)
    with torch.no_grad():
        direct = model.forward_core(pad_bottom_right(x, 32, 28))[..., :30, :25]
        torch.testing.assert_close(model(x), direct, rtol=0, atol=1e-12)
    model.float()


def test_mirror_padding_reflects_repeatedly_without_repeating_the_edge():
    x = torch.arange(3.0).reshape(1, 1, 1, 3)
    assert pad_bottom_right(x, 1, 9).flatten().tolist() == [0, 1, 2, 1, 0, 1, 2, 1, 0]
    y = torch.arange(2.0).reshape(1, 1, 2, 1)
    assert pad_bottom_right(y, 5, 1).flatten().tolist() == [0, 1, 0, 1, 0]


def test_authors_instance_norm_formula():
    torch.manual_seed(1)
    norm = DuRNInstanceNorm(3).double()
    with torch.no_grad():
        norm.shift.fill_(7.0)  # never read
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    scale = norm.scale.view(1, 3, 1, 1)
    expected = (x - mean) / torch.sqrt(var + 1e-9) * scale + scale
    torch.testing.assert_close(norm(x), expected, rtol=0, atol=1e-12)
    assert not norm.shift.requires_grad
    # differs from torch's InstanceNorm (which would add shift and use eps 1e-5)
    ref = torch.nn.functional.instance_norm(x, weight=norm.scale, bias=norm.shift.detach(), eps=1e-5)
    assert (ref - norm(x)).abs().max() > 1.0


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_every_trainable_parameter_gets_gradient(name):
    torch.manual_seed(0)
    model = durn.get_model(name).train()
    x = torch.rand(2, model.in_channels, 16, 16)
    model(x).square().mean().backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, pname
        else:
            assert pname.endswith("shift") or pname.startswith("unused_prelu"), pname


@pytest.mark.parametrize("connection", ["paired", "separate"])
def test_ablation_connections_build(connection):
    model = durn.durn_p(connection=connection).eval()
    assert all(block.connection == connection for block in model.stages[0])
    assert model(torch.rand(1, 1, 20, 20)).shape == (1, 1, 20, 20)
