"""Tiles: the receptive field from the architecture, blending, the exact mode, auto tiles."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import durn
from durn.nn import geometry
from durn.restoration import memory, tiles
from durn.restoration.api import restore


pytestmark = pytest.mark.usefixtures("one_thread")


def photo(name, top, left, height, width, gray=False):
    """A crop of one of scikit-image's photographs as a float tensor (C, H, W) in [0, 1]."""
    from skimage import data

    img = getattr(data, name)()[top:top + height, left:left + width]
    t = torch.from_numpy(np.ascontiguousarray(img)).float().div(255)
    return t[None] if gray else t.permute(2, 0, 1).contiguous()


@pytest.fixture(scope="module")
def p_real():
    torch.manual_seed(0)
    return durn.durn_p_real().eval()


# -- receptive field ------------------------------------------------------------------


def measured_radius(net, shape, points, dtype=torch.float64):
    """Largest distance from an output pixel to an input pixel its gradient reaches
    (outside the receptive field the gradient is exactly zero, in any precision)."""
    x = torch.rand(shape, dtype=dtype, requires_grad=True)
    worst = 0
    for py, px in points:
        x.grad = None
        net(x)[0, :, py, px].sum().backward()
        reach = (x.grad[0].abs().sum(0) > 0).nonzero()
        worst = max(worst, int((reach - torch.tensor([py, px])).abs().max()))
    return worst


def test_receptive_field_of_durn_p_matches_its_gradient_support(p_real):
    # durn_p_real: 2 stem convs, six blocks (3x3, 3x3, k1 dilated, k2), 2 tail convs
    expected = 1 + 1 + sum(1 + 1 + (k1 - 1) * d // 2 + (k2 - 1) // 2
                           for k1, k2, d in durn.models.builders.P_SCHEDULE) + 1 + 1
    rf = geometry.receptive_field(p_real)
    assert rf.radius == expected == 70 and rf.local
    # the bound is tight: an input pixel exactly 70 px away still moves the output
    net = durn.durn_p_real().eval().requires_grad_(False)
    assert measured_radius(net.forward_core, (1, 3, 145, 145), [(72, 72)], torch.float32) == 70


def test_receptive_field_global_ops_are_named():
    torch.manual_seed(0)
    for name, kind in [("durn_u", "DuRNInstanceNorm"), ("durn_us", "SqueezeExcitation"),
                       ("durn_s", "SqueezeExcitation"), ("durn_s_p", "SqueezeExcitation")]:
        rf = geometry.receptive_field(durn.get_model(name).eval())
        assert not rf.local and any(kind in op for op in rf.global_ops), name
    assert geometry.receptive_field(durn.durn_p().eval()).local  # BatchNorm in eval mode is local
    assert not geometry.receptive_field(durn.durn_p().train()).local  # ...in training mode it is not


class Toy(nn.Module):
    in_channels = 2

    def __init__(self, *layers):
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


TOYS = {
    "stride-2 conv, pixel shuffle back": lambda: Toy(
        nn.Conv2d(2, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 5, padding=4, dilation=2),
        nn.PixelShuffle(2), nn.Conv2d(2, 2, 3, padding=1)),
    "transposed conv, one-sided pad, pool": lambda: Toy(
        nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1),
        nn.ReflectionPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1), nn.Conv2d(4, 2, 5, padding=2)),
    "two downsamplings, unpadded conv": lambda: Toy(
        nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1),
        nn.Upsample(scale_factor=4, mode="nearest"), nn.ZeroPad2d(1), nn.Conv2d(4, 2, 3)),
}


@pytest.mark.parametrize("name", sorted(TOYS))
def test_receptive_field_bounds_toy_networks_with_strides_and_upsampling(name):
    torch.manual_seed(0)
    net = TOYS[name]().double().requires_grad_(False)
    rf = geometry.receptive_field(net)
    assert rf.local
    points = [(py, px) for py in (40, 41, 42, 43) for px in (40, 43)]
    measured = measured_radius(net, (1, 2, 84, 84), points)
    # an upper bound, and within the coarsest pixel (4) of the worst case over phases
    assert measured <= rf.radius < measured + 4


def test_unknown_spatial_module_is_not_called_local():
    class Shift(nn.Module):
        def forward(self, x):
            return torch.roll(x, 3, dims=-1)

    rf = geometry.receptive_field(Toy(nn.Conv2d(2, 2, 3, padding=1), Shift()))
    assert not rf.local and "Shift" in rf.unknown_ops[0]


# -- tile geometry ---------------------------------------------------------------------


@pytest.mark.parametrize("length,tile,overlap,multiple", [(500, 128, 40, 1), (333, 100, 61, 1), (512, 96, 32, 4),
                                                          (100, 100, 20, 1), (101, 100, 99, 1)])
def test_tile_starts_cover_with_overlap(length, tile, overlap, multiple):
    starts = tiles.tile_starts(length, tile, overlap, multiple)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    assert all(s % multiple == 0 for s in starts[:-1])
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_edge_profile_zero_margin_then_ramp():
    w = tiles.edge_profile(12, margin=3, ramp=3, before=True, after=False)
    assert w.tolist() == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1]
    assert tiles.edge_profile(5, 2, 1, before=False, after=False).tolist() == [1] * 5


# -- blended tiles -----------------------------------------------------------------------


def test_local_network_tiles_equal_whole_image_2d(p_real):
    x = photo("astronaut", 0, 150, 165, 170)  # 2 x 2 tiles of 160 with the 141 px overlap
    whole = restore(p_real, x)
    progress = []
    tiled = restore(p_real, x, tile=160, progress=progress.append)
    assert len(progress) >= 4 and progress[-1] == 1.0
    # float32: every output pixel comes from a tile that saw its whole receptive field;
    # only the summation order of the convolutions differs
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)


def test_durn_p_tiles_equal_whole_image_float64():
    torch.manual_seed(0)
    net = durn.durn_p().double().eval()
    x = photo("camera", 200, 100, 16, 190, gray=True).double()  # one row of 2 tiles of 160
    whole = restore(net, x)
    tiled = restore(net, x, tile=160)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-10)
    # an overlap well below the receptive field is not exact (with random weights the far
    # context weighs little, so the margin is cut to 10 px to make the error plain)
    with pytest.warns(UserWarning, match="receptive field"):
        short = restore(net, x, tile=160, tile_overlap=21)
    assert (short - whole).abs().max() > 1e-4


def test_strided_network_made_local_tiles_exactly():
    """durn_u without its instance norms is local: its down/up-sampling (stride 2, pixel
    shuffle, size multiple 4) must then tile exactly too."""
    from durn.nn import DuRNInstanceNorm

    torch.manual_seed(0)
    net = durn.durn_u().eval()

    def strip(module):
        for name, child in module.named_children():
            if isinstance(child, DuRNInstanceNorm):
                setattr(module, name, nn.Identity())
            else:
                strip(child)

    strip(net)
    rf = geometry.receptive_field(net)
    assert rf.local and rf.radius == 119
    x = photo("astronaut", 100, 0, 16, 300)  # tiles of 256 along the width, starts aligned to 4
    torch.testing.assert_close(restore(net, x, tile=256), restore(net, x), rtol=0, atol=1e-5)


def test_tiles_handle_tiny_and_edge_sizes(p_real):
    # thinner than the network's minimum size (padded, as the whole-image forward pads)
    for h, w in [(2, 2), (5, 170), (166, 3)]:
        x = torch.rand(3, h, w)
        torch.testing.assert_close(restore(p_real, x, tile=160), restore(p_real, x), rtol=0, atol=1e-5)


def test_global_network_blend_is_close_and_exact_mode_is_exact():
    torch.manual_seed(0)
    x = photo("coffee", 100, 200, 38, 45).double()
    # small tiles so that the quarter-resolution layers are tiled too
    for name, tile in [("durn_u", 8), ("durn_us", 8), ("durn_s", 24), ("durn_s_p", 8)]:
        net = durn.get_model(name).double().eval()
        whole = restore(net, x)
        exact = restore(net, x, tile=tile, tile_mode="exact")
        # float64: the same arithmetic, only cut into conv tiles with halos
        torch.testing.assert_close(exact, whole, rtol=0, atol=1e-10, msg=name)
        if name == "durn_u":  # blending cannot be exact: each tile has its own statistics
            with pytest.warns(UserWarning, match="tile_mode='exact'"):
                blended = restore(net, x, tile=24, tile_overlap=8)
            assert torch.isfinite(blended).all() and (blended - whole).abs().max() > 1e-3


def test_exact_mode_is_exact_in_float32_on_a_photo():
    torch.manual_seed(0)
    net = durn.durn_u().eval()
    x = photo("astronaut", 50, 50, 46, 62)
    whole = restore(net, x)
    exact = restore(net, x, tile=20, tile_mode="exact")
    torch.testing.assert_close(exact, whole, rtol=0, atol=2e-5)  # float32 summation order only


def test_auto_tile_uses_free_memory(monkeypatch, p_real):
    per_px = geometry.bytes_per_pixel(p_real, torch.float32, "cpu")
    assert per_px == 5 * 32 * 4  # five live activations of 32 channels, 4 bytes each
    cpu = torch.device("cpu")
    monkeypatch.setattr(memory, "free_memory", lambda device: 10 ** 12)
    assert memory.auto_tile(p_real, (1, 3, 180, 200), cpu, torch.float32) is None  # fits whole
    monkeypatch.setattr(memory, "free_memory", lambda device: int(2 * per_px * 128 ** 2))
    assert memory.auto_tile(p_real, (1, 3, 180, 200), cpu, torch.float32) == 128  # half the free memory
    # the budget is a power of two pixels, so that small changes of free memory keep the plan
    for more in (1.1, 1.5, 1.9):
        monkeypatch.setattr(memory, "free_memory", lambda device, more=more: int(more * 2 * per_px * 128 ** 2))
        assert memory.auto_tile(p_real, (1, 3, 180, 200), cpu, torch.float32) == 128
    # a thin image gets tiles as long as the memory allows, not squares
    monkeypatch.setattr(memory, "free_memory", lambda device: int(2 * per_px * 4096))
    assert memory.auto_tile(p_real, (1, 3, 24, 200), cpu, torch.float32) == 170  # 4096 / 24 pixels long
    x = photo("astronaut", 0, 0, 24, 200)
    plans = []
    original = tiles.run_blended
    monkeypatch.setattr(tiles, "run_blended", lambda *a, **k: plans.append(a[3]) or original(*a, **k))
    torch.testing.assert_close(restore(p_real, x, tile="auto"), restore(p_real, x), rtol=0, atol=1e-5)
    assert plans and plans[0].tile == 170 and plans[0].exact


def test_bad_tile_arguments(p_real):
    x = torch.rand(3, 20, 20)
    for bad in (-3, "big", 2.5):
        with pytest.raises(ValueError, match="tile"):
            restore(p_real, x, tile=bad)
    with pytest.raises(ValueError, match="at least 16"):
        restore(p_real, torch.rand(3, 40, 40), tile=8)
    with pytest.raises(ValueError, match="smaller than the tile"):
        restore(p_real, torch.rand(3, 40, 40), tile=20, tile_overlap=20)
    with pytest.raises(ValueError, match="tile_mode"):
        restore(p_real, x, tile=16, tile_mode="fast")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restore(p_real, x, tile=None, tile_overlap=5)  # no tiles: the overlap is unused
