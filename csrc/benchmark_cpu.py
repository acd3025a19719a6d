"""Times the C++ CPU kernels against the fallback (the reference: PyTorch's own ops,
i.e. oneDNN convolutions plus separate pad / pixel-shuffle / epilogue passes) on DuRN
layer shapes for a 256 x 256 input, float32, batch 1.

    python csrc/benchmark_cpu.py [--threads 2] [--repeats 7] [--clock wall|cpu]

Prints a markdown table: median times and the speed-up (fallback / cpp). ``--clock cpu``
measures process CPU time, which a busy shared machine disturbs far less than wall time
(use it with --threads 1).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from durn import ops
from durn.ops import reference

# name, op, (C, O, H, k, dilation, stride, padding_mode, upscale), (residual_at, activation, affine)
CONVS = [
    ("durn_p block T1: 32->32 11x11 d3 reflect @256", (32, 32, 256, 11, 3, 1, "reflect", 1), ("post_affine", "relu", True)),
    ("durn_p c1: 32->32 3x3 reflect @256", (32, 32, 256, 3, 1, 1, "reflect", 1), ("none", "relu", True)),
    ("durn_s block T2: 64->64 7x7 reflect @256", (64, 64, 256, 7, 1, 1, "reflect", 1), ("post_affine", "relu", True)),
    ("durn_u stem: 128->256 3x3 s2 zeros @128", (128, 256, 128, 3, 1, 2, "zeros", 1), ("none", "relu", True)),
    ("durn_s_p T1: 128->128 3x3 d12 zeros @64", (128, 128, 64, 3, 12, 1, "zeros", 1), ("post_affine", "relu", True)),
    ("durn_u tail: 1x1 256->512 @64", (256, 512, 64, 1, 1, 1, "zeros", 1), ("none", "none", True)),
    ("durn_u out: 64->3 7x7 zeros @256, x + tanh", (64, 3, 256, 7, 1, 1, "zeros", 1), ("post_activation", "tanh", False)),
]
SHUFFLES = [
    ("durn_us T1: ps(256@64) 64->64 11x11 reflect", (64, 64, 128, 11, 1, 1, "reflect", 2), ("post_affine", "relu", False)),
    ("durn_u T1: ps(512@64) 128->128 3x3 d3 zeros", (128, 128, 128, 3, 3, 1, "zeros", 2), ("post_affine", "relu", True)),
    ("durn_us tail: ps(256@128) 64->64 3x3 reflect", (64, 64, 256, 3, 1, 1, "reflect", 2), ("none", "relu", False)),
]
SES = [("durn_s: 64 ch @256, hidden 32", 64, 256, 32), ("durn_us: 64 ch @64, hidden 32", 64, 64, 32),
       ("durn_s_p: 128 ch @64, hidden 64", 128, 64, 64)]


def _timer(clock: str):
    return time.process_time if clock == "cpu" else time.perf_counter


def _median_time(fn, repeats: int, clock) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        start = clock()
        fn()
        samples.append(clock() - start)
    return statistics.median(samples)


def _conv_case(spec, form, channels_last):
    c, o, h, k, dilation, stride, mode, upscale = spec
    residual_at, activation, affine = form
    pad = dilation * (k - 1) // 2
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(1, c * upscale * upscale, h // upscale, h // upscale).contiguous(memory_format=fmt)
    w = torch.randn(o, c, k, k) / (c * k * k) ** 0.5
    ho = (h + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    r = None if residual_at == "none" else torch.randn(1, o, ho, ho).contiguous(memory_format=fmt)
    scale, shift = (torch.rand(o) + 0.5, torch.randn(o)) if affine else (None, None)
    args = (w, torch.randn(o), scale, shift, r, stride, pad, dilation, mode, residual_at, activation, 1.0)
    if upscale > 1:
        return (lambda: reference.pixel_shuffle_conv2d(x, upscale, *args),
                lambda: torch.ops.durn.pixel_shuffle_conv2d(x, upscale, *args))
    return lambda: reference.fused_conv2d(x, *args), lambda: torch.ops.durn.fused_conv2d(x, *args)


def _se_case(c, h, hidden, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(1, c, h, h).contiguous(memory_format=fmt)
    identity = torch.randn(1, c, h, h).contiguous(memory_format=fmt)
    p = (torch.randn(hidden, c), torch.randn(hidden), torch.randn(c, hidden), torch.randn(c))
    return (lambda: reference.squeeze_excitation(x, *p, identity),
            lambda: torch.ops.durn.squeeze_excitation(x, *p, identity))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--only", choices=("conv", "shuffle", "se"), default=None)
    args = parser.parse_args()
    ok, why = ops.available_backends()["cpp"]
    if not ok:
        raise SystemExit(f"the C++ extension is unavailable: {why}")
    torch.set_num_threads(args.threads)
    clock = _timer(args.clock)
    print(f"threads={args.threads} clock={args.clock} repeats={args.repeats} torch={torch.__version__}\n")
    print("| operator | layer | layout | fallback ms | cpp ms | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |")
    groups = {
        "conv": [("fused_conv2d", n, lambda cl, s=s, f=f: _conv_case(s, f, cl)) for n, s, f in CONVS],
        "shuffle": [("pixel_shuffle_conv2d", n, lambda cl, s=s, f=f: _conv_case(s, f, cl)) for n, s, f in SHUFFLES],
        "se": [("squeeze_excitation", n, lambda cl, c=c, h=h, k=k: _se_case(c, h, k, cl)) for n, c, h, k in SES],
    }
    for group, cases in groups.items():
        if args.only and group != args.only:
            continue
        for op, name, make in cases:
            for channels_last in (False, True):
                fallback, cpp = make(channels_last)
                t_ref = _median_time(fallback, args.repeats, clock)
                t_cpp = _median_time(cpp, args.repeats, clock)
                layout = "channels_last" if channels_last else "NCHW"
                print(f"| {op} | {name} | {layout} | {t_ref * 1e3:.3g} | {t_cpp * 1e3:.3g} | "
                      f"{t_ref / t_cpp:.2f} |", flush=True)


if __name__ == "__main__":
    main()
