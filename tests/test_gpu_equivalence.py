"""GPU only (skipped without CUDA): durn's Triton and CUDA kernels inside whole networks,
and op by op at larger awkward sizes, against PyTorch on the same GPU.

tests/test_triton_ops.py and tests/test_cuda_compile.py check each kernel against the
reference op by op on small images (natively on a GPU), and tests/test_optimize.py
checks the optimized networks on CPU only. Here the six networks optimized with the
"triton" and the "cuda" backend, and the fast path of ``durn.restore`` on CUDA (backend
"torch", cuDNN), are compared with the network run eagerly:

* float32, TF32 off (cuDNN and the Triton dots then compute exact float32 products): at
  most 2e-5 max abs from the exact float64 eager output, the bound test_optimize.py holds
  the CPU backends to;
* bfloat16 / float16 (weights and input in that dtype): the max abs error from the
  float64 output at most twice eager PyTorch's (cuDNN) in the same dtype, plus 1e-3.
  Every layer rounds to the dtype, in a different order on each path, so the bound is
  relative to the baseline's own error rather than a fixed number.

Sizes are odd and no multiple of any tile: 45x67 at batch 1, 37x53 at batch 2 in
channels-last; the networks mirror-pad to their size multiple inside, so the kernels see
odd sizes too. The op-level cases run one layer of the CUDA kernels at 131x97 (many
blocks, partial tiles at every border) in all three dtypes, float16 included, which their
own tests (test_cuda_compile.py: float64, float32, bfloat16 at 23x29) do not cover.
"""
import copy

import pytest
import torch
from torch import nn

import durn
from conftest import NETWORK_NAMES, perturb_batch_norms
from durn import ops
from durn.inference import optimize_for_inference
from durn.ops import reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

DEV = "cuda"
TOL32 = 2e-5
HALF = {"bfloat16": torch.bfloat16, "float16": torch.float16}
BACKENDS = ("triton", "cuda")
HALF_NETWORKS = ("durn_p", "durn_us")  # large dilated kernels; pixel shuffles and SE
_MODELS: dict = {}


@pytest.fixture(autouse=True)
def _exact_float32():
    previous = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous


def _backend(name: str) -> None:
    ok, why = ops.backend_status(name)
    if not ok:
        pytest.skip(f"backend {name} unavailable: {why}")


def _model(name: str) -> nn.Module:
    """The network on the GPU in float32, every BN's statistics and affine set away from
    identity (so folding them is exercised)."""
    if name not in _MODELS:
        model = perturb_batch_norms(durn.get_model(name).eval())
        model.min_size  # noqa: B018 - computed once, copied with the model
        _MODELS[name] = model.to(DEV)
    return _MODELS[name]


def _input(model, batch=1, h=45, w=67, channels_last=False):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, model.in_channels, h, w, generator=g).to(DEV)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _exact(model, x):
    with torch.no_grad():
        return copy.deepcopy(model).double()(x.double())


def _err(y, exact) -> float:
    return (y.double() - exact).abs().max().item()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_network_float32_equals_eager(name, backend):
    _backend(backend)
    model = _model(name)
    fast = optimize_for_inference(model, backend)
    assert {c.backend for c in fast.fused_convs()} == {backend}
    for x in (_input(model), _input(model, batch=2, h=37, w=53, channels_last=True)):
        exact = _exact(model, x)
        with torch.no_grad():
            y = fast(x)
        assert y.shape == exact.shape and y.dtype == torch.float32
        assert _err(y, exact) < TOL32, (name, backend, tuple(x.shape))


@pytest.mark.parametrize("dtype", list(HALF))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", HALF_NETWORKS)
def test_network_half_precision_no_worse_than_eager(name, backend, dtype):
    _backend(backend)
    low = HALF[dtype]
    model32 = _model(name)
    x32 = _input(model32)
    exact = _exact(model32, x32)
    model = copy.deepcopy(model32).to(low)
    x = x32.to(low)
    with torch.no_grad():
        eager_err = _err(model(x), exact)
        if not eager_err < float("inf"):
            pytest.skip(f"eager {dtype} itself is not finite on this network ({eager_err})")
        fast = optimize_for_inference(model, backend)
        y = fast(x)
    assert y.dtype == low and y.shape == exact.shape
    assert _err(y, exact) <= 2 * eager_err + 1e-3, (name, backend, dtype, _err(y, exact), eager_err)


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_restore_fast_path_on_cuda_equals_eager(name):
    model = _model(name)
    x = _input(model)
    exact = _exact(model, x)
    y = durn.restore(model, x)
    assert y.device.type == "cuda" and _err(y, exact) < TOL32, name


# (upscale, k, dilation, stride, padding, mode, residual_at, activation): the networks' largest layouts
LAYERS = [
    (1, 11, 3, 1, 15, "reflect", "post_affine", "relu"),
    (1, 3, 1, 2, 1, "reflect", "none", "none"),
    (1, 3, 12, 1, 12, "zeros", "pre_affine", "relu"),
    (2, 7, 1, 1, 3, "reflect", "post_activation", "tanh"),
]
TOL = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (2.0 ** -7, 1e-2), torch.float16: (2.0 ** -10, 1e-3)}


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("layer", LAYERS, ids=lambda c: "u{}-k{}-d{}-s{}-{}-{}".format(*c[:4], c[5], c[6]))
def test_cuda_layer_at_a_large_awkward_size(layer, dtype, channels_last):
    """One fused layer of the "cuda" backend at 131 x 97 (70 output channels: a partial
    channel tile) against the reference in float64 on the same rounded inputs; rtol is the
    dtype's eps (the kernel rounds once, at the end), atol covers float32 accumulation over
    K <= 4000 terms. (The Triton kernels get these checks, float16 included, in
    test_triton_ops.py, natively on a GPU; each new shape there costs a JIT compile.)"""
    backend = "cuda"
    _backend(backend)
    upscale, k, dilation, stride, padding, mode, residual_at, activation = layer
    g = torch.Generator().manual_seed(1)
    c, o, h, w = 24, 70, 131, 97
    x = torch.randn(1, c * upscale * upscale, h, w, generator=g)
    weight = torch.randn(o, c, k, k, generator=g) / (c * k * k) ** 0.5
    hh, ww = h * upscale, w * upscale
    ho = (hh + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wo = (ww + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    tensors = dict(x=x, weight=weight, bias=torch.randn(o, generator=g), scale=torch.rand(o, generator=g) + 0.5,
                   shift=torch.randn(o, generator=g),
                   residual=torch.randn(1, o, ho, wo, generator=g) if residual_at != "none" else None)
    low = {n: (t.to(DEV, dtype) if t is not None else None) for n, t in tensors.items()}
    if channels_last:
        low["x"] = low["x"].contiguous(memory_format=torch.channels_last)
    exact = {n: (t.double() if t is not None else None) for n, t in low.items()}
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, padding_mode=mode, residual_at=residual_at,
                  activation=activation, residual_alpha=-1.0 if activation == "tanh" else 1.0)
    if upscale > 1:
        got = ops.pixel_shuffle_conv2d(low.pop("x"), upscale, **low, **kwargs, backend=backend)
        want = reference.pixel_shuffle_conv2d(exact.pop("x"), upscale, **exact, **kwargs)
    else:
        got = ops.fused_conv2d(low.pop("x"), **low, **kwargs, backend=backend)
        want = reference.fused_conv2d(exact.pop("x"), **exact, **kwargs)
    assert got.dtype == dtype and got.shape == want.shape
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(got.double(), want, rtol=rtol, atol=atol)
