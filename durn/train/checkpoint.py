"""Training checkpoints: atomic writes, ``weights_only`` loading, and the run folder.

A checkpoint is a plain dict of tensors and Python primitives, so
``torch.load(path, weights_only=True)`` reads it::

    format      "durn-train-checkpoint"    version  1
    network     "durn_p"                   step     steps completed
    model       state dict of the network, in durn's layout (no "module." prefixes)
    params_ema  EMA weights (only with EMA); durn.load_reference prefers them
    optimizer   torch.optim.Adam state dict  grad_scaler  GradScaler state (fp16 only)
    rng         {"torch": CPU generator state, "cuda": [per-device states]}
    config      the resolved training configuration (JSON-compatible)
    best        {"step", "psnr", "ssim", "images"} of the best validation so far (or None)

``best.pt`` has the same entries except ``optimizer``, ``grad_scaler`` and ``rng`` (it is
for using the weights; runs resume from ``last.pt``).

``durn.get_model(network, weights="RUN/best.pt")`` and ``durn.load_reference`` load it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..atomic import atomic_write, remove_stale_temp_files, temp_target
from ..restoration.image_io import shown

FORMAT = "durn-train-checkpoint"
VERSION = 1
# durn's files in a run folder (with the temporary files of their writes); anything else
# in it, hidden files too, is the user's and is never touched.
RUN_FILES = ("last.pt", "best.pt", "log.jsonl", "config.json")
WEIGHT_FILES = ("last.pt", "best.pt")


def is_run_file(name: str) -> bool:
    return name in RUN_FILES or temp_target(name) in RUN_FILES



def save(path: str | os.PathLike, checkpoint: dict) -> None:
    atomic_write(path, lambda f: torch.save(checkpoint, f))


def write_json(path: str | os.PathLike, obj) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    atomic_write(path, lambda f: f.write(data))


def load(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a training checkpoint with ``weights_only=True``; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable training checkpoint: {str(err).splitlines()[0]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a durn training checkpoint (no format={FORMAT!r} entry)")
    if ckpt.get("version", 0) > VERSION:
        raise ValueError(f"{path} was written by a newer durn (checkpoint version {ckpt['version']})")
    return ckpt


def plain_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict of the bare network (unwrapped from DDP / torch.compile), detached,
    contiguous and on the CPU, in durn's key layout."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, torch.nn.Module):  # DDP
            module = module.module
        elif hasattr(module, "_orig_mod"):  # torch.compile
            module = module._orig_mod
        else:
            break
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_run_folder(run: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to start where a run (or anything else) already is. The rule:

    * a new run starts in a folder that is missing, empty, or holds only durn's files of a
      run that never reached its first checkpoint (config.json, log.jsonl: replaced);
    * ``overwrite`` replaces durn's files of any run, never where the user's files are;
    * ``resume`` needs last.pt.

    Raises ``FileExistsError`` / ``FileNotFoundError`` naming the one option to use."""
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other; choose one")
    if run.exists() and not run.is_dir():
        raise FileExistsError(f"{run} exists and is not a folder")
    names = sorted(os.listdir(run)) if run.is_dir() else []
    foreign = [n for n in names if not is_run_file(n)]
    no_last = (f"{run} holds best.pt but no last.pt: its run stopped before its first checkpoint, so it "
               "cannot be resumed; start it again with --overwrite (best.pt is replaced), or choose another --out")
    if resume:
        if "last.pt" in names:
            return
        if "best.pt" in names:
            raise FileNotFoundError(f"cannot resume: {no_last}")
        raise FileNotFoundError(f"cannot resume: {run} holds no run to continue (no last.pt); "
                                "start a new run without --resume")
    if "last.pt" in names and not overwrite:
        again = "" if foreign else ", start it again with --overwrite"
        raise FileExistsError(f"{run} is not empty: it holds a run (last.pt); continue it with --resume{again}, "
                              "or choose another --out")
    if foreign:
        listed = ", ".join(shown(n) for n in foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise FileExistsError(
            f"{run} is not empty: it holds files that are not durn training files ({listed}); durn never "
            "touches them (--overwrite replaces only a run's own files), so choose another --out"
        )
    if "best.pt" in names and not overwrite:
        raise FileExistsError(no_last)


def clear_run_files(run: Path) -> None:
    """Remove the run's own files (after check_run_folder allowed a new run here)."""
    for name in RUN_FILES:
        (run / name).unlink(missing_ok=True)
    remove_temp_files(run)


def remove_temp_files(run: Path) -> list[str]:
    """Remove what writes of the run's files killed earlier left behind."""
    return remove_stale_temp_files(run / name for name in RUN_FILES)


def log_lines(path: Path) -> list[tuple[str, dict]]:
    """Each intact line of a run's ``log.jsonl`` with its record; a line cut short by a
    kill (not a JSON object) is left out. Raises ``OSError`` if the file cannot be read."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append((line, record))
    return out


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines of steps after ``step`` (written after the checkpoint being resumed),
    so a resumed run's log has every step once."""
    if not path.is_file():
        return
    kept = [line for line, record in log_lines(path) if record.get("step", 0) <= step]
    data = "".join(line + "\n" for line in kept).encode()
    atomic_write(path, lambda f: f.write(data))
