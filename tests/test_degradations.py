"""Synthetic degradations: deterministic under a generator, and physically what they claim."""
import math

import pytest
import torch

from durn.data import add_gaussian_noise, make_degradation
from durn.data.degradations import Haze, MotionBlur, Range

SPECS = ["gaussian:30", "gaussian:30,50,70", "blur", "haze", "rain", "raindrop"]


def _photo(c=3, h=72, w=88, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(c, h // 8, w // 8, generator=g)
    x = torch.nn.functional.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return (0.15 + 0.7 * x).clamp(0, 1)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("channels", [1, 3])
def test_deterministic_under_the_generator(spec, channels):
    d = make_degradation(spec)
    x = _photo(channels)
    a, b, c = d(x, _gen(5)), d(x, _gen(5)), d(x, _gen(6))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)
    if not spec.startswith("gaussian"):
        assert a.min() >= 0 and a.max() <= 1


def test_gaussian_noise_level_and_no_clipping():
    x = torch.zeros(1, 256, 256)
    y = make_degradation("gaussian:50")(x, _gen(0))
    # sample std of 65536 normals: relative standard error 1/sqrt(2N) = 0.28%, so 2% is >7 sigma
    assert abs(float(y.std()) * 255 / 50 - 1) < 0.02
    assert float(y.min()) < -0.3  # not clipped at 0
    assert abs(float(y.mean())) < 4 * 50 / 255 / 256


def test_add_gaussian_noise_draws_a_sigma_per_sample():
    x = torch.full((12, 1, 64, 64), 0.5)
    before = x.clone()
    y = add_gaussian_noise(x, [30, 50, 70], _gen(1))
    assert torch.equal(x, before)
    stds = ((y - x).flatten(1).std(1) * 255).tolist()
    # std of 4096 normals: relative standard error 1.1%, so 5%
    assert all(min(abs(s / t - 1) for t in (30, 50, 70)) < 0.05 for s in stds)
    assert len({min((30, 50, 70), key=lambda t: abs(s - t)) for s in stds}) > 1
    assert torch.equal(add_gaussian_noise(x, [30, 50, 70], _gen(1)), y)
    single = add_gaussian_noise(x[0], 30, _gen(2))
    assert single.shape == x[0].shape


def test_motion_blur_kernels_are_trajectories():
    blur = MotionBlur()
    sizes = set()
    for seed in range(6):
        k = blur.kernel(_gen(seed))
        assert k.shape == (31, 31) and (k >= 0).all()
        assert abs(float(k.sum()) - 1) < 1e-5
        ys, xs = torch.meshgrid(torch.arange(31.0), torch.arange(31.0), indexing="ij")
        # centroid at the centre: the blurred image is not shifted
        assert abs(float((k * xs).sum()) - 15) < 0.51 and abs(float((k * ys).sum()) - 15) < 0.51
        support = (k > 1e-4).nonzero()
        sizes.add(int((support.max(0).values - support.min(0).values).max()))
        # a path, not a blob: most of the square around it is empty
        assert (k > 1e-4).float().mean() < 0.25
    assert len(sizes) > 2


def test_motion_blur_keeps_flat_images_and_removes_detail():
    flat = torch.full((3, 40, 40), 0.4)
    assert torch.allclose(make_degradation("blur")(flat, _gen(0)), flat, atol=1e-5)
    x = _photo(h=96, w=96)
    x = x + 0.2 * (torch.arange(96) % 2).float()  # fine vertical stripes
    x = x.clamp(0, 1)
    y = make_degradation("blur:length=0.5..0.8")(x, _gen(1))
    grad = lambda im: (im[..., 1:] - im[..., :-1]).abs().mean()  # noqa: E731
    assert grad(y) < 0.3 * grad(x)


def test_haze_follows_the_scattering_model():
    haze = Haze()
    j1, j2 = _photo(seed=1), _photo(seed=2)
    i1, i2 = haze(j1, _gen(3)), haze(j2, _gen(3))
    # I = J t + A (1 - t) with t and A from the generator only:
    # t = (I1 - I2) / (J1 - J2), the same for every channel and in (0, 1)
    diff = j1 - j2
    ok = diff.abs() > 0.05
    t = (i1 - i2)[ok] / diff[ok]
    t_map = torch.zeros_like(diff)
    t_map[ok] = t
    assert t.min() > 0 and t.max() < 1
    both = ok[0] & ok[1] & ok[2]
    assert torch.allclose(t_map[0][both], t_map[1][both], atol=1e-4)
    # airlight: on a black scene I0 = A (1 - t), on a white one I1 = t + A (1 - t), so
    # A = I0 / (1 - I1 + I0): one value per channel everywhere, in RESIDE's 0.7-1.0 +- tint
    black = haze(torch.zeros(3, 72, 88), _gen(3))
    white = haze(torch.ones(3, 72, 88), _gen(3))
    a = (black / (1 - white + black)).flatten(1)
    assert (a.std(1) < 1e-4).all()
    assert ((a.mean(1) > 0.67) & (a.mean(1) <= 1.0)).all()
    # farther (top) is hazier: more airlight on a black scene
    assert black[:, :10].mean() > black[:, -10:].mean()


def test_haze_parameters_from_spec():
    h = make_degradation("haze:beta=1.8,airlight=1.0,near=1.0,far=1.0")
    out = h(torch.zeros(1, 20, 20), _gen(0))
    # d = 1 everywhere, t = exp(-1.8): I = A (1 - t) = 1 - exp(-1.8)
    assert torch.allclose(out, torch.full_like(out, 1 - math.exp(-1.8)), atol=1e-6)


def test_rain_streaks_brighten_along_one_direction():
    x = _photo(h=128, w=128, seed=3)
    y = make_degradation("rain:angle=0,layers=1,density=0.004")(x, _gen(4))
    s = y - x
    assert (s >= -1e-6).all() and s.max() > 0.1
    # vertical streaks: strongly correlated with themselves 4 px down, not 4 px across
    s = s.mean(0) - s.mean()
    vert = float((s[4:] * s[:-4]).mean())
    horiz = float((s[:, 4:] * s[:, :-4]).mean())
    assert vert > 5 * max(horiz, 1e-9)


def test_raindrops_are_local_soft_and_refract():
    x = _photo(h=128, w=128, seed=5)
    y = make_degradation("raindrop:count=10..10")(x, _gen(6))
    changed = (y - x).abs().amax(0) > 1e-6
    frac = float(changed.float().mean())
    assert 0.01 < frac < 0.6
    # soft masks: some pixels only partly changed (edges), and most of the image untouched
    small = ((y - x).abs().amax(0) > 1e-6) & ((y - x).abs().amax(0) < 0.01)
    assert small.any()


def test_make_degradation_specs():
    assert make_degradation("gaussian:30,50,70").sigmas == (30.0, 50.0, 70.0)
    b = make_degradation("blur:kernel_size=41,length=0.3..0.9")
    assert b.kernel_size == 41 and b.length == Range(0.3, 0.9) and b.margin == 20
    for spec in ["gaussian:15", "blur", "haze:beta=1..1.5", "rain:angle=-10..10", "raindrop"]:
        d = make_degradation(spec)
        assert make_degradation(d.spec) == d
    assert make_degradation("rain:angle=-10..10").angle == Range(-10, 10)


@pytest.mark.parametrize("spec, match", [
    ("snow", "unknown degradation"), ("gaussian", "needs one or more sigmas"), ("gaussian:-5", ">= 0"),
    ("gaussian:abc", "numbers"), ("blur:size=3", "bad parameter"), ("haze:beta=2..1", "hi < lo"), ("", "non-empty"),
])
def test_make_degradation_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        make_degradation(spec)


def test_degradations_reject_bad_images():
    with pytest.raises(ValueError, match="C = 1 or 3"):
        make_degradation("haze")(torch.rand(2, 8, 8), _gen(0))
    with pytest.raises(ValueError, match="float"):
        make_degradation("blur")(torch.zeros(3, 8, 8, dtype=torch.uint8), _gen(0))
