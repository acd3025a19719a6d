"""Transform-domain convolutions (durn/ops/fft_conv.py, winograd_conv.py) against the
reference ``fused_conv2d``.

Tolerances. In float64 the transforms are exact up to rounding: < 1e-12 relative to the
output's largest value (measured: 2e-14 at most). In float32 the error is relative to
the output's largest value, like any float32 conv's: the direct conv itself is about
1e-6 from the float64 result on these shapes. A Fourier tile adds rounding of its
O(T)-term DFT sums (measured 2e-7 to 2e-6); Winograd F(4x4, 3x3) amplifies rounding by
its transform's entries up to 4 (measured 4e-6), F(6x6, 3x3) by up to 16 (2e-5).
``TRANSFORM_RTOL`` (2e-5) is the bound the optimizer demands of a layer before using a
transform, and the bound asserted here for Fourier and F(4,3).
"""
import itertools

import pytest
import torch

from durn.ops import reference
from durn.ops import transform_conv
from durn.ops.fft_conv import fft_conv, fft_fused_conv2d, fourier_matrices
from durn.ops.winograd_conv import winograd_conv, winograd_fused_conv2d, winograd_matrices
from durn.inference import TRANSFORM_RTOL

D = torch.float64
RTOL32 = TRANSFORM_RTOL[torch.float32]


def _rel_err(got, want):
    return ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()


def _case(k, dilation, c=5, o=6, hw=(23, 19), dtype=D, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *hw, generator=g, dtype=D).to(dtype)
    w = (torch.randn(o, c, k, k, generator=g, dtype=D) / (c * k)).to(dtype)
    b = torch.randn(o, generator=g, dtype=D).to(dtype)
    return x, w, b


# Kernel sizes and dilations of the six networks' stride-1 convs the optimizer may give
# a Fourier transform (k >= 5), plus 3x3 and a zero-padded layer.
FOURIER_CASES = [
    (5, 1, "reflect", 16), (7, 1, "reflect", 24), (7, 2, "reflect", 16), (11, 1, "reflect", 32),
    (11, 2, "reflect", 24), (11, 3, "reflect", 16), (7, 1, "zeros", 16), (5, 1, "zeros", 12),
    (3, 1, "reflect", 8), (11, 1, "reflect", 17),
]


@pytest.mark.parametrize("k, dilation, mode, tile", FOURIER_CASES)
def test_fourier_conv_equals_reference_float64(k, dilation, mode, tile):
    x, w, b = _case(k, dilation, hw=(27, 31) if dilation * (k - 1) // 2 >= 19 else (23, 19))
    pad = dilation * (k - 1) // 2
    want = reference.fused_conv2d(x, w, b, padding=pad, dilation=dilation, padding_mode=mode)
    got = fft_fused_conv2d(x, w, b, padding=pad, dilation=dilation, padding_mode=mode, tile=tile)
    assert got.shape == want.shape
    assert _rel_err(got, want) < 1e-12


@pytest.mark.parametrize("k, dilation, tile", [(5, 1, 16), (7, 2, 24), (11, 1, 32), (11, 3, 24)])
def test_fourier_conv_float32_error_is_rounding(k, dilation, tile):
    x, w, b = _case(k, dilation, c=32, o=32, hw=(40, 44), dtype=torch.float32)
    pad = dilation * (k - 1) // 2
    exact = reference.fused_conv2d(x.double(), w.double(), b.double(), padding=pad, dilation=dilation,
                                   padding_mode="reflect")
    got = fft_fused_conv2d(x, w, b, padding=pad, dilation=dilation, padding_mode="reflect", tile=tile)
    direct = reference.fused_conv2d(x, w, b, padding=pad, dilation=dilation, padding_mode="reflect")
    assert got.dtype == torch.float32
    assert _rel_err(got, exact) < RTOL32
    # and of the order of the direct float32 conv's own rounding
    assert _rel_err(got, exact) < 20 * _rel_err(direct, exact)


@pytest.mark.parametrize("residual_at, activation", list(itertools.product(
    ["none", "pre_affine", "post_affine", "post_activation"], ["none", "relu", "tanh"])))
def test_transform_epilogues(residual_at, activation):
    x, w, b = _case(5, 1)
    g = torch.Generator().manual_seed(1)
    scale, shift = torch.rand(6, generator=g, dtype=D) + 0.5, torch.randn(6, generator=g, dtype=D)
    res = torch.randn(2, 6, 23, 19, generator=g, dtype=D) if residual_at != "none" else None
    args = (x, w, b, scale, shift, res, 1, 2, 1, "reflect", residual_at, activation, -0.75)
    want = reference.fused_conv2d(*args)
    assert _rel_err(fft_fused_conv2d(*args, tile=12), want) < 1e-12
    x3, w3, b3 = _case(3, 1)
    args3 = (x3, w3, b3) + args[3:6] + (1, 1, 1, "reflect", residual_at, activation, -0.75)
    assert _rel_err(winograd_fused_conv2d(*args3), reference.fused_conv2d(*args3)) < 1e-12


@pytest.mark.parametrize("outputs, dilation, mode", [(2, 1, "reflect"), (4, 1, "reflect"), (4, 2, "zeros"),
                                                      (4, 3, "reflect"), (6, 1, "zeros")])
def test_winograd_equals_reference_float64(outputs, dilation, mode):
    x, w, b = _case(3, dilation)
    want = reference.fused_conv2d(x, w, b, padding=dilation, dilation=dilation, padding_mode=mode)
    got = winograd_fused_conv2d(x, w, b, padding=dilation, dilation=dilation, padding_mode=mode, outputs=outputs)
    assert _rel_err(got, want) < 1e-12


@pytest.mark.parametrize("outputs, bound", [(2, RTOL32), (4, RTOL32), (6, 5 * RTOL32)])
def test_winograd_float32_error(outputs, bound):
    x, w, b = _case(3, 1, c=64, o=32, hw=(40, 36), dtype=torch.float32)
    exact = reference.fused_conv2d(x.double(), w.double(), b.double(), padding=1, padding_mode="reflect")
    got = winograd_fused_conv2d(x, w, b, padding=1, padding_mode="reflect", outputs=outputs)
    assert _rel_err(got, exact) < bound


def test_fourier_matrices_are_the_dft():
    m = fourier_matrices(12, 5)
    tile = torch.randn(12, 12, dtype=D)
    a = m.fwd_w @ tile.T  # rows (part, fw), columns th
    z = m.fwd_h @ a.T.reshape(24, 7)  # rows (th, part) -> rows (part, fh)
    spec = torch.fft.rfft2(tile)  # (fh, fw)
    torch.testing.assert_close(z[:12], spec.real, rtol=0, atol=1e-12)
    torch.testing.assert_close(z[12:], spec.imag, rtol=0, atol=1e-12)


def test_winograd_matrices_filter_1d():
    m = winograd_matrices(4, 3)
    from durn.ops.winograd_conv import POINTS, _evaluation

    d, g = torch.randn(6, dtype=D), torch.randn(3, dtype=D)
    y = m.inv_w @ ((_evaluation(POINTS[4], 3) @ g) * (m.fwd_w @ d))
    want = torch.stack([(d[i:i + 3] * g).sum() for i in range(4)])
    torch.testing.assert_close(y, want, rtol=0, atol=1e-13)


def test_pixel_shuffle_input_and_memory_formats():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 12, 7, 6, generator=g, dtype=D)
    w, b = torch.randn(5, 3, 5, 5, generator=g, dtype=D), torch.randn(5, generator=g, dtype=D)
    plan = fft_conv(w, 1, 16)
    want = reference.pixel_shuffle_conv2d(x, 2, w, b, padding=2, padding_mode="reflect")
    got = plan(x, b, padding=2, padding_mode="reflect", upscale=2)
    assert _rel_err(got, want) < 1e-12 and got.is_contiguous()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    got = plan(x_cl, b, padding=2, padding_mode="reflect", upscale=2)
    assert _rel_err(got, want) < 1e-12
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_results_do_not_depend_on_chunking(monkeypatch):
    x, w, b = _case(7, 2, hw=(41, 37))
    want = fft_fused_conv2d(x, w, b, padding=6, dilation=2, padding_mode="reflect", tile=16)
    monkeypatch.setattr(transform_conv, "CHUNK_BYTES", 1)  # one tile row per chunk
    got = fft_fused_conv2d(x, w, b, padding=6, dilation=2, padding_mode="reflect", tile=16)
    # Not bit for bit: BLAS may round a matmul differently for another row count (seen on an
    # AMD EPYC: 6% of the values 1 ulp apart); a chunking bug would be off by O(1).
    assert _rel_err(got, want) < 1e-14
    got3 = winograd_fused_conv2d(x, _case(3, 1)[1], b, padding=1, padding_mode="zeros")
    monkeypatch.setattr(transform_conv, "CHUNK_BYTES", 4 << 20)
    assert _rel_err(got3, winograd_fused_conv2d(x, _case(3, 1)[1], b, padding=1, padding_mode="zeros")) < 1e-14


def test_fresh_outputs_survive_the_next_call():
    # Scratch buffers are reused between calls; results must never alias them.
    x, w, b = _case(5, 1, hw=(30, 30))
    plan = winograd_conv(_case(3, 1)[1], 1)
    first = plan(x, b, padding=1, padding_mode="reflect")
    kept = first.clone()
    plan(x * 2, b, padding=1, padding_mode="reflect")
    fft_fused_conv2d(x * 3, w, b, padding=2, padding_mode="reflect", tile=12)
    assert torch.equal(first, kept)


@pytest.mark.parametrize("kwargs, match", [
    (dict(stride=2), "stride 1"),
    (dict(padding=30, padding_mode="reflect"), "reflect padding"),
    (dict(dtype=torch.float16), "supports"),
])
def test_bad_arguments(kwargs, match):
    x, w, b = _case(5, 1)
    dtype = kwargs.pop("dtype", None)
    if dtype is not None:
        x, w, b = x.to(dtype), w.to(dtype), b.to(dtype)
    with pytest.raises(ValueError, match=match):
        fft_fused_conv2d(x, w, b, **kwargs)
    with pytest.raises(ValueError, match="tile"):
        fourier_matrices(5, 5)
    with pytest.raises(ValueError, match="3x3"):
        winograd_conv(w)
