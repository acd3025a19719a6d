"""``torch.compile``: the six networks and their optimized forms trace as one graph each
(no graph breaks) and, with ``dynamic=True``, one graph serves every image size.

Dynamo only (the ``CompileCounter`` and ``explain`` backends run the captured graph as
it is): no inductor, so this stays cheap. ``fullgraph=True`` makes any graph break an
error; ``explain``'s ``graph_break_count`` is its number of graphs minus one, so one
compiled frame under ``CompileCounter`` is the same statement. Batch 1 and batch 2 are
two graphs (PyTorch specialises sizes 0 and 1); a batch-1 graph also guards on PyTorch's
choice of CPU conv implementation, which for kernels up to 3x3 changes at 20480 input
elements (C x H x W), so the batch-1 sizes here all stay below it.
"""
import pytest
import torch
import torch._dynamo
from torch import nn
from torch._dynamo.testing import CompileCounter

import durn
from conftest import NETWORK_NAMES
from durn.nn import DuRN, DualResidualChain, durb_p

SIZES = ((37, 53), (29, 41), (45, 35))  # odd, above every network's min size (at most 16)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _compiled(module):
    counter = CompileCounter()
    return torch.compile(module, backend=counter, dynamic=True, fullgraph=True), counter


def _run_sizes(compiled, module, counter, c, batch, sizes, tol=0.0):
    for h, w in sizes:
        x = torch.rand(batch, c, h, w)
        with torch.no_grad():
            y, expected = compiled(x), module(x)
        assert y.shape == x.shape
        torch.testing.assert_close(y, expected, rtol=0, atol=tol * max(1.0, expected.abs().max().item()))
    return counter.frame_count


@pytest.mark.filterwarnings(r"ignore:var\(\)")
@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_network_is_one_graph_for_every_size(name):
    torch.manual_seed(0)
    model = durn.get_model(name).eval()
    compiled, counter = _compiled(model)
    assert _run_sizes(compiled, model, counter, model.in_channels, 2, SIZES, tol=1e-6) == 1
    if name == "durn_p":  # 1 x 39 x 55 and smaller: below the conv heuristic's 20480
        assert _run_sizes(compiled, model, counter, 1, 1, SIZES, tol=1e-6) == 2


def test_fresh_model_has_no_graph_break():
    """``min_size`` is found on first use, here inside the traced forward: its dry run
    runs as plain Python, a constant to the compiler."""
    from durn.nn.geometry import _CACHE

    _CACHE.clear()
    model = durn.durn_p().eval()
    assert model._min_size is None
    with torch.no_grad():
        explanation = torch._dynamo.explain(model)(torch.rand(1, 1, 37, 53))
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    assert model._min_size == 16


def test_users_durn_compiles():
    """A user-built DuRN whose min-size dry run needs FakeTensorMode (a module that makes a
    CPU tensor cannot run on meta) and whose size multiple is 2."""

    class AddZeros(nn.Module):
        def forward(self, x):
            return x + torch.zeros(x.shape[-2:], device=x.device)

    torch.manual_seed(0)
    blocks = DualResidualChain([durb_p(8, 5, 3, 2), durb_p(8, 7, 5)])
    stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), AddZeros(), nn.ReLU())
    model = DuRN(stem, [blocks], nn.Conv2d(8, 3, 3, padding=1), in_channels=3, size_multiple=2).eval()
    compiled, counter = _compiled(model)
    assert _run_sizes(compiled, model, counter, 3, 2, SIZES) == 1
    assert _run_sizes(compiled, model, counter, 3, 1, ((37, 53), (29, 41))) == 2
    assert model.min_size == 6


def test_checks_still_raise_under_compile():
    """The metadata checks are traced (they become guards): a compiled model (without
    ``fullgraph``) raises the eager ValueErrors. The NaN check reads data: eager only."""
    model = durn.durn_p_real().eval()
    compiled = torch.compile(model, backend=CompileCounter(), dynamic=True)
    with torch.no_grad():
        compiled(torch.rand(2, 3, 37, 53))
        with pytest.raises(ValueError, match=r"expected 3 channels \(RGB\).*got 1"):
            compiled(torch.rand(2, 1, 37, 53))
        with pytest.raises(ValueError, match="float64 but the network's weights are torch.float32"):
            compiled(torch.rand(2, 3, 37, 53, dtype=torch.float64))
        with pytest.raises(ValueError, match="NaN or Inf"):
            model(torch.full((1, 3, 16, 16), float("nan")))


@pytest.mark.parametrize("name", ["durn_p", "durn_us"])
def test_optimized_network_is_one_graph_for_every_size(name):
    """The fused convs take the direct conv when traced (the transform-domain ones are
    forced here), so the compiled optimized network equals the eager one within the
    transforms' tolerance."""
    torch.manual_seed(0)
    fast = durn.optimize_for_inference(durn.get_model(name).eval(), algorithms="transform")
    assert any(layer.algorithm != "direct" for layer in fast.fused_convs())
    c = fast.in_channels
    if name == "durn_p":  # durn_us: fullgraph=True below says the same, one trace fewer
        with torch.no_grad():
            explanation = torch._dynamo.explain(fast)(torch.rand(1, c, 37, 53))
        assert explanation.graph_break_count == 0 and explanation.graph_count == 1
        torch._dynamo.reset()
    compiled, counter = _compiled(fast)
    assert _run_sizes(compiled, fast, counter, c, 2, SIZES, tol=2e-5) == 1


def test_the_min_size_marker_is_the_one_torch_sets():
    """durn/nn/network.py marks its min_size helper constant without importing dynamo."""
    from durn.nn import network

    marked = torch.compiler.assume_constant_result(lambda: 0)
    flags = {k for k, v in vars(marked).items() if v is True}
    assert flags == {"_dynamo_marked_constant"}
    assert network._min_size_of._dynamo_marked_constant is True
