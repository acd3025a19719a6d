"""The C++ CPU kernels (backend "cpp", csrc/cpu) against the reference contract.

Every conv configuration the six networks use is read from the networks themselves
(built on the meta device), so the list cannot drift from the models. Each runs under
both conv strategies (shifted and im2col) and with a tiny tile budget, so small images
still cross many tile borders.

Tolerances:
* float64: atol 1e-10. The weights are scaled by 1/sqrt(fan_in), so the sum of the
  absolute products of one output, S, stays below about 60; any summation order is
  within K * 2^-53 * S < 3e-11 of the exact value for K <= 3872 (the largest K here).
  One wrong tap or a mis-padded pixel moves an output by about |w| ~ 1/sqrt(K) > 1e-2.
* float32: the first-order worst case of a length-K dot product in any order plus the
  epilogue's few roundings, elementwise: (K + 10) * 2^-24 * S, where S is the same
  computation on absolute values (in float64). This bound is rigorous rather than
  statistical, so the test cannot flake; float32 and float64 share all indexing code,
  which the float64 tests pin down sharply.

The whole file runs in well under a minute once the extension is built; it skips (with
the reason from ``durn.ops.available_backends()``) where the extension is unavailable.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import durn
from durn import ops
from durn.nn import SqueezeExcitation
from durn.ops import extension, reference

from conftest import REPO

D = torch.float64
STRATEGIES = ("auto", "shifted", "im2col")
RESIDUAL_FORMS = (  # (residual_at, activation, alpha, with scale/shift): the DuRN fusions
    ("none", "none", 1.0, False),
    ("none", "relu", 1.0, True),
    ("post_affine", "relu", 1.0, True),
    ("pre_affine", "relu", 1.0, True),
    ("post_activation", "tanh", -1.0, False),
    ("post_activation", "tanh", 1.0, True),
)


@pytest.fixture(scope="module", autouse=True)
def cpp_backend():
    ok, why = ops.available_backends()["cpp"]
    if not ok:
        pytest.skip(f"C++ extension unavailable: {why}")
    return why


def _network_layers():
    """Conv, pixel-shuffle-conv and SE configurations of the six networks."""
    convs, shuffles, ses = set(), set(), set()
    for name in durn.NETWORKS:
        with torch.device("meta"):
            model = durn.get_model(name)
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                convs.add((module.kernel_size[0], module.dilation[0], module.stride[0], module.padding[0],
                           module.padding_mode))
            elif isinstance(module, SqueezeExcitation):
                ses.add((module.fc[0].in_features, module.fc[0].out_features))
            elif isinstance(module, nn.Sequential):
                children = list(module)
                for a, b in zip(children, children[1:]):
                    if isinstance(a, nn.PixelShuffle) and isinstance(b, nn.Conv2d):
                        shuffles.add((a.upscale_factor, b.kernel_size[0], b.dilation[0], b.stride[0], b.padding[0],
                                      b.padding_mode))
    return sorted(convs), sorted(shuffles), sorted(ses)


CONVS, SHUFFLES, SES = _network_layers()


def test_network_layers_were_found():
    # The six networks use 19 distinct conv layouts, 6 after pixel shuffles, 2 SE sizes.
    assert len(CONVS) >= 15 and len(SHUFFLES) >= 5 and len(SES) == 2
    assert (11, 3, 1, 15, "reflect") in CONVS and (3, 12, 1, 12, "zeros") in CONVS
    assert any(stride == 2 for _, _, stride, _, _ in CONVS)


def _size_for(padding: int, upscale: int = 1) -> tuple[int, int]:
    """Odd H and W (after the shuffle) that reflect padding accepts."""
    h = max(11, padding + 4)
    h += (h + 1) % 2
    if upscale > 1:  # the shuffled size is a multiple of upscale; keep the input's odd
        base = -(-h // upscale)
        base += (base + 1) % 2
        return base, base + 2
    return h, h + 2


def _conv_args(k, dilation, stride, padding, mode, form, *, c=3, o=5, upscale=1, dtype=D, channels_last=False):
    residual_at, activation, alpha, affine = form
    h, w = _size_for(padding, upscale)
    x = torch.randn(2, c * upscale * upscale, h, w, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(o, c, k, k, dtype=dtype) / (c * k * k) ** 0.5
    bias = torch.randn(o, dtype=dtype)
    scale = torch.rand(o, dtype=dtype) + 0.5 if affine else None
    shift = torch.randn(o, dtype=dtype) if affine else None
    hh, ww = h * upscale, w * upscale
    ho = (hh + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wo = (ww + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    residual = None if residual_at == "none" else torch.randn(2, o, ho, wo, dtype=dtype)
    return x, (weight, bias, scale, shift, residual, stride, padding, dilation, mode, residual_at, activation, alpha)


def _run(x, args, upscale):
    if upscale > 1:
        return torch.ops.durn.pixel_shuffle_conv2d(x, upscale, *args), reference.pixel_shuffle_conv2d(x, upscale, *args)
    return torch.ops.durn.fused_conv2d(x, *args), reference.fused_conv2d(x, *args)


@pytest.fixture(params=[(s, tiny) for s in STRATEGIES for tiny in (False, True) if not (tiny and s == "auto")],
                ids=lambda p: f"{p[0]}{'-tinytiles' if p[1] else ''}")
def strategy(request, monkeypatch):
    name, tiny = request.param
    if name != "auto":
        monkeypatch.setenv("DURN_CPU_CONV_STRATEGY", name)
    if tiny:
        monkeypatch.setenv("DURN_CPU_TILE_BYTES", "16384")  # a row or a few pixels per tile
    return name


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_fused_conv_float64_every_network_layer(strategy, channels_last):
    # channels_last computes pixel-major from 16 output channels on, channel-major below.
    for (k, dilation, stride, padding, mode) in CONVS:
        for form, o in zip(RESIDUAL_FORMS, (5, 17) * 3):
            x, args = _conv_args(k, dilation, stride, padding, mode, form, o=o, channels_last=channels_last)
            got, want = _run(x, args, 1)
            where = f"k={k} d={dilation} s={stride} p={padding} {mode} {form[:2]}"
            torch.testing.assert_close(got, want, rtol=0, atol=1e-10, msg=lambda m: f"{where}: {m}")
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            assert got.is_contiguous(memory_format=fmt), where


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_pixel_shuffle_conv_float64_every_network_layer(strategy, channels_last):
    for (upscale, k, dilation, stride, padding, mode) in SHUFFLES:
        for form, o in zip(RESIDUAL_FORMS[:4], (5, 17, 5, 17)):
            x, args = _conv_args(k, dilation, stride, padding, mode, form, o=o, upscale=upscale,
                                 channels_last=channels_last)
            got, want = _run(x, args, upscale)
            where = f"u={upscale} k={k} d={dilation} p={padding} {mode} {form[:2]}"
            torch.testing.assert_close(got, want, rtol=0, atol=1e-10, msg=lambda m: f"{where}: {m}")


def _float32_bound(x, args, upscale):
    """(K + 10) * 2^-24 * S elementwise, S: the op on absolute values in float64."""
    weight, bias, scale, shift, residual, stride, padding, dilation, mode, residual_at, activation, alpha = args
    absolute = lambda t: None if t is None else t.double().abs()  # noqa: E731
    s_args = (absolute(weight), absolute(bias), absolute(scale), absolute(shift), absolute(residual), stride,
              padding, dilation, mode, residual_at, "none", abs(alpha))
    s = reference.pixel_shuffle_conv2d(x.double().abs(), upscale, *s_args) if upscale > 1 \
        else reference.fused_conv2d(x.double().abs(), *s_args)
    k = weight.shape[1] * weight.shape[2] * weight.shape[3]
    return (k + 10) * 2.0 ** -24 * s


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("name", ["auto", "shifted", "im2col"])
def test_float32_within_rounding_bound(name, channels_last, monkeypatch):
    if name != "auto":
        monkeypatch.setenv("DURN_CPU_CONV_STRATEGY", name)
    layers = [(1, *c) for c in CONVS] + list(SHUFFLES)
    for i, (upscale, k, dilation, stride, padding, mode) in enumerate(layers):
        form = RESIDUAL_FORMS[2] if i % 2 else RESIDUAL_FORMS[4]
        x, args = _conv_args(k, dilation, stride, padding, mode, form, c=8, o=18 if i % 2 else 6, upscale=upscale,
                             dtype=torch.float32, channels_last=channels_last)
        got, _ = _run(x, args, upscale)
        exact = _run(x.double(), tuple(a.double() if torch.is_tensor(a) else a for a in args), upscale)[1]
        bound = _float32_bound(x, args, upscale)
        excess = ((got.double() - exact).abs() - bound).max().item()
        assert got.dtype == torch.float32
        assert excess <= 0, f"u={upscale} k={k} d={dilation} s={stride} {mode}: error exceeds bound by {excess}"


def test_large_layer_float32_many_channels():
    # A real DuRN-P block conv (32 -> 32, 11x11, dilation 3) on 40x44: long reductions
    # (K = 3872) and several tiles per thread in both strategies.
    form = RESIDUAL_FORMS[2]
    for name in ("shifted", "im2col"):
        os.environ["DURN_CPU_CONV_STRATEGY"] = name
        try:
            x = torch.randn(1, 32, 40, 44)
            w = torch.randn(32, 32, 11, 11) / (32 * 121) ** 0.5
            args = (w, torch.randn(32), torch.rand(32) + 0.5, torch.randn(32), torch.randn(1, 32, 40, 44), 1, 15, 3,
                    "reflect", form[0], form[1], 1.0)
            got = torch.ops.durn.fused_conv2d(x, *args)
            exact = reference.fused_conv2d(x.double(), *(a.double() if torch.is_tensor(a) else a for a in args))
            assert ((got.double() - exact).abs() - _float32_bound(x, args, 1)).max() <= 0, name
        finally:
            del os.environ["DURN_CPU_CONV_STRATEGY"]


def test_strided_and_broadcast_inputs():
    # Non-contiguous x (a slice) and a residual that broadcasts over the batch and width.
    x = torch.randn(2, 6, 13, 30, dtype=D)[:, ::2, :, ::2]
    w = torch.randn(4, 3, 5, 5, dtype=D)
    r = torch.randn(1, 4, 13, 1, dtype=D)
    args = (w, None, None, None, r, 1, 2, 1, "reflect", "post_affine", "relu", 1.0)
    got = torch.ops.durn.fused_conv2d(x, *args)
    torch.testing.assert_close(got, reference.fused_conv2d(x, *args), rtol=0, atol=1e-10)
    assert got.is_contiguous()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_other_dtypes_run_the_aten_composition(dtype):
    # No dedicated kernel: the C++ side runs the reference's ATen ops, so results are equal.
    x = torch.randn(2, 3, 9, 11).to(dtype)
    w = torch.randn(4, 3, 3, 3).to(dtype)
    r = torch.randn(2, 4, 9, 11).to(dtype)
    args = (w, None, None, None, r, 1, 1, 1, "reflect", "post_affine", "relu", 1.0)
    torch.testing.assert_close(torch.ops.durn.fused_conv2d(x, *args), reference.fused_conv2d(x, *args),
                               rtol=0, atol=0)
    w1, b1, w2, b2 = (torch.randn(*s).to(dtype) for s in ((2, 3), (2,), (3, 2), (3,)))
    torch.testing.assert_close(torch.ops.durn.squeeze_excitation(x, w1, b1, w2, b2, x),
                               reference.squeeze_excitation(x, w1, b1, w2, b2, x), rtol=0, atol=0)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_squeeze_excitation(channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for (c, hidden) in SES + [(5, 3)]:
        for hw in ((7, 5), (1, 1), (33, 65)):
            x = torch.randn(2, c, *hw, dtype=D).contiguous(memory_format=fmt)
            identity = torch.randn(2, c, *hw, dtype=D).contiguous(memory_format=fmt)
            params = (torch.randn(hidden, c, dtype=D) / c ** 0.5, torch.randn(hidden, dtype=D),
                      torch.randn(c, hidden, dtype=D) / hidden ** 0.5, torch.randn(c, dtype=D))
            for ident in (None, identity):
                got = torch.ops.durn.squeeze_excitation(x, *params, ident)
                # Means of <= 4290 values and two small dots: float64 rounding ~1e-15.
                torch.testing.assert_close(got, reference.squeeze_excitation(x, *params, ident), rtol=0, atol=1e-12)
                assert got.is_contiguous(memory_format=fmt)
                x32 = x.float()
                got32 = torch.ops.durn.squeeze_excitation(x32, *(p.float() for p in params),
                                                          None if ident is None else ident.float())
                # float32: x * gate and + identity round once each (2^-24 relative), the
                # gate (computed in double) is within a few ulps of the exact one.
                want = reference.squeeze_excitation(x, *params, ident)
                torch.testing.assert_close(got32.double(), want, rtol=4 * 2.0 ** -24, atol=4 * 2.0 ** -24 * 8)


def test_kernel_errors_are_clear():
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    conv = torch.ops.durn.fused_conv2d
    with pytest.raises(RuntimeError, match="weight expects 2 input channels"):
        conv(x, torch.randn(4, 2, 3, 3), None, None, None, None, 1, 1, 1, "zeros", "none", "none", 1.0)
    with pytest.raises(RuntimeError, match="reflect padding of 8 needs an input larger"):
        conv(x, w, None, None, None, None, 1, 8, 1, "reflect", "none", "none", 1.0)
    with pytest.raises(RuntimeError, match="needs a residual tensor"):
        conv(x, w, None, None, None, None, 1, 1, 1, "zeros", "post_affine", "none", 1.0)
    with pytest.raises(RuntimeError, match="dtype"):
        conv(x, w.double(), None, None, None, None, 1, 1, 1, "zeros", "none", "none", 1.0)
    with pytest.raises(RuntimeError, match="residual must have the output's shape"):
        conv(x, w, None, None, None, torch.randn(1, 4, 7, 8), 1, 1, 1, "zeros", "post_affine", "none", 1.0)
    with pytest.raises(RuntimeError, match="activation must be one of"):
        conv(x, w, None, None, None, None, 1, 1, 1, "zeros", "none", "gelu", 1.0)
    with pytest.raises(RuntimeError, match="divisible by 4"):
        torch.ops.durn.pixel_shuffle_conv2d(x, 2, w, None, None, None, None, 1, 1, 1, "zeros", "none", "none", 1.0)
    with pytest.raises(RuntimeError, match=r"w2 must have shape \(3, 2\)"):
        torch.ops.durn.squeeze_excitation(x, torch.randn(2, 3), torch.randn(2), torch.randn(2, 3), torch.randn(3),
                                          None)


def _opcheck_conv(residual_at, activation, mode, channels_last):
    x = torch.randn(2, 3, 7, 9, dtype=D)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(4, 3, 3, 3, dtype=D, requires_grad=True)
    b = torch.randn(4, dtype=D, requires_grad=True)
    s = torch.rand(4, dtype=D, requires_grad=True)
    t = torch.randn(4, dtype=D, requires_grad=True)
    r = torch.randn(2, 4, 7, 9, dtype=D, requires_grad=True) if residual_at != "none" else None
    return (x, w, b, s, t, r, 1, 2, 2, mode, residual_at, activation, -1.0)


@pytest.mark.parametrize("residual_at, activation, mode, channels_last", [
    ("post_affine", "relu", "reflect", False), ("pre_affine", "relu", "reflect", True),
    ("post_activation", "tanh", "reflect", False), ("none", "none", "zeros", True),
])
def test_opcheck_with_the_cpu_kernels(residual_at, activation, mode, channels_last):
    # schema, fake kernel vs this kernel (shapes and strides), autograd registration and
    # AOT dispatch all run against the C++ kernel now registered for CPU.
    torch.library.opcheck(torch.ops.durn.fused_conv2d.default,
                          _opcheck_conv(residual_at, activation, mode, channels_last))


def test_opcheck_pixel_shuffle_conv_and_se_with_the_cpu_kernels():
    x = torch.randn(2, 12, 4, 5, dtype=D, requires_grad=True)
    w = torch.randn(2, 3, 3, 3, dtype=D, requires_grad=True)
    r = torch.randn(2, 2, 8, 10, dtype=D, requires_grad=True)
    torch.library.opcheck(torch.ops.durn.pixel_shuffle_conv2d.default,
                          (x, 2, w, None, None, None, r, 1, 1, 1, "reflect", "post_affine", "relu", 1.0))
    x = torch.randn(2, 6, 5, 3, dtype=D).contiguous(memory_format=torch.channels_last).requires_grad_()
    w1, b1 = torch.randn(3, 6, dtype=D, requires_grad=True), torch.randn(3, dtype=D, requires_grad=True)
    w2, b2 = torch.randn(6, 3, dtype=D, requires_grad=True), torch.randn(6, dtype=D, requires_grad=True)
    identity = torch.randn(2, 6, 5, 3, dtype=D).contiguous(memory_format=torch.channels_last).requires_grad_()
    for ident in (None, identity):
        torch.library.opcheck(torch.ops.durn.squeeze_excitation.default, (x, w1, b1, w2, b2, ident))


def test_gradcheck_through_registered_autograd():
    # gradcheck compares finite differences of the forward (the C++ kernel) with the
    # registered backward (the reference's): they agree only if the kernel is the contract.
    # One thread: hundreds of tiny calls, where a parallel region only adds latency.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _gradchecks()
    finally:
        torch.set_num_threads(threads)


def _gradchecks():
    x = torch.randn(1, 2, 5, 6, dtype=D, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=D, requires_grad=True)
    s, t = torch.rand(3, dtype=D, requires_grad=True), torch.randn(3, dtype=D, requires_grad=True)
    r = torch.randn(1, 3, 5, 6, dtype=D, requires_grad=True)
    torch.autograd.gradcheck(
        lambda *a: torch.ops.durn.fused_conv2d(*a, 1, 2, 2, "reflect", "pre_affine", "tanh", 1.0),
        (x, w, None, s, t, r))
    xs = torch.randn(1, 8, 2, 3, dtype=D, requires_grad=True)
    ws = torch.randn(2, 2, 3, 3, dtype=D, requires_grad=True)
    torch.autograd.gradcheck(
        lambda a, b: torch.ops.durn.pixel_shuffle_conv2d(a, 2, b, None, None, None, None, 1, 1, 1, "reflect", "none",
                                                         "relu", 1.0), (xs, ws))
    xe = torch.randn(2, 4, 3, 3, dtype=D, requires_grad=True)
    params = [torch.randn(*shape, dtype=D, requires_grad=True) for shape in ((2, 4), (2,), (4, 2), (4,))]
    torch.autograd.gradcheck(lambda *a: torch.ops.durn.squeeze_excitation(*a, xe), (xe, *params))


def test_backend_cpp_through_durn_ops():
    assert torch._C._dispatch_has_kernel_for_dispatch_key("durn::fused_conv2d", "CPU")
    x, w, r = torch.randn(1, 3, 8, 8, dtype=D), torch.randn(4, 3, 5, 5, dtype=D), torch.randn(1, 4, 8, 8, dtype=D)
    got = ops.fused_conv2d(x, w, padding=2, padding_mode="reflect", residual=r, activation="relu", backend="cpp")
    want = ops.fused_conv2d(x, w, padding=2, padding_mode="reflect", residual=r, activation="relu", backend="torch")
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    with ops.use_backend("cpp"):
        x4 = torch.randn(1, 12, 4, 4, dtype=D)
        got = ops.pixel_shuffle_conv2d(x4, 2, torch.randn(2, 3, 3, 3, dtype=D), padding=1, padding_mode="reflect")
    assert got.shape == (1, 2, 8, 8)


def test_library_loaded_before_the_schemas_are_defined():
    # Import order: the .so registers its CPU kernels before durn.ops.library defines
    # the operators; the kernels must still be picked up, with autograd on top.
    path = extension.library_path("cpp")
    assert path and os.path.exists(path)
    script = textwrap.dedent(f"""
        import torch
        torch.ops.load_library({path!r})
        from durn.ops import reference
        x = torch.randn(2, 3, 9, 10, dtype=torch.float64, requires_grad=True)
        w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
        args = (w, None, None, None, None, 1, 1, 1, "reflect", "none", "relu", 1.0)
        assert torch._C._dispatch_has_kernel_for_dispatch_key("durn::fused_conv2d", "CPU")
        y = torch.ops.durn.fused_conv2d(x, *args)
        assert (y - reference.fused_conv2d(x, *args)).abs().max() < 1e-12
        y.sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_loaded_library_matches_this_checkout():
    config = extension._build_config()
    assert config is not None
    assert extension._marker(__import__("pathlib").Path(extension.library_path("cpp"))) == config.source_hash("cpu")


def test_failed_build_reports_the_compiler_error(tmp_path, monkeypatch):
    # A tiny broken source stands in for csrc/: the reason names the file and the error,
    # and the failure is remembered so later processes do not rebuild in vain.
    source = tmp_path / "broken.cpp"
    source.write_text("int main() { return undeclared_name; }\n")
    config = types.SimpleNamespace(
        JIT_NAMES={"cpu": "durn_broken_test"}, MODULES={"cpu": "durn._C"}, CXX_FLAGS=["-O0"], LD_FLAGS=[],
        source_hash=lambda kind: "hbroken", hash_define=lambda kind: "-DDURN_SOURCE_HASH=hbroken",
        sources=lambda kind: [str(source)],
    )
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.delenv("DURN_JIT_BUILD", raising=False)
    with pytest.raises(extension.ExtensionUnavailable, match=r"broken\.cpp.*undeclared_name"):
        extension._build_on_first_use(config, "cpu", None)
    with pytest.raises(extension.ExtensionUnavailable, match="an earlier build"):
        extension._build_on_first_use(config, "cpu", None)
    monkeypatch.setenv("DURN_JIT_BUILD", "0")
    config.source_hash = lambda kind: "hother"
    with pytest.raises(extension.ExtensionUnavailable, match="DURN_JIT_BUILD=0"):
        extension._build_on_first_use(config, "cpu", None)


def test_cuda_backend_reason_without_a_gpu():
    ok, why = ops.available_backends()["cuda"]
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; tests/test_cuda_compile.py covers the CUDA kernels")
    assert not ok and "CUDA" in why
    with pytest.raises(ValueError, match="'cpp' and 'cuda'"):
        extension.load("triton")
