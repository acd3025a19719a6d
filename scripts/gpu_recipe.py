"""Train one network's recipe on the lent GPU machine within a wall-clock budget, and leave
its checkpoint in ``--out`` as shards small and few enough for the device tool to return.

    python scripts/gpu_recipe.py --network durn_u --crops crops --out "$OUT" --minutes 7

``--minutes`` bounds the whole script, from its start to its last file. The plan:

1. Checks (seconds): the crops folder (``scripts/pack_crops.py``), the device, the
   settings (``durn.train.make_config``) and the losses, which must run here (the SSIM
   losses need pytorch_msssim: ``CROPS/vendor`` is put on the path when it is there).
2. Warm-up: ``durn train`` with exactly this run's settings and an open-ended step count,
   in a scratch folder, logging every 5 steps and validating every 10. ``--warmup-seconds``
   after its first log window (which carries cuDNN's autotuning and the data loader's
   first batches), and once it has logged three more windows and three validations, it
   gets SIGTERM and its weights are thrown away. s/step: the mean over the later half of
   the windows after the first (the log's s/step leaves validation and saving out).
   Start-up: the time to the first log line less that window's steps at that rate. Pause
   per validation: the wall time between log lines less their steps, per validation (the
   first, which autotunes the validation shapes, left out).
3. The planned run: ``steps = floor(--margin * (stop - now - start-up - pauses) / s_per_step)``
   where ``stop`` is the deadline less ``--reserve-seconds`` (for stopping and packaging),
   ``pauses`` prices the ``--vals`` validations and four last.pt writes at one measured
   pause each (fewer validations where they would take over a third of the time), and the
   margin (default 0.93) absorbs the rest. It is started once, fresh, as ``durn train
   --steps N`` (so the recipe's stages and cosine schedule span exactly N steps), keeping
   the best validation in best.pt. If it still runs at ``stop`` it gets SIGTERM (durn
   train ends the step and writes last.pt), then SIGKILL after ``--grace`` seconds; the
   checkpoints written so far are packaged all the same. ``--steps N`` skips the warm-up.
4. Packaging into ``--out``: one shard set (``durn.train.shards``; ``NETWORK.shards.json``
   and ``NETWORK.shard00``...), ``log.jsonl`` and ``summary.json`` (settings, steps, s/step,
   the validation PSNR curve, device, versions, timings). The shards hold the first of
   these that fits the device tool's limits (``--max-files`` 8 files of ``--max-file-mib``
   15 MiB, one under the tool's 16, and ``--max-total-mib`` 64 MiB in all, these three
   files included):

   * ``best.pt`` and ``last.pt`` exactly as written (fp32; last.pt resumes the run);
   * ``best.fp16.pt`` (durn weights file, float16) and ``last.pt``;
   * ``best.fp16.pt`` and ``last.fp16.pt`` (weights only: no resume state);
   * ``best.fp16.pt`` alone.

   (``last`` stands in for ``best`` when no validation ran.) The fp16 files are what
   ``scripts/release_weights.py`` would make, and ``durn.get_model(network, weights=FILE)``
   loads every member. Back here: ``python -m durn.train.shards FILES/NETWORK.shards.json
   --extract RUN``.

Exit status: 0 when the planned steps ran (or ``--steps`` ran) and the shards are written;
3 when time ran out first but checkpoints were packaged; 1 when training failed (whatever
checkpoint existed is still packaged); 2 for bad settings; 143 when stopped by a signal.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MIB = 2**20

# Per-network defaults: the preset whose stages (losses, rates) are run, the synthetic
# degradation of the clean crops, the batch, the training crop and the base learning rate
# (cosine-decayed over the run). The crops leave the degradation's reach inside the 256 px
# packed crops (camera_blur reaches 15 px, rain 17). durn_p_real's real-noise pairs do not
# install offline: low Gaussian noise stands in.
RECIPE_FIELDS = ("preset", "degrade", "batch_size", "crop", "lr")
RECIPES = {
    # network       preset               degrade              batch  crop  lr
    "durn_p":      ("durn_p_gaussian",   "gaussian:30,50,70",  100,   64,  1e-3),
    "durn_p_real": ("durn_p_real",       "gaussian:5,15,25",    30,  128,  2e-4),
    "durn_u":      ("durn_u_gopro",      "camera_blur",         16,  224,  2e-4),
    "durn_us":     ("durn_us_reside",    "haze",                16,  256,  2e-4),
    "durn_s":      ("durn_s_didmdn",     "rain",                40,   64,  2e-4),
    "durn_s_p":    ("durn_s_p_raindrop", "raindrop",            16,  256,  2e-4),
}

WARMUP_LOG_EVERY = 5
WARMUP_VAL_EVERY = 10
STOP = threading.Event()  # set by SIGTERM / SIGINT to this script


class RecipeError(Exception):
    """Settings or data that cannot work, a warm-up that failed, or no time left; says why.
    ``status``: the script's exit status for it."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- logs and plans

def read_log(path: Path) -> list[dict]:
    """The records of a durn train log.jsonl (a line cut short while written is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def indexed_windows(records: list[dict]) -> list[tuple[int, int, float]]:
    """(record index, steps, seconds) of each training log window, in order."""
    out, previous = [], 0
    for i, r in enumerate(records):
        if "s_per_step" in r and "loss" in r:
            steps = int(r["step"]) - previous
            if steps > 0:
                out.append((i, steps, steps * float(r["s_per_step"])))
            previous = int(r["step"])
    return out


def step_windows(records: list[dict]) -> list[tuple[int, float]]:
    """(steps, seconds) of each training log window, in order."""
    return [(n, sec) for _, n, sec in indexed_windows(records)]


def steady_rate(windows: list[tuple[int, float]]) -> float:
    """s/step over the later half of the windows after the first (the first pays for
    autotuning and the loader's start)."""
    steady = windows[1:] or windows
    if not steady:
        raise RecipeError("no training log windows to measure s/step from")
    later = steady[len(steady) // 2:]
    return sum(s for _, s in later) / sum(n for n, _ in later)


def plan_steps(seconds: float, s_per_step: float, *, margin: float = 0.9) -> int:
    """Steps that fit in ``seconds`` of training at ``s_per_step``, less the margin."""
    if s_per_step <= 0:
        raise RecipeError(f"s/step must be positive, got {s_per_step}")
    steps = math.floor(margin * seconds / s_per_step)
    if steps < 1:
        raise RecipeError(f"no time left to train: {seconds:.0f} s at {s_per_step:.3g} s/step")
    return steps


def plan_run(seconds: float, s_per_step: float, pause: float, *, vals: int, margin: float) -> tuple[int, int]:
    """(steps, validations) for ``seconds`` of training: each validation, and each of the
    four last.pt writes, is priced at ``pause``; validations get at most a third of the
    time (fewer of them when they are slow, at least one)."""
    if pause > 0:
        vals = max(1, min(vals, math.floor(seconds / 3 / pause) - 4))
    return plan_steps(seconds - (vals + 4) * pause, s_per_step, margin=margin), vals


def cadence(steps: int, vals: int) -> dict:
    """How often the planned run validates, writes last.pt and logs."""
    return {"val_every": max(1, math.ceil(steps / max(1, vals))), "ckpt_every": max(1, steps // 4),
            "log_every": max(1, min(50, steps // 200))}


def choose_members(options: list[tuple[str, list[tuple[str, int]]]], *, max_files: int, max_file: int,
                   max_total: int, other_files: list[int]) -> tuple[str, list[str]]:
    """The first option (label, [(member, bytes)]) whose shards, with ``other_files`` (the
    manifest, log and summary, by size), fit the limits; (label, member names)."""
    if any(size > max_file for size in other_files):
        raise RecipeError(f"a returned file other than the shards is over {max_file} bytes: {other_files}")
    for label, members in options:
        total = sum(size for _, size in members)
        files = max(1, math.ceil(total / max_file)) + len(other_files)
        if files <= max_files and total + sum(other_files) <= max_total:
            return label, [name for name, _ in members]
    raise RecipeError(f"no checkpoint option fits {max_files} files of {max_file} bytes, {max_total} in all: "
                      + "; ".join(f"{label}: {sum(s for _, s in m)} bytes" for label, m in options))


# --------------------------------------------------------------------------- processes

def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(proc: subprocess.Popen, grace: float) -> str | None:
    """SIGTERM, then SIGKILL after ``grace`` s; what it took (None: it had ended)."""
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
        return "SIGTERM"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "SIGKILL"


def pause_per_validation(records: list[dict], seen: list[float]) -> float:
    """Seconds each validation (with its best.pt write) held training up, from the times
    ``seen`` at which the log's records appeared: the wall time between two training
    records less the step time of the windows between them, over the validations between
    them. The first validation (which autotunes the validation shapes) is left out; 0
    without two."""
    val_at = [i for i, r in enumerate(records) if "val_psnr" in r]
    windows = [w for w in indexed_windows(records) if val_at and w[0] > val_at[0]]
    if len(windows) < 2:
        return 0.0
    a, b = windows[0][0], windows[-1][0]
    vals = sum(1 for i in val_at if a < i < b)
    if vals == 0:
        return 0.0
    stepping = sum(sec for _, _, sec in windows[1:])
    return max(0.0, (seen[b] - seen[a] - stepping) / vals)


def warm_up(command: list[str], log: Path, console: Path, *, seconds: float, limit: float, grace: float,
            env: dict) -> dict:
    """Run ``command`` (a training that logs to ``log``) for ``seconds`` after its first log
    window, and at least three more windows and three validations, then stop it. Returns
    the measured s/step, start-up seconds and pause per validation."""
    start = time.monotonic()
    with open(console, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    records, seen = [], []
    try:
        while True:
            now = time.monotonic() - start
            records = read_log(log)
            seen += [now] * (len(records) - len(seen))
            windows = indexed_windows(records)
            vals = sum("val_psnr" in r for r in records)
            measured = now - seen[windows[0][0]] if windows else 0.0  # wall time since the first window
            if len(windows) >= 4 and measured >= seconds and (vals >= 3 or measured >= 3 * seconds):
                break
            if proc.poll() is not None:
                raise RecipeError(f"the warm-up training exited with status {proc.returncode} after {now:.0f} s; "
                                  f"its output ends:\n{_tail(console)}")
            if now > limit:
                if len(windows) >= 2:
                    break
                raise RecipeError(f"the warm-up logged {len(windows)} window(s) of {WARMUP_LOG_EVERY} steps in "
                                  f"{limit:.0f} s: too slow for this budget; its output ends:\n{_tail(console)}")
            if STOP.is_set():
                raise KeyboardInterrupt
            time.sleep(0.2)
    finally:
        stop_process(proc, grace)
    rate = steady_rate([(n, sec) for _, n, sec in windows])
    first, first_steps, _ = windows[0]
    return {"s_per_step": rate, "steps": sum(n for _, n, _ in windows), "windows": len(windows),
            "startup_s": max(0.0, seen[first] - first_steps * rate),
            "pause_per_val_s": pause_per_validation(records, seen), "wall_s": time.monotonic() - start}


def run_until(command: list[str], stop_at: float, *, grace: float, env: dict) -> tuple[int, str | None]:
    """Run ``command`` (output passed through) until it ends, or until ``stop_at``
    (time.monotonic()) or a signal to this script stops it. (exit status, why stopped)."""
    proc = subprocess.Popen(command, env=env)
    why = None
    while proc.poll() is None:
        if time.monotonic() >= stop_at:
            why = "deadline"
        elif STOP.is_set():
            why = "signal"
        if why:
            how = stop_process(proc, grace)
            why = f"{why} ({how})" if how else why
            break
        time.sleep(0.2)
    return proc.wait(), why


# --------------------------------------------------------------------------- packaging

def fp16_weights(checkpoint: Path, target: Path, network: str) -> Path:
    """``checkpoint``'s weights (EMA if kept) as a float16 durn weights file."""
    import torch

    from durn.checkpoints import canonical_state_dict, to_project_state_dict
    from durn.models import get_model
    from durn.weights import save_weights_file

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    sd, _ = to_project_state_dict(network, canonical_state_dict(ckpt))
    meta = {"source": checkpoint.name, "trained_steps": int(ckpt.get("step", 0))}
    if ckpt.get("best"):
        meta["val_psnr"] = float(ckpt["best"]["psnr"])
    if target.exists():
        target.unlink()
    save_weights_file(target, network, sd, channel_order=get_model(network).channel_order,
                      storage=torch.float16, **meta)
    return target


def package(run: Path, work: Path, out: Path, network: str, limits: dict, summary_reserve: int = 64 * 1024) -> dict:
    """Shard the run's checkpoints into ``out`` (the first option that fits) and copy its
    log; returns what was written, for the summary."""
    from durn.train.shards import write_shards

    best, last = run / "best.pt", run / "last.pt"
    if not last.is_file() and not best.is_file():
        raise RecipeError(f"the training wrote no checkpoint in {run}")
    main_ckpt = best if best.is_file() else last
    main_name = "best" if best.is_file() else "last"
    files = {f"{main_name}.fp16.pt": fp16_weights(main_ckpt, work / f"{main_name}.fp16.pt", network)}
    options = []
    if last.is_file():
        files["last.pt"] = last
        if main_name == "best":
            files["best.pt"] = best
            files["last.fp16.pt"] = fp16_weights(last, work / "last.fp16.pt", network)
            options += [("fp32 best + resumable last", ["best.pt", "last.pt"]),
                        ("fp16 best + resumable last", ["best.fp16.pt", "last.pt"]),
                        ("fp16 best + fp16 last", ["best.fp16.pt", "last.fp16.pt"])]
        else:
            options.append(("resumable last (no validation ran)", ["last.pt"]))
    else:
        files["best.pt"] = best
        options.append(("fp32 best (no last.pt)", ["best.pt"]))
    options.append((f"fp16 {main_name}", [f"{main_name}.fp16.pt"]))
    sized = [(label, [(m, files[m].stat().st_size) for m in members]) for label, members in options]
    log = run / "log.jsonl"
    log_size = log.stat().st_size if log.is_file() else 0
    label, chosen = choose_members(sized, max_files=limits["max_files"], max_file=limits["max_file"],
                                   max_total=limits["max_total"], other_files=[16 * 1024, log_size, summary_reserve])
    manifest = write_shards([(m, files[m]) for m in chosen], out, limits["max_file"], name=network)
    if log.is_file():
        shutil.copyfile(log, out / "log.jsonl")
    dropped = sorted(set(files) - set(chosen))
    return {"option": label, "manifest": f"{network}.shards.json", "members": manifest["members"],
            "shards": manifest["shards"], "dropped": dropped}


def device_facts(device: str) -> dict:
    import torch

    facts = {"torch": torch.__version__, "python": platform.python_version(), "cuda": torch.version.cuda}
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["name"] = torch.cuda.get_device_name(torch.device(device))
        facts["cudnn"] = torch.backends.cudnn.version()
    else:
        facts["name"] = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return facts


def run_facts(records: list[dict]) -> dict:
    windows = step_windows(records)
    train = [r for r in records if "loss" in r]
    vals = [{"step": r["step"], "psnr": r["val_psnr"], "ssim": r["val_ssim"],
             "input_psnr": r.get("val_input_psnr"), "input_ssim": r.get("val_input_ssim")}
            for r in records if "val_psnr" in r]
    steady = windows[1:] or windows
    return {
        "steps_done": train[-1]["step"] if train else 0,
        "s_per_step": (sum(s for _, s in steady) / sum(n for n, _ in steady)) if steady else None,
        "final_loss": train[-1]["loss"] if train else None,
        "val_curve": vals,
        "best": max(vals, key=lambda v: v["psnr"]) if vals else None,
    }


# --------------------------------------------------------------------------- the recipe

def train_command(s: dict, out: Path, steps: int, cadence_: dict, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "durn", "train", "--preset", s["preset"], "--data", s["train"],
           "--degrade", s["degrade"], "--identity-init", "--steps", str(steps), "--batch-size", str(s["batch_size"]),
           "--crop", str(s["crop"]), "--lr", str(s["lr"]), "--schedule", "cosine", "--precision", s["precision"],
           "--channels-last" if s["channels_last"] else "--no-channels-last", "--device", s["device"],
           "--workers", str(s["workers"]), "--seed", str(s["seed"]), "--val-every", str(cadence_["val_every"]),
           "--ckpt-every", str(cadence_["ckpt_every"]), "--log-every", str(cadence_["log_every"]),
           "--no-progress", "--out", os.fspath(out)]
    if s.get("val"):
        cmd += ["--val-data", s["val"]]
    return cmd + extra


def check_inputs(s: dict, crops: Path) -> list[str]:
    """Fail fast on what would fail minutes later; returns notes worth printing."""
    import torch

    from durn.data import make_degradation
    from durn.losses import make_loss
    from durn.train import get_preset, make_config

    notes = []
    if not Path(s["train"]).is_dir():
        raise RecipeError(f"{crops}/train not found: pack the crops first (scripts/pack_crops.py PHOTOS {crops})")
    try:
        make_config(preset=s["preset"], out="unused", data=s["train"], degrade=s["degrade"], steps=1,
                    batch_size=s["batch_size"], crop=s["crop"], lr=s["lr"], precision=s["precision"])
        degradation = make_degradation(s["degrade"])
    except (ValueError, KeyError) as err:
        raise RecipeError(str(err)) from None
    if s["device"].startswith("cuda") and not torch.cuda.is_available():
        raise RecipeError(f"--device {s['device']}: CUDA is not available here (use --device cpu to try on a CPU)")
    x = torch.rand(1, 3, 32, 32)
    for stage in get_preset(s["preset"]).stages:
        try:
            make_loss(stage.loss)(x, x)
        except ImportError as err:
            raise RecipeError(f"the {stage.loss} loss cannot run here ({err}); pack the crops without --no-vendor "
                              f"so {crops}/vendor carries it") from None
    manifest = crops / "manifest.json"
    if manifest.is_file():
        packed = json.loads(manifest.read_text()).get("crop")
        if packed and s["crop"] > packed:
            raise RecipeError(f"the training crop {s['crop']} is larger than the packed crops ({packed})")
        if packed and s["crop"] + 2 * degradation.margin > packed:
            notes.append(f"note: {s['degrade']} reaches {degradation.margin} px; crops of {s['crop']} inside "
                         f"{packed} px tiles are degraded without all of that margin at their edges")
    return notes


def parse_args(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Arguments after -- go to durn train as they are.")
    p.add_argument("--network", required=True, choices=sorted(RECIPES))
    p.add_argument("--crops", required=True, type=Path, help="the folder scripts/pack_crops.py wrote")
    p.add_argument("--out", required=True, type=Path, help="where the shards, log.jsonl and summary.json go")
    p.add_argument("--minutes", type=float, default=7.0, help="wall-clock budget of the whole script (default 7)")
    p.add_argument("--steps", type=int, help="train exactly N steps (no warm-up, no planning)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--crop", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--degrade")
    p.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "fp32"))
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--workers", type=int, help="data loader processes (default: cores - 2, at most 12; 0 on CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vals", type=int, default=10, help="validations in the planned run (default 10)")
    p.add_argument("--warmup-seconds", type=float, default=20.0, help="steady training the warm-up measures")
    p.add_argument("--margin", type=float, default=0.93, help="share of the time left planned as steps")
    p.add_argument("--reserve-seconds", type=float, default=30.0, help="kept at the end for stopping and packaging")
    p.add_argument("--grace", type=float, default=45.0, help="seconds from SIGTERM to SIGKILL")
    p.add_argument("--max-files", type=int, default=8)
    p.add_argument("--max-file-mib", type=float, default=15.0,
                   help="largest returned file (default 15: a MiB under the device tool's 16, to be safe)")
    p.add_argument("--max-total-mib", type=float, default=64.0)
    p.add_argument("--work", type=Path, help="scratch folder for the runs (default: a temporary one, removed)")
    args = p.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        p.error("--steps must be at least 1")
    if not 0 < args.margin <= 1:
        p.error("--margin must be in (0, 1]")
    return args, extra


def settings(args, crops: Path) -> dict:
    """The run's settings: the network's row of RECIPES, then the options given."""
    workers = args.workers
    if workers is None:  # the degradations run in the loader: all cores but two, on a GPU machine
        workers = min(12, max(2, (os.cpu_count() or 4) - 2)) if args.device.startswith("cuda") else 0
    s = {**dict(zip(RECIPE_FIELDS, RECIPES[args.network])), "device": args.device, "precision": args.precision,
         "channels_last": args.channels_last, "seed": args.seed, "workers": workers,
         "train": os.fspath(crops / "train"), "val": os.fspath(crops / "val") if (crops / "val").is_dir() else None}
    for key in ("batch_size", "crop", "lr", "degrade"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    return s


def plan_by_warm_up(s: dict, args, extra: list[str], work: Path, stop_at: float, env: dict,
                    summary: dict) -> tuple[int, int]:
    """Warm up, then (steps, validations) for the time left before ``stop_at``."""
    warm = work / "warmup"
    cmd = train_command(s, warm, 1_000_000, {"val_every": WARMUP_VAL_EVERY, "ckpt_every": 0,
                                             "log_every": WARMUP_LOG_EVERY}, extra)
    limit = min(max(60.0, 3 * args.warmup_seconds + 60), stop_at - time.monotonic())
    measured = warm_up(cmd, warm / "log.jsonl", work / "warmup.console.log", seconds=args.warmup_seconds,
                       limit=limit, grace=args.grace, env=env)
    shutil.rmtree(warm, ignore_errors=True)
    summary["warmup"] = measured
    left = stop_at - time.monotonic() - measured["startup_s"]
    steps, vals = plan_run(left, measured["s_per_step"], measured["pause_per_val_s"], vals=args.vals,
                           margin=args.margin)
    print(f"gpu_recipe: warm-up: {measured['s_per_step']:.4f} s/step, start-up {measured['startup_s']:.1f} s, "
          f"{measured['pause_per_val_s']:.2f} s per validation; planning {steps} steps and {vals} "
          f"validations in {left:.0f} s", flush=True)
    return steps, vals


def recipe(args, extra: list[str], out: Path, work: Path, summary: dict, deadline: float) -> int:
    """Check, plan, train and package (see the module docstring); the exit status."""
    crops = args.crops.resolve()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    vendor = crops / "vendor"
    if vendor.is_dir():  # packages the GPU machine lacks, bundled by pack_crops.py
        sys.path.insert(0, os.fspath(vendor))
        env["PYTHONPATH"] = os.pathsep.join([os.fspath(vendor)] + [p for p in [env.get("PYTHONPATH")] if p])
    s = settings(args, crops)
    summary["settings"] = dict(s)
    try:
        notes = check_inputs(s, crops)
    except RecipeError as err:
        raise RecipeError(str(err), status=2) from None
    for note in notes:
        print(f"gpu_recipe: {note}")
    summary["device"] = device_facts(args.device)
    print(f"gpu_recipe: {args.network} on {summary['device']['name']}, torch {summary['device']['torch']}: "
          f"batch {s['batch_size']} x {s['crop']}, {s['degrade']}, {s['precision']}, "
          f"{'channels_last' if s['channels_last'] else 'NCHW'}, {s['workers']} workers", flush=True)
    stop_at = deadline - args.reserve_seconds
    if args.steps is None:
        steps, vals = plan_by_warm_up(s, args, extra, work, stop_at, env, summary)
    else:
        steps, vals = args.steps, args.vals
    summary["planned_steps"] = steps
    summary["cadence"] = cadence(steps, vals)
    run = work / "run"
    cmd = train_command(s, run, steps, summary["cadence"], extra)
    summary["command"] = " ".join(shlex.quote(c) for c in ["python", *cmd[1:]])
    t0 = time.monotonic()
    rc, stopped = run_until(cmd, stop_at, grace=args.grace, env=env)
    summary["train"] = {"exit_status": rc, "stopped_by": stopped, "wall_s": time.monotonic() - t0}
    summary.update(run_facts(read_log(run / "log.jsonl")))
    summary["completed"] = summary["steps_done"] >= steps
    status = 0
    if stopped and stopped.startswith("signal"):
        status = 143
    elif rc not in (0, 143) or (rc == 143 and not stopped):
        status = 1
        summary["error"] = f"durn train exited with status {rc}"
    elif not summary["completed"]:
        status = 3
    t1 = time.monotonic()
    summary["checkpoint"] = package(run, work, out, args.network, {
        "max_files": args.max_files, "max_file": int(args.max_file_mib * MIB),
        "max_total": int(args.max_total_mib * MIB)})
    summary["package_s"] = time.monotonic() - t1
    best = summary.get("best")
    print(f"gpu_recipe: {summary['steps_done']} of {steps} steps"
          + (f" at {summary['s_per_step']:.4f} s/step" if summary["s_per_step"] else "")
          + (f"; best validation PSNR {best['psnr']:.2f} dB at step {best['step']} "
             f"(input {best['input_psnr']:.2f} dB)" if best and best.get("input_psnr") is not None else "")
          + f"; shipped {summary['checkpoint']['option']}", flush=True)
    return status


def main(argv=None) -> int:
    start = time.monotonic()
    args, extra = parse_args(argv)
    out = args.out.resolve()
    for folder, what in ((out, "the output folder (the device tool returns all of it)"), (args.work, "--work")):
        if folder is not None and folder.exists() and any(folder.iterdir()):
            print(f"gpu_recipe: {what} {folder} is not empty; give an empty or new folder", file=sys.stderr)
            return 2
    out.mkdir(parents=True, exist_ok=True)
    work = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="durn-gpu-recipe-"))
    work.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    summary = {"network": args.network, "minutes": args.minutes, "extra_args": extra}
    try:
        return recipe(args, extra, out, work, summary, deadline=start + args.minutes * 60)
    except RecipeError as err:
        print(f"gpu_recipe: {err}", file=sys.stderr)
        summary["error"] = str(err)
        return err.status
    except KeyboardInterrupt:
        summary["error"] = "stopped by a signal"
        return 143
    except Exception as err:
        summary["error"] = f"{type(err).__name__}: {err}"
        raise
    finally:
        summary["wall_s"] = time.monotonic() - start
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        listing = sorted((p.name, p.stat().st_size) for p in out.iterdir() if p.is_file())
        print("gpu_recipe: wrote " + ", ".join(f"{n} ({b / MIB:.2f} MiB)" for n, b in listing), flush=True)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
