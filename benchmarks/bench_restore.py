"""``durn restore`` and ``durn.restore`` on the default fast path against eager PyTorch and
``torch.compile``, in one run.

(a) ``test_cli``: the command ``durn restore FOLDER -o OUT --weights untrained --network N -q``
    (run as ``python -m durn``, a subprocess; wall time, and the CPU time it used) on a folder
    of 20 real photos: seeded 256x256 crops of the scikit-image training photos
    (``durn.data.sample_images("train")``, never the reporting photos camera and astronaut;
    see :func:`make_photo_crops`), gray for the one-channel networks (durn_p), RGB for the
    others, so that each photo is one pass of the network. Variants
    per round, in this order: "eager" (``--no-optimize``), "cold" (the fast path with a fresh,
    empty ``DURN_TUNING_CACHE`` file: it measures the layers) and "warm" (the fast path with
    the record the cold run of the same round left).
(b) ``test_steady``: the per-image time after warm-up of the network eager (what
    ``--no-optimize`` runs: durn's own layer structure, not the authors'),
    ``torch.compile(model, dynamic=False)`` (inductor, default mode; max-autotune on CUDA),
    "fast" (the ``FusedDuRN`` the fast path built, called directly) and "restore-api"
    (``durn.restore(model, x)`` after its first call: the same network plus the API's
    checks and conversions). Each item is one round of one variant (``CALLS`` timed calls);
    the rounds interleave the variants. The one-time costs (the fast path's optimize with a
    cold and with a warm record, the first calls, the compile) are in every item's
    ``extra_info``.

Defaults (about 3 minutes on one core): durn_p, 256x256, float32, 1 CLI round, 5 steady
rounds. ``--bench-networks``, ``--bench-sizes`` (the first size is the CLI photos' size),
``--bench-rounds`` (the steady rounds; the CLI gets ``max(1, rounds // 3)``),
``--bench-no-compile``, ``--bench-device`` and ``--bench-threads`` as for the other files::

    taskset -c 1 env OMP_NUM_THREADS=1 python -m pytest benchmarks/bench_restore.py --benchmark-enable \\
        --benchmark-json=benchmarks/results/restore-cpu-2core-$(date +%F).json
    python benchmarks/bench_restore.py benchmarks/results/restore-cpu-2core-*.json   # the tables

The tables: per variant the median, min and max over every timed sample, the ratio of
eager's median to the variant's, and the range of the per-round ratios (eager and the
variant timed back to back in the same round).
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PeakMemory, synchronize  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_NETWORKS = ("durn_p",)
DEFAULT_SIZE = 256
CLI_IMAGES = 20
CLI_VARIANTS = ("eager", "cold", "warm")
STEADY_VARIANTS = ("eager", "compile", "fast", "restore-api")
STEADY_ROUNDS = 5  # default; the CLI gets max(1, rounds // 3)
CALLS = 2  # timed calls per steady item (one round of one variant)
CLI_TIMEOUT_S = 600
_round = round  # the tests' parameter "round" (the name conftest.py interleaves by) hides the builtin


# ----------------------------------------------------------------------------- the photos

def make_photo_crops(folder: Path, n: int = CLI_IMAGES, size: int = DEFAULT_SIZE, seed: int = 0,
                     mode: str = "RGB") -> list[dict]:
    """Writes ``n`` seeded ``size`` x ``size`` PNG crops of the training photos into
    ``folder`` and returns what each one is: photo i % 10 (in ``sample_images("train")``'s
    order), converted to ``mode`` ("RGB" or "L"), scaled by a random factor between "short
    side = size" and 1 (never below size; photos shorter than ``size`` are scaled up to it,
    bicubic), then cropped at a random offset. The same seed gives the same boxes in
    either mode."""
    import numpy as np
    from PIL import Image

    from durn.data import sample_images

    photos = sample_images("train")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(n):
        path = photos[i % len(photos)]
        with Image.open(path) as im:
            im = im.convert(mode)
            low = size / min(im.size)
            scale = low if low >= 1 else float(rng.uniform(low, 1.0))
            w, h = max(size, round(im.width * scale)), max(size, round(im.height * scale))
            im = im.resize((w, h), Image.BICUBIC)
            left, top = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
            name = f"{i:02d}-{path.stem}.png"
            im.crop((left, top, left + size, top + size)).save(folder / name)
        made.append({"file": name, "photo": path.name, "scale": round(scale, 3), "box": [left, top, size, size]})
    return made


# ----------------------------------------------------------------------------- parameters

def _networks(config) -> list[str]:
    chosen = config.getoption("--bench-networks")
    return chosen.split(",") if chosen else list(DEFAULT_NETWORKS)


def _sizes(config) -> list[int]:
    chosen = config.getoption("--bench-sizes")
    return [int(s) for s in chosen.split(",")] if chosen else [DEFAULT_SIZE]


def _steady_rounds(config) -> int:
    rounds = config.getoption("--bench-rounds")
    return STEADY_ROUNDS if rounds is None else rounds


def _cli_rounds(config) -> int:
    return max(1, _steady_rounds(config) // 3)


def pytest_generate_tests(metafunc):
    if "variant" not in metafunc.fixturenames:
        return
    config = metafunc.config
    cases = []
    if metafunc.function.__name__ == "test_cli":
        for net in _networks(config):
            for variant in CLI_VARIANTS:
                for r in range(_cli_rounds(config)):
                    cases.append(pytest.param(net, variant, r, id=f"{net}-{variant}-r{r}"))
        metafunc.parametrize("network, variant, round", cases)
        return
    dtype = "float32"
    skip_compile = config.getoption("--bench-no-compile")
    for net in _networks(config):
        for size in _sizes(config):
            for variant in STEADY_VARIANTS:
                for r in range(_steady_rounds(config)):
                    skip = skip_compile and variant == "compile"
                    marks = [pytest.mark.skip(reason="--bench-no-compile")] if skip else []
                    cases.append(pytest.param(net, size, dtype, variant, r, marks=marks,
                                              id=f"{net}-{size}-{dtype}-{variant}-r{r}"))
    metafunc.parametrize("network, size, dtype, variant, round", cases)


# ----------------------------------------------------------------------------- (a) the CLI

@pytest.fixture(scope="session")
def bench_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench_restore")


@pytest.fixture(scope="session")
def photo_folders(request, bench_tmp):
    """``get(network)``: the folder of photos in the network's own format (gray for the
    one-channel networks, so each photo is one pass, as in the steady-state rows; RGB for
    the others), made once per format; returns (folder, photos, size)."""
    import durn

    size = _sizes(request.config)[0]
    made: dict[str, tuple] = {}

    def get(network: str):
        mode = "L" if durn.get_model(network).in_channels == 1 else "RGB"
        if mode not in made:
            folder = bench_tmp / f"photos{size}-{mode}"
            made[mode] = (folder, make_photo_crops(folder, CLI_IMAGES, size, mode=mode), size)
        return made[mode]

    return get


def _record_entries(path: Path) -> int | None:
    try:
        return len(json.loads(path.read_text())["choices"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def test_cli(benchmark, device, bench_tmp, photo_folders, network, variant, round):
    folder, photos, size = photo_folders(network)
    record = bench_tmp / f"tuning-{network}-r{round}.json"
    if variant == "cold":
        record.write_text("")  # a fresh, empty record: everything is measured
    elif variant == "warm" and _record_entries(record) is None:
        pytest.skip("no record from this round's cold run (run the cold variant first)")
    out = bench_tmp / f"out-{network}-{variant}-r{round}"
    command = [sys.executable, "-m", "durn", "restore", str(folder), "-o", str(out), "--weights", "untrained",
               "--network", network, "--device", device.type, "-q"]
    if variant == "eager":
        command.append("--no-optimize")
    env = dict(os.environ, DURN_TUNING_CACHE=str(record) if variant != "eager" else "off")
    done = {}

    def run():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done["proc"] = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        done["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    benchmark.group = f"durn restore {network} {CLI_IMAGES} photos {size}x{size} {device.type}"
    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    proc = done["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = len(list(out.glob("*.png")))
    assert written == len(photos), f"{written} outputs for {len(photos)} photos\n{proc.stderr[-2000:]}"
    wall = benchmark.stats.stats.median
    benchmark.extra_info.update(
        kind="restore-cli", network=network, size=size, images=len(photos), photo_mode=folder.name.rsplit("-", 1)[-1],
        variant=variant, round=round,
        device=device.type, command=" ".join(["durn"] + command[3:]),
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"), cpu_affinity=sorted(os.sched_getaffinity(0)),
        per_image_ms=round_ms(wall / len(photos)), cpu_samples_s=[_round(done["cpu_s"], 3)],
        record_entries=_record_entries(record) if variant != "eager" else None,
        photos=[f"{p['file']} ({p['photo']} x{p['scale']} at {p['box'][0]},{p['box'][1]})" for p in photos]
        if round == 0 and variant == "eager" else None)


# ----------------------------------------------------------------------------- (b) steady state

class _Steady:
    """Builds every variant of one (network, size, dtype, device) case once, recording the
    one-time costs, and keeps only the current case."""

    def __init__(self):
        self.case = None
        self.runners: dict = {}
        self.costs: dict = {}
        self.memory: dict = {}

    def get(self, case, variant, tmp: Path, with_compile: bool):
        if case != self.case:
            self.case, self.runners, self.costs, self.memory = case, {}, {}, {}
            torch._dynamo.reset()
            self._build(*case, tmp, with_compile)
        return self.runners[variant]

    def _build(self, network, size, dtype, device, tmp: Path, with_compile: bool):
        import durn
        from durn.inference.tuner import clear_tuning_cache
        from durn.restoration import fast

        torch.manual_seed(0)
        model = durn.get_model(network).eval().to(device=device, dtype=dtype)
        model.min_size  # noqa: B018 - computed before timing
        g = torch.Generator().manual_seed(0)
        x = torch.rand(1, model.in_channels, size, size, generator=g).to(device=device, dtype=dtype)
        costs = self.costs

        def first_calls(name, fn):
            start = time.perf_counter()
            with torch.no_grad():
                fn()
            synchronize(device)
            costs[f"{name}_first_call_s"] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            with torch.no_grad():
                fn()
            synchronize(device)
            costs[f"{name}_second_call_s"] = round(time.perf_counter() - start, 3)

        first_calls("eager", lambda: model(x))

        # The fast path as durn.restore builds it, once with a fresh record, once with the
        # record that left (the in-process measurements forgotten each time).
        record = tmp / f"steady-tuning-{network}-{size}.json"
        record.write_text("")
        old = os.environ.get("DURN_TUNING_CACHE")
        os.environ["DURN_TUNING_CACHE"] = str(record)
        try:
            choices = {}
            for kind in ("cold", "warm"):
                clear_tuning_cache()
                fast.forget(model)
                start = time.perf_counter()
                fused = fast.fast_network(model, device, True)
                costs[f"optimize_{kind}_s"] = round(time.perf_counter() - start, 3)
                choices[kind] = fused.algorithm_choices()
                costs[f"tuning_defaulted_{kind}"] = len(getattr(fused, "tuning_defaulted", []))
            costs["record_entries"] = _record_entries(record)
            costs["warm_choices_equal_cold"] = choices["warm"] == choices["cold"]
            counts: dict[str, int] = defaultdict(int)
            for algo in choices["warm"].values():
                counts[algo.split(":")[0]] += 1
            costs["algorithms"] = dict(sorted(counts.items()))
            first_calls("fast", lambda: fused(x))
            first_calls("restore_api", lambda: durn.restore(model, x))
            assert fast.fast_network(model, device, True) is fused  # restore-api runs the same network
        finally:
            if old is None:
                os.environ.pop("DURN_TUNING_CACHE", None)
            else:
                os.environ["DURN_TUNING_CACHE"] = old
        self.runners.update(eager=lambda: model(x), fast=lambda: fused(x),
                            **{"restore-api": lambda: durn.restore(model, x)})
        if with_compile:
            mode = "max-autotune" if device.type == "cuda" else None
            compiled = torch.compile(model, dynamic=False, mode=mode)
            first_calls("compile", lambda: compiled(x))  # the first call is the compile
            costs["compile_mode"] = mode or "default"
            self.runners["compile"] = lambda: compiled(x)
        with torch.no_grad():  # each output against eager's: the same network, within rounding
            want = model(x)
            for name, fn in self.runners.items():
                costs[f"{name}_max_abs_diff"] = float((fn() - want).abs().max())


_STEADY = _Steady()


def test_steady(benchmark, pytestconfig, device, bench_tmp, network, size, dtype, variant, round):
    case = (network, size, getattr(torch, dtype), device)
    fn = _STEADY.get(case, variant, bench_tmp, not pytestconfig.getoption("--bench-no-compile"))
    benchmark.group = f"steady {network} {size}x{size} {dtype} {device.type}"
    benchmark.extra_info.update(kind="restore-steady", network=network, size=size, dtype=dtype, variant=variant,
                                round=round, device=device.type, threads=torch.get_num_threads(), calls=CALLS,
                                omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                                cpu_affinity=sorted(os.sched_getaffinity(0)), **_STEADY.costs)

    cpu: list[float] = []

    def run():
        start = time.process_time()
        with torch.no_grad():
            fn()
        synchronize(device)
        cpu.append(time.process_time() - start)

    if variant not in _STEADY.memory:
        _STEADY.memory[variant] = PeakMemory(device).measure(run)
    benchmark.extra_info.update(_STEADY.memory[variant])
    cpu.clear()
    benchmark.pedantic(run, rounds=CALLS, iterations=1, warmup_rounds=0)
    benchmark.extra_info["cpu_samples_s"] = [_round(c, 4) for c in cpu]


def round_ms(seconds):
    return None if seconds is None else round(seconds * 1e3, 1)


# ----------------------------------------------------------------------------- the tables

def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2f} ms"


def _s(seconds: float) -> str:
    return f"{seconds:.1f} s"


def report(paths) -> str:
    """The Markdown tables of a pytest-benchmark JSON written by this file."""
    rows = []
    when = None
    for path in paths:
        data = json.loads(Path(path).read_text())
        when = when or (data.get("datetime") or "")[:10]
        for bench in data.get("benchmarks", []):
            info = bench.get("extra_info", {})
            if info.get("kind") in ("restore-cli", "restore-steady"):
                rows.append((info, bench["stats"]["data"], info.get("cpu_samples_s") or []))
    if not rows:
        raise SystemExit("no bench_restore.py results in " + ", ".join(map(str, paths)))
    out = []
    titles = {"restore-cli": "`durn restore` of the folder: wall time of the command",
              "restore-steady": "Steady state: time per image (batch 1)"}
    for kind, title in titles.items():
        fmt = _s if kind == "restore-cli" else _ms
        # (network, size, dtype, device, images) -> variant -> round -> (wall samples, CPU samples)
        groups: dict[tuple, dict[str, dict[int, tuple]]] = defaultdict(lambda: defaultdict(dict))
        extra: dict[tuple, dict] = {}
        for info, wall, cpu in rows:
            if info["kind"] != kind:
                continue
            key = (info["network"], info["size"], info.get("dtype", "float32"), info["device"], info.get("images"))
            groups[key][info["variant"]][info["round"]] = (wall, cpu)
            extra.setdefault(key, info)
        if not groups:
            continue
        order = CLI_VARIANTS if kind == "restore-cli" else STEADY_VARIANTS
        out += [f"{title} (wall: median, min, max over every timed call; (Nx): eager's median / the variant's; "
                "per round: the range of that ratio within each round, eager and the variant back to back; "
                "CPU: the process's CPU time, which other jobs on the core disturb less):", ""]
        head = ["network", "photos" if kind == "restore-cli" else "size", "variant", "median", "min", "max"]
        head += (["per photo"] if kind == "restore-cli" else []) + ["vs eager", "per round", "CPU", "CPU vs eager"]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for key in sorted(groups):
            variants = groups[key]
            wall = {v: [t for r in sorted(rs) for t in rs[r][0]] for v, rs in variants.items()}
            cpu = {v: [t for r in sorted(rs) for t in rs[r][1]] for v, rs in variants.items()}
            med = {v: statistics.median(x) for v, x in wall.items()}
            cmed = {v: statistics.median(x) for v, x in cpu.items() if x}
            for v in [v for v in order if v in variants]:
                ratio = cratio = per_round = ""
                if v != "eager" and "eager" in variants:
                    ratio = f"{med['eager'] / med[v]:.2f}x"
                    if v in cmed and "eager" in cmed:
                        cratio = f"{cmed['eager'] / cmed[v]:.2f}x"
                    rr = [statistics.median(variants["eager"][r][0]) / statistics.median(variants[v][r][0])
                          for r in variants[v] if r in variants["eager"]]
                    per_round = f"{min(rr):.2f}-{max(rr):.2f}x ({len(rr)})" if rr else ""
                where = f"{key[4]} x {key[1]}x{key[1]}" if kind == "restore-cli" else f"{key[1]}x{key[1]} {key[2]}"
                cells = [key[0], where, v, fmt(med[v]), fmt(min(wall[v])), fmt(max(wall[v]))]
                if kind == "restore-cli":
                    cells.append(_ms(med[v] / key[4]))
                cells += [ratio, per_round, fmt(cmed[v]) if v in cmed else "", cratio]
                out.append("| " + " | ".join(cells) + " |")
        out.append("")
        if kind == "restore-steady":
            names = ("optimize_cold_s", "optimize_warm_s", "record_entries", "warm_choices_equal_cold", "algorithms",
                     "eager_first_call_s", "fast_first_call_s", "restore_api_first_call_s", "compile_first_call_s")
            for key, info in sorted(extra.items()):
                costs = ", ".join(f"{n} {info[n]}" for n in names if n in info)
                out += [f"One-time costs, {key[0]} {key[1]}x{key[1]} ({when}): {costs}", ""]
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(f"usage: python {sys.argv[0]} RESULTS.json [...]")
    print(report(sys.argv[1:]))
