"""durn.losses: pytorch-msssim's SSIM is the spec's SSIM; the paper's weighted sums."""
import numpy as np
import pytest
import torch

from durn import losses
from conftest import optional_import


def _reference_ssim_float64(x, y):
    """Wang et al.'s SSIM written out independently: 11 x 11 Gaussian window (sigma 1.5)
    built in float64, every valid window position, C1 = 0.01^2, C2 = 0.03^2 (data in [0, 1]),
    population moments, mean over the map, channels and batch."""
    x, y = x.double().numpy(), y.double().numpy()
    t = np.arange(11) - 5.0
    g = np.exp(-t**2 / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    n, c, h, wd = x.shape
    vals = []
    for i in range(n):
        for ch in range(c):
            for r in range(h - 10):
                for q in range(wd - 10):
                    a, b = x[i, ch, r:r + 11, q:q + 11], y[i, ch, r:r + 11, q:q + 11]
                    ma, mb = (w * a).sum(), (w * b).sum()
                    va, vb = (w * a * a).sum() - ma**2, (w * b * b).sum() - mb**2
                    cov = (w * a * b).sum() - ma * mb
                    vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def _images(shape=(2, 3, 20, 23), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)  # some structure
    y = (x + 0.08 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


def test_ssim_is_the_specs_gaussian_ssim():
    x, y = _images()
    ref = _reference_ssim_float64(x, y)
    # pytorch-msssim builds its window in float32 and casts it: agreement to ~1e-8,
    # so 1e-6 (a window of another size, sigma or padding would differ by > 1e-3)
    assert abs(float(losses.ssim(x, y)) - ref) < 1e-6
    assert 0.3 < ref < 0.95


def test_ssim_matches_skimage_gaussian_ssim():
    skm = optional_import("skimage.metrics")
    x, y = _images((1, 3, 32, 27), seed=1)
    ref = skm.structural_similarity(x[0].permute(1, 2, 0).numpy(), y[0].permute(1, 2, 0).numpy(), data_range=1.0,
                                    channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert abs(float(losses.ssim(x, y)) - ref) < 1e-6


def test_weighted_sums_are_the_papers():
    x, y = _images(seed=2)
    x, y = x.float(), y.float()
    s, l1, l2 = losses.ssim(x, y), (x - y).abs().mean(), ((x - y) ** 2).mean()
    assert torch.allclose(losses.make_loss("ssim_l1")(x, y), 1.1 * (-s) + 0.75 * l1, atol=1e-7, rtol=0)
    assert torch.allclose(losses.make_loss("l1_x1.1")(x, y), 1.1 * l1, atol=1e-7, rtol=0)
    assert torch.allclose(losses.make_loss("l2")(x, y), l2, atol=1e-8, rtol=0)
    assert torch.allclose(losses.make_loss("ssim")(x, x), torch.tensor(-1.0), atol=1e-6)
    terms = losses.make_loss("ssim_l1").terms(x, y)
    assert set(terms) == {"ssim", "l1"}


def test_losses_have_gradients():
    x, y = _images((2, 1, 16, 16), seed=3)
    x = x.float().requires_grad_()
    for name in losses.LOSSES:
        x.grad = None
        losses.make_loss(name)(x, y.float()).backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0, name


def test_loss_errors():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="unknown loss"):
        losses.make_loss("perceptual")
    with pytest.raises(ValueError, match="differ in shape"):
        losses.make_loss("l1")(x, x[..., :8])
    with pytest.raises(ValueError, match="at least 11"):
        losses.ssim(x[..., :8, :8], x[..., :8, :8])
    with pytest.raises(ValueError, match="terms"):
        losses.WeightedLoss({"lpips": 1.0})


def test_psnr_loss_is_minus_the_mean_psnr_of_the_images():
    from durn.metrics import psnr

    x, y = _images((3, 3, 24, 20), seed=5)
    x, y = x.float(), y.float()
    y = y.clone()
    y[1] = x[1] + 0.1 * (y[1] - x[1])  # one image nearly clean: 20 dB above the others
    per_image = torch.stack([torch.as_tensor(psnr(x[i], y[i], 1.0), dtype=torch.float64) for i in range(3)])
    capped = -10 * torch.log10(10 ** (-per_image / 10) + losses.PSNR_LOSS_EPS)  # durn.metrics' PSNR, capped
    assert float((capped - per_image)[[0, 2]].abs().max()) < 0.01  # the cap: nothing at 22 dB
    assert abs(float(losses.make_loss("psnr")(x, y)) + float(capped.mean())) < 1e-4
    # weighting: against L2, the nearly clean image's gradient grows by 1 / MSE_i relative
    # to the others' (errors 10x smaller, MSE 100x: from 0.1x the others' gradient to 10x)
    def grad_norms(name):
        xg = x.clone().requires_grad_()
        losses.make_loss(name)(xg, y).backward()
        return xg.grad.flatten(1).norm(dim=1)

    g2, gp = grad_norms("l2"), grad_norms("psnr")
    assert g2[1] < 0.2 * g2[0] and gp[1] > 5 * gp[0] and gp[1] > 5 * gp[2]
    # an exact restoration stays finite (the cap)
    assert torch.isfinite(losses.make_loss("psnr")(x, x))
