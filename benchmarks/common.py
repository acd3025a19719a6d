"""Helpers shared by the benchmarks: the authors' layer structure, memory peaks, timing."""
from __future__ import annotations

import copy
import os
import platform
import resource
import time

import torch
from torch import nn

CPU_SIZES = {"durn_p": (128, 256), "durn_p_real": (128, 256), "durn_s": (128, 256),
             "durn_u": (192, 256), "durn_us": (192, 256), "durn_s_p": (192, 256)}
GPU_SIZES = (256, 512, 1024)


def bench_device(config) -> torch.device:
    name = config.getoption("--bench-device") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def bench_rounds(config) -> int:
    rounds = config.getoption("--bench-rounds")
    if rounds is None:
        rounds = 5 if bench_device(config).type == "cuda" else 3
    return rounds


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
