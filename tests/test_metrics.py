"""durn.metrics against scikit-image and against the protocols' definitions."""
import math

import numpy as np
import pytest
import torch

from durn import metrics as M
from conftest import optional_import

skm = optional_import("skimage.metrics")


def _pair(shape, seed=0, noise=25):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    # a smooth image plus noise: realistic SSIM values, not near 0
    a = np.clip(np.cumsum(a.astype(np.int64) - 127, axis=-1) // 8 + 128, 0, 255).astype(np.uint8)
    b = np.clip(a.astype(np.int64) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
    return a, b


def _hwc(x):
    return np.ascontiguousarray(x.transpose(1, 2, 0))


# Both sides compute in float64 with the same formulas but different summation orders
# (scipy's running-sum filters vs. torch convolutions); they agree to ~1e-15, so 1e-12.
TOL = 1e-12


@pytest.mark.parametrize("shape", [(1, 23, 31), (3, 40, 29)])
def test_uniform_ssim_matches_skimage_defaults(shape):
    a, b = _pair(shape)
    ours = M.ssim_uniform(torch.from_numpy(a), torch.from_numpy(b), 255.0)
    if shape[0] == 1:
        ref = skm.structural_similarity(a[0], b[0], data_range=255)
    else:
        ref = skm.structural_similarity(_hwc(a), _hwc(b), data_range=255, channel_axis=-1)
    assert 0.2 < ref < 0.99
    assert abs(ours - ref) < TOL


@pytest.mark.parametrize("shape", [(1, 23, 31), (3, 40, 29)])
def test_gaussian_ssim_matches_skimage_gaussian(shape):
    a, b = _pair(shape, seed=1)
    ours = M.ssim_gaussian(torch.from_numpy(a), torch.from_numpy(b), 255.0)
    kw = dict(data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if shape[0] == 1:
        ref = skm.structural_similarity(a[0], b[0], **kw)
    else:
        ref = skm.structural_similarity(_hwc(a), _hwc(b), channel_axis=-1, **kw)
    assert abs(ours - ref) < TOL
    # and the two SSIMs are genuinely different definitions
    assert abs(ours - M.ssim_uniform(torch.from_numpy(a), torch.from_numpy(b), 255.0)) > 1e-5


def test_psnr_matches_skimage_and_identical_is_inf():
    a, b = _pair((3, 17, 19), seed=2)
    ours = M.psnr(torch.from_numpy(a), torch.from_numpy(b), 255.0)
    assert abs(ours - skm.peak_signal_noise_ratio(a, b, data_range=255)) < 1e-12
    assert M.psnr(torch.from_numpy(a), torch.from_numpy(a), 255.0) == math.inf


def test_ssim_rejects_images_smaller_than_window():
    x = torch.zeros(1, 6, 20)
    with pytest.raises(ValueError, match="smaller than the 7 x 7 window"):
        M.ssim_uniform(x, x, 1.0)


def test_truncation_and_rounding_differ_as_specified():
    x = torch.tensor([[[0.0, 0.999, 0.5, 1.7, -0.3, 100.4 / 255]]])
    assert M.quantize(x, "truncate").tolist() == [[[0, 254, 127, 255, 0, 100]]]
    assert M.quantize(x, "round").tolist() == [[[0, 255, 128, 255, 0, 100]]]
    with pytest.raises(ValueError):
        M.quantize(x, "floor")


def test_authors_truncation_matches_their_numpy_pipeline():
    # The authors: torchvision ToTensor (uint8 / 255 in float32) for the ground truth, the
    # network output clamped, then numpy float32 "*= 255" and astype(uint8).
    rng = np.random.default_rng(3)
    out = torch.from_numpy(rng.uniform(-0.1, 1.1, (3, 16, 16)).astype(np.float32))
    ref = out.numpy().copy()
    ref[ref > 1] = 1
    ref[ref < 0] = 0
    ref *= 255
    assert np.array_equal(M.quantize(out, "truncate").numpy(), ref.astype(np.uint8))
    k = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    assert torch.equal(M.quantize(k.float().div(255), "truncate"), k)  # targets survive exactly


def test_opencv_y_values():
    rgb = torch.tensor([[255, 0, 0, 255, 0, 128], [0, 255, 0, 255, 0, 128], [0, 0, 255, 255, 0, 128]],
                       dtype=torch.uint8).view(3, 1, 6)
    # 0.299, 0.587, 0.114 weights, rounded to nearest: 76.245 -> 76, 149.685 -> 150, 29.07 -> 29
    assert M.y_opencv(rgb).flatten().tolist() == [76, 150, 29, 255, 0, 128]


def test_opencv_y_matches_cv2_on_every_colour():
    cv2 = optional_import("cv2")
    v = np.arange(256, dtype=np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    rgb = np.stack([r, g, b], -1).reshape(4096, 4096, 3)
    ref = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[:, :, 0]
    ours = M.y_opencv(torch.from_numpy(rgb).permute(2, 0, 1).contiguous())[0].numpy()
    assert np.array_equal(ours, ref)


def test_bt601_y_values():
    rgb = torch.tensor([[255, 0, 0, 255, 0], [0, 255, 0, 255, 0], [0, 0, 255, 255, 0]], dtype=torch.uint8).view(3, 1, 5)
    y = M.y_bt601(rgb).flatten().tolist()
    expected = [16 + 65.481, 16 + 128.553, 16 + 24.966, 235.0, 16.0]
    assert max(abs(p - q) for p, q in zip(y, expected)) < 1e-12


def _to_float(u8):
    return torch.from_numpy(u8).float().div(255)


def test_authors_protocol_equals_skimage_on_truncated_images():
    a, b = _pair((3, 33, 35), seed=4)
    # outputs a fraction above the integers: truncation gives back b exactly
    out = _to_float(b) + 0.6 / 255
    got = M.compare(out, _to_float(a), protocol="authors", color_space="rgb")
    assert abs(got["psnr"] - skm.peak_signal_noise_ratio(a, b, data_range=255)) < 1e-12
    assert abs(got["ssim"] - skm.structural_similarity(_hwc(a), _hwc(b), data_range=255, channel_axis=-1)) < TOL
    rounded = M.compare(out, _to_float(a), protocol="standard", color_space="rgb")
    assert rounded["psnr"] != got["psnr"]


def test_authors_y_protocol_uses_opencv_y():
    a, b = _pair((3, 30, 30), seed=5)
    got = M.compare(_to_float(b), _to_float(a), protocol="authors", color_space="y")
    ya = M.y_opencv(torch.from_numpy(a))[0].numpy()
    yb = M.y_opencv(torch.from_numpy(b))[0].numpy()
    assert abs(got["psnr"] - skm.peak_signal_noise_ratio(ya, yb, data_range=255)) < 1e-12
    assert abs(got["ssim"] - skm.structural_similarity(ya, yb, data_range=255)) < TOL


def test_standard_protocol_is_basicsr_y_gaussian():
    a, b = _pair((3, 30, 30), seed=6)
    got = M.compare(_to_float(b), _to_float(a), protocol="standard", color_space="rgb")
    ya = M.y_bt601(torch.from_numpy(a))[0].numpy()
    yb = M.y_bt601(torch.from_numpy(b))[0].numpy()
    mse = np.mean((ya - yb) ** 2)
    assert abs(got["psnr"] - 10 * np.log10(255**2 / mse)) < 1e-10
    ref = skm.structural_similarity(ya, yb, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert abs(got["ssim"] - ref) < TOL


def test_authors_float_data_is_not_quantised():
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 1, (3, 20, 20)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape).astype(np.float32), 0, 1)
    got = M.compare(torch.from_numpy(b), torch.from_numpy(a), protocol="authors", color_space="rgb", float_data=True)
    assert abs(got["psnr"] - skm.peak_signal_noise_ratio(a.astype(np.float64), b.astype(np.float64), data_range=1)) < 1e-9
    ref = skm.structural_similarity(_hwc(a).astype(np.float64), _hwc(b).astype(np.float64), data_range=1, channel_axis=-1)
    assert abs(got["ssim"] - ref) < 1e-9


def test_compare_errors():
    x = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match="protocol"):
        M.compare(x, x, protocol="matlab", color_space="rgb")
    with pytest.raises(ValueError, match="gray"):
        M.compare(x, x, protocol="authors", color_space="gray")
    with pytest.raises(ValueError, match="differ in shape"):
        M.compare(x, x[:, :8], protocol="authors", color_space="rgb")
