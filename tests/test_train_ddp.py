"""DistributedDataParallel: ``torchrun --nproc-per-node 2 -m durn train`` with gloo on CPU
trains the same weights as one process with the same global batch.

durn_p_real has no BatchNorm (BN under DDP normalises with each process's own batch, so
BN networks differ from one process by design). float64 keeps the comparison tight: the
two runs differ only in the order of float additions (the mean over 4 samples against the
average of two means over 2, then gloo's all-reduce), about 1e-16 relative per step.

Each process also checks that it ends with its process group freed: a group kept alive
past ``destroy_process_group`` leaves gloo's threads running into interpreter exit, where
they can abort the process (seen once in CI: "terminate called without an active
exception" on rank 1).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from durn.train import train


def torchrun_env():
    import durn

    # The driver script runs from tmp_path: let it import this durn, installed or not.
    root = str(Path(durn.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root + (os.pathsep + path if path else "")}
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")   # loopback, whatever the host name resolves to
    return env


pytestmark = pytest.mark.usefixtures("one_thread")

# Run ``durn train`` as torchrun would, then report whether the default process group
# object is still alive once training has returned.
DRIVER = """
import gc, sys, weakref
import torch.distributed as dist
from durn.cli import main

groups = []
init = dist.init_process_group
def tracked_init(*args, **kwargs):
    init(*args, **kwargs)
    groups.append(weakref.ref(dist.group.WORLD))
dist.init_process_group = tracked_init
code = main(sys.argv[1:])
gc.collect()
alive = [g() is not None for g in groups]
print(f"rank process groups still alive: {alive}", flush=True)
sys.exit(code or (3 if any(alive) or not groups else 0))
"""


def test_two_gloo_processes_match_one_process(tmp_path, train_photos):
    steps = 3
    cfg = dict(preset="durn_p_real", data=str(train_photos), degrade="gaussian:10,20", steps=steps, batch_size=4,
               crop=16, log_every=1, val_every=steps, ckpt_every=0, precision="fp64", val_crop=32, progress=False)
    ddp_run = tmp_path / "ddp"
    argv = ["--preset", cfg["preset"], "--data", cfg["data"], "--degrade", cfg["degrade"], "--steps", str(steps),
            "--batch-size", "4", "--crop", "16", "--log-every", "1", "--val-every", str(steps), "--ckpt-every", "0",
            "--precision", "fp64", "--val-crop", "32", "--no-progress", "--out", str(ddp_run)]
    env = torchrun_env()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(driver), "train", *argv],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[:3000] + "\n...\n" + proc.stderr[-3000:]
    assert proc.stdout.count("steps done") == 1          # only rank 0 reports
    assert proc.stdout.count("rank process groups still alive: [False]") == 2, proc.stdout

    one = train(out=tmp_path / "one", **cfg)
    a = torch.load(ddp_run / "last.pt", weights_only=True)
    b = torch.load(one.last, weights_only=True)
    assert a["step"] == b["step"] == steps
    assert a["model"]["stem.0.weight"].dtype == torch.float64
    worst = max(float((a["model"][k] - b["model"][k]).abs().max()) for k in a["model"])
    moved = max(float((b["model"][k] - v).abs().max()) for k, v in _initial().items())
    assert moved > 1e-5           # the weights did change (3 Adam steps of lr 1e-4)
    assert worst < 1e-12, worst   # measured: 4e-16
    for ka, kb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert float((ka["exp_avg_sq"] - kb["exp_avg_sq"]).abs().max()) <= 1e-12 * float(kb["exp_avg_sq"].abs().max())

    log_a = [json.loads(x) for x in (ddp_run / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log_a] == [r["step"] for r in log_b] == [1, 2, 3, 3]   # written once
    for ra, rb in zip(log_a, log_b):
        for key in ("loss", "val_psnr", "val_ssim"):
            if key in rb:
                assert ra[key] == pytest.approx(rb[key], rel=1e-12, abs=1e-12), key
    assert sorted(p.name for p in ddp_run.iterdir()) == ["best.pt", "config.json", "last.pt", "log.jsonl"]


def _initial():
    import durn

    torch.manual_seed(0)
    return {k: v.double() for k, v in durn.get_model("durn_p_real").state_dict().items()}


def test_batch_must_divide_among_processes(tmp_path, train_photos):
    env = torchrun_env()
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "durn", "train", "--preset", "durn_p_real", "--data", str(train_photos), "--degrade", "gaussian:10",
         "--steps", "1", "--batch-size", "3", "--crop", "16", "--no-progress", "--out", str(tmp_path / "r")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "batch size 3 does not divide among 2 processes" in proc.stderr
