"""The Triton kernels (``durn.kernels``, backend "triton") against the reference.

Without a GPU they run on CPU tensors under Triton's interpreter (conftest.py sets
TRITON_INTERPRET=1 before anything imports triton); with a CUDA device the same tests run
the compiled kernels on it.

Every result is compared with the reference evaluated in float64 on the same input values
(the inputs of a float16/bfloat16 case are rounded to that dtype first), so a tolerance only
has to cover the kernel's own rounding:

* float32: ``atol = rtol = 1e-5``. The kernel sums K = C*k*k <= 2420 products in float32;
  for unit-scale outputs (weights scaled by 1/sqrt(K), as PyTorch initialises them) the
  rounding error grows like sqrt(K) * 2**-24 * |y|, i.e. about 3e-6 at most here (measured:
  about 1e-6). A wrong index or tap gives errors of order 0.1-1.
* float16 / bfloat16: ``rtol = eps`` of the dtype (2**-10, 2**-7) and ``atol = 1e-5``: the
  accumulation and the whole epilogue run in float32 on the exactly representable inputs,
  so the only large error is the single final rounding to the dtype, at most eps/2 relative.

float64 is not supported: the kernels take float32, float16 and bfloat16 (the issue's
dtypes; a float64 ``tl.dot`` has no tensor-core path) and raise a TypeError for float64, so
there is no float64 gradcheck of these ops: gradients are compared in float32 with the
reference's float64 gradients instead.
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import torch

from durn import ops
from durn.ops import reference, triton_backend
from conftest import optional_import

optional_import("triton", reason="the triton package is not installed")

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"


def _load():
    # Only the triton backend is probed (ops.available_backends() would also build the C++ one).
    try:
        return True, triton_backend.load("triton")
    except Exception as err:  # the reason the backend is unavailable, as the registry reports it
        return False, f"{type(err).__name__}: {err}"


LOADED, WHY = _load()
pytestmark = pytest.mark.skipif(not LOADED, reason=f"triton backend unavailable: {WHY}")
K = triton_backend.import_kernels() if LOADED else None

REPO = Path(__file__).resolve().parents[1]
D = torch.float64
TOL = {
    torch.float32: dict(atol=1e-5, rtol=1e-5),
    torch.float16: dict(atol=1e-5, rtol=2.0 ** -10),
    torch.bfloat16: dict(atol=1e-5, rtol=2.0 ** -7),
}


@pytest.fixture(autouse=True)
def _exact_float32():
    """On a GPU, float32 convolutions (PyTorch's and these kernels) use TF32 unless told not
    to; the float32 tolerances above assume exact float32 products."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = previous


def _rand(*shape, scale=1.0, dtype=torch.float32):
    return (torch.randn(*shape, dtype=D) * scale).to(device=DEVICE, dtype=dtype)


def _weight(o, c, k, dtype=torch.float32):
    return _rand(o, c, k, k, scale=(c * k * k) ** -0.5, dtype=dtype)


def _f64(args):
    return [a.to(D) if isinstance(a, torch.Tensor) else a for a in args]


def _check_conv(args, dtype=torch.float32, upscale=None, blocks=None):
    """Run the kernel on ``args`` (reference positional order) and compare in float64."""
    if upscale is None:
        got = K.fused_conv2d(*args, blocks=blocks)
        want = reference.fused_conv2d(*_f64(args))
    else:
        got = K.pixel_shuffle_conv2d(args[0], upscale, *args[1:], blocks=blocks)
        want = reference.pixel_shuffle_conv2d(_f64(args)[0], upscale, *_f64(args)[1:])
    assert got.dtype == dtype and got.shape == want.shape
    torch.testing.assert_close(got.to(D), want, **TOL[dtype])
    return got


# (kernel, dilation, stride, padding, padding_mode): every conv geometry of the six networks
# (durn/models/builders.py, durn/nn/block.py), plus even kernels, which the contract allows.
NETWORK_CONVS = [
    (1, 1, 1, 0, "zeros"),       # durn_u / durn_us 1x1 convs
    (3, 1, 1, 1, "reflect"),     # every DuRB's own pair, stems and tails ("reflect"/"mixed")
    (3, 1, 1, 1, "zeros"),       # SE-ResNet block convs
    (3, 2, 1, 2, "zeros"),       # "mixed" style, dilation > 1: zero padded
    (3, 3, 1, 3, "zeros"),
    (3, 4, 1, 4, "zeros"),
    (3, 6, 1, 6, "zeros"),
    (3, 8, 1, 8, "zeros"),
    (3, 12, 1, 12, "zeros"),     # durn_s_p attentive blocks
    (5, 1, 1, 2, "reflect"),
    (7, 1, 1, 3, "reflect"),
    (11, 1, 1, 5, "reflect"),
    (7, 2, 1, 6, "reflect"),     # DuRB-P/S T1 in durn_p / durn_s
    (11, 2, 1, 10, "reflect"),
    (11, 3, 1, 15, "reflect"),   # reflect pad 15: needs H, W >= 16
    (3, 1, 2, 1, "reflect"),     # DuRB-U / DuRB-US T2
    (3, 1, 2, 1, "zeros"),       # stems of durn_u, durn_us, durn_s_p
    (5, 1, 1, 1, "zeros"),       # durn_s_p stem: zero pad 1 shrinks the image by 2
    (7, 1, 1, 3, "zeros"),       # durn_u / durn_us first and last convs
    (2, 1, 1, 1, "zeros"),
    (4, 1, 2, 1, "reflect"),
]


def _image_size(padding, padding_mode):
    return (17, 19) if padding_mode == "reflect" and padding >= 13 else (13, 15)


@pytest.mark.parametrize("k, dilation, stride, padding, mode", NETWORK_CONVS)
def test_network_conv_geometries(k, dilation, stride, padding, mode):
    h, w = _image_size(padding, mode)
    x, wt, b = _rand(2, 20, h, w), _weight(24, 20, k), _rand(24)
    _check_conv([x, wt, b, None, None, None, stride, padding, dilation, mode, "none", "none", 1.0])


@pytest.mark.parametrize("c, o", [(1, 16), (3, 16), (16, 1), (16, 3)])
def test_network_input_and_output_channels(c, o):
    """Gray / RGB stems and tails: channel counts far below a 16-wide tile."""
    x, wt, b = _rand(2, c, 13, 15), _weight(o, c, 3), _rand(o)
    _check_conv([x, wt, b, None, None, None, 1, 1, 1, "reflect", "none", "relu", 1.0])


@pytest.mark.parametrize("residual_at", ["none", "pre_affine", "post_affine", "post_activation"])
@pytest.mark.parametrize("activation", ["none", "relu", "tanh"])
def test_epilogue_orders(residual_at, activation):
    x, wt, b = _rand(2, 16, 11, 13), _weight(16, 16, 3), _rand(16)
    scale, shift = _rand(16).abs() + 0.5, _rand(16)
    res = _rand(2, 16, 11, 13) if residual_at != "none" else None
    _check_conv([x, wt, b, scale, shift, res, 1, 1, 1, "reflect", residual_at, activation, -0.7])


@pytest.mark.parametrize("which", ["bias", "scale", "shift"])
def test_epilogue_vectors_alone(which):
    x, wt = _rand(2, 16, 11, 13), _weight(16, 16, 3)
    vec = {"bias": None, "scale": None, "shift": None, which: _rand(16)}
    _check_conv([x, wt, vec["bias"], vec["scale"], vec["shift"], None, 1, 1, 1, "zeros", "none", "tanh", 1.0])


def test_tanh_is_accurate_over_its_range():
    """The kernel builds tanh from exp: check it against the float64 tanh across small,
    moderate and saturated arguments (a 1x1 identity conv passes the inputs through)."""
    x = torch.cat([torch.linspace(-0.3, 0.3, 301, dtype=D), torch.linspace(-20, 20, 399, dtype=D),
                   torch.logspace(-8, 1, 100, dtype=D)])
    x = x.reshape(1, 1, 40, 20).to(device=DEVICE, dtype=torch.float32)
    one = torch.ones(1, 1, 1, 1, device=DEVICE)
    got = K.fused_conv2d(x, one, activation="tanh").to(D)
    # Relative error: measured at most 3.3 float32 ulps (3.9e-7) under the interpreter; a
    # GPU's approximate exp adds a few ulps. Allowed: 2e-6, about 17 ulps.
    torch.testing.assert_close(got, torch.tanh(x.to(D)), atol=0, rtol=2e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k, dilation, stride, padding, mode, residual_at, activation", [
    (3, 1, 1, 1, "reflect", "post_affine", "relu"),
    (11, 2, 1, 10, "reflect", "pre_affine", "relu"),
    (3, 6, 1, 6, "zeros", "none", "relu"),
    (3, 1, 2, 1, "zeros", "post_activation", "tanh"),
])
def test_half_precision(dtype, k, dilation, stride, padding, mode, residual_at, activation):
    x, wt, b = _rand(2, 16, 13, 15, dtype=dtype), _weight(16, 16, k, dtype=dtype), _rand(16, dtype=dtype)
    scale, shift = (_rand(16).abs() + 0.5).to(dtype), _rand(16, dtype=dtype)
    oh, ow = (13, 15) if stride == 1 else (7, 8)
    res = _rand(2, 16, oh, ow, dtype=dtype) if residual_at != "none" else None
    x = x.contiguous(memory_format=torch.channels_last) if k == 3 and stride == 1 else x
    _check_conv([x, wt, b, scale, shift, res, stride, padding, dilation, mode, residual_at, activation, -1.0],
                dtype=dtype)


@pytest.mark.parametrize("x_format, res_format, w_format", [
    ("channels_last", "channels_last", "contiguous"),
    ("channels_last", "contiguous", "channels_last"),
    ("contiguous", "channels_last", "channels_last"),
])
def test_memory_formats(x_format, res_format, w_format):
    fmt = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
    x = _rand(2, 16, 13, 15).contiguous(memory_format=fmt[x_format])
    wt = _weight(24, 16, 5).contiguous(memory_format=fmt[w_format])
    res = _rand(2, 24, 13, 15).contiguous(memory_format=fmt[res_format])
    y = _check_conv([x, wt, _rand(24), None, None, res, 1, 2, 1, "reflect", "post_affine", "relu", 1.0])
    assert y.is_contiguous(memory_format=fmt[x_format])


def test_strided_view_input():
    """A non-contiguous view (every other channel of a bigger tensor) is read through its strides."""
    x = _rand(2, 32, 13, 15)[:, ::2]
    _check_conv([x, _weight(16, 16, 3), None, None, None, None, 1, 1, 1, "reflect", "none", "none", 1.0])


@pytest.mark.parametrize("k, dilation, padding, mode", [
    (3, 1, 1, "reflect"),     # durn_us tail
    (5, 1, 2, "reflect"),     # DuRB-US T1 kernels 5, 7, 11 after PixelShuffle(2)
    (7, 1, 3, "reflect"),
    (11, 1, 5, "reflect"),
    (3, 3, 3, "zeros"),       # DuRB-U T1 geometries after PixelShuffle(2)
    (3, 2, 2, "zeros"),
])
def test_pixel_shuffle_conv(k, dilation, padding, mode):
    x = _rand(2, 64, 7, 8)
    res = _rand(2, 16, 14, 16)
    _check_conv([x, _weight(16, 16, k), _rand(16), None, None, res, 1, padding, dilation, mode, "post_affine",
                 "relu", 1.0], upscale=2)


def test_pixel_shuffle_conv_channels_last_stride_2_and_upscale_3():
    x = _rand(2, 64, 7, 9).contiguous(memory_format=torch.channels_last)
    y = _check_conv([x, _weight(24, 16, 3), None, None, None, None, 2, 1, 1, "reflect", "none", "none", 1.0],
                    upscale=2)
    assert y.is_contiguous(memory_format=torch.channels_last)
    x = _rand(2, 36, 5, 6)
    _check_conv([x, _weight(8, 4, 3), _rand(8), None, None, None, 1, 1, 1, "reflect", "none", "tanh", 1.0],
                upscale=3)


@pytest.mark.parametrize("tiles", ["gpu_minimum", "gpu_default"])
def test_gpu_tile_sizes_on_many_programs(tiles):
    """Small tiles split the output over many programs and the channels over several blocks
    (on the interpreter the default tile covers the whole tensor)."""
    def blocks(c, o, m, dtype):
        if tiles == "gpu_minimum":
            return dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
        return {k: v for k, v in K.conv_blocks(m, c, o, dtype, native=True).items() if k.startswith("BLOCK")}

    # 2 x 5 x 7 outputs: 70 rows, several 16-row tiles, a partial last one; 40 channels:
    # 3 blocks of 16 (2 of 32), the last partial; 24 output channels: 2 tiles of 16.
    x, res = _rand(2, 40, 5, 7).contiguous(memory_format=torch.channels_last), _rand(2, 24, 5, 7)
    args = [x, _weight(24, 40, 3), _rand(24), _rand(24), _rand(24), res, 1, 2, 2, "reflect", "pre_affine", "tanh", 1.0]
    _check_conv(args, blocks=blocks(40, 24, 70, torch.float32))
    x = _rand(2, 80, 3, 4)
    args = [x, _weight(24, 20, 3), None, None, None, None, 2, 1, 1, "reflect", "none", "relu", 1.0]
    _check_conv(args, upscale=2, blocks=blocks(20, 24, 2 * 3 * 4, torch.float32))


# --- squeeze-excitation -----------------------------------------------------------------

def _se_args(c=32, hidden=16, h=13, w=11, identity=True, dtype=torch.float32, fmt=torch.contiguous_format):
    x = _rand(2, c, h, w, dtype=dtype).contiguous(memory_format=fmt)
    w1, b1 = _rand(hidden, c, scale=c ** -0.5, dtype=dtype), _rand(hidden, dtype=dtype)
    w2, b2 = _rand(c, hidden, scale=hidden ** -0.5, dtype=dtype), _rand(c, dtype=dtype)
    ident = _rand(2, c, h, w, dtype=dtype) if identity else None
    return [x, w1, b1, w2, b2, ident]


def _check_se(args, dtype=torch.float32, config=None):
    got = K.squeeze_excitation(*args, config=config)
    torch.testing.assert_close(got.to(D), reference.squeeze_excitation(*_f64(args)), **TOL[dtype])
    assert got.is_contiguous(memory_format=K.output_format(args[0]))
    return got


@pytest.mark.parametrize("c, hidden, identity", [
    (64, 32, True),     # DuRB-S in durn_s and DuRB-US (hidden 32)
    (128, 64, True),    # durn_s_p attentive blocks
    (20, 7, False),     # odd sizes, the plain SE layer
])
def test_squeeze_excitation(c, hidden, identity):
    _check_se(_se_args(c, hidden, identity=identity))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_squeeze_excitation_half_precision_channels_last(dtype):
    _check_se(_se_args(dtype=dtype, fmt=torch.channels_last), dtype=dtype)


def test_squeeze_excitation_gpu_tiles_split_the_pool():
    args = _se_args(c=20, hidden=8, h=17, w=19, fmt=torch.channels_last)
    _check_se(args, config=dict(pool_p=16, splits=7, scale_p=16, scale_c=16))
    _check_se(args, config=K.se_config(20, 17 * 19, native=True))


# --- the registered ops: dispatch, autograd, fake kernels, errors ---------------------------

def test_backend_dispatch_runs_the_triton_ops():
    x, wt = _rand(2, 16, 11, 13), _weight(16, 16, 3)
    y = ops.fused_conv2d(x, wt, padding=1, padding_mode="reflect", activation="relu", backend="triton")
    torch.testing.assert_close(y, ops.fused_conv2d(x, wt, padding=1, padding_mode="reflect", activation="relu"),
                               **TOL[torch.float32])
    with ops.use_backend("triton"):
        y = ops.pixel_shuffle_conv2d(_rand(2, 64, 5, 6), 2, wt, padding=1)
        se = ops.squeeze_excitation(*_se_args(identity=False)[:5])
    assert y.shape == (2, 16, 10, 12) and se.shape == (2, 32, 13, 11)
    assert WHY.startswith("triton ") and ("interpreter" in WHY) != CUDA


def _grads(fn, args, positions):
    args = [a.detach().clone().requires_grad_(i in positions) if isinstance(a, torch.Tensor) else a
            for i, a in enumerate(args)]
    out = fn(*args)
    torch.manual_seed(1)
    grad_out = torch.randn(out.shape, dtype=D, device=out.device).to(out.dtype)
    grads = torch.autograd.grad(out, [args[i] for i in positions], grad_out)
    return out, grads


@pytest.mark.parametrize("op", ["fused_conv2d", "pixel_shuffle_conv2d", "squeeze_excitation"])
def test_backward_through_registered_autograd(op):
    """float32 gradients through ``durn::<op>_triton`` against the reference's float64
    gradients. Backward recomputes the reference composition in float32 (library.py), so the
    tolerance is the float32 one: sums over at most C*k*k*N*H*W ~ 1e5 terms of unit scale,
    error ~ sqrt(1e5) * 2**-24 * |g| ~ 2e-5 |g|; allowed: atol = rtol = 1e-4."""
    if op == "squeeze_excitation":
        args, positions = _se_args(c=16, hidden=8), (0, 1, 2, 3, 4, 5)
    elif op == "fused_conv2d":
        args = [_rand(2, 16, 11, 13), _weight(16, 16, 5), _rand(16), _rand(16), _rand(16), _rand(2, 16, 11, 13),
                1, 4, 2, "reflect", "post_affine", "tanh", 1.0]
        positions = (0, 1, 2, 3, 4, 5)
    else:
        args = [_rand(2, 64, 5, 6), 2, _weight(16, 16, 3), _rand(16), None, None, _rand(2, 16, 10, 12),
                1, 1, 1, "reflect", "post_activation", "relu", -1.0]
        positions = (0, 2, 3, 6)
    triton_op = getattr(torch.ops.durn, f"{op}_triton").default
    out, grads = _grads(triton_op, args, positions)
    ref_out, ref_grads = _grads(getattr(reference, op), _f64(args), positions)
    torch.testing.assert_close(out.to(D), ref_out, **TOL[torch.float32])
    for g, want in zip(grads, ref_grads):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g.to(D), want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("op", ["fused_conv2d", "pixel_shuffle_conv2d", "squeeze_excitation"])
def test_opcheck(op):
    """Schema, fake kernel (shapes and channels_last strides), autograd registration."""
    if op == "squeeze_excitation":
        args = _se_args(c=16, hidden=8, h=5, w=7, fmt=torch.channels_last)
    elif op == "fused_conv2d":
        x = _rand(1, 16, 7, 9).contiguous(memory_format=torch.channels_last)
        args = [x, _weight(16, 16, 3), _rand(16), None, _rand(16), _rand(1, 16, 7, 9),
                1, 1, 1, "reflect", "pre_affine", "relu", 1.0]
    else:
        args = [_rand(1, 64, 4, 5), 2, _weight(16, 16, 3), None, None, None, None,
                2, 1, 1, "zeros", "none", "none", 1.0]
    args = [a.requires_grad_() if isinstance(a, torch.Tensor) else a for a in args]
    torch.library.opcheck(getattr(torch.ops.durn, f"{op}_triton").default, args,
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


def test_compile_fullgraph_traces_through_the_triton_op():
    wt, b = _weight(16, 16, 3), _rand(16)

    def f(x):
        y = ops.fused_conv2d(x, wt, b, padding=1, padding_mode="reflect", activation="relu", backend="triton")
        return y * 2

    x = _rand(1, 16, 9, 10)
    torch._dynamo.reset()
    got = torch.compile(f, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(got, f(x), rtol=0, atol=0)


def test_bad_inputs_get_clear_errors():
    x, wt = _rand(1, 16, 9, 9), _weight(16, 16, 3)
    with pytest.raises(TypeError, match="float64 is not supported"):
        K.fused_conv2d(x.double(), wt.double())
    with pytest.raises(TypeError, match="weight has dtype torch.float16"):
        K.fused_conv2d(x, wt.half())
    with pytest.raises(ValueError, match="reflect padding 9 must be smaller"):
        K.fused_conv2d(x, wt, padding=9, padding_mode="reflect")
    with pytest.raises(ValueError, match="weight expects 8 input channels"):
        K.fused_conv2d(x, _weight(16, 8, 3))
    with pytest.raises(ValueError, match="divisible by 4"):
        K.pixel_shuffle_conv2d(_rand(1, 18, 4, 4), 2, wt)
    with pytest.raises(ValueError, match="residual must have the output's shape"):
        K.fused_conv2d(x, wt, residual=_rand(1, 16, 9, 8), residual_at="post_affine")
    with pytest.raises(ValueError, match="does not fit"):
        K.fused_conv2d(_rand(1, 16, 2, 2), wt)
    with pytest.raises(ValueError, match="w2 must have shape"):
        K.squeeze_excitation(x, _rand(4, 16), _rand(4), _rand(4, 16), _rand(16))


def test_kernels_come_from_this_checkout():
    assert Path(K.__file__).resolve() == REPO / "kernels" / "__init__.py"
    assert K.__name__ == "durn.kernels"


def test_a_clone_that_is_not_installed_loads_its_kernels():
    """torch.hub source="local": only the clone's root is on sys.path. The subprocess hides
    any pip installation of durn (site-packages' editable finder) and runs one op."""
    script = textwrap.dedent(f"""
        import sys
        sys.meta_path = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                         and "editable" not in getattr(f, "__name__", "").lower()]
        sys.path.insert(0, {str(REPO)!r})
        import torch
        from durn import ops
        from durn.ops import reference
        x, w = torch.randn(1, 4, 6, 7, device={DEVICE!r}), torch.randn(5, 4, 3, 3, device={DEVICE!r})
        y = ops.fused_conv2d(x, w, padding=1, padding_mode="reflect", backend="triton")
        err = (y - reference.fused_conv2d(x, w, padding=1, padding_mode="reflect")).abs().max().item()
        print(sys.modules["durn.kernels"].__file__, err)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr[-3000:]
    path, err = proc.stdout.split()[-2:]
    assert Path(path).resolve() == REPO / "kernels" / "__init__.py" and float(err) < 1e-5


@pytest.mark.skipif(CUDA, reason="checks the GPU registration path on a machine without a GPU")
def test_gpu_registration_path_without_a_gpu():
    """In a process without TRITON_INTERPRET: the backend reports why it is unavailable,
    and the ops as registered for a GPU (torch.library.triton_op) trace on fake CUDA tensors
    into graphs that call the Triton kernel itself, with the reference's output shape and
    layout. (Nothing can run: this machine has no GPU.)"""
    script = textwrap.dedent("""
        import json, logging, torch
        logging.disable(logging.WARNING)
        from durn.ops import triton_backend
        try:
            triton_backend.load("triton")
            ok, why = True, ""
        except RuntimeError as err:
            ok, why = False, str(err)
        kernels = triton_backend.import_kernels()
        triton_backend._register(kernels)
        from torch._functorch.aot_autograd import aot_function
        from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
        mode = FakeTensorMode()
        def fake(*shape, fmt=torch.contiguous_format):
            meta = torch.empty(*shape, device="meta").contiguous(memory_format=fmt)
            return FakeTensor(mode, meta, torch.device("cuda"))
        graphs = []
        def compiler(gm, inputs):
            graphs.append(gm.code)
            return gm
        def f(x, w):
            return torch.ops.durn.fused_conv2d_triton(x, w, None, None, None, None, 2, 1, 1, "reflect", "none",
                                                      "relu", 1.0)
        with mode:
            x, w = fake(2, 16, 9, 11, fmt=torch.channels_last), fake(8, 16, 3, 3)
            y = f(x, w)
            try:
                aot_function(f, fw_compiler=compiler)(x, w)
            except Exception:
                pass  # running the captured graph needs a GPU
        print(json.dumps(dict(ok=ok, why=why, interpreted=kernels.interpreted(), shape=list(y.shape),
                              channels_last=y.is_contiguous(memory_format=torch.channels_last), graph=graphs[0])))
    """)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result["ok"] and "TRITON_INTERPRET" in result["why"]
    assert not result["interpreted"]
    assert result["shape"] == [2, 8, 5, 6] and result["channels_last"]
    assert "triton_kernel_wrapper_functional" in result["graph"] and "'REFLECT': True" in result["graph"]
