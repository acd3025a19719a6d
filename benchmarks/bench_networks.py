"""End to end, per network (or ``--bench-model``) and size, in one run: the network eager
as a user builds it (``durn.durn_p()``: durn's layer structure), eager in the authors'
layer structure (``ReflectionPad2d`` modules, unfused BN), ``torch.compile`` of durn's
module, ``optimize_for_inference`` with each available backend, the fast path that
``durn.restore`` runs by default ("fast") and ``durn.restore(model, x)`` itself
("restore-api": the fast path plus the API's checks and conversions).

CPU: float32 (quick: durn_p at 128; ``--bench-full``: the six networks at two sizes);
GPU: float32 and bfloat16 with ``cudnn.benchmark`` on and
``torch.compile(mode="max-autotune")`` (quick: 256; full: 256, 512, 1024).

Every variant is built once per case before its first timed round; the one-time costs
(building, tuning, compiling, the first calls) go into each item's ``extra_info``, with
the peak memory of one call and the output's largest difference from eager's.
"""
from __future__ import annotations

import os
import time

import pytest
import torch

import durn
from durn.nn import DuRN
from common import (PeakMemory, authors_structure, bench_device, calls_for, case_rounds, chosen_networks,
                    chosen_sizes, fixed_rounds, input_channels, load_user_model, max_rounds, synchronize, timed)
from durn.ops.transform_conv import release_workspace

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
VARIANTS = ("eager", "eager-authors", "compile", "opt-torch", "opt-cpp", "opt-triton", "opt-cuda", "fast",
            "restore-api")


def _backend_skip(name: str, device: torch.device) -> str | None:
    from durn import ops

    ok, why = ops.available_backends()[name]
    if ok and not ops.runs_on(name, device):
        return f"does not run on {device.type} tensors"
    if ok and name == "triton" and device.type == "cpu":
        return "the Triton interpreter (CPU) is for tests, not timing"
    return None if ok else why


def _variant_skips(config, device: torch.device, registered: bool, is_durn: bool) -> dict[str, str | None]:
    from durn import ops

    skips = {}
    for variant in VARIANTS:
        why = None
        if variant == "eager-authors" and not registered:
            why = "the authors' layer structure exists for the six registered networks"
        elif variant == "compile" and config.getoption("--bench-no-compile"):
            why = "--bench-no-compile"
        elif (variant.startswith("opt-") or variant in ("fast", "restore-api")) and not is_durn:
            why = "not a durn.nn.DuRN: optimize_for_inference and durn.restore take DuRNs"
        elif variant.startswith("opt-"):
            name = variant.removeprefix("opt-")
            why = _backend_skip(name, device) if name in ops.BACKENDS else f"no backend {name!r}"
        skips[variant] = why
    return skips


def pytest_generate_tests(metafunc):
    if "variant" not in metafunc.fixturenames:
        return
    config = metafunc.config
    device = bench_device(config)
    dtypes = ("float32", "bfloat16") if device.type == "cuda" else ("float32",)
    models = [(name, True) for name in chosen_networks(config)]
    models += [(spec, False) for spec in config.getoption("--bench-model")]
    cases = []
    for name, registered in models:
        is_durn = True if registered else isinstance(load_user_model(name), DuRN)
        skips = _variant_skips(config, device, registered, is_durn)
        for size in chosen_sizes(config, name if registered else None, device):
            for dtype in dtypes:
                for variant in VARIANTS:
                    for r in range(max_rounds(config)):
                        why = skips[variant]
                        if why and r > 0:
                            continue  # one skipped item per unavailable variant says why
                        marks = [pytest.mark.skip(reason=why)] if why else []
                        cases.append(pytest.param(name, size, dtype, variant, r, marks=marks,
                                                  id=f"{name}-{size}-{dtype}-{variant}-r{r}"))
    metafunc.parametrize("network, size, dtype, variant, round", cases)


class _Case:
    """Every variant of one (model, size, dtype, device), built once; keeps only the
    current case."""

    def __init__(self):
        self.key = None
        self.runners: dict = {}
        self.costs: dict = {}
        self.memory: dict = {}
        self.calls: dict = {}
        self.failed: dict = {}

    def get(self, key, config, tmp_path_factory):
        if key != self.key:
            self.key, self.runners, self.costs, self.memory, self.calls, self.failed = key, {}, {}, {}, {}, {}
            torch._dynamo.reset()
            self._build(*key, config, tmp_path_factory)
        return self

    def _time_first_calls(self, name, fn, device):
        for which in ("first", "second"):
            start = time.perf_counter()
            with torch.no_grad():
                fn()
            synchronize(device)
            self.costs.setdefault(name, {})[f"{which}_call_s"] = round(time.perf_counter() - start, 4)

    def _build(self, name, size, dtype, device, config, tmp_path_factory):
        from durn.inference import optimize_for_inference
        from durn.inference.tuner import clear_tuning_cache
        from durn.restoration import fast

        torch.manual_seed(0)
        registered = name in durn.list_models()
        model = durn.get_model(name) if registered else load_user_model(name)
        model = model.eval().to(device=device, dtype=DTYPES[dtype])
        if isinstance(model, DuRN):
            model.min_size  # noqa: B018 - the shape dry run, before any timing
        g = torch.Generator().manual_seed(0)
        x = torch.rand(1, input_channels(model), size, size, generator=g).to(device=device, dtype=DTYPES[dtype])
        skips = _variant_skips(config, device, registered, isinstance(model, DuRN))
        wanted = [v for v in skips if skips[v] is None]

        def build(variant, make):
            start = time.perf_counter()
            try:
                fn = make()
            except Exception as err:  # a user model the rewrite cannot take: say so in its item
                self.failed[variant] = f"{type(err).__name__}: {err}"
                return
            self.costs.setdefault(variant, {})["build_s"] = round(time.perf_counter() - start, 3)
            self._time_first_calls(variant, fn, device)
            self.runners[variant] = fn

        build("eager", lambda: (lambda: model(x)))
        if "eager-authors" in wanted:
            authors = authors_structure(model).eval()
            build("eager-authors", lambda: (lambda: authors(x)))
        if "compile" in wanted:
            mode = "max-autotune" if device.type == "cuda" else None
            compiled = torch.compile(model, dynamic=False, mode=mode)
            build("compile", lambda: (lambda: compiled(x)))  # its first call is the compile
            self.costs["compile"]["mode"] = mode or "default"

        record = tmp_path_factory.mktemp("tuning") / "tuning.json"
        old = os.environ.get("DURN_TUNING_CACHE")
        os.environ["DURN_TUNING_CACHE"] = str(record)  # a fresh record: the tuning is measured, not recalled
        try:
            for variant in [v for v in wanted if v.startswith("opt-")]:
                backend = variant.removeprefix("opt-")
                clear_tuning_cache()
                build(variant, lambda b=backend: _bound(optimize_for_inference(model, b, tune_size=size), x))
            if "fast" in wanted:
                clear_tuning_cache()
                fast.forget(model)
                start = time.perf_counter()
                fused = fast.fast_network(model, device, True)
                cold = time.perf_counter() - start
                if fused is None:
                    self.failed["fast"] = self.failed["restore-api"] = "durn.restore runs this model eagerly"
                else:
                    clear_tuning_cache()
                    fast.forget(model)
                    build("fast", lambda: _bound(fast.fast_network(model, device, True), x))
                if "fast" in self.runners:
                    self.costs["fast"].update(optimize_cold_s=round(cold, 3), optimize_warm_s=self.costs["fast"]["build_s"])
                    algos: dict[str, int] = {}
                    for algo in fused.algorithm_choices().values():
                        algos[algo.split(":")[0]] = algos.get(algo.split(":")[0], 0) + 1
                    self.costs["fast"]["algorithms"] = dict(sorted(algos.items()))
                    build("restore-api", lambda: (lambda: durn.restore(model, x)))
        finally:
            if old is None:
                os.environ.pop("DURN_TUNING_CACHE", None)
            else:
                os.environ["DURN_TUNING_CACHE"] = old

        with torch.no_grad():  # each output against eager's: the same network, within rounding
            want = model(x).float()
            for variant, fn in self.runners.items():
                out = fn()
                self.costs[variant]["max_abs_diff_vs_eager"] = float((out.float() - want).abs().max())
                assert torch.isfinite(out).all(), f"{variant} gave non-finite values"


def _bound(fused, x):
    return lambda: fused(x)


_CASE = _Case()


def test_network(benchmark, pytestconfig, tmp_path_factory, device, network, size, dtype, variant, round):
    rounds = case_rounds("network", (network, size, dtype, device.type))
    reason = rounds.skip_reason(round, fixed_rounds(pytestconfig))
    if reason:
        pytest.skip(reason)
    case = _CASE.get((network, size, dtype, device), pytestconfig, tmp_path_factory)
    if variant in case.failed:
        pytest.skip(case.failed[variant])
    fn = case.runners[variant]

    def run():
        with torch.no_grad():
            fn()
        synchronize(device)

    if variant not in case.memory:
        release_workspace()  # so the peak includes the transform layers' scratch
        case.memory[variant] = PeakMemory(device).measure(run)
        case.calls[variant] = calls_for("network", case.costs[variant]["second_call_s"])
    benchmark.group = f"{network} {size}x{size} {dtype} {device.type}"
    benchmark.extra_info.update(kind="network", network=network, size=size, dtype=dtype, variant=variant,
                                round=round, device=device.type, threads=torch.get_num_threads(),
                                costs=case.costs[variant], **case.memory[variant])
    timed(benchmark, run, case.calls[variant], rounds, variant)
