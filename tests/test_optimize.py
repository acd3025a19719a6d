"""``durn.optimize_for_inference``: the fused network computes what the eager one does.

Tolerances (max abs difference of the output image, inputs in [0, 1]):

* float32: 2e-5 from the exact (float64) eager output. That is the bound the reference
  fixtures hold the eager float32 networks to (float32 rounding alone puts them up to
  5e-6 away); folding BN, reordering epilogues and transform-domain convs change only
  rounding (measured: at most 5.5e-6, durn_u with Winograd and Fourier layers, whose
  instance norms with eps=1e-9 amplify rounding most).
* float64: 1e-11 (measured: at most 2e-14); any wrong layer shows at 1e-3 or more.
"""
import copy
import os

import pytest
import torch
from torch import nn

import durn
from conftest import NETWORK_NAMES, perturb_batch_norms
from durn import ops
from durn.nn import DuRN, DualResidualBlock, DualResidualChain, durb_p
from durn.inference import optimize_for_inference

TOL32, TOL64 = 2e-5, 1e-11
_MODELS: dict = {}


def _model(name: str) -> DuRN:
    """The network with every BN's statistics and affine set away from identity, so that
    folding them is exercised (cached: building durn_u takes a while)."""
    if name not in _MODELS:
        model = perturb_batch_norms(durn.get_model(name).eval())
        model.min_size  # noqa: B018 - computed once, copied with the model
        _MODELS[name] = model
    return _MODELS[name]


def _exact(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return copy.deepcopy(model).double()(x.double())


def _input(model, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, model.in_channels, h, w, generator=g)


_EXACT: dict = {}


def _case(name, h, w):
    """(model, input, exact float64 output), the output computed once per session."""
    model = _model(name)
    x = _input(model, h, w)
    if (name, h, w) not in _EXACT:
        _EXACT[name, h, w] = _exact(model, x)
    return model, x, _EXACT[name, h, w]


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_optimized_equals_eager_float32_and_float64(name):
    model, x, exact = _case(name, 24, 20)
    fast = optimize_for_inference(model, "torch", algorithms="direct")
    out = fast(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert (out.double() - exact).abs().max().item() < TOL32
    # odd sizes, every layer that has a transform-domain algorithm using it
    model, x, exact = _case(name, 21, 27)
    fast = optimize_for_inference(model, "torch", algorithms="transform")
    assert any(c.algorithm != "direct" for c in fast.fused_convs())
    assert (fast(x).double() - exact).abs().max().item() < TOL32
    fast64 = optimize_for_inference(copy.deepcopy(model).double(), "torch", algorithms="transform")
    assert (fast64(x.double()) - exact).abs().max().item() < TOL64


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_reproduces_the_authors_golden_outputs(reference, name):
    golden = reference.golden(name)
    model = durn.load_reference(name, reference.state_dict(name))
    fast = optimize_for_inference(model, "torch", algorithms="transform")
    assert (fast(golden["input"]).double() - golden["output64"]).abs().max().item() < TOL32
    fast64 = optimize_for_inference(model.double(), "torch", algorithms="transform")
    assert (fast64(golden["input"].double()) - golden["output64"]).abs().max().item() < TOL64


def test_least_accurate_algorithms_stay_within_tolerance(reference):
    # durn_u (instance norms with eps=1e-9 amplify rounding most) with every 3x3 conv in
    # Winograd F(6x6, 3x3) and every larger one in 16-pixel Fourier tiles: the choice
    # the measurement could make at worst (measured 1.2e-5).
    golden = reference.golden("durn_u")
    model = durn.load_reference("durn_u", reference.state_dict("durn_u"))
    choices = {}
    for layer in optimize_for_inference(model, "torch", algorithms="direct").fused_convs():
        if layer.stride == 1 and layer.kernel_size == 3:
            choices[layer.source] = "winograd:6"
        elif layer.stride == 1 and layer.kernel_size >= 5:
            choices[layer.source] = "fourier:16"
    fast = optimize_for_inference(model, "torch", algorithms=choices)
    assert (fast(golden["input"]).double() - golden["output64"]).abs().max().item() < TOL32


def test_folds_and_fuses_the_known_patterns():
    fast = optimize_for_inference(_model("durn_s"), "torch", algorithms="direct")
    kinds = {type(m).__name__ for m in fast.modules()}
    assert not kinds & {"Conv2d", "BatchNorm2d", "ReLU", "SqueezeExcitation", "Sequential"}
    convs = fast.fused_convs()
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in _model("durn_s").modules())
    epilogues = {(c.residual_at, c.activation) for c in convs}
    # relu(BN(conv + x_r)), relu(BN(conv) + res), input + tanh(conv): all inside the conv
    assert {("pre_affine", "relu"), ("post_affine", "relu"), ("post_activation", "tanh")} <= epilogues
    assert not list(fast.parameters())
    u = optimize_for_inference(_model("durn_u"), "torch", algorithms="direct")
    shuffled = [c for c in u.fused_convs() if c.upscale == 2]
    assert len(shuffled) == 6 + 2  # T1 of each DuRB-U and the tail's two up-samplings


def test_keeps_unknown_modules_of_a_user_built_durn():
    class Gated(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, 2 * c, 3, padding=1)

        def forward(self, x):
            a, b = self.conv(x).chunk(2, dim=1)
            return a * torch.sigmoid(b)

    torch.manual_seed(3)
    c = 8
    blocks = []
    for connection in ("dual", "paired", "separate"):
        blocks.append(DualResidualBlock(
            c, t1=nn.Sequential(nn.Conv2d(c, c, 5, padding=4, dilation=2), nn.GroupNorm(2, c)), t2=Gated(c),
            norm="batch", connection=connection))
        blocks.append(durb_p(c, 7, 3, 2, norm="instance", connection=connection))
    stem = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, c, 3), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1))
    tail = nn.Sequential(nn.ConvTranspose2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, 3, 3, padding=1))
    model = DuRN(stem, [DualResidualChain(blocks[:3]), DualResidualChain(blocks[3:])], tail, in_channels=3).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.rand(2, 3, 19, 23)
    exact = _exact(model, x)
    for algorithms in ("direct", "transform"):
        fast = optimize_for_inference(model, "torch", algorithms=algorithms)
        assert sum(isinstance(m, Gated) for m in fast.modules()) == 3
        assert any(isinstance(m, nn.GroupNorm) for m in fast.modules())
        assert any(isinstance(m, nn.ConvTranspose2d) for m in fast.modules())
        assert (fast(x).double() - exact).abs().max().item() < TOL32
    fast64 = optimize_for_inference(copy.deepcopy(model).double(), "torch", algorithms="transform")
    assert (fast64(x.double()) - exact).abs().max().item() < TOL64


@pytest.mark.parametrize("connection", ["paired", "separate"])
def test_other_connections(connection):
    model = durn.durn_p(connection=connection).eval()
    x = _input(model, 20, 22)
    fast = optimize_for_inference(model, "torch", algorithms="transform")
    assert (fast(x).double() - _exact(model, x)).abs().max().item() < TOL32


def test_original_model_is_untouched():
    model = _model("durn_s_p")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules_before = [type(m) for m in model.modules()]
    model.train()
    optimize_for_inference(model, "torch", algorithms="transform")
    assert model.training
    model.eval()
    assert [type(m) for m in model.modules()] == modules_before
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in model.parameters() if p is not model.unused_prelu.weight)


def test_input_handling_matches_durn_forward():
    model = _model("durn_u")  # size multiple 4, min size
    fast = optimize_for_inference(model, "torch", algorithms="direct")
    assert (fast.in_channels, fast.size_multiple, fast.min_size, fast.channel_order) == \
        (3, 4, model.min_size, model.channel_order)
    x = torch.rand(3, 9, 13)  # unbatched, not a multiple of 4, below the min size
    out = fast(x)
    assert out.shape == x.shape
    assert (out.double() - _exact(model, x.unsqueeze(0))[0]).abs().max().item() < TOL32
    x_cl = torch.rand(2, 3, 16, 20).contiguous(memory_format=torch.channels_last)
    fast_cl = optimize_for_inference(model, "torch", algorithms="direct", channels_last=True)
    assert fast_cl(x_cl).is_contiguous(memory_format=torch.channels_last)
    assert fast_cl(x_cl.contiguous()).is_contiguous()
    for bad, match in [(torch.rand(1, 4, 16, 16), "channels"), (torch.rand(1, 3, 16, 16).double(), "float64"),
                       (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "floating"),
                       (torch.full((1, 3, 8, 8), float("nan")), "NaN")]:
        with pytest.raises(ValueError, match=match):
            fast(bad)


def test_inference_only():
    fast = optimize_for_inference(_model("durn_p_real"), "torch", algorithms="direct")
    x = _input(fast, 16, 16).requires_grad_()
    assert not fast(x).requires_grad
    assert not fast.training
    with pytest.raises(RuntimeError, match="inference-only"):
        fast.train()


def test_measured_choice_is_valid_and_reproducible():
    model = _model("durn_p")
    fast = optimize_for_inference(model, "torch", tune_size=48)
    choices = fast.algorithm_choices()
    assert set(choices) == {c.source for c in fast.fused_convs()}
    assert set(fast.tuning_report) <= set(choices)
    for layer, algo in choices.items():
        assert algo.split(":")[0] in ("direct", "fourier", "winograd"), (layer, algo)
    again = optimize_for_inference(model, "torch", algorithms=choices)
    assert again.algorithm_choices() == choices and not again.tuning_report
    x = _input(model, 30, 26)
    exact = _exact(model, x)
    assert (fast(x).double() - exact).abs().max().item() < TOL32
    assert (again(x).double() - exact).abs().max().item() < TOL32


def test_arguments_are_checked():
    model = _model("durn_p_real")
    with pytest.raises(TypeError, match="DuRN"):
        optimize_for_inference(nn.Conv2d(3, 3, 3))
    with pytest.raises(ValueError, match="unknown backend"):
        optimize_for_inference(model, "fortran")
    with pytest.raises(ValueError, match="algorithms"):
        optimize_for_inference(model, "torch", algorithms="fastest")
    with pytest.raises(ValueError, match="no fused conv layer"):
        optimize_for_inference(model, "torch", algorithms={"nope": "direct"})
    with pytest.raises(ValueError, match="cannot run"):
        optimize_for_inference(model, "torch", algorithms={"stem.0": "fourier:16"})  # 3x3: Winograd only
    status = ops.available_backends()
    for name, (ok, why) in status.items():
        if not ok:
            with pytest.raises(RuntimeError, match="not available"):
                optimize_for_inference(model, name)


def _other_backends():
    params = []
    for name in ops.BACKENDS:
        if name == "torch":
            continue
        ok, why = ops.available_backends()[name]
        runs_here = ok and ops.runs_on(name, torch.device("cpu"))
        reason = why if not ok else f"{name} does not run on CPU tensors here"
        params.append(pytest.param(name, marks=pytest.mark.skipif(not runs_here, reason=reason)))
    return params


@pytest.mark.parametrize("backend", _other_backends())
def test_other_backends_match(backend):
    # The Triton interpreter is slow: two networks (one with pixel shuffles) at small
    # sizes; the compiled backends get all six.
    interpreted = backend == "triton" and os.environ.get("TRITON_INTERPRET") == "1"
    names = ("durn_p_real", "durn_us") if interpreted else NETWORK_NAMES
    for name in names:
        model, x, exact = _case(name, 24, 20)
        fast = optimize_for_inference(model, backend)
        assert {c.backend for c in fast.fused_convs()} == {backend}
        assert all(c.algorithm == "direct" for c in fast.fused_convs())
        assert (fast(x).double() - exact).abs().max().item() < TOL32, name
        if backend == "cpp" and name in ("durn_p", "durn_u"):
            try:
                fast64 = optimize_for_inference(copy.deepcopy(model).double(), backend)
                out64 = fast64(x.double())
            except (RuntimeError, NotImplementedError) as err:  # a backend without float64 kernels
                pytest.skip(f"{backend} has no float64 kernels: {err}")
            assert (out64 - exact).abs().max().item() < TOL64, name
