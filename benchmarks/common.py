"""Helpers shared by the benchmarks: what to run (networks, user models, sizes), the
interleaved rounds and when they stop, the authors' layer structure, memory peaks."""
from __future__ import annotations

import copy
import importlib
import math
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from report import BUSY_SPREAD  # noqa: F401 - IQR / median above it: the machine was busy (a warning)

CPU_SIZES = {"durn_p": (128, 256), "durn_p_real": (128, 256), "durn_s": (128, 256),
             "durn_u": (192, 256), "durn_us": (192, 256), "durn_s_p": (192, 256)}
GPU_SIZES = (256, 512, 1024)
QUICK_NETWORK, QUICK_SIZE = "durn_p", 128  # the default run: one network, one size

# The rounds: at least MIN_ROUNDS, then more until every variant's median is known to
# +-STABLE_TOLERANCE (95% interval of a median: the boxplot notch, 1.57 IQR / sqrt(n)), or
# the case's time budget (timed seconds, all variants) is spent, at most MAX_ROUNDS.
MIN_ROUNDS, MAX_ROUNDS, STABLE_TOLERANCE = 3, 12, 0.03
CASE_BUDGET_S = {"network": 20.0, "op": 3.0}
ITEM_TARGET_S = {"network": 0.3, "op": 0.1}  # timed calls per item: about this long (1-50 calls)


def bench_device(config) -> torch.device:
    name = config.getoption("--bench-device") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def full_run(config) -> bool:
    return bool(config.getoption("--bench-full"))


def max_rounds(config) -> int:
    """Items generated per variant; the stopping rule skips those not needed."""
    rounds = config.getoption("--bench-rounds")
    return MAX_ROUNDS if rounds is None else max(rounds, 1)


def fixed_rounds(config) -> bool:
    """``--bench-rounds N`` runs exactly N rounds (no early stop)."""
    return config.getoption("--bench-rounds") is not None


def chosen_networks(config) -> list[str]:
    """The registered networks to run: --bench-networks, else all with --bench-full, else
    the quick default (none when only --bench-model is given)."""
    import durn

    names = config.getoption("--bench-networks")
    if names:
        chosen = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in chosen if n not in durn.list_models()]
        if unknown:
            raise pytest.UsageError(f"--bench-networks: unknown network(s) {unknown}; known: {durn.list_models()} "
                                    "(benchmark your own model with --bench-model package.module:builder)")
        return chosen
    if config.getoption("--bench-model"):
        return []
    return list(durn.list_models()) if full_run(config) else [QUICK_NETWORK]


def chosen_sizes(config, network: str | None, device: torch.device) -> list[int]:
    sizes = config.getoption("--bench-sizes")
    if sizes:
        try:
            out = [int(s) for s in sizes.split(",") if s.strip()]
        except ValueError:
            raise pytest.UsageError(f"--bench-sizes: expected comma-separated integers, got {sizes!r}") from None
        if not out or min(out) < 1:
            raise pytest.UsageError(f"--bench-sizes: expected positive sizes, got {sizes!r}")
        return out
    if device.type == "cuda":
        return list(GPU_SIZES) if full_run(config) else [GPU_SIZES[0]]
    if full_run(config):
        return list(CPU_SIZES.get(network, (128, 256)))
    return [QUICK_SIZE]


def load_user_model(spec: str) -> nn.Module:
    """``package.module:builder`` -> ``builder()``: any ``nn.Module`` taking an image
    batch (N, C, H, W); a :class:`durn.nn.DuRN` also gets the fast-path variants."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise pytest.UsageError(f"--bench-model: expected package.module:builder, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise pytest.UsageError(f"--bench-model {spec!r}: cannot import {module_name!r} ({err})") from None
    builder = module
    for part in attr.split("."):
        builder = getattr(builder, part, None)
        if builder is None:
            raise pytest.UsageError(f"--bench-model {spec!r}: {module_name!r} has no {attr!r}")
    if not callable(builder):
        raise pytest.UsageError(f"--bench-model {spec!r}: {attr!r} is not callable")
    model = builder() if not isinstance(builder, nn.Module) else builder
    if not isinstance(model, nn.Module):
        raise pytest.UsageError(f"--bench-model {spec!r}: {attr}() returned {type(model).__name__}, "
                                "expected a torch.nn.Module")
    return model


def input_channels(model: nn.Module) -> int:
    """The image channels ``model`` takes: ``model.in_channels`` (every DuRN), else the
    first convolution's."""
    channels = getattr(model, "in_channels", None)
    if isinstance(channels, int):
        return channels
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise pytest.UsageError(f"cannot tell how many image channels {type(model).__name__} takes: "
                            "give it an `in_channels` attribute")


# ----------------------------------------------------------------------------- the rounds

def spread(samples: list[float]) -> dict:
    """min, quartiles, max of the samples; ``notch``: the 95% interval of the median as a
    fraction of it (1.57 IQR / sqrt(n) / median)."""
    xs = sorted(samples)
    n = len(xs)
    if n == 1:
        q1 = med = q3 = xs[0]
    else:
        q1, med, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return {"n": n, "min": xs[0], "q1": q1, "median": med, "q3": q3, "max": xs[-1],
            "iqr_rel": (q3 - q1) / med if med else 0.0,
            "notch": 1.57 * (q3 - q1) / math.sqrt(n) / med if med else 0.0}


@dataclass
class CaseRounds:
    """The interleaved rounds of one case (all its variants): the samples so far and the
    decision, taken at the first item of a round, whether that round runs."""

    kind: str
    samples: dict = field(default_factory=dict)  # variant -> per-call seconds
    timed_s: float = 0.0
    decided: dict = field(default_factory=dict)  # round -> None (run) or the reason it is skipped
    stopped: str | None = None

    def skip_reason(self, round_: int, fixed: bool) -> str | None:
        if round_ not in self.decided:
            self.decided[round_] = None if fixed or round_ < MIN_ROUNDS else self._stop_reason(round_)
            if self.decided[round_] and self.stopped is None:
                self.stopped = self.decided[round_]
        return None if fixed else (self.decided[round_] or self.stopped)

    def _stop_reason(self, round_: int) -> str | None:
        if self.stopped:
            return self.stopped
        if self.samples and all(spread(s)["notch"] <= STABLE_TOLERANCE for s in self.samples.values() if s):
            return f"stable after {round_} rounds (every median within +-{STABLE_TOLERANCE:.0%})"
        if self.timed_s >= CASE_BUDGET_S[self.kind]:
            return f"time budget spent after {round_} rounds ({self.timed_s:.0f} s timed)"
        return None

    def add(self, variant: str, seconds: list[float]) -> None:
        self.samples.setdefault(variant, []).extend(seconds)
        self.timed_s += sum(seconds)


ROUNDS: dict[tuple, CaseRounds] = {}


def case_rounds(kind: str, case: tuple) -> CaseRounds:
    return ROUNDS.setdefault((kind,) + tuple(case), CaseRounds(kind))


def calls_for(kind: str, seconds_per_call: float) -> int:
    return max(1, min(50, math.ceil(ITEM_TARGET_S[kind] / max(seconds_per_call, 1e-6))))


def timed(benchmark, run, calls: int, rounds: CaseRounds, variant: str) -> None:
    """``calls`` timed calls of ``run`` as one pytest-benchmark item, added to the case's
    samples; the item records its samples and the machine's load."""
    samples: list[float] = []
    cpu: list[float] = []

    def one():
        start, cstart = time.perf_counter(), time.process_time()
        run()
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cstart)

    benchmark.pedantic(one, rounds=calls, iterations=1, warmup_rounds=0)
    rounds.add(variant, samples)
    benchmark.extra_info.update(calls=calls, cpu_samples_s=[round(c, 5) for c in cpu],
                                loadavg_1min=round(os.getloadavg()[0], 2))


def machine_load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)], "at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def authors_structure(model: nn.Module) -> nn.Module:
    """A copy of ``model`` laid out as the authors' code is: every reflection-padded conv
    becomes ``ReflectionPad2d`` followed by an unpadded ``Conv2d`` (BN stays unfused)."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv2d and child.padding_mode == "reflect" and child.padding != (0, 0):
                conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                                 dilation=child.dilation, bias=child.bias is not None)
                conv = conv.to(device=child.weight.device, dtype=child.weight.dtype)
                conv.weight = child.weight
                conv.bias = child.bias
                ph, pw = child.padding
                setattr(parent, name, nn.Sequential(nn.ReflectionPad2d((pw, pw, ph, ph)), conv))
    return model


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory one call allocates above what was allocated before it: on CUDA
    ``max_memory_allocated``; on CPU the running sum of PyTorch's allocator events
    recorded by the profiler (``profile_memory=True``), falling back to the peak RSS
    (VmHWM reset through /proc/self/clear_refs) where the profiler gives none."""

    def __init__(self, device: torch.device):
        self.device = device

    def measure(self, fn) -> dict:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device)
            fn()
            synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            return {"peak_mem_mb": (peak - before) / 2**20, "mem_kind": "cuda max_memory_allocated above baseline"}
        peak = _profiled_peak(fn)
        if peak is not None:
            return {"peak_mem_mb": peak / 2**20, "mem_kind": "CPU allocator events (torch.profiler)"}
        if _reset_hwm():
            before = _proc_status("VmRSS")
            fn()
            peak = _proc_status("VmHWM")
            return {"peak_mem_mb": max(peak - before, 0) / 2**10, "mem_kind": "peak RSS above baseline (VmHWM)"}
        fn()
        return {"peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10,
                "mem_kind": "process max RSS (ru_maxrss)"}


def _profiled_peak(fn) -> int | None:
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                        if e.name() == "[memory]" and str(e.device_type()).endswith("CPU"))
    except Exception:  # an internal API: fall back rather than fail a benchmark
        return None
    if not events:
        return None
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _proc_status(field: str) -> int:
    """A kB field of /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: torch.device) -> dict:
    info = {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": device.type,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def device_bandwidth(device: torch.device) -> float:
    """Measured device-to-device copy bandwidth in bytes/s (read + write), for the
    memory-bandwidth floor of the operators."""
    n = (256 << 20) // 4 if device.type == "cuda" else (64 << 20) // 4
    a = torch.empty(n, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    best = float("inf")
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        b.copy_(a)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * a.numel() * a.element_size() / best
