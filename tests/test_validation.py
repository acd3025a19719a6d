"""Bad input gets a ValueError that says what was expected."""
import pytest
import torch

import durn


@pytest.fixture(scope="module")
def rgb():
    return durn.durn_p_real().eval()


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: torch.rand(1, 1, 16, 16), r"expected 3 channels \(RGB\).*got 1"),
        (lambda: torch.rand(1, 4, 16, 16), r"expected 3 channels .*got 4"),
        (lambda: torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8), r"floating-point.*uint8.*/ 255"),
        (lambda: torch.full((1, 3, 16, 16), float("nan")), "NaN or Inf"),
        (lambda: torch.tensor([float("inf")]).expand(1, 3, 16, 16).clone(), "NaN or Inf"),
        (lambda: torch.rand(0, 3, 16, 16), "non-empty"),
        (lambda: torch.rand(1, 3, 0, 16), "non-empty"),
        (lambda: torch.rand(1, 3, 1, 1), r"at least 2 x 2 pixels, got 1 x 1"),
        (lambda: torch.rand(1, 3, 1, 40), r"at least 2 x 2"),
        (lambda: torch.rand(16, 16), r"\(N, C, H, W\) or \(C, H, W\)"),
        (lambda: torch.rand(1, 1, 3, 16, 16), r"\(N, C, H, W\) or \(C, H, W\)"),
        (lambda: torch.rand(1, 3, 16, 16, dtype=torch.float64), r"float64 but the network's weights are torch.float32"),
    ],
)
def test_bad_input(rgb, make, pattern):
    with pytest.raises(ValueError, match=pattern):
        rgb(make())


def test_non_tensor(rgb):
    with pytest.raises(TypeError, match="torch.Tensor"):
        rgb([[0.5]])


def test_gray_network_names_its_channel():
    with pytest.raises(ValueError, match=r"expected 1 channel \(L\).*got 3"):
        durn.durn_p().eval()(torch.rand(3, 16, 16))


def test_checks_can_be_switched_off_for_speed(rgb):
    rgb.check_inputs = False
    try:
        out = rgb(torch.full((1, 3, 16, 16), float("nan")))
        assert torch.isnan(out).all()
    finally:
        rgb.check_inputs = True
