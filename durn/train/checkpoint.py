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

from ..atomic import atomic_write

FORMAT = "durn-train-checkpoint"
VERSION = 1
# Files a run folder may contain; anything else in it is the user's and is never touched.
RUN_FILES = ("last.pt", "best.pt", "log.jsonl", "config.json")




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
    """Refuse to start a new run where one (or anything else) already is.

    Raises ``FileExistsError`` / ``FileNotFoundError`` with a message saying what to do."""
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other; choose one")
    if run.exists() and not run.is_dir():
        raise FileExistsError(f"{run} exists and is not a folder")
    if resume:
        if not (run / "last.pt").is_file():
            raise FileNotFoundError(f"cannot resume: {run / 'last.pt'} does not exist (start a new run without --resume)")
        return
    if run.is_dir() and any(run.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{run} is not empty; continue that run with --resume, choose another --out, "
                f"or pass --overwrite to replace its training files ({', '.join(RUN_FILES)})"
            )
        foreign = sorted(p.name for p in run.iterdir() if p.name not in RUN_FILES and not p.name.startswith("."))
        if foreign:
            raise FileExistsError(
                f"{run} holds files that are not durn training files ({', '.join(foreign[:5])}); "
                "--overwrite replaces only a run's own files, so choose another --out"
            )


def clear_run_files(run: Path) -> None:
    """Remove the run's own files (after --overwrite was checked)."""
    for name in RUN_FILES:
        (run / name).unlink(missing_ok=True)
    for p in run.glob(".*.tmp"):
        p.unlink(missing_ok=True)


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines of steps after ``step`` (written after the checkpoint being resumed),
    so a resumed run's log has every step once."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) > step:
                continue
        except json.JSONDecodeError:
            continue  # a line cut short by the kill
        kept.append(line)
    data = "".join(line + "\n" for line in kept).encode()
    atomic_write(path, lambda f: f.write(data))
