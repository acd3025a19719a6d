"""durn.restore and durn.Restore: image kinds, channels, channel order, precision, pickling."""
import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import durn
from durn.restoration import NonFiniteFallback, UntrainedWeightsWarning, load_network
from conftest import optional_import


pytestmark = pytest.mark.usefixtures("one_thread")


def crop(name, top, left, height, width):
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)()[top:top + height, left:left + width])


@pytest.fixture(scope="module")
def p_real():
    torch.manual_seed(0)
    return durn.durn_p_real().eval()


@pytest.fixture(scope="module")
def p_gray():
    torch.manual_seed(1)
    return durn.durn_p().eval()


def as_tensor(img: np.ndarray, scale=255.0) -> torch.Tensor:
    t = torch.from_numpy(img.astype(np.float32) / scale)
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1)


def network(model, x):
    with torch.no_grad():
        return model(x)


# -- kinds -------------------------------------------------------------------------------


def test_uint8_rgb_photo_odd_size(p_real):
    img = crop("astronaut", 31, 47, 37, 53)
    out = durn.restore(p_real, img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    expected = (network(p_real, as_tensor(img)) * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(out, expected)


def test_uint16_is_scaled_by_65535_and_rounded(p_real):
    img = crop("coffee", 100, 100, 29, 33).astype(np.uint16) * 257 + 100
    out = durn.restore(p_real, img)
    assert out.dtype == np.uint16 and out.shape == img.shape
    y = network(p_real, as_tensor(img, 65535.0)).double()
    expected = (y * 65535).round().clamp(0, 65535).permute(1, 2, 0).numpy().astype(np.uint16)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1  # float32 rounding at the .5 boundary
    assert out.max() <= 65535 and out.min() >= 0


def test_results_are_clamped_for_integers_not_for_floats(p_real):
    # a bright patch: the untrained residual pushes some values past 1
    img = np.full((20, 24, 3), 255, np.uint8)
    y = network(p_real, as_tensor(img))
    assert y.max() > 1  # the premise
    assert durn.restore(p_real, img).max() == 255
    torch.testing.assert_close(durn.restore(p_real, as_tensor(img)), y, rtol=0, atol=1e-6)


def test_float_tensor_batched_unbatched_and_device(p_real):
    x = as_tensor(crop("chelsea", 10, 10, 30, 41))
    batch = torch.stack([x, x.flip(-1)])
    out = durn.restore(p_real, batch)
    assert out.shape == batch.shape and out.dtype == torch.float32
    torch.testing.assert_close(durn.restore(p_real, x), out[0], rtol=0, atol=1e-6)
    assert durn.restore(p_real, x.double()).dtype == torch.float64


def test_list_of_different_sizes_and_kinds(p_real):
    a = crop("astronaut", 0, 0, 25, 31)
    b = as_tensor(crop("coffee", 0, 0, 40, 22))
    c = Image.fromarray(crop("chelsea", 0, 0, 18, 50))
    out = durn.restore(p_real, [a, b, c])
    assert isinstance(out, list) and out[0].shape == a.shape and out[1].shape == b.shape
    assert isinstance(out[2], Image.Image) and out[2].size == c.size and out[2].mode == "RGB"
    np.testing.assert_array_equal(out[0], durn.restore(p_real, a))


def test_gray_photo_on_rgb_network_comes_back_gray(p_real):
    gray = crop("camera", 100, 200, 30, 45)
    out = durn.restore(p_real, gray)
    assert out.shape == gray.shape and out.dtype == np.uint8
    rgb = network(p_real, as_tensor(np.repeat(gray[:, :, None], 3, axis=2)))
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0)
    expected = (luma * 255).round().clamp(0, 255).byte().numpy()
    np.testing.assert_array_equal(out, expected)
    assert durn.restore(p_real, gray[:, :, None]).shape == (30, 45, 1)


def test_rgb_photo_on_gray_network_restores_each_channel(p_gray):
    rgb = crop("astronaut", 200, 200, 21, 26)
    out = durn.restore(p_gray, rgb)
    assert out.shape == rgb.shape
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], durn.restore(p_gray, rgb[:, :, c]))


def test_alpha_is_kept(p_real, p_gray):
    rgb = crop("coffee", 50, 60, 22, 27)
    alpha = np.linspace(0, 255, 22 * 27).reshape(22, 27).astype(np.uint8)
    rgba = np.dstack([rgb, alpha])
    out = durn.restore(p_real, rgba)
    np.testing.assert_array_equal(out[:, :, 3], alpha)
    np.testing.assert_array_equal(out[:, :, :3], durn.restore(p_real, rgb))
    la = np.dstack([rgb[:, :, 0], alpha])
    out = durn.restore(p_gray, la)
    np.testing.assert_array_equal(out[:, :, 1], alpha)
    np.testing.assert_array_equal(out[:, :, 0], durn.restore(p_gray, rgb[:, :, 0]))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "I;16", "CMYK"])
def test_pil_modes_come_back_as_expected(p_real, mode):
    base = Image.fromarray(crop("astronaut", 0, 100, 19, 23))
    im = {"P": lambda: base.convert("P"), "1": lambda: base.convert("1"), "CMYK": lambda: base.convert("CMYK"),
          "I;16": lambda: Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257),
          "RGBA": lambda: base.convert("RGBA")}.get(mode, lambda: base.convert(mode))()
    out = durn.restore(p_real, im)
    back = {"P": "RGB", "1": "L"}.get(mode, mode)
    assert out.mode == back and out.size == im.size


def test_bgr_weights_get_bgr_and_callers_keep_rgb():
    torch.manual_seed(0)
    model = durn.durn_s_p().eval()
    x = as_tensor(crop("rocket", 100, 200, 24, 28))
    as_rgb = durn.restore(model, x)
    model.channel_order = "BGR"  # what load_reference sets for the authors' raindrop weights
    as_bgr = durn.restore(model, x)
    torch.testing.assert_close(as_bgr, network(model, x.flip(0)).flip(0), rtol=0, atol=1e-6)
    assert (as_bgr - as_rgb).abs().max() > 1e-3


def test_bad_inputs_say_what_was_expected(p_real):
    with pytest.raises(ValueError, match="floating-point"):
        durn.restore(p_real, torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8, uint16 or float"):
        durn.restore(p_real, np.zeros((8, 8, 3), np.int32))
    with pytest.raises(ValueError, match="channels"):
        durn.restore(p_real, torch.rand(5, 8, 8))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        durn.restore(p_real, np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        durn.restore(p_real, "photo.png")
    with pytest.raises(ValueError, match="NaN"):
        durn.restore(p_real, torch.full((3, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="precision"):
        durn.restore(p_real, torch.rand(3, 8, 8), precision="int8")


def test_model_mode_is_restored_and_no_graph_is_built():
    torch.manual_seed(0)
    model = durn.durn_p().train()
    x = torch.rand(1, 20, 20, requires_grad=True)
    out = durn.restore(model, x)
    assert model.training and not out.requires_grad
    torch.testing.assert_close(out, network(model.eval(), x), rtol=0, atol=1e-6)  # ran in eval mode


# -- precision ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::durn.restoration.EmulatedPrecisionWarning")  # accuracy, not speed, is tested
def test_bfloat16_is_close_to_float32_on_a_photo(p_real):
    img = crop("chelsea", 50, 100, 40, 48)
    full = durn.restore(p_real, as_tensor(img))
    half = durn.restore(p_real, as_tensor(img), precision="bf16")
    diff = (half - full).abs().max().item()
    assert 0 < diff < 0.05  # half precision really ran; bf16 keeps ~3 significant digits


@pytest.mark.parametrize("precision, probe, name", [("bf16", "cpu_has_native_bf16", "bfloat16"),
                                                   ("fp16", "cpu_has_native_fp16", "float16")])
def test_half_precision_on_a_cpu_that_emulates_it_warns(p_real, monkeypatch, precision, probe, name):
    from durn.ops import backends
    from durn.restoration import EmulatedPrecisionWarning

    x = torch.rand(3, 16, 16)
    monkeypatch.setattr(backends, probe, lambda: False)
    with pytest.warns(EmulatedPrecisionWarning, match=f"{name}.*emulated"):
        durn.restore(p_real, x, precision=precision)
    monkeypatch.setattr(backends, probe, lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmulatedPrecisionWarning)
        durn.restore(p_real, x, precision=precision)
        durn.restore(p_real, x)  # float32 never warns


def test_native_half_probes_answer_per_dtype(monkeypatch):
    from durn.ops import backends

    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(backends, "cpu_has_native_fp16", lambda: False)
    assert backends.cpu_has_native(torch.bfloat16) and not backends.cpu_has_native(torch.float16)
    assert backends.cpu_has_native(torch.float32)
    monkeypatch.undo()
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)
    monkeypatch.setattr(backends, "_cpu_flags", lambda: {"avx2", "avx512_fp16"})
    assert backends.cpu_has_native_fp16()
    monkeypatch.setattr(backends, "_cpu_flags", lambda: {"avx2", "fma"})
    assert not backends.cpu_has_native_fp16()


@pytest.mark.filterwarnings("ignore::durn.restoration.EmulatedPrecisionWarning")  # accuracy, not speed, is tested
def test_half_precision_keeps_global_statistics_in_float32():
    torch.manual_seed(0)
    model = durn.durn_u().eval()
    seen = []
    norm = model.stem[1]
    handle = norm.register_forward_hook(lambda m, args, out: seen.append(args[0].dtype))
    try:
        durn.restore(model, torch.rand(3, 16, 16), precision="bfloat16")
    finally:
        handle.remove()
    assert seen and set(seen) == {torch.float32}


@pytest.mark.filterwarnings("ignore::durn.restoration.EmulatedPrecisionWarning")  # accuracy, not speed, is tested
def test_fp16_overflow_is_recomputed_in_float32_not_returned_black():
    torch.manual_seed(0)
    model = durn.durn_p_real().eval()
    with torch.no_grad():
        model.stem[0].weight.mul_(1e6)  # activations far beyond float16's 65504
    x = as_tensor(crop("astronaut", 0, 0, 20, 24))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        assert not torch.isfinite(model(x)).all()  # the premise: plain fp16 overflows
    with pytest.warns(NonFiniteFallback):
        out = durn.restore(model, x, precision="fp16")
    torch.testing.assert_close(out, durn.restore(model, x), rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:tile_overlap")
@pytest.mark.filterwarnings("ignore::durn.restoration.EmulatedPrecisionWarning")  # accuracy, not speed, is tested
def test_nan_in_one_half_precision_tile_recomputes_that_tile(p_real):
    x = as_tensor(crop("coffee", 0, 0, 16, 150))
    calls = {"bad": 0}

    def poison(module, args, out):  # non-finite only in half precision, only for the first tile
        if out.dtype == torch.bfloat16 and calls["bad"] == 0:
            calls["bad"] += 1
            return out + float("nan")
        return out

    handle = p_real.tail[3].register_forward_hook(poison)
    try:
        with pytest.warns(NonFiniteFallback):
            out = durn.restore(p_real, x, tile=100, tile_overlap=20, precision="bf16")
    finally:
        handle.remove()
    assert calls["bad"] == 1 and torch.isfinite(out).all()
    # tiles at columns 0..99 and 50..149: the first was recomputed in float32, the second is bf16
    full = durn.restore(p_real, x, tile=100, tile_overlap=20)
    torch.testing.assert_close(out[..., :50], full[..., :50], rtol=0, atol=1e-6)
    assert 0 < (out[..., 100:] - full[..., 100:]).abs().max() < 0.05


def test_half_precision_needs_float32_weights():
    model = durn.durn_p_real().double().eval()
    with pytest.raises(ValueError, match="float32 weights"):
        durn.restore(model, torch.rand(3, 8, 8, dtype=torch.float64), precision="bf16")


# -- Restore module ----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:tile_overlap")
def test_restore_module_in_a_pipeline_pickles_and_runs_in_workers(p_real):
    transform = durn.Restore(p_real, tile=16, tile_overlap=6)
    img = Image.fromarray(crop("astronaut", 10, 10, 30, 30))
    direct = transform(img)
    clone = pickle.loads(pickle.dumps(transform))
    assert np.array_equal(np.asarray(clone(img)), np.asarray(direct))

    def to_tensor(im):
        return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)

    pipeline = [transform, to_tensor]

    class Photos(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            out = img
            for step in pipeline:
                out = step(out)
            return out

    loader = torch.utils.data.DataLoader(Photos(), batch_size=2, num_workers=1)
    (batch,) = list(loader)
    assert torch.equal(batch[0], to_tensor(direct))


def test_restore_module_in_torchvision_compose(p_real):
    transforms = optional_import("torchvision.transforms")
    img = Image.fromarray(crop("coffee", 10, 10, 24, 30))
    pipeline = transforms.Compose([durn.Restore(p_real), transforms.ToTensor()])
    torch.testing.assert_close(pipeline(img), transforms.ToTensor()(durn.restore(p_real, img)))


def test_restore_module_by_name_needs_weights(tmp_path):
    with pytest.raises(ValueError, match=r"no pretrained weights for durn_u yet.*trainedmodels.*untrained"):
        durn.Restore("durn_u")
    released = durn.Restore("durn_p_real")  # released since durn_p_real.photos_camera_noise
    default = load_network("durn_p_real", "default")
    assert all(torch.equal(p, q) for p, q in zip(released.network.parameters(), default.parameters()))
    with pytest.warns(UntrainedWeightsWarning, match="NOT a restoration"):
        a = durn.Restore("durn_p_real", weights="untrained")
    with pytest.warns(UntrainedWeightsWarning):
        b = load_network("durn_p_real", "untrained")
    assert all(torch.equal(p, q) for p, q in zip(a.network.parameters(), b.parameters()))  # seeded
    path = tmp_path / "w.pt"
    torch.save(b.state_dict(), path)
    c = durn.Restore("durn_p_real", weights=str(path))
    x = torch.rand(3, 20, 20)
    torch.testing.assert_close(c(x), a(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="tile"):
        durn.Restore(b, tile="huge")
    assert "channel_order='RGB'" in repr(c)


def test_a_32_bit_image_of_8_bit_values_is_taken_as_8_bit(p_gray):
    """Issue 12.9: an 'I' image holding 0..255 is 8-bit data, not near-black 16-bit; said so."""
    img = crop("camera", 200, 200, 24, 30)
    with pytest.warns(UserWarning, match="taken as 8-bit"):
        out = durn.restore(p_gray, Image.fromarray(img.astype(np.int32)))
    assert out.mode == "I"
    np.testing.assert_array_equal(np.asarray(out), durn.restore(p_gray, img).astype(np.int32))
    sixteen = img.astype(np.int32) * 257  # values above 255: 16-bit data, as before
    np.testing.assert_array_equal(np.asarray(durn.restore(p_gray, Image.fromarray(sixteen))),
                                  durn.restore(p_gray, sixteen.astype(np.uint16)).astype(np.int32))


def test_float_images_on_the_0_255_scale_are_refused(p_real):
    """Issue 12.9: float input is [0, 1]; 0..255 data says what to do instead of restoring garbage."""
    img = crop("astronaut", 0, 0, 16, 16)
    for bad in (img.astype(np.float32), as_tensor(img, scale=1.0)):
        with pytest.raises(ValueError, match="divide by 255"):
            durn.restore(p_real, bad)
    noisy = as_tensor(img) + torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(0)) * 70 / 255
    assert noisy.max() > 1 and noisy.min() < 0
    assert durn.restore(p_real, noisy).shape == noisy.shape  # unclipped noise is fine
