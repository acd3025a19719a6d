"""Per operator: the reference (eager PyTorch), each available backend, ``torch.compile``
of the reference and, on CPU, the transform-domain algorithms of the "torch" backend,
on layers taken from the six networks. ``extra_info["floor_ms"]`` is the operator's
memory-bandwidth floor (bytes it must read and write / measured device copy bandwidth)."""
from __future__ import annotations

import functools
import time

import pytest
import torch

from common import (PeakMemory, bench_device, calls_for, case_rounds, chosen_networks, chosen_sizes, device_bandwidth,
                    fixed_rounds, max_rounds, synchronize, timed)
from durn import ops
from durn.ops import reference
from durn.ops.transform_conv import release_workspace

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _conv_case(c, o, k, *, dilation=1, stride=1, scale=1, upscale=1, mode="reflect", residual_at="none",
               activation="none", affine=False, alpha=1.0):
    """A ``fused_conv2d`` / ``pixel_shuffle_conv2d`` layer at 1/``scale`` of the image size."""
    def make(size, dtype, device):
        g = torch.Generator().manual_seed(0)
        h = size // scale
        out_h = h * upscale // stride
        x = torch.randn(1, c * upscale * upscale, h, h, generator=g)
        w = torch.randn(o, c, k, k, generator=g) / (c * k)
        t = dict(x=x, weight=w, bias=torch.randn(o, generator=g),
                 scale=torch.rand(o, generator=g) + 0.5 if affine else None,
                 shift=torch.randn(o, generator=g) if affine else None,
                 residual=torch.randn(1, o, out_h, out_h, generator=g) if residual_at != "none" else None)
        t = {key: (v.to(device=device, dtype=dtype) if v is not None else None) for key, v in t.items()}
        kwargs = dict(stride=stride, padding=dilation * (k - 1) // 2, dilation=dilation, padding_mode=mode,
                      residual_at=residual_at, activation=activation, residual_alpha=alpha)
        return t, kwargs, upscale
    return make


def _se_case(c, hidden, scale):
    def make(size, dtype, device):
        g = torch.Generator().manual_seed(0)
        h = size // scale
        t = dict(x=torch.randn(1, c, h, h, generator=g), w1=torch.randn(hidden, c, generator=g) / c,
                 b1=torch.randn(hidden, generator=g), w2=torch.randn(c, hidden, generator=g) / hidden,
                 b2=torch.randn(c, generator=g), identity=torch.randn(1, c, h, h, generator=g))
        return {k: v.to(device=device, dtype=dtype) for k, v in t.items()}, {}, None
    return make


# case -> (the networks whose layers it is, its maker); --bench-networks keeps a case
# when one of its networks is chosen (tests/test_benchmarks.py checks each network has
# such a layer).
CASES = {
    # durn_p / durn_s DuRB: relu(BN(conv3x3(x) + x_r))
    "conv3x3_c32_pre_affine": (("durn_p",), _conv_case(32, 32, 3, residual_at="pre_affine", activation="relu",
                                                       affine=True)),
    # durn_p / durn_p_real T1 11x11 and dilated 7x7 joining res
    "conv11x11_c32_res": (("durn_p", "durn_p_real"), _conv_case(32, 32, 11, residual_at="post_affine",
                                                                activation="relu")),
    "conv7x7_d2_c32_res": (("durn_p", "durn_p_real"), _conv_case(32, 32, 7, dilation=2, residual_at="post_affine",
                                                                 activation="relu")),
    # durn_p_real output: input + tanh(conv)
    "conv3x3_c32_to3_tanh": (("durn_p_real",), _conv_case(32, 3, 3, residual_at="post_activation",
                                                          activation="tanh")),
    # durn_u at 1/4 resolution: the 256-channel 3x3 pair; T2's stride-2 conv
    "conv3x3_c256_s4": (("durn_u",), _conv_case(256, 256, 3, scale=4)),
    "conv3x3_s2_c128_c256": (("durn_u",), _conv_case(128, 256, 3, stride=2, scale=2, residual_at="post_affine")),
    # durn_u T1: pixel shuffle to 1/2 resolution, then 7x7 on 128 channels joining res
    "ps_conv7x7_c128": (("durn_u",), _conv_case(128, 128, 7, scale=4, upscale=2, residual_at="post_affine")),
    # durn_us tail: pixel shuffle to full resolution, 3x3 on 64 channels, ReLU
    "ps_conv3x3_c64": (("durn_us",), _conv_case(64, 64, 3, scale=2, upscale=2, activation="relu")),
    # durn_us T2 at 1/4 resolution: SE gate with the SE-ResNet shortcut
    "se_c64": (("durn_us",), _se_case(64, 32, 4)),
}


def _impls(device: torch.device) -> list:
    out = [("reference", None)]
    for name in ops.BACKENDS:
        if name == "torch":
            continue  # the "torch" backend is the reference
        ok, why = ops.available_backends()[name]
        if ok and not ops.runs_on(name, device):
            ok, why = False, f"does not run on {device.type} tensors"
        if ok and name == "triton" and device.type == "cpu":
            ok, why = False, "the Triton interpreter (CPU) is for tests, not timing"
        out.append((name, None if ok else why))
    out.append(("compile", None))
    if device.type == "cpu":
        out += [("torch-inplace", None), ("fourier", None), ("winograd", None)]
    return out


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    device = bench_device(config)
    networks = set(chosen_networks(config))
    sizes = chosen_sizes(config, "durn_p", device)  # the operators' sizes: 128 and 256 on CPU (full)
    dtypes = ("float32", "bfloat16") if device.type == "cuda" else ("float32",)
    impls = _impls(device)
    if config.getoption("--bench-no-compile"):
        impls = [i for i in impls if i[0] != "compile"]
    params = []
    for case, (owners, _) in CASES.items():
        if not networks.intersection(owners):
            continue
        for size in sizes:
            for dtype in dtypes:
                for impl, skip in impls:
                    if impl in ("fourier", "winograd") and not _transform_applies(case, impl):
                        continue
                    for r in range(max_rounds(config)):
                        if skip and r > 0:
                            continue  # one skipped item per unavailable implementation says why
                        marks = [pytest.mark.skip(reason=skip)] if skip else []
                        params.append(pytest.param(case, size, dtype, impl, r, marks=marks,
                                                   id=f"{case}-{size}-{dtype}-{impl}-r{r}"))
    metafunc.parametrize("case, size, dtype, variant, round", params)


def _transform_applies(case: str, impl: str) -> bool:
    if case.startswith("se") or "_s2_" in case:
        return False
    kernel3 = "3x3" in case
    return kernel3 if impl == "winograd" else not kernel3


@functools.lru_cache(maxsize=1)
def _bandwidth(device_type: str) -> float:
    return device_bandwidth(torch.device(device_type))


def _runner(case, size, dtype, impl, device):
    tensors, kwargs, upscale = CASES[case][1](size, DTYPES[dtype], device)
    op = "squeeze_excitation" if case.startswith("se") else (
        "pixel_shuffle_conv2d" if upscale and upscale > 1 else "fused_conv2d")
    if op == "squeeze_excitation":
        args = (tensors["x"], tensors["w1"], tensors["b1"], tensors["w2"], tensors["b2"], tensors["identity"])
        ref = functools.partial(reference.squeeze_excitation, *args)
        if impl == "reference":
            return ref, op, args
        if impl == "compile":
            return torch.compile(ref), op, args
        if impl == "torch-inplace":
            return None, op, args
        return functools.partial(ops.squeeze_excitation, *args, backend=impl), op, args
    conv_args = (tensors["x"], tensors["weight"], tensors["bias"], tensors["scale"], tensors["shift"],
                 tensors["residual"])
    tail = (kwargs["stride"], kwargs["padding"], kwargs["dilation"], kwargs["padding_mode"], kwargs["residual_at"],
            kwargs["activation"], kwargs["residual_alpha"])
    if op == "pixel_shuffle_conv2d":
        ref = functools.partial(reference.pixel_shuffle_conv2d, conv_args[0], upscale, *conv_args[1:], *tail)
    else:
        ref = functools.partial(reference.fused_conv2d, *conv_args, *tail)
    if impl == "reference":
        return ref, op, conv_args
    if impl == "compile":
        return torch.compile(ref), op, conv_args
    if impl == "torch-inplace":
        from durn.ops.direct_conv import direct_fused_conv2d

        return functools.partial(direct_fused_conv2d, *conv_args, *tail, upscale or 1), op, conv_args
    if impl in ("fourier", "winograd"):
        from durn.inference import FusedConv2d

        layer = FusedConv2d(tensors["weight"], tensors["bias"], stride=kwargs["stride"], padding=kwargs["padding"],
                            dilation=kwargs["dilation"], padding_mode=kwargs["padding_mode"], upscale=upscale or 1,
                            scale=tensors["scale"], shift=tensors["shift"], residual_at=kwargs["residual_at"],
                            activation=kwargs["activation"], residual_alpha=kwargs["residual_alpha"], backend="torch")
        x = tensors["x"]
        algo = "winograd:4" if impl == "winograd" else f"fourier:{layer.candidates(x)[1].split(':')[1]}"
        plan_residual = tensors["residual"]
        return functools.partial(layer.run, algo, x, plan_residual), op, conv_args
    if op == "pixel_shuffle_conv2d":
        return functools.partial(ops.pixel_shuffle_conv2d, conv_args[0], upscale, *conv_args[1:3],
                                 scale=conv_args[3], shift=conv_args[4], residual=conv_args[5], backend=impl,
                                 **kwargs), op, conv_args
    return functools.partial(ops.fused_conv2d, *conv_args[:3], scale=conv_args[3], shift=conv_args[4],
                             residual=conv_args[5], backend=impl, **kwargs), op, conv_args


_CACHE: dict = {}


def test_op(benchmark, pytestconfig, device, case, size, dtype, variant, round):
    rounds = case_rounds("op", (case, size, dtype, device.type))
    reason = rounds.skip_reason(round, fixed_rounds(pytestconfig))
    if reason:
        pytest.skip(reason)
    key = (case, size, dtype, variant)
    if key not in _CACHE:
        if any(k[:3] != key[:3] for k in _CACHE):
            _CACHE.clear()  # a new case: drop the previous case's tensors
        fn, op, args = _runner(case, size, dtype, variant, device)
        if fn is None:
            pytest.skip(f"{variant} has no {op}")
        with torch.no_grad():
            out = fn()
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            second = time.perf_counter() - start
        moved = sum(t.numel() * t.element_size() for t in args if t is not None) + out.numel() * out.element_size()
        info = dict(kind="op", op=op, case=case, size=size, dtype=dtype, variant=variant, device=device.type,
                    bytes=moved, floor_ms=1e3 * moved / _bandwidth(device.type), threads=torch.get_num_threads())
        _CACHE[key] = (fn, info, None, calls_for("op", second))
    fn, info, memory, calls = _CACHE[key]

    def run():
        with torch.no_grad():
            fn()
        synchronize(device)

    if memory is None:
        release_workspace()  # so the peak includes the transforms' scratch
        memory = PeakMemory(device).measure(run)
        _CACHE[key] = (fn, info, memory, calls)
    benchmark.group = f"{case} {size} {dtype} {device.type}"
    benchmark.extra_info.update(info, round=round, **memory)
    timed(benchmark, run, calls, rounds, variant)
