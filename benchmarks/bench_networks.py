"""End to end: the six networks, eager (the authors' layer structure) against
``torch.compile`` and ``durn.optimize_for_inference`` with each available backend and
"auto", in one run. CPU: float32 at two sizes per network; GPU: 256/512/1024 in float32
and bfloat16 with ``cudnn.benchmark`` on and ``torch.compile(mode="max-autotune")``."""
from __future__ import annotations

import time

import pytest
import torch

import durn
from durn.ops.transform_conv import release_workspace
from common import CPU_SIZES, GPU_SIZES, PeakMemory, authors_structure, bench_device, bench_rounds, synchronize

NETWORKS = tuple(durn.list_models())
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _backend_variants(device: torch.device) -> list:
    from durn import ops

    out = []
    for name in ops.BACKENDS:
        ok, why = ops.available_backends()[name]
        if ok and not ops.runs_on(name, device):
            ok, why = False, f"does not run on {device.type} tensors"
        if ok and name == "triton" and device.type == "cpu":
            ok, why = False, "the Triton interpreter (CPU) is for tests, not timing"
        out.append((f"opt-{name}", None if ok else why))
    return out


def pytest_generate_tests(metafunc):
    if "variant" not in metafunc.fixturenames:
        return
    config = metafunc.config
    device = bench_device(config)
    networks = config.getoption("--bench-networks")
    networks = networks.split(",") if networks else NETWORKS
    sizes_opt = config.getoption("--bench-sizes")
    variants = [("eager", None)]
    if not config.getoption("--bench-no-compile"):
        variants.append(("compile", None))
    variants += _backend_variants(device) + [("opt-auto", None)]
    dtypes = ("float32", "bfloat16") if device.type == "cuda" else ("float32",)
    cases = []
    for net in networks:
        sizes = [int(s) for s in sizes_opt.split(",")] if sizes_opt else (
            GPU_SIZES if device.type == "cuda" else CPU_SIZES[net])
        for size in sizes:
            for dtype in dtypes:
                for variant, skip in variants:
                    for r in range(bench_rounds(config)):
                        marks = [pytest.mark.skip(reason=skip)] if skip else []
                        cases.append(pytest.param(net, size, dtype, variant, r, marks=marks,
                                                  id=f"{net}-{size}-{dtype}-{variant}-r{r}"))
    metafunc.parametrize("network, size, dtype, variant, round", cases)


class _Runners:
    """Builds each variant once per (network, size, dtype) and keeps only the current case."""

    def __init__(self):
        self.case = None
        self.runners: dict = {}
        self.build_seconds: dict = {}
        self.memory: dict = {}

    def get(self, network, size, dtype, variant, device):
        case = (network, size, dtype)
        if case != self.case:
            self.case, self.runners, self.memory = case, {}, {}
            torch._dynamo.reset()
        if variant not in self.runners:
            start = time.perf_counter()
            self.runners[variant] = _build(network, size, DTYPES[dtype], variant, device)
            self.build_seconds[case + (variant,)] = time.perf_counter() - start
        return self.runners[variant]


_RUNNERS = _Runners()


def _build(network, size, dtype, variant, device):
    from durn import optimize_for_inference

    torch.manual_seed(0)
    model = durn.get_model(network).eval().to(device=device, dtype=dtype)
    model.min_size  # noqa: B018 - computed before timing
    eager = authors_structure(model).eval()
    x = torch.rand(1, model.in_channels, size, size, device=device, dtype=dtype)
    if variant == "eager":
        fn = eager
    elif variant == "compile":
        mode = "max-autotune" if device.type == "cuda" else None
        fn = torch.compile(eager, mode=mode)
    else:
        backend = variant.removeprefix("opt-")
        fn = optimize_for_inference(model, backend, tune_size=size)
    with torch.no_grad():
        fn(x)  # warm-up (compiles, autotunes, fills caches)
        fn(x)
    synchronize(device)
    return fn, x


def test_network(benchmark, device, network, size, dtype, variant, round):
    fn, x = _RUNNERS.get(network, size, dtype, variant, device)
    benchmark.group = f"{network} {size}x{size} {dtype} {device.type}"
    benchmark.extra_info.update(kind="network", network=network, size=size, dtype=dtype, variant=variant,
                                round=round, device=device.type, threads=torch.get_num_threads())
    benchmark.extra_info["build_s"] = round_s(_RUNNERS.build_seconds.get((network, size, dtype, variant)))

    def run():
        with torch.no_grad():
            fn(x)
        synchronize(device)

    if variant not in _RUNNERS.memory:
        release_workspace()  # so the peak includes the transform layers' scratch
        _RUNNERS.memory[variant] = PeakMemory(device).measure(run)
    benchmark.extra_info.update(_RUNNERS.memory[variant])
    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)


def round_s(seconds):
    return None if seconds is None else round(seconds, 2)
