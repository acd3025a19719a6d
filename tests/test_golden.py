"""Every network reproduces the authors' code on their checkpoint layout (../shared/reference).

Tolerances are the reference README's: float64 to 1e-9 (independent of operation order
and threads; a wrong layer shows at ~1e-2), float32 to 2e-5 (float32 rounding alone
separates the golden float32 output from the float64 one by up to 5e-6).
"""
import pytest
import torch

import durn
from conftest import NETWORK_NAMES


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_golden_output_float64(reference, name):
    golden = reference.golden(name)
    model = durn.load_reference(name, reference.state_dict(name)).double()
    with torch.no_grad():
        out = model(golden["input"].double())
    assert out.shape == golden["output64"].shape
    assert (out - golden["output64"]).abs().max().item() < 1e-9


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_golden_output_float32(reference, name):
    golden = reference.golden(name)
    model = durn.load_reference(name, reference.state_dict(name))
    with torch.no_grad():
        out = model(golden["input"])
    assert out.dtype == torch.float32
    assert (out - golden["output"]).abs().max().item() < 2e-5


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_golden_residual_is_not_trivial(reference, name):
    # Guards the comparison itself: the output must differ from the input by far more
    # than the tolerance, so a network that returned its input would fail above.
    golden = reference.golden(name)
    assert (golden["output64"] - golden["input"].double()).abs().mean().item() > 1e-2


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_golden_input_follows_recipe(reference, name):
    golden = reference.golden(name)
    assert torch.equal(reference.input(name, (64, 64), seed=0), golden["input"])
