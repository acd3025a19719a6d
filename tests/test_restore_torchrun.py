"""`torchrun --nproc-per-node 2 -m durn restore`: the images are shared between the
processes, each restored exactly once and as one process restores it; a rerun skips them;
rank 0 alone cleans up, before any process writes; one summary; exit codes."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from durn.cli import main
from durn.cli.restore import pick_device, split_jobs
from durn.distributed import Dist

pytestmark = pytest.mark.usefixtures("one_thread")

# --no-optimize: the fast path chooses each layer's algorithm by timing it, so two processes
# that measure for themselves may differ within float32 rounding (and then in a rounded
# 8-bit value); the eager network gives the same bytes in every process.
COMMON = ["--weights", "untrained", "--network", "durn_p", "--tile", "none", "--no-optimize"]

# ``python -m durn`` with the calls that matter recorded: which rank restores which image
# and when, when rank 0's clean-up ends, and whether the process group outlives the command.
DRIVER = """
import gc, os, sys, time, weakref
import torch.distributed as dist
import durn.atomic, durn.cli.restore as R
from durn.cli import main

rank = os.environ.get("RANK", "0")
groups = []
init = dist.init_process_group
def tracked_init(*args, **kwargs):
    init(*args, **kwargs)
    groups.append(weakref.ref(dist.group.WORLD))
dist.init_process_group = tracked_init
clean = durn.atomic.remove_stale_temp_files
def tracked_clean(paths):
    removed = clean(paths)
    print(f"CLEANED rank={rank} t={time.time()!r} n={len(removed)}", flush=True)
    return removed
durn.atomic.remove_stale_temp_files = tracked_clean
restore_one = R.restore_one
def tracked_restore_one(model, job, *args):
    print(f"RESTORE rank={rank} t={time.time()!r} {os.path.basename(job.source)}", flush=True)
    return restore_one(model, job, *args)
R.restore_one = tracked_restore_one
code = main(sys.argv[1:])
gc.collect()
print(f"GROUPS rank={rank} created={len(groups)} alive={sum(g() is not None for g in groups)}", flush=True)
sys.exit(code)
"""


def torchrun(*args, driver=None):
    import durn

    root = str(Path(durn.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": root + (os.pathsep + path if path else "")}
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    program = [str(driver)] if driver else ["-m", "durn"]
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           *program, "restore", *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=240)


def records(stdout, kind):
    rows = []
    for line in stdout.splitlines():
        if line.startswith(kind + " "):
            fields = line.split()
            rows.append((int(fields[1].removeprefix("rank=")), float(fields[2].removeprefix("t=")), fields[3]))
    return rows


@pytest.fixture
def photos(tmp_path):
    from skimage import data

    d = tmp_path / "in"
    d.mkdir()
    camera, astronaut = data.camera(), data.astronaut()
    for i, (h, w) in enumerate([(40, 36), (17, 23), (30, 30), (12, 50), (26, 19), (9, 14)]):
        Image.fromarray(np.ascontiguousarray(camera[10 * i:10 * i + h, 20 * i:20 * i + w])).save(d / f"cam{i}.png")
    Image.fromarray(np.ascontiguousarray(astronaut[50:71, 80:113])).save(d / "astro.png")  # RGB: 3 gray passes
    return d


def test_split_is_a_deterministic_balanced_partition():
    rng = np.random.default_rng(0)
    for world in (1, 2, 3, 5, 8):
        for n in (0, 1, 4, 17, 60):
            pixels = [int(p) for p in rng.integers(0, 10_000, n)]
            shares = split_jobs(pixels, world)
            assert len(shares) == world
            assert sorted(i for s in shares for i in s) == list(range(n))  # each image exactly once
            assert all(s == sorted(s) for s in shares)                     # in the original order
            assert split_jobs(list(pixels), world) == shares               # deterministic
            loads = [sum(pixels[i] for i in s) for s in shares]
            if n:
                assert max(loads) - min(loads) <= max(pixels)                # balanced on pixels
    assert split_jobs([5, 1, 1, 1, 1, 1], 2) == [[0], [1, 2, 3, 4, 5]]
    assert split_jobs([0, 0, 0, 0], 2) == [[0, 2], [1, 3]]   # unreadable files (0 px) by count
    assert split_jobs([3, 3], 4) == [[0], [1], [], []]
    with pytest.raises(ValueError):
        split_jobs([1], 0)


def test_each_process_takes_its_own_device(monkeypatch):
    import torch

    from durn.cli.restore import RankError

    if not torch.cuda.is_available():
        assert pick_device("auto", Dist(3, 4, 1)) == torch.device("cpu")
    assert pick_device("cpu", Dist(3, 4, 1)) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # two GPUs, as torch would say
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for name in ("auto", "cuda", "cuda:0", "cuda:1"):
        assert pick_device(name, Dist(3, 4, 1)) == torch.device("cuda", 1), name   # LOCAL_RANK 1
    assert pick_device("cuda:1", Dist()) == torch.device("cuda", 1)                  # one process: as asked
    with pytest.raises(RankError, match="LOCAL_RANK 2, but this machine has 2 CUDA GPUs"):
        pick_device("auto", Dist(2, 3, 2))


def test_a_mistake_in_the_command_is_reported_by_rank_0_only(tmp_path, monkeypatch, capsys):
    """Found alike by every process before any process group exists: rank 0 says it."""
    args = ["restore", str(tmp_path / "nothing*.png"), "-o", str(tmp_path / "o"), *COMMON]
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("LOCAL_RANK", rank)
        assert main(args) == 2
        err = capsys.readouterr().err
        if rank == "1":
            assert err == ""
        else:
            assert "nothing to restore" in err and err.count("\n") == 2, err  # the glob's note, the error


def test_two_processes_restore_each_image_once_as_one_process_does(photos, tmp_path, capsys):
    names = sorted(p.name for p in photos.iterdir())
    reference = tmp_path / "one"
    assert main(["restore", str(photos), "-o", str(reference), "-q", *COMMON]) == 0
    capsys.readouterr()

    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / f".cam2.png.{dead.pid}.abcd1234.part").write_bytes(b"left by a killed run")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    first = torchrun(photos, "-o", out, *COMMON, driver=driver)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-4000:]
    restored = records(first.stdout, "RESTORE")
    assert sorted(name for _, _, name in restored) == names                # every image exactly once
    assert {rank for rank, _, _ in restored} == {0, 1}                     # by both processes
    cleaned = [line for line in first.stdout.splitlines() if line.startswith("CLEANED")]
    assert len(cleaned) == 1 and "rank=0" in cleaned[0] and cleaned[0].endswith("n=1")  # rank 0 alone
    cleaned_at = float(cleaned[0].split()[2].removeprefix("t="))
    assert all(t > cleaned_at for _, t, _ in restored)  # before any process wrote: nothing in flight
    assert first.stdout.count("created=1 alive=0") == 2, first.stdout  # the group made and freed
    assert first.stderr.count("durn restore: 7 restored, 0 skipped, 0 failed") == 1, first.stderr
    assert first.stderr.count("(2 processes)") == 1
    assert first.stderr.count("removed 1 temporary file left by an interrupted run") == 1
    assert first.stderr.count("RANDOM weights") == 1
    assert sorted(os.listdir(out)) == names                                # no temporary file left
    for name in names:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name  # as one process
    mtimes = {name: (out / name).stat().st_mtime_ns for name in names}

    # plain `torchrun -m durn restore` again: everything is skipped; a damaged file fails
    (photos / "broken.png").write_bytes((photos / "cam0.png").read_bytes()[:100])
    again = torchrun(photos, "-o", out, *COMMON)
    assert again.returncode != 0, again.stderr[-4000:]
    assert again.stderr.count("durn restore: 0 restored, 7 skipped, 1 failed") == 1, again.stderr
    assert again.stderr.count("7 outputs already exist") == 1
    lines = [line for line in again.stderr.splitlines() if "cannot read" in line]
    assert len(lines) == 1 and "broken.png" in lines[0] and lines[0].startswith("durn restore [rank "), lines
    assert {name: (out / name).stat().st_mtime_ns for name in names} == mtimes
