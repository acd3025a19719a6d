"""``durn restore`` as a user runs it: the command
``durn restore FOLDER -o OUT --weights untrained --network N -q`` (run as
``python -m durn``, a subprocess; wall time, and the CPU time it used) on a folder of 20
real photos: seeded crops of the scikit-image training photos
(``durn.data.sample_images("train")``, never the reporting photos camera and astronaut;
see :func:`make_photo_crops`), gray for the one-channel networks (durn_p), RGB for the
others, so that each photo is one pass of the network. Variants per round, in this
order: "eager" (``--no-optimize``), "cold" (the fast path with a fresh, empty
``DURN_TUNING_CACHE`` file: it measures the layers) and "warm" (the fast path with the
record the cold run of the same round left).

It runs with ``--bench-full`` (durn_p, or the ``--bench-networks``; photos of the first
``--bench-sizes``, default 256; 2 rounds, or ``--bench-rounds N // 3``); the per-image
steady state of the same variants is bench_networks.py's "eager", "fast" and
"restore-api" rows.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import chosen_networks, chosen_sizes, full_run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_NETWORKS = ("durn_p",)
DEFAULT_SIZE = 256
CLI_IMAGES = 20
CLI_VARIANTS = ("eager", "cold", "warm")
CLI_ROUNDS = 2
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
    return chosen_networks(config) if config.getoption("--bench-networks") else list(DEFAULT_NETWORKS)


def _sizes(config) -> list[int]:
    return chosen_sizes(config, None, torch.device("cpu")) if config.getoption("--bench-sizes") else [DEFAULT_SIZE]


def _cli_rounds(config) -> int:
    rounds = config.getoption("--bench-rounds")
    return CLI_ROUNDS if rounds is None else max(1, rounds // 3)


def pytest_generate_tests(metafunc):
    if "variant" not in metafunc.fixturenames:
        return
    config = metafunc.config
    if not full_run(config):
        metafunc.parametrize("network, variant, round", [pytest.param(
            "durn_p", "eager", 0, id="cli", marks=pytest.mark.skip(reason="the durn restore command runs with --bench-full"))])
        return
    cases = []
    for net in _networks(config):
        for variant in CLI_VARIANTS:
            for r in range(_cli_rounds(config)):
                cases.append(pytest.param(net, variant, r, id=f"{net}-{variant}-r{r}"))
    metafunc.parametrize("network, variant, round", cases)


# ----------------------------------------------------------------------------- the command

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


def round_ms(seconds):
    return None if seconds is None else round(seconds * 1e3, 1)
