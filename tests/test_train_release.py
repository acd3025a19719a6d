"""What release runs rely on: networks that start as the identity, validation that logs the
degraded input's score beside the network's, and a training queue that survives stops
(scripts/train_queue.py)."""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import durn
from durn.train import train

from conftest import NETWORK_NAMES, REPO

pytestmark = pytest.mark.usefixtures("one_thread")
QUEUE = REPO / "scripts" / "train_queue.py"


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_zero_residual_makes_every_network_the_identity(name):
    model = durn.get_model(name).eval()
    keys = set(model.state_dict())
    x = torch.rand(1, model.in_channels, 20, 24)
    with torch.no_grad():
        assert not torch.equal(model(x), x)
        assert torch.equal(model.zero_residual_()(x), x)
    assert set(model.state_dict()) == keys  # same checkpoint layout


def _read_log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _val_record(run):
    return [r for r in _read_log(run) if "val_psnr" in r][-1]


def test_validation_logs_the_input_score_and_identity_init_starts_there(tmp_path, train_photos):
    common = dict(preset="durn_p_real", data=train_photos, degrade="camera_blur", steps=1, batch_size=1, crop=16,
                  lr=1e-12, val_every=1, ckpt_every=0, log_every=1, progress=False, val_crop=32)
    train(out=tmp_path / "identity", identity_init=True, **common)
    train(out=tmp_path / "random", **common)
    identity, random = _val_record(tmp_path / "identity"), _val_record(tmp_path / "random")
    assert identity["val_input_psnr"] == random["val_input_psnr"]   # the same validation pairs
    assert 15 < identity["val_input_psnr"] < 60
    # lr 1e-12: after one step the identity start still returns its input
    assert abs(identity["val_psnr"] - identity["val_input_psnr"]) < 1e-3
    assert abs(random["val_psnr"] - random["val_input_psnr"]) > 0.3  # measured 0.9 dB (seed 0)
    assert 0 < identity["val_input_ssim"] <= 1


def test_identity_init_and_init_exclude_each_other(tmp_path, train_photos):
    with pytest.raises(ValueError, match="identity_init"):
        train(preset="durn_p_real", out=tmp_path / "r", data=train_photos, degrade="blur", steps=1,
              identity_init=True, init="default")
    assert not (tmp_path / "r").exists()


def _queue(tmp_path, runs):
    path = tmp_path / "queue.json"
    path.write_text(json.dumps({"runs": runs}))
    return path


def _queue_command(queue, runs_dir, photos, *extra):
    return [sys.executable, os.fspath(QUEUE), os.fspath(queue), "--runs", os.fspath(runs_dir),
            "--photos", os.fspath(photos), "--nice", "0", *extra]


def _tiny_run(name, steps):
    return {"name": name, "args": ["--preset", "durn_p_real", "--data", "{photos}", "--degrade", "gaussian:20",
                                   "--steps", str(steps), "--batch-size", "1", "--crop", "16", "--val-every", "0",
                                   "--ckpt-every", "1", "--log-every", "1", "--val-crop", "32"]}


def test_queue_stopped_midway_continues_where_it_stopped(tmp_path, train_photos):
    queue = _queue(tmp_path, [_tiny_run("first", 12), _tiny_run("second", 2)])
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_queue_command(queue, runs, train_photos), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (runs / "first" / "last.pt").is_file():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() is not None else ""
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out
    assert "run the queue again" in out
    stopped = torch.load(runs / "first" / "last.pt", weights_only=True)["step"]
    assert 1 <= stopped < 12
    assert not (runs / "second").exists()

    status = subprocess.run(_queue_command(queue, runs, train_photos, "--status"), env=env, capture_output=True,
                            text=True, check=True).stdout
    assert f"started   {stopped} / 12 steps" in status and "new       0 / 2 steps" in status

    done = subprocess.run(_queue_command(queue, runs, train_photos), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"first: started at step {stopped}" in done.stdout
    for name, steps in (("first", 12), ("second", 2)):
        assert torch.load(runs / name / "last.pt", weights_only=True)["step"] == steps
        assert [r["step"] for r in _read_log(runs / name)] == list(range(1, steps + 1))  # resumed exactly, once
    again = subprocess.run(_queue_command(queue, runs, train_photos), env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.count(": finished") == 2
    assert sorted(p.name for p in runs.iterdir()) == ["first", "first.console.log", "second", "second.console.log"]


def test_queue_status_creates_nothing(tmp_path, train_photos):
    queue = _queue(tmp_path, [_tiny_run("a", 1), _tiny_run("b", 1)])
    runs = tmp_path / "runs"
    runs.mkdir()
    status = subprocess.run(_queue_command(queue, runs, train_photos, "--status"), capture_output=True, text=True,
                            check=True).stdout
    assert status.count("new") == 2 and "(running)" not in status
    assert list(runs.iterdir()) == []


def test_queue_restarts_a_run_killed_before_its_first_checkpoint(tmp_path, train_photos):
    queue = _queue(tmp_path, [_tiny_run("only", 1)])
    runs = tmp_path / "runs"
    (runs / "only").mkdir(parents=True)
    (runs / "only" / "config.json").write_text("{}")
    done = subprocess.run(_queue_command(queue, runs, train_photos), capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "only: stuck" in done.stdout
    assert torch.load(runs / "only" / "last.pt", weights_only=True)["step"] == 1


def test_queue_run_starts_from_another_runs_weights(tmp_path, train_photos):
    """``{runs}`` is the queue's run folder: a fine-tuning run names an earlier run's weights."""
    tuned = _tiny_run("tuned", 1)
    tuned["args"] += ["--init", "{runs}/base/last.pt"]
    queue = _queue(tmp_path, [_tiny_run("base", 1), tuned])
    runs = tmp_path / "runs"
    done = subprocess.run(_queue_command(queue, runs, train_photos), capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"--init {runs / 'base' / 'last.pt'}" in done.stdout
    assert torch.load(runs / "tuned" / "last.pt", weights_only=True)["step"] == 1


def test_two_queues_share_a_file_without_running_one_run_twice(tmp_path, train_photos):
    """A run another queue holds (its lock taken) is skipped and shown as running."""
    queue = _queue(tmp_path, [_tiny_run("held", 2), _tiny_run("free", 1)])
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    (runs / "held").mkdir()
    other_queue = os.open(runs / "held", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(other_queue, fcntl.LOCK_EX | fcntl.LOCK_NB)
        status = subprocess.run(_queue_command(queue, runs, train_photos, "--status"), env=env, capture_output=True,
                                text=True, check=True).stdout
        assert "held" in status and "(running)" in status.splitlines()[0] and "(running)" not in status.splitlines()[1]
        done = subprocess.run(_queue_command(queue, runs, train_photos), env=env, capture_output=True, text=True)
    finally:
        os.close(other_queue)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "held: held by another queue; skipped" in done.stdout
    assert not any((runs / "held").iterdir())
    assert torch.load(runs / "free" / "last.pt", weights_only=True)["step"] == 1


def test_queue_threads_reach_the_training(tmp_path, train_photos):
    """--threads N sets OMP_NUM_THREADS for the trainings (two queues on two cores: N = 1)."""
    probe = _tiny_run("probe", 1)
    queue = _queue(tmp_path, [probe])
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    runs = tmp_path / "runs"
    done = subprocess.run(_queue_command(queue, runs, train_photos, "--threads", "1"), env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "probe: new at step 0 (1 CPU threads)" in done.stdout
    bad = subprocess.run(_queue_command(queue, runs, train_photos, "--threads", "-1"), env=env, capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "--threads takes a positive count" in bad.stderr


@pytest.mark.parametrize("runs, message", [
    ([{"name": "a", "args": ["--preset", "durn_p"]}], "needs --steps"),
    ([{"name": "a", "args": ["--steps", "2", "--out", "x"]}], "must not give"),
    ([{"name": "a", "args": ["--steps", "2"]}, {"name": "a", "args": ["--steps", "2"]}], "appears twice"),
    ([{"name": "../a", "args": ["--steps", "2"]}], "bad run name"),
    ([], "must hold"),
])
def test_queue_files_are_checked_before_anything_runs(tmp_path, runs, message):
    queue = _queue(tmp_path, runs)
    result = subprocess.run([sys.executable, os.fspath(QUEUE), os.fspath(queue), "--runs", os.fspath(tmp_path / "r")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and message in result.stderr
    assert not (tmp_path / "r").exists()
