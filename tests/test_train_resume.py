"""Exact resume: a run stopped by SIGTERM / SIGINT and resumed reaches bit for bit the state
of an uninterrupted run (weights, EMA, optimiser, best result, log), on CPU in float32."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from durn.train import train
from durn.train.loop import Trainer


pytestmark = pytest.mark.usefixtures("one_thread")


def settings(photos, **kw):
    base = dict(data=photos, batch_size=2, crop=16, log_every=1, val_every=2, ckpt_every=3, val_crop=32,
                val_images=2, progress=False)
    base.update(kw)
    return base


def stop_after(monkeypatch, step, sig):
    original = Trainer.train_step

    def train_step(self, batch, stage):
        loss = original(self, batch, stage)
        if self.step == step:
            os.kill(os.getpid(), sig)   # delivered to this (main) thread: the loop's handler runs
        return loss

    monkeypatch.setattr(Trainer, "train_step", train_step)


def assert_same_state(a, b):
    ca, cb = (torch.load(p, weights_only=True) for p in (a, b))
    assert ca["step"] == cb["step"] and ca["best"] == cb["best"] and ca.get("stage") == cb.get("stage")
    for key in ("model", "params_ema"):
        if key in ca:
            assert ca[key].keys() == cb[key].keys()
            for k in ca[key]:
                assert torch.equal(ca[key][k], cb[key][k]), f"{key}.{k}"
    if "optimizer" in ca:
        sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            for k in sa[i]:
                assert torch.equal(sa[i][k], sb[i][k]), f"optimizer state {i}.{k}"


def log_without_timing(run):
    drop = {"images_per_s", "s_per_step"}
    return [{k: v for k, v in json.loads(line).items() if k not in drop}
            for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("preset, steps, stop_at, sig, extra", [
    # durn_p's recipe: stopped in the middle of a reused batch (steps 3-5 share one) and of a
    # logging window (steps 4-6), with EMA
    ("durn_p_gaussian", 7, 4, signal.SIGTERM, dict(degrade="gaussian:30,50,70", reuse=3, ema=0.9, log_every=3)),
    # durn_s_p's two stages (2 + 1 steps): stopped exactly at the boundary (fresh optimiser next)
    ("durn_s_p_raindrop", 3, 2, signal.SIGINT, dict(degrade="raindrop", batch_size=1)),
])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, train_photos, monkeypatch,
                                                       preset, steps, stop_at, sig, extra):
    cfg = settings(train_photos, preset=preset, steps=steps, **extra)
    straight = train(out=tmp_path / "straight", **cfg)
    assert straight.step == steps and straight.interrupted is None

    stop_after(monkeypatch, stop_at, sig)
    first = train(out=tmp_path / "resumed", **cfg)
    assert (first.step, first.interrupted) == (stop_at, signal.Signals(sig).name)
    assert torch.load(first.last, weights_only=True)["step"] == stop_at
    monkeypatch.undo()
    second = train(out=tmp_path / "resumed", resume=True)
    assert second.step == steps and second.interrupted is None

    assert_same_state(tmp_path / "straight" / "last.pt", tmp_path / "resumed" / "last.pt")
    assert_same_state(tmp_path / "straight" / "best.pt", tmp_path / "resumed" / "best.pt")
    assert log_without_timing(tmp_path / "straight") == log_without_timing(tmp_path / "resumed")


SLOW_STEPS = textwrap.dedent("""
    import sys, time
    import torch
    from durn.cli import main
    from durn.train.loop import Trainer
    torch.set_num_threads(1)
    step = Trainer.train_step
    def slow(self, *args):          # slow steps, so the test's SIGTERM lands mid-run
        loss = step(self, *args)
        time.sleep(0.4)
        return loss
    Trainer.train_step = slow
    sys.exit(main(sys.argv[1:]))
""")


def test_sigterm_to_a_training_process_then_resume(tmp_path, train_photos):
    steps = 8
    cfg = settings(train_photos, preset="durn_p_real", degrade="gaussian:10,20", steps=steps, val_every=0,
                   ckpt_every=0)
    run = tmp_path / "killed"
    argv = ["train", "--preset", "durn_p_real", "--data", str(train_photos), "--degrade", "gaussian:10,20",
            "--out", str(run), "--steps", str(steps), "--batch-size", "2", "--crop", "16", "--log-every", "1",
            "--val-every", "0", "--ckpt-every", "0", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_STEPS, *argv], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            log = run / "log.jsonl"
            if log.is_file() and len(log.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    stopped = torch.load(run / "last.pt", weights_only=True)["step"]
    assert 2 <= stopped < steps
    assert f"stopped by SIGTERM after step {stopped} of {steps}" in err and "--resume" in err

    resumed = train(out=run, resume=True, progress=False)
    assert resumed.step == steps
    straight = train(out=tmp_path / "straight", **cfg)
    assert_same_state(tmp_path / "straight" / "last.pt", run / "last.pt")
    assert log_without_timing(tmp_path / "straight") == log_without_timing(run)


def test_a_run_resumes_only_on_the_photos_it_started_on(tmp_path, train_photos, monkeypatch):
    photos = tmp_path / "photos"
    shutil.copytree(train_photos, photos)
    cfg = settings(photos, preset="durn_p_real", degrade="gaussian:10", steps=3, val_every=0, ckpt_every=1)
    stop_after(monkeypatch, 2, signal.SIGTERM)
    assert train(out=tmp_path / "run", **cfg).step == 2
    monkeypatch.undo()
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["train_photos"]
    assert len(saved) == len(list(photos.iterdir())) - 1  # one photo held out for validation
    config_before = (tmp_path / "run" / "config.json").read_text()
    # a photo added to the folder would shift every later batch: refused, nothing rewritten
    shutil.copy(photos / sorted(p.name for p in photos.iterdir())[0], photos / "zz-new.png")
    with pytest.raises(ValueError, match=r"does not hold the .* training photos this run started on.*zz-new.png"):
        train(out=tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "config.json").read_text() == config_before
    # the same photos somewhere else resume (the folder may move)
    (photos / "zz-new.png").unlink()
    moved = tmp_path / "moved"
    photos.rename(moved)
    assert train(out=tmp_path / "run", resume=True, data=moved).step == 3
