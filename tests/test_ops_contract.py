"""The operator contracts: the reference equals the unfused layers it replaces, the
custom ops pass torch.library.opcheck, and the backend registry behaves."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from durn import ops
from durn.ops import reference

D = torch.float64


def _conv_case(k, dilation, stride, mode, c=3, o=4, hw=(9, 11)):
    pad = dilation * (k - 1) // 2
    conv = nn.Conv2d(c, o, k, stride=stride, padding=pad, dilation=dilation, padding_mode=mode).to(D)
    x = torch.randn(2, c, *hw, dtype=D)
    return conv, x, pad


@pytest.mark.parametrize("k, dilation, stride, mode", [
    (3, 1, 1, "reflect"), (3, 1, 2, "reflect"), (5, 1, 1, "reflect"), (3, 3, 1, "zeros"),
    (7, 2, 1, "reflect"), (11, 1, 1, "reflect"), (3, 12, 1, "zeros"), (1, 1, 1, "zeros"),
])
def test_fused_conv_reference_equals_conv_module(k, dilation, stride, mode):
    hw = (9, 11) if dilation * (k - 1) // 2 < 9 else (27, 31)
    conv, x, pad = _conv_case(k, dilation, stride, mode, hw=hw)
    y = reference.fused_conv2d(x, conv.weight, conv.bias, stride=stride, padding=pad, dilation=dilation,
                               padding_mode=mode)
    torch.testing.assert_close(y, conv(x), rtol=0, atol=1e-12)


def test_epilogue_orders_match_the_durb_formulas():
    conv, x, pad = _conv_case(3, 1, 1, "reflect", c=4, o=4)
    bn = nn.BatchNorm2d(4).to(D).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    res = torch.randn(2, 4, 9, 11, dtype=D)
    common = dict(stride=1, padding=pad, dilation=1, padding_mode="reflect")
    with torch.no_grad():
        got = reference.fused_conv2d(x, conv.weight, conv.bias, scale, shift, res, residual_at="post_affine",
                                     activation="relu", **common)
        torch.testing.assert_close(got, F.relu(bn(conv(x)) + res), rtol=0, atol=1e-12)
        got = reference.fused_conv2d(x, conv.weight, conv.bias, scale, shift, res, residual_at="pre_affine",
                                     activation="relu", **common)
        torch.testing.assert_close(got, F.relu(bn(conv(x) + res)), rtol=0, atol=1e-12)
        got = reference.fused_conv2d(x, conv.weight, conv.bias, None, None, res, residual_at="post_activation",
                                     activation="tanh", residual_alpha=-1.0, **common)
        torch.testing.assert_close(got, res - torch.tanh(conv(x)), rtol=0, atol=1e-12)


def test_pixel_shuffle_conv_reference():
    conv, _, pad = _conv_case(5, 1, 1, "reflect", c=3, o=2)
    x = torch.randn(2, 12, 5, 6, dtype=D)
    y = reference.pixel_shuffle_conv2d(x, 2, conv.weight, conv.bias, padding=pad, padding_mode="reflect")
    torch.testing.assert_close(y, conv(F.pixel_shuffle(x, 2)), rtol=0, atol=1e-12)


def test_squeeze_excitation_reference_equals_se_block():
    from durn.nn import SEBasicBlock

    block = SEBasicBlock(6, 3, norm=False).to(D)
    x = torch.randn(2, 6, 7, 5, dtype=D)
    y = F.relu(block.conv1(x))
    y = block.conv2(y)
    fc1, fc2 = block.se.fc[0], block.se.fc[2]
    got = reference.squeeze_excitation(y, fc1.weight, fc1.bias, fc2.weight, fc2.bias, identity=x)
    torch.testing.assert_close(got, block(x), rtol=0, atol=1e-12)


def _opcheck_conv_args(residual_at, activation, mode):
    x = torch.randn(2, 3, 7, 9, dtype=D, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=D, requires_grad=True)
    b = torch.randn(4, dtype=D, requires_grad=True)
    s = torch.rand(4, dtype=D, requires_grad=True)
    t = torch.randn(4, dtype=D, requires_grad=True)
    r = torch.randn(2, 4, 7, 9, dtype=D, requires_grad=True) if residual_at != "none" else None
    return (x, w, b, s, t, r, 1, 2, 2, mode, residual_at, activation, -1.0)


@pytest.mark.parametrize("residual_at, activation, mode", list(itertools.product(
    ["none", "pre_affine", "post_affine", "post_activation"], ["relu", "tanh"], ["reflect"],
)) + [("none", "none", "zeros")])
def test_opcheck_fused_conv(residual_at, activation, mode):
    torch.library.opcheck(torch.ops.durn.fused_conv2d.default, _opcheck_conv_args(residual_at, activation, mode))


def test_opcheck_pixel_shuffle_conv_and_se():
    x = torch.randn(2, 12, 4, 5, dtype=D, requires_grad=True)
    w = torch.randn(2, 3, 3, 3, dtype=D, requires_grad=True)
    r = torch.randn(2, 2, 8, 10, dtype=D, requires_grad=True)
    torch.library.opcheck(torch.ops.durn.pixel_shuffle_conv2d.default,
                          (x, 2, w, None, None, None, r, 1, 1, 1, "reflect", "post_affine", "relu", 1.0))
    x = torch.randn(2, 6, 5, 3, dtype=D, requires_grad=True)
    w1, b1 = torch.randn(3, 6, dtype=D, requires_grad=True), torch.randn(3, dtype=D, requires_grad=True)
    w2, b2 = torch.randn(6, 3, dtype=D, requires_grad=True), torch.randn(6, dtype=D, requires_grad=True)
    for identity in (None, torch.randn(2, 6, 5, 3, dtype=D, requires_grad=True)):
        torch.library.opcheck(torch.ops.durn.squeeze_excitation.default, (x, w1, b1, w2, b2, identity))


def test_custom_op_keeps_channels_last():
    x = torch.randn(1, 3, 6, 6).contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 3, 3, 3)
    y = torch.ops.durn.fused_conv2d(x, w, None, None, None, None, 1, 1, 1, "reflect", "none", "relu", 1.0)
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_compile_traces_through_the_op():
    w = torch.randn(4, 3, 3, 3)

    def f(x):
        return torch.ops.durn.fused_conv2d(x, w, None, None, None, None, 1, 1, 1, "reflect", "none", "relu", 1.0)

    x = torch.randn(1, 3, 8, 8)
    torch._dynamo.reset()
    out = torch.compile(f, fullgraph=True, backend="eager")(x)
    torch.testing.assert_close(out, f(x))


def test_backend_choice_and_errors():
    status = ops.available_backends()
    assert set(status) == set(ops.BACKENDS)
    assert status["torch"][0]
    for name, (ok, why) in status.items():
        assert isinstance(why, str) and why
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    with ops.use_backend("torch"):
        y = ops.fused_conv2d(x, w, padding=1, padding_mode="reflect")
    torch.testing.assert_close(y, reference.fused_conv2d(x, w, padding=1, padding_mode="reflect"))
    with pytest.raises(ValueError, match="unknown backend"):
        ops.fused_conv2d(x, w, backend="fortran")
    unavailable = [name for name, (ok, _) in status.items() if not ok]
    for name in unavailable:
        with pytest.raises(RuntimeError, match=f"backend '{name}' is not available"):
            ops.fused_conv2d(x, w, backend=name)
    with pytest.raises(ValueError, match="residual and residual_at"):
        ops.fused_conv2d(x, w, residual_at="post_affine")
    with pytest.raises(ValueError, match="activation"):
        ops.fused_conv2d(x, w, activation="gelu")
