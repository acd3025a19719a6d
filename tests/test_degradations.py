"""Synthetic degradations: deterministic under a generator, and physically what they claim."""
import math

import pytest
import torch

from durn.data import add_gaussian_noise, make_degradation
from durn.data.degradations import (
    CameraBlur, CameraNoise, Haze, MotionBlur, Range, bayer_masks, defocus_kernel, demosaic_bilinear, linear_motion_kernel, linear_to_srgb,
    srgb_to_linear,
)

SPECS = ["gaussian:30", "gaussian:30,50,70", "blur", "camera_blur", "camera_noise", "haze", "rain", "raindrop"]


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
    haze = Haze(scene=Range(0.0, 0.0))  # scene-blind depth: t does not depend on the photo
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


def _transmission(hazy, clean, airlight):
    """t = (I - A) / (J - A), per pixel, of a hazy gray-valued photo with a known airlight."""
    return ((hazy - airlight) / (clean - airlight))[0]


def test_haze_depth_follows_the_photos_edges():
    clean = torch.full((3, 64, 64), 0.2)
    clean[:, :, 32:] = 0.6  # a dark object left, a bright one right: an edge at column 32
    spec = "haze:beta=1,airlight=0.9,near=0.2,far=1.2,tint=0,hue=0,thick=0,scene={}"
    for share, expect_edge in ((0, False), (1, True)):
        t = _transmission(make_degradation(spec.format(share))(clean, _gen(3)), clean, 0.9)
        step = (t[:, 1:] - t[:, :-1]).abs().mean(0)  # mean change from one column to the next
        elsewhere = torch.cat([step[:24], step[40:]]).mean()
        if expect_edge:
            assert step[31] > 5 * elsewhere   # depth jumps at the edge (measured 7.8x)
        else:
            assert step[31] < 2 * elsewhere   # the scene-blind proxy ignores the edge (1.4x)


def test_haze_airlight_colour_and_thick_haze():
    black, white = torch.zeros(3, 40, 48), torch.ones(3, 40, 48)
    # hue: + warms the airlight (red up, blue down), - cools it
    for hue in (0.08, -0.06):
        h = make_degradation(f"haze:airlight=0.8,tint=0,hue={hue},thick=0")
        i0, i1 = h(black, _gen(1)), h(white, _gen(1))
        a = (i0 / (1 - i1 + i0)).flatten(1).mean(1)
        assert torch.allclose(a, torch.tensor([0.8 + hue, 0.8 + 0.2 * hue, 0.8 - hue]), atol=1e-4)
    # thick haze: near >= 0.4 and beta in the upper half of 0.6..1.8, so t = I1 - I0 stays
    # under exp(-1.2 * 0.4) everywhere; without it near objects stay clear (t = exp(-0.6 * 0.05))
    for seed in range(5):
        thick = make_degradation("haze:beta=0.6..1.8,near=0.05,thick=1")
        assert (thick(white, _gen(seed)) - thick(black, _gen(seed))).max() <= math.exp(-0.48) + 1e-5
    clear = make_degradation("haze:beta=0.6,near=0.05,far=1,thick=0,scene=0")
    assert (clear(white, _gen(0)) - clear(black, _gen(0))).max() > 0.95
    # a fixed beta stays fixed in thick haze (only near moves): t >= exp(-0.6 * far)
    fixed = make_degradation("haze:beta=0.6,far=1,thick=1,scene=0")
    assert (fixed(white, _gen(0)) - fixed(black, _gen(0))).min() >= math.exp(-0.6 * 1.4) - 1e-5


def test_haze_shares_are_checked():
    with pytest.raises(ValueError, match="thick must be in"):
        make_degradation("haze:thick=1.5")
    with pytest.raises(ValueError, match="scene must be within"):
        make_degradation("haze:scene=0..1.2")


def test_haze_parameters_from_spec():
    h = make_degradation("haze:beta=1.8,airlight=1.0,near=1.0,far=1.0")
    out = h(torch.zeros(1, 20, 20), _gen(0))
    # d = 1 everywhere, t = exp(-1.8): I = A (1 - t) = 1 - exp(-1.8)
    assert torch.allclose(out, torch.full_like(out, 1 - math.exp(-1.8)), atol=1e-6)


def test_rain_streaks_brighten_along_one_direction():
    x = _photo(h=128, w=128, seed=3)
    y = make_degradation("rain:angle=0,layers=1,density=0.004,spread=0,width=0.5,veil=0")(x, _gen(4))
    s = y - x
    assert (s >= -1e-6).all() and s.max() > 0.1
    # vertical streaks: strongly correlated with themselves 4 px down, not 4 px across
    s = s.mean(0) - s.mean()
    vert = float((s[4:] * s[:-4]).mean())
    horiz = float((s[:, 4:] * s[:, :-4]).mean())
    assert vert > 5 * max(horiz, 1e-9)


def test_heavy_rain_veils_the_scene_and_light_rain_does_not():
    x = _photo(h=96, w=96, seed=3)
    heavy = make_degradation("rain:density=0.004,layers=3,veil=0.3")(x, _gen(4))
    light = make_degradation("rain:density=0.0005,layers=1,veil=0.3")(x, _gen(4))
    # the streak-free pixels: lifted towards white by the veil in heavy rain only
    def lift(y):
        d = (y - x).amax(0)
        return float(d[d <= d.quantile(0.2)].mean())
    assert lift(heavy) > 0.03 and lift(light) < 0.015
    assert lift(make_degradation("rain:density=0.004,layers=3,veil=0")(x, _gen(4))) < 1e-6


def test_rain_layers_differ_in_depth():
    rain = make_degradation("rain")
    g = _gen(9)
    layers = [rain.layer(128, 128, 0.0, g)[0] for _ in range(6)]
    coverage = [float((layer > 0.05).float().mean()) for layer in layers]
    peaks = [float(layer.max()) for layer in layers]
    assert max(coverage) > 2 * min(coverage) and max(peaks) > 1.3 * min(peaks)


def test_raindrops_are_local_soft_and_refract():
    x = _photo(h=128, w=128, seed=5)
    y = make_degradation("raindrop:count=10..10")(x, _gen(6))
    changed = (y - x).abs().amax(0) > 1e-6
    frac = float(changed.float().mean())
    assert 0.01 < frac < 0.6
    # soft masks: some pixels only partly changed (edges), and most of the image untouched
    small = ((y - x).abs().amax(0) > 1e-6) & ((y - x).abs().amax(0) < 0.01)
    assert small.any()


def _changed(spec, x, seeds=range(6)):
    d = make_degradation(spec)
    return sum(float(((d(x, _gen(s)) - x).abs().amax(0) > 0.02).float().mean()) for s in seeds) / len(seeds)


def test_raindrop_coverage_does_not_depend_on_resolution():
    # The same framing at twice the resolution: drops twice as large, the same number of
    # them, so the same fraction of the photo covered (it used to be 4x at 512 px).
    small = _photo(h=128, w=128, seed=3)
    large = torch.nn.functional.interpolate(small[None], scale_factor=2, mode="bilinear")[0]
    a, b = _changed("raindrop:count=20", small), _changed("raindrop:count=20", large)
    assert 0.03 < a < 0.5 and 0.6 < b / a < 1.6


def test_raindrop_scale_gives_a_crop_its_photos_drops():
    crop = _photo(h=128, w=128, seed=4)
    # one drop (count 1 per frame rounds up to 1): at the scale of a 512 px photo it is
    # 4x wider than the crop's own scale (0.5) makes it, so about 16x the area
    own, photo = _changed("raindrop:count=1", crop, range(8)), _changed("raindrop:count=1,scale=2", crop, range(8))
    assert photo > 6 * own
    # many drops: the photo's scale gives the crop the photo's coverage, not 1/4 of it
    assert 0.6 < _changed("raindrop:count=20,scale=2", crop) / _changed("raindrop:count=20", crop) < 1.6
    assert make_degradation("raindrop:scale=1..2").scale == Range(1, 2)
    for bad in ["raindrop:scale=-1", "raindrop:scale=0..2"]:
        with pytest.raises(ValueError, match="raindrop scale"):
            make_degradation(bad)


def test_make_degradation_specs():
    assert make_degradation("gaussian:30,50,70").sigmas == (30.0, 50.0, 70.0)
    b = make_degradation("blur:kernel_size=41,length=0.3..0.9")
    assert b.kernel_size == 41 and b.length == Range(0.3, 0.9) and b.margin == 20
    for spec in ["gaussian:15", "blur", "haze:beta=1..1.5", "rain:angle=-10..10", "raindrop", "raindrop:scale=1..2"]:
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


# ----------------------------------------------------------------------------- camera blur
def _second_moments(k):
    """Centroid and covariance of a kernel's mass (in pixels)."""
    n = k.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    k = k.double()
    cx, cy = float((k * xs).sum()), float((k * ys).sum())
    cov = [[float((k * (xs - cx) ** 2).sum()), float((k * (xs - cx) * (ys - cy)).sum())],
           [float((k * (xs - cx) * (ys - cy)).sum()), float((k * (ys - cy) ** 2).sum())]]
    return cx, cy, torch.tensor(cov, dtype=torch.float64)


def test_linear_motion_kernel_is_a_centred_segment():
    k = linear_motion_kernel(12.0, 30.0, 31)
    assert abs(float(k.sum()) - 1) < 1e-6 and k.min() >= 0
    cx, cy, cov = _second_moments(k)
    assert abs(cx - 15) < 1e-6 and abs(cy - 15) < 1e-6
    evals, evecs = torch.linalg.eigh(cov)
    # n equally spaced samples over a segment of length L: variance L^2 / 12 * (n + 1) / (n - 1)
    # along it (n = 49 here); bilinear splatting adds at most 1/4 per axis
    along = 12.0 ** 2 / 12 * 50 / 48
    assert along <= float(evals[1]) <= along + 0.25 and float(evals[0]) < 0.35
    direction = evecs[:, 1]
    angle = math.degrees(math.atan2(float(direction[1]), float(direction[0]))) % 180
    assert abs(angle - 30) < 1.0


def test_defocus_kernel_is_a_disc():
    k = defocus_kernel(3.0, 11)
    assert abs(float(k.sum()) - 1) < 1e-6
    _, _, cov = _second_moments(k)
    # a uniform disc of radius r has variance r^2 / 4 per axis and no correlation; integrating
    # it over pixels (a box filter) adds 1/12
    expected = 9 / 4 + 1 / 12
    assert torch.allclose(cov.diagonal(), torch.tensor([expected] * 2, dtype=torch.float64), atol=0.03)
    assert abs(float(cov[0, 1])) < 1e-9
    assert float(k[5, 5]) > 0 and float(k[0, 0]) == 0 and float(k[5, 0]) == 0


def test_camera_blur_draws_each_kernel_kind():
    kinds = {"shake": CameraBlur(shake=1, linear=0, defocus=0), "linear": CameraBlur(shake=0, linear=1, defocus=0),
             "defocus": CameraBlur(shake=0, linear=0, defocus=1)}
    for name, blur in kinds.items():
        k = blur.kernel(_gen(3))
        assert k.shape == (31, 31) and abs(float(k.sum()) - 1) < 1e-5
        _, _, cov = _second_moments(k)
        evals = torch.linalg.eigvalsh(cov)
        if name == "linear":
            assert float(evals[0]) < 0.35 < float(evals[1])  # one-dimensional
        if name == "defocus":
            assert float(evals[1] - evals[0]) < 0.05           # round
    mixed = CameraBlur()
    sorts = set()
    for seed in range(40):
        k = mixed.kernel(_gen(seed))
        _, _, cov = _second_moments(k)
        evals = torch.linalg.eigvalsh(cov)
        sorts.add("linear" if float(evals[0]) < 0.35 else "round" if float(evals[1] - evals[0]) < 0.05 else "shake")
    assert sorts == {"linear", "round", "shake"}
    with pytest.raises(ValueError, match="non-negative weights"):
        CameraBlur(shake=0, linear=0, defocus=0).kernel(_gen(0))


def test_camera_blur_adds_sensor_noise_and_quantises():
    flat = torch.full((3, 128, 128), 0.5)
    quiet = make_degradation("camera_blur:noise=0,jpeg=0")(flat, _gen(0))
    assert torch.equal(quiet, torch.full_like(flat, round(0.5 * 255) / 255))  # blur keeps flat, 8-bit rounding
    noisy = make_degradation("camera_blur:noise=3,jpeg=0")(flat, _gen(0))
    assert torch.equal(noisy * 255, (noisy * 255).round())                      # 8-bit levels
    # rounding adds 1/12 level^2 of variance to sigma^2 = 9; 49,152 samples: 2% is many sigma
    assert abs(float((noisy * 255).var()) / (9 + 1 / 12) - 1) < 0.03


def test_camera_blur_jpeg_leaves_block_artefacts():
    x = _photo(3, 96, 96)
    plain = make_degradation("camera_blur:noise=0,jpeg=0")(x, _gen(4))
    jpeg = make_degradation("camera_blur:noise=0,jpeg=1,quality=30")(x, _gen(4))
    assert torch.equal(jpeg * 255, (jpeg * 255).round())
    diff = (jpeg - plain).abs()
    assert 0.5 / 255 < float(diff.mean()) < 10 / 255
    gray = make_degradation("camera_blur:jpeg=1")(x[:1], _gen(4))
    assert gray.shape == (1, 96, 96)


# ----------------------------------------------------------------------------- camera noise
RAW = "camera_noise:shot=0.004,read_from_shot=0,read=0.0004,gains=0,srgb=0,quantize=0,jpeg=0,bayer=0"


def test_camera_noise_is_poisson_gaussian_in_linear_light():
    levels = torch.tensor([0.15, 0.3, 0.5, 0.65])  # >= 4.7 sigma from the clipping at 0 and 1
    x = levels.view(4, 1, 1).expand(4, 128, 128).reshape(1, 512, 128)   # four flat bands
    y = make_degradation(RAW)(x, _gen(0))
    var = (y - x).view(4, -1).var(1)
    expected = 0.004 * levels + 0.0004     # the variance grows linearly with the signal
    # 16,384 samples a band: relative standard error of a variance 1.1%, so 5%
    assert torch.allclose(var, expected, rtol=0.05)
    assert abs(float((y - x).mean())) < 1e-3


def test_camera_noise_levels_follow_the_read_shot_relation():
    d = CameraNoise()
    shots, reads = zip(*(d.levels(_gen(s)) for s in range(400)))
    shots, reads = torch.tensor(shots, dtype=torch.float64), torch.tensor(reads, dtype=torch.float64)
    assert shots.min() >= 1e-4 and shots.max() <= 1.2e-2
    # log-uniform: the median is the geometric mean of the range (to about 10%)
    assert abs(float(shots.log().median()) - 0.5 * math.log(1e-4 * 1.2e-2)) < 0.25
    residual = reads.log() - (2.18 * shots.log() + 1.2)
    assert abs(float(residual.mean())) < 0.05 and abs(float(residual.std()) - 0.26) < 0.03


def test_camera_noise_after_the_tone_curve_is_brightest_in_the_shadows_and_8_bit():
    levels = torch.tensor([0.1, 0.5, 0.9])
    x = levels.view(3, 1, 1).expand(3, 128, 128).reshape(1, 384, 128)
    y = make_degradation("camera_noise:shot=0.004,gains=0,jpeg=0,bayer=0")(x, _gen(1))
    assert torch.equal(y * 255, (y * 255).round())
    std = (y - x).view(3, -1).std(1)
    # sRGB compresses highlights: display-space noise falls with brightness although the
    # linear-light variance grows with it
    assert std[0] > std[1] > std[2] > 0


def test_camera_noise_per_channel_gains_and_bayer_correlation():
    flat = torch.full((3, 96, 96), 0.5)
    plain = make_degradation("camera_noise:shot=0.01,jpeg=0,bayer=0,quantize=0,srgb=0,gains=0")(flat, _gen(2))
    gained = make_degradation("camera_noise:shot=0.01,jpeg=0,bayer=0,quantize=0,srgb=0,red_gain=2,blue_gain=2")(flat, _gen(2))
    std_plain, std_gained = (plain - flat).flatten(1).std(1), (gained - flat).flatten(1).std(1)
    assert torch.allclose(std_plain[0], std_plain[1], rtol=0.1)
    # red and blue are amplified by the white balance: variance gain^2 * shot * x / gain
    assert float(std_gained[0] / std_gained[1]) == pytest.approx(2 ** 0.5, rel=0.1)
    mosaic = make_degradation("camera_noise:shot=0.01,jpeg=0,bayer=1,quantize=0,srgb=0,gains=0")(flat, _gen(2))
    n = mosaic - flat
    def neighbour_corr(a):
        return float(torch.corrcoef(torch.stack([a[:, :-1].flatten(), a[:, 1:].flatten()]))[0, 1])
    assert neighbour_corr(n[1]) > 0.2 > abs(neighbour_corr(plain[1] - flat[1]))


def test_demosaic_keeps_samples_and_flat_images():
    masks = bayer_masks(6, 8)
    assert torch.equal(masks.sum(0), torch.ones(6, 8)) and float(masks[1].mean()) == 0.5
    flat = torch.full((1, 6, 8), 0.3)
    assert torch.allclose(demosaic_bilinear(flat, masks), torch.full((3, 6, 8), 0.3))
    mosaic = torch.rand(1, 6, 8, generator=_gen(0))
    out = demosaic_bilinear(mosaic, masks)
    assert torch.equal((out * masks).sum(0), mosaic[0])


def test_srgb_curve_round_trip():
    x = torch.linspace(0, 1, 1001)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)
    assert float(srgb_to_linear(torch.tensor(0.5))) == pytest.approx(0.21404, abs=1e-5)


def test_boolean_parameters_parse_strictly():
    assert make_degradation("camera_noise:srgb=0").srgb is False
    assert make_degradation("camera_noise:srgb=true").srgb is True
    with pytest.raises(ValueError, match="0, 1, true or false"):
        make_degradation("camera_noise:srgb=maybe")


def test_rain_veil_chance_leaves_a_fraction_of_heavy_rain_unveiled():
    x = _photo(h=64, w=64, seed=3)
    def lift(y):
        d = (y - x).amax(0)
        return float(d[d <= d.quantile(0.2)].mean())
    rain = make_degradation("rain:density=0.004,layers=3,veil=0.3,veil_chance=0.5")
    lifts = [lift(rain(x, _gen(s))) for s in range(40)]
    unveiled = sum(v < 1e-6 for v in lifts)
    assert 8 <= unveiled <= 32  # about half; binomial(40, 0.5) is in 8..32 with p > 1 - 1e-5
    assert max(lifts) > 0.03
    assert make_degradation("rain").veil_chance == 1.0  # the default keeps every earlier seed's rain
    with pytest.raises(ValueError, match="veil_chance"):
        make_degradation("rain:veil_chance=1.5")


def test_rain_veil_follows_density_veils_dense_rain_and_seldom_sparse_rain():
    x = _photo(h=64, w=64, seed=3)
    def veiled(spec):
        rain = make_degradation(spec + ",veil=0.3,veil_follows_density=1,angle=0,spread=0")
        # the veil lifts even the pixels far from every streak; without one they stay put
        return sum(float((rain(x, _gen(s)) - x).amax(0).min()) > 1e-3 for s in range(30))
    dense = veiled("rain:density=0.008,layers=3")  # every layer at HEAVY_RAIN_DENSITY or above: chance 1
    sparse = veiled("rain:density=0.0005,layers=1")  # heaviness 0.06-0.125: chance at most 1/8
    assert dense == 30
    assert sparse <= 10  # binomial(30, 0.125) exceeds 10 with p < 1e-3
    assert make_degradation("rain").veil_follows_density is False
