"""Run the planned release trainings one after another, in the background, resumably.

    python scripts/train_queue.py scripts/release_queue.json --photos PHOTOS --runs ../runs
    python scripts/train_queue.py scripts/release_queue.json --runs ../runs --status

The queue file is JSON: ``{"runs": [{"name": ..., "args": [...]}, ...]}``, each run a
``durn train`` command line (without ``--out``, ``--resume`` or ``--overwrite``) whose
``--steps`` is fixed up front, because the learning-rate schedule depends on it.
``{photos}`` in an argument is replaced by ``--photos`` and ``{runs}`` by ``--runs`` (so a
run can start from another run's weights: ``--init {runs}/OTHER/best.pt``). Run ``NAME``
lives in ``RUNS/NAME``.

Each run is, in queue order:

* finished (``last.pt`` holds ``--steps`` steps): skipped;
* started (``last.pt`` exists): continued exactly with ``durn train --resume``;
* new: started. A folder holding only a ``config.json`` (a run killed before its first
  checkpoint) is started again with ``--overwrite``, which touches durn's run files only.

Two queues may share one queue file (for example one per core, each with ``--only``):
each run is held by an advisory lock on its folder (``RUNS/NAME``, released by the kernel
when its queue exits, however it exits; no lock file is left behind), and a queue skips a
run that another queue holds.

So stopping the queue at any moment (SIGTERM or Ctrl-C: the running ``durn train``
writes ``last.pt`` and exits) and starting it again continues where it stopped. The
queue and its trainings run niced (``--nice``, default 5) so the machine stays usable;
``--threads N`` gives each training N CPU threads (one queue per core: ``--threads 1``).
Each run's console output is appended to ``RUNS/NAME.console.log``, beside its folder.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("--out", "--resume", "--overwrite")


def read_queue(path: Path) -> list[dict]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"train_queue: cannot read the queue file {path}: {err}") from None
    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list) or not runs:
        raise SystemExit(f"train_queue: {path} must hold {{\"runs\": [{{\"name\": ..., \"args\": [...]}}, ...]}}")
    names = set()
    for run in runs:
        name, args = run.get("name"), run.get("args")
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise SystemExit(f"train_queue: bad run name {name!r} in {path}")
        if name in names:
            raise SystemExit(f"train_queue: run {name!r} appears twice in {path}")
        names.add(name)
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise SystemExit(f"train_queue: run {name!r} needs \"args\", a list of strings")
        bad = [a for a in args if a.split("=")[0] in FORBIDDEN]
        if bad:
            raise SystemExit(f"train_queue: run {name!r} must not give {bad}: the queue sets them")
        if "--steps" not in [a.split("=")[0] for a in args]:
            raise SystemExit(f"train_queue: run {name!r} needs --steps N (planned up front: the schedule depends on it)")
    return runs


def planned_steps(run: dict) -> int:
    args = run["args"]
    flags = [a.split("=")[0] for a in args]
    i = flags.index("--steps")
    return int(args[i].split("=", 1)[1]) if "=" in args[i] else int(args[i + 1])


def run_state(folder: Path) -> tuple[str, int, int | None]:
    """("new" | "started" | "finished" | "stuck", steps done, steps planned)."""
    last = folder / "last.pt"
    if last.is_file():
        import torch

        ck = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        done, planned = int(ck["step"]), ck.get("config", {}).get("steps")
        return ("finished" if planned is not None and done >= planned else "started"), done, planned
    if folder.exists() and any(folder.iterdir()):
        return "stuck", 0, None
    return "new", 0, None


class FolderLock:
    """An advisory lock held on a run folder's own file descriptor (``fd``), so that no
    lock file is written; closing it releases the lock."""

    def __init__(self, fd: int):
        self.fd = fd

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def hold(runs: Path, name: str, *, create: bool = True) -> FolderLock | None:
    """An exclusive lock on run ``name``'s folder (made, empty, if ``create`` and missing),
    or None when another queue holds it or, without ``create``, the folder is missing."""
    folder = runs / name
    if create:
        folder.mkdir(exist_ok=True)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return FolderLock(fd)


def held_elsewhere(runs: Path, name: str) -> bool:
    """Whether another queue holds run ``name`` now (checked without creating anything)."""
    if not (runs / name).is_dir():
        return False
    lock = hold(runs, name, create=False)
    if lock is None:
        return True
    lock.close()
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("queue", type=Path, help="the queue file (JSON)")
    parser.add_argument("--runs", type=Path, default=Path("../runs"), help="folder of the run folders (default ../runs); replaces {runs} in the runs' arguments")
    parser.add_argument("--photos", type=Path, help="replaces {photos} in the runs' arguments")
    parser.add_argument("--nice", type=int, default=5,
                        help="niceness of the queue and its trainings (default 5: lower than interactive work, but "
                             "not starved by it, which at 19 took a durn_u step from 2 s to 15 s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads of each training (sets OMP_NUM_THREADS; default: torch's choice, "
                             "every core). Two queues side by side on a 2-core machine need --threads 1: "
                             "with two threads each, a durn_u step took 14 s instead of 5")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these runs")
    parser.add_argument("--status", action="store_true", help="print each run's state and exit")
    args = parser.parse_args(argv)

    runs = read_queue(args.queue)
    if args.only:
        unknown = sorted(set(args.only) - {r["name"] for r in runs})
        if unknown:
            parser.error(f"--only {unknown}: not in {args.queue}")
        runs = [r for r in runs if r["name"] in args.only]
    if args.status:
        for run in runs:
            state, done, _ = run_state(args.runs / run["name"])
            running = held_elsewhere(args.runs, run["name"])
            print(f"{run['name']:32} {state:9} {done} / {planned_steps(run)} steps" + ("  (running)" if running else ""))
        return 0
    if args.threads < 0:
        parser.error(f"--threads takes a positive count (0: torch's choice), got {args.threads}")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by every training it starts
    if args.nice:
        os.nice(args.nice)
    args.runs.mkdir(parents=True, exist_ok=True)

    children: list[subprocess.Popen] = []
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)  # durn train writes last.pt and exits

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for run in runs:
        if stopping:
            break
        folder = args.runs / run["name"]
        state, done, _ = run_state(folder)
        if state == "finished":  # nothing to hold: no folder is touched
            print(f"train_queue: {run['name']}: finished ({done} steps)", flush=True)
            continue
        lock = hold(args.runs, run["name"])
        if lock is None:
            print(f"train_queue: {run['name']}: held by another queue; skipped", flush=True)
            continue
        with lock:
            code = run_one(run, folder, args, parser, lock, children.append)
        if code is None:
            continue
        if stopping:
            print(f"train_queue: stopped during {run['name']} (exit {code}); run the queue again to continue",
                  flush=True)
            return 143
        if code != 0:
            print(f"train_queue: {run['name']} failed (exit {code}); see {args.runs / (run['name'] + '.console.log')}",
                  flush=True)
            return code
    return 0


def run_one(run, folder, args, parser, lock, started) -> int | None:
    """Train ``run`` to its planned steps; its exit code, or None when it was finished."""
    state, done, _ = run_state(folder)
    if state == "finished":
        print(f"train_queue: {run['name']}: finished ({done} steps)", flush=True)
        return None
    train_args = []
    for a in run["args"]:
        if "{photos}" in a:
            if args.photos is None:
                parser.error(f"run {run['name']!r} uses {{photos}}: give --photos")
            a = a.replace("{photos}", os.fspath(args.photos))
        train_args.append(a.replace("{runs}", os.fspath(args.runs)))
    extra = {"started": ["--resume"], "stuck": ["--overwrite"], "new": []}[state]
    command = [sys.executable, "-m", "durn", "train", *train_args, "--out", os.fspath(folder), *extra,
               "--no-progress"]
    threads = f" ({os.environ['OMP_NUM_THREADS']} CPU threads)" if args.threads else ""
    print(f"train_queue: {run['name']}: {state} at step {done}{threads}; {' '.join(command[1:])}", flush=True)
    with open(args.runs / f"{run['name']}.console.log", "a") as console:
        # The training inherits the lock, so the run stays held while it runs even if the queue is killed.
        child = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT, pass_fds=(lock.fd,))
        started(child)
        return child.wait()

if __name__ == "__main__":
    sys.exit(main())
