"""The classical baselines of the model cards (durn.classical)."""
import numpy as np
import pytest
import torch

from durn.classical import _box_mean, dark_channel_prior, guided_filter


@pytest.mark.parametrize("radius", [1, 3])
def test_box_mean_is_the_window_mean_clipped_to_the_image(radius):
    x = np.random.default_rng(0).random((7, 10))
    want = np.array([[x[max(0, i - radius):i + radius + 1, max(0, j - radius):j + radius + 1].mean()
                      for j in range(10)] for i in range(7)])
    np.testing.assert_allclose(_box_mean(x, radius), want, rtol=0, atol=1e-12)


def test_guided_filter_keeps_edges_of_its_own_guide_and_flattens_noise():
    step = np.zeros((40, 40))
    step[:, 20:] = 1.0
    np.testing.assert_allclose(guided_filter(step, step, 4, 1e-6), step, atol=1e-3)  # edge kept
    noise = np.random.default_rng(1).normal(0, 0.1, (40, 40))
    flat = guided_filter(np.full((40, 40), 0.5), 0.5 + noise, 4, 1e-4)  # flat guide: a box mean
    assert flat.std() < noise.std() / 3


def _hazy_scene(t=0.6, airlight=0.9, h=120, w=96):
    """A scene obeying the prior (a black pixel in every 4 x 4 block), under a sky of
    pure airlight (the top 16 rows), hazed with constant transmission t."""
    g = torch.Generator().manual_seed(0)
    clean = 0.2 + 0.8 * torch.rand(3, h, w, generator=g)
    clean[:, ::4, ::4] = 0.0
    hazy = clean * t + airlight * (1 - t)
    hazy[:, :16] = airlight
    return clean, hazy


def test_dark_channel_prior_recovers_a_scene_that_obeys_the_prior():
    clean, hazy = _hazy_scene()
    out = dark_channel_prior(hazy, radius=8)
    assert out.shape == hazy.shape and out.dtype == hazy.dtype
    below = slice(40, None)  # away from the sky, whose transmission the guided filter spreads
    err_out = (out[:, below] - clean[:, below]).abs().mean()
    err_in = (hazy[:, below] - clean[:, below]).abs().mean()
    # omega 0.95 leaves 5% of the haze: t estimated 1 - 0.95 * 0.4 = 0.62 for 0.6, so the
    # scene comes back within a few percent, against the input's 0.1-0.2 off
    assert err_out < 0.03 and err_in > 0.1


def test_dark_channel_prior_says_what_it_expects():
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        dark_channel_prior(torch.rand(32, 32, 3))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        dark_channel_prior(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="omega"):
        dark_channel_prior(torch.rand(3, 8, 8), omega=0)
