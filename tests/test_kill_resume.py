"""Random sequences of killed, resumed and repeated `durn restore` and `durn train` runs.

Whatever the sequence, the promises hold: no input changes, no file under its final name is
ever half-written, no temporary file is left once a run finishes cleanly, and the final
state equals an uninterrupted run's. A kill is simulated in-process as SIGKILL would leave
things: ``Killed`` (a BaseException, so no ``except Exception`` of durn's sees it) is raised
at a random write or step, and a write it interrupts leaves its half-written temporary
file behind under the PID of a process that no longer runs.
"""
import hashlib
import importlib
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from durn import atomic
from durn.cli import main
from durn.restoration import image_io
from durn.restoration.image_io import write_image
from durn.train import checkpoint as ckpt_io
from durn.train import train
from durn.train.loop import Trainer
from test_train_resume import assert_same_state, log_without_timing

pytestmark = pytest.mark.usefixtures("one_thread")


class Killed(BaseException):
    """The process died here."""


@pytest.fixture(scope="module")
def dead_pid():
    """The PID of a process that has exited (what a killed writer's temporary file names)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class Killer:
    """Counts the events of one command (writes, steps) and kills it at event ``at``."""

    def __init__(self, dead_pid):
        self.dead_pid, self.at, self.count = dead_pid, None, 0

    def arm(self, at):
        self.at, self.count = at, 0

    def tick(self) -> bool:
        self.count += 1
        return self.count == self.at

    def abandon(self, tmp: str, size: int) -> None:
        """Leave ``tmp`` as a killed process leaves it: cut to ``size`` bytes, named by a dead PID."""
        with open(tmp, "r+b") as f:
            f.truncate(size)
        folder, name = os.path.split(tmp)
        os.rename(tmp, os.path.join(folder, name.replace(f".{os.getpid()}.", f".{self.dead_pid}.", 1)))
        raise Killed


def snapshot(folder) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder``, hidden ones too."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def temp_files(files) -> list[str]:
    return [f for f in files if atomic.temp_target(os.path.basename(f)) is not None]


# ------------------------------------------------------------------------ durn restore

def make_inputs(folder):
    from skimage import data

    folder.mkdir()
    Image.fromarray(data.camera()[100:126, 90:121]).save(folder / "gray.png")
    Image.fromarray(data.astronaut()[30:52, 40:69]).save(folder / "rgb.jpg", quality=90)
    rng = np.random.default_rng(0)
    rgba16 = data.coffee()[40:60, 50:77].astype(np.uint16) * 257 + rng.integers(0, 200, (20, 27, 3)).astype(np.uint16)
    alpha = np.linspace(0, 65535, 20 * 27).reshape(20, 27, 1).astype(np.uint16)
    write_image(folder / "rgba16.png", np.concatenate([rgba16, alpha], axis=2))


@pytest.fixture
def killable_restore(monkeypatch, dead_pid):
    """Kills at: a restoration (before its files are written) or any image write."""
    killer = Killer(dead_pid)
    restore_module = importlib.import_module("durn.restoration.api")
    compute = restore_module.restore

    def restore(*args, **kwargs):
        if killer.tick():
            raise Killed
        return compute(*args, **kwargs)

    def killing(write):
        def wrapper(tmp, *args, **kwargs):
            write(tmp, *args, **kwargs)
            if killer.tick():
                killer.abandon(tmp, os.path.getsize(tmp) // 2)
        return wrapper

    monkeypatch.setattr(restore_module, "restore", restore)
    monkeypatch.setattr(image_io, "_pil_save", killing(image_io._pil_save))
    monkeypatch.setattr(image_io, "write_png16", killing(image_io.write_png16))
    return killer


def run_restore(inputs, out, *extra):
    args = ["restore", str(inputs), "-o", str(out), "--network", "durn_p_real", "--weights", "untrained", "-q", *extra]
    try:
        return main(args)
    except Killed:
        return "killed"


@pytest.mark.filterwarnings("ignore::durn.restoration.UntrainedWeightsWarning")
@pytest.mark.parametrize("seed", range(8))
def test_restore_survives_any_sequence_of_kills_and_reruns(tmp_path, killable_restore, seed, capsys):
    rng = random.Random(seed)
    same_folder = seed % 2 == 1  # results beside the inputs, told apart by a suffix
    flags = (["--suffix", "_r"] if same_folder else []) + (["--degrade", "gaussian:20"] if seed % 4 >= 2 else [])
    make_inputs(tmp_path / "ref_in")
    assert run_restore(tmp_path / "ref_in", tmp_path / "ref_in" if same_folder else tmp_path / "ref_out", *flags) == 0
    expected = snapshot(tmp_path / "ref_in" if same_folder else tmp_path / "ref_out")

    inputs = tmp_path / "in"
    make_inputs(inputs)
    originals = snapshot(inputs)
    out = inputs if same_folder else tmp_path / "out"
    for _ in range(rng.randint(1, 4)):
        overwrite = rng.random() < 0.3
        killable_restore.arm(rng.randint(1, 9) if rng.random() < 0.75 else None)
        before = snapshot(out) if out.exists() else {}
        code = run_restore(inputs, out, *flags, *(["--overwrite"] if overwrite else []))
        now = snapshot(out)
        if overwrite and same_folder and any(n not in originals and not n.startswith(".") for n in before):
            assert code == 2 and now == before  # earlier results are indistinguishable from inputs: refused
        else:
            assert code in (0, "killed")
        assert {k: v for k, v in snapshot(inputs).items() if k in originals} == originals  # no input changed
        for name, digest in now.items():
            if not (same_folder and name in originals) and atomic.temp_target(os.path.basename(name)) is None:
                assert digest == expected[name], f"{name} is not the complete result"
    killable_restore.arm(None)
    assert run_restore(inputs, out, *flags) == 0
    final = snapshot(out)
    assert final == expected and not temp_files(final)
    assert {k: v for k, v in snapshot(inputs).items() if k in originals} == originals
    assert "Traceback" not in capsys.readouterr().err


# -------------------------------------------------------------------------- durn train

TRAIN = dict(preset="durn_p_real", degrade="gaussian:10,20", steps=4, batch_size=1, crop=16, log_every=1,
             val_every=2, ckpt_every=1, val_crop=32, val_images=1, progress=False)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, train_photos):
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    train(out=run, data=train_photos, **TRAIN)
    return run


@pytest.fixture
def killable_train(monkeypatch, dead_pid):
    """Kills at: a training step, a line of the log (cut in half), or any write of the run's
    files (config.json, last.pt, best.pt, the truncated log of a resume)."""
    killer = Killer(dead_pid)
    step, log, write = Trainer.train_step, Trainer.log, ckpt_io.atomic_write

    def train_step(self, *args):
        if killer.tick():
            raise Killed
        return step(self, *args)

    def log_line(self, record):
        if killer.tick():
            with open(self.run / "log.jsonl", "a") as f:
                f.write(json.dumps(record)[:20])
            raise Killed
        log(self, record)

    def atomic_write(path, write_data, **kwargs):
        def wrapped(f):
            write_data(f)
            if killer.tick():
                f.flush()
                killer.abandon(f.name, f.tell() // 2)
        write(path, wrapped, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    monkeypatch.setattr(Trainer, "log", log_line)
    monkeypatch.setattr(ckpt_io, "atomic_write", atomic_write)
    return killer


def run_train(run, photos, how):
    """('done' | 'killed' | the error message) of the command `how`."""
    extra = {"plain": {}, "resume": {"resume": True}, "overwrite": {"overwrite": True}}[how]
    try:
        train(out=run, data=photos, **TRAIN, **extra)
        return "done"
    except Killed:
        return "killed"
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        return str(err)


def suggested(message: str) -> str:
    """The command an error message tells the user to run."""
    if "continue it with --resume" in message:
        return "resume"
    if "--overwrite" in message:
        return "overwrite"
    assert "without --resume" in message, message
    return "plain"


@pytest.mark.parametrize("seed", range(6))
def test_train_survives_any_sequence_of_kills_and_reruns(tmp_path, train_photos, reference_run, killable_train,
                                                          seed):
    rng = random.Random(seed)
    photos = snapshot(train_photos)
    run = tmp_path / "run"
    how = "plain"
    for _ in range(rng.randint(2, 4)):
        killable_train.arm(rng.randint(1, 24) if rng.random() < 0.8 else None)
        before = snapshot(run) if run.exists() else {}
        outcome = run_train(run, train_photos, how)
        if outcome not in ("done", "killed"):  # refused: nothing changed, and the message says what to do
            assert (snapshot(run) if run.exists() else {}) == before
            how = suggested(outcome)
            continue
        for name in ("last.pt", "best.pt"):  # under its final name a file is always complete
            if (run / name).exists():
                ckpt_io.load(run / name)
        if (run / "config.json").exists():
            json.loads((run / "config.json").read_text())
        how = rng.choice(["plain", "resume", "resume", "overwrite"])
    killable_train.arm(None)
    outcome = run_train(run, train_photos, "plain")
    if outcome != "done":
        outcome = run_train(run, train_photos, suggested(outcome))
    assert outcome == "done"
    assert sorted(os.listdir(run)) == ["best.pt", "config.json", "last.pt", "log.jsonl"]
    assert_same_state(reference_run / "last.pt", run / "last.pt")
    assert_same_state(reference_run / "best.pt", run / "best.pt")
    assert log_without_timing(reference_run) == log_without_timing(run)
    assert snapshot(train_photos) == photos


def test_a_log_cut_by_a_kill_is_read_and_truncated_without_its_broken_line(tmp_path):
    from durn.ablation import logged_train_seconds

    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 10, "s_per_step": 2.0}\n{"step": 20, "s_per_step": 3.0}\n'
                   '{"step": 20, "val_psnr": 25.0}\n7\n{"step": 30, "s_per_st')
    assert [r["step"] for _, r in ckpt_io.log_lines(log)] == [10, 20, 20]  # the number and the cut line left out
    assert logged_train_seconds(log) == 2.0 * 10 + 3.0 * 10
    ckpt_io.truncate_log(log, 10)
    assert log.read_text() == '{"step": 10, "s_per_step": 2.0}\n'
    assert logged_train_seconds(tmp_path / "missing.jsonl") is None
