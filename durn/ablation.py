"""The paper's Table 1: one network per task, its blocks wired each way of Fig. 1, trained
alike and scored alike (``durn ablation``, ``docs/ablation.md``).

For every network, connection style and seed, one run of the training loop
(:func:`durn.train.train`, in this process) with the same preset, photos, degradation, seed,
steps and schedule; only the blocks' ``connection`` differs (``"paired"``: Fig. 1b,
``"separate"``: 1c, ``"dual"``: 1d, the paper's DuRB). The same seed gives every style the
same initial weights (the wirings have the same modules) and the same samples, crops and
noise. Each finished run's ``last.pt`` is then scored on the held-out photos
(:mod:`durn.heldout`: camera and astronaut, degraded by the network's task at fixed, seeded
settings) and the table (style x task, PSNR / SSIM under the authors' protocol, mean and
spread over the seeds) is written as Markdown and JSON.

Layout of ``out``::

    ablation.json, ablation.md         the table (rewritten, atomically, after every run)
    runs/NETWORK/STYLE/seedN/          the run folder of durn train (config.json, log.jsonl, last.pt, best.pt)
    runs/NETWORK/STYLE/seedN.heldout.json   that run's held-out scores (written once it finished)
    runs/NETWORK/input.heldout.json    the degraded inputs' own scores (the bar to clear)

Running the same call again skips finished runs (their scores are read back), continues
an interrupted one exactly (the loop's ``resume``) and starts the rest. Every file is
written atomically, so a kill at any moment leaves no half-written file.

Each run's ``connection`` is a setting of the loop (``durn train --connection``), so it is
in the run's config.json and a resume with another wiring is refused.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .atomic import atomic_write

FORMAT = "durn-ablation"
VERSION = 1

# The paper's Fig. 1: (b) T1 and T2 under one shortcut, (c) a shortcut each, (d) the dual
# residual connection. Table order follows the figure.
STYLES = ("paired", "separate", "dual")
FIGURE = {"paired": "b", "separate": "c", "dual": "d"}
STYLE_LABELS = {
    "paired": "(b) paired: T1 and T2 under one shortcut",
    "separate": "(c) separate shortcuts for T1 and T2",
    "dual": "(d) dual residual connection (DuRB)",
}


@dataclass(frozen=True)
class Task:
    network: str
    preset: str           # the durn.train preset (the authors' recipe for this network)
    degrade: str          # what the training photos are degraded by (durn.data.make_degradation)
    label: str            # the table's column
    conditions: dict[str, str] | None = None  # held-out condition -> spec; None: durn_p's sigmas




def _tasks() -> dict[str, Task]:
    from .heldout import CONDITIONS

    return {
        "durn_p": Task("durn_p", "durn_p_gaussian", "gaussian:30,50,70", "Gaussian noise (gray)"),
        "durn_p_real": Task("durn_p_real", "durn_p_real", "camera_noise", "camera noise",
                            CONDITIONS["durn_p_real"]),
        "durn_u": Task("durn_u", "durn_u_gopro", "camera_blur", "motion blur", CONDITIONS["durn_u"]),
        "durn_us": Task("durn_us", "durn_us_reside", "haze", "haze", CONDITIONS["durn_us"]),
        "durn_s_p": Task("durn_s_p", "durn_s_p_raindrop", "raindrop", "raindrops", CONDITIONS["durn_s_p"]),
        "durn_s": Task("durn_s", "durn_s_didmdn", "rain", "rain streaks", CONDITIONS["durn_s"]),
    }


TASKS = _tasks()
# The five tasks of the paper's experiments, in its order (noise, motion blur, haze,
# raindrops, rain streaks); durn_p_real (the same DuRB-P on real noise) by name.
TABLE1_NETWORKS = ("durn_p", "durn_u", "durn_us", "durn_s_p", "durn_s")

# Training sizes. "small": minutes a style on a CPU (durn_p: about 0.6 s a step on one
# busy core); "paper": the preset's batch, crop, schedule and full recipe.
SCALES = {
    "small": {"steps": 300, "batch_size": 4, "crop": 48, "schedule": "cosine", "grad_clip": 1.0},
    "paper": {"steps": None, "batch_size": None, "crop": None, "schedule": None, "grad_clip": 0.0},
}


class AblationError(ValueError):
    """Settings or an output folder the ablation cannot use; says why."""


# --------------------------------------------------------------------------- inputs

def parse_list(text: str | Sequence[str] | None, what: str) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]`` (order kept, no repeats)."""
    if text is None:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    out: list[str] = []
    for part in parts:
        for item in str(part).split(","):
            item = item.strip()
            if not item:
                continue
            if item in out:
                raise AblationError(f"{what} {item!r} is given twice")
            out.append(item)
    return out


def check_networks(names: Sequence[str]) -> list[str]:
    names = list(names)
    if not names:
        raise AblationError("no network given")
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise AblationError(f"unknown network {unknown[0]!r}; expected some of {list(TASKS)}")
    return names


def check_styles(names: Sequence[str]) -> list[str]:
    names = list(names)
    if not names:
        raise AblationError("no connection style given")
    unknown = [n for n in names if n not in STYLES]
    if unknown:
        raise AblationError(f"unknown connection style {unknown[0]!r}; expected some of {list(STYLES)} "
                            "(Fig. 1 b, c, d)")
    return [s for s in STYLES if s in names]  # the table's order


def parse_seeds(text: str | Sequence[int] | int) -> list[int]:
    if isinstance(text, int):
        return [text]
    items = parse_list([str(t) for t in text] if not isinstance(text, str) else text, "seed")
    seeds = []
    for item in items:
        try:
            seed = int(item)
        except ValueError:
            raise AblationError(f"seeds are integers separated by commas (0,1,2), got {item!r}") from None
        if seed < 0:
            raise AblationError(f"seeds must be >= 0, got {seed}")
        seeds.append(seed)
    if not seeds:
        raise AblationError("no seed given")
    return seeds


# --------------------------------------------------------------------------- wiring

def connection_problem(network: str, style: str) -> str | None:
    """Why ``network`` cannot be wired ``style`` (None when it can): a shape-only run of
    the network so wired (on the meta device: no storage, no arithmetic)."""
    import durn

    with torch.device("meta"):
        model = durn.get_model(network, connection=style)
        size = 16 * max(model.size_multiple, 4)
        try:
            model.eval().forward_core(torch.empty(1, model.in_channels, size, size))
        except ValueError as err:
            return str(err)
    return None


_MISSING = object()


def connections_of(model: torch.nn.Module) -> set[str]:
    from .nn.block import DualResidualBlock

    return {m.connection for m in model.modules() if isinstance(m, DualResidualBlock)}


# --------------------------------------------------------------------------- held-out scores

def _centre(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if not size:
        return x
    h, w = x.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[..., top:top + size, left:left + size].contiguous()


def heldout_scores(network: str, restore: Callable[[torch.Tensor], torch.Tensor], *,
                   images: Sequence[str] | None = None, crop: int | None = None) -> dict[str, dict[str, float]]:
    """``restore`` (a degraded (C, H, W) image -> restored) scored on the held-out photos in
    ``network``'s task: ``{"camera/sigma30": {"psnr_authors": ..., ...}, ...}``. Whole photos
    (``crop=None``) are exactly durn.heldout's measurement (the model cards'); ``crop``
    scores the centre crop of each degraded photo instead (quicker, not comparable)."""
    from . import heldout

    images = tuple(images or heldout.HELDOUT)
    task = TASKS[network]
    if not crop:
        if task.conditions is None:
            return heldout.measure_denoiser(lambda x, sigma: restore(x), images=images)
        return heldout.measure_restorer(restore, network, images=images, conditions=task.conditions)
    from .evaluate import color_space_for

    results = {}
    for name in images:
        if task.conditions is None:
            clean = heldout.heldout_gray(name)
            pairs = {f"sigma{s}": heldout.noisy(clean, name, s) for s in heldout.SIGMAS}
            space = "gray"
        else:
            clean = heldout.heldout_rgb(name)
            pairs = {label: heldout.degraded(clean, name, spec) for label, spec in task.conditions.items()}
            space = color_space_for(network, "authors", 3)
        for label, bad in pairs.items():
            with torch.inference_mode():
                output = restore(_centre(bad, crop))
            results[f"{name}/{label}"] = heldout.score(output, _centre(clean, crop), space)
    return results


def summarise(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """Means over the held-out cells, per metric and protocol."""
    keys = sorted({k for cell in scores.values() for k in cell})
    return {k: round(statistics.fmean(cell[k] for cell in scores.values()), 5) for k in keys}


def _restorer(model: torch.nn.Module, device: torch.device):
    from .evaluate import restore_tensor

    return lambda x: restore_tensor(model, x, device)


# --------------------------------------------------------------------------- files

def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise AblationError(f"cannot read {path}: {err}") from None


def _write_json(path: Path, doc: dict) -> None:
    data = (json.dumps(doc, indent=1) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))


def _write_text(path: Path, text: str) -> None:
    data = text.encode()
    atomic_write(path, lambda f: f.write(data))


def _checkpoint_step(path: Path) -> int | None:
    if not path.is_file():
        return None
    ck = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return int(ck["step"])


def logged_train_seconds(log: Path) -> float | None:
    """Seconds the run's logged steps took (validation and checkpoints not counted), from
    log.jsonl: a resumed run's log holds every step once."""
    from .train.checkpoint import log_lines

    total, previous = 0.0, 0
    try:
        records = [record for _, record in log_lines(log)]
    except OSError:
        return None
    for record in records:
        if "s_per_step" in record:
            total += record["s_per_step"] * (record["step"] - previous)
            previous = record["step"]
    return round(total, 1)


def run_state(folder: Path) -> str:
    """"new" (missing or empty), "started" (has last.pt) or "stuck" (durn's files of a run
    killed before its first checkpoint), like scripts/train_queue.py."""
    if (folder / "last.pt").is_file():
        return "started"
    if folder.is_dir() and any(folder.iterdir()):
        return "stuck"
    return "new"


def _check_output_folder(out: Path) -> None:
    doc = _read_json(out / "ablation.json") if (out / "ablation.json").is_file() else None
    if doc is not None and doc.get("format") != FORMAT:
        raise AblationError(f"{out / 'ablation.json'} exists and is not a durn ablation table; "
                            "durn never replaces it: choose another --out")
    if doc is None and (out / "ablation.md").exists():
        raise AblationError(f"{out / 'ablation.md'} exists without durn's ablation.json beside it; "
                            "durn never replaces it: choose another --out")


# --------------------------------------------------------------------------- the ablation

@dataclass
class Cell:
    network: str
    style: str
    reason: str | None = None                        # why the wiring is impossible ("n/a")
    seeds: dict[int, dict] = field(default_factory=dict)  # seed -> that run's record

    @property
    def status(self) -> str:
        return "n/a" if self.reason else ("done" if self.seeds else "pending")


@dataclass
class AblationResult:
    doc: dict                       # what ablation.json holds
    markdown: str                   # what ablation.md holds
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" when a run was stopped
    runs: dict = field(default_factory=dict)  # "network/style/seedN" -> "trained" | "resumed" | "skipped" ...


class Ablation:
    """One call of ``durn ablation``; :func:`run_ablation` is the function to use.

    ``networks``, ``styles``: names (or comma-separated strings); ``seeds``: ints or "0,1".
    ``data``/``val_data``: clean photos (default: ``durn.data.sample_images("train")``).
    ``scale`` ("small" or "paper") sets ``steps``, ``batch_size``, ``crop``, ``schedule``
    ("recipe": the preset's) and ``grad_clip`` unless they are given; ``lr`` (default: the
    preset's), ``val_every`` (default: once, at the end of a run shorter than 500 steps),
    ``ckpt_every``, ``device`` and ``progress`` go to the loop. ``heldout_crop`` and
    ``heldout_images`` narrow the held-out scoring (quicker, not comparable).
    ``log`` gets one line per event (default: stderr).
    """

    def __init__(self, out, *, networks=TABLE1_NETWORKS, styles=STYLES, seeds=(0,), data=None, val_data=None,
                 scale: str = "small", steps=_MISSING, batch_size=_MISSING, crop=_MISSING, lr: float | None = None,
                 schedule=_MISSING, grad_clip=_MISSING, val_every: int | None = None, ckpt_every: int = 50,
                 device: str = "auto", heldout_crop: int | None = None, heldout_images: Sequence[str] | None = None,
                 progress: bool = False, command: str | None = None, log: Callable[[str], None] | None = None):
        if scale not in SCALES:
            raise AblationError(f"scale must be one of {list(SCALES)}, got {scale!r}")
        self.out = Path(out)
        self.networks = check_networks(parse_list(networks, "network"))
        self.styles = check_styles(parse_list(styles, "connection style"))
        self.seeds = parse_seeds(seeds)
        given = {"steps": steps, "batch_size": batch_size, "crop": crop, "schedule": schedule, "grad_clip": grad_clip}
        self.sizes = {k: (SCALES[scale][k] if v is _MISSING else v) for k, v in given.items()}
        if self.sizes["schedule"] == "recipe":
            self.sizes["schedule"] = None
        self.scale, self.lr, self.ckpt_every, self.device = scale, lr, ckpt_every, device
        # validate once, at the end of a short run; the loop's default (500) otherwise
        steps = self.sizes["steps"]
        self.val_every = val_every if val_every is not None else (steps if steps and steps < 500 else 500)
        if heldout_crop is not None and heldout_crop < 16:
            raise AblationError(f"heldout_crop must be at least 16 pixels (or 0/None for whole photos), got {heldout_crop}")
        self.heldout_crop = heldout_crop or None
        from .heldout import HELDOUT

        self.heldout_images = tuple(heldout_images or HELDOUT)
        bad = [n for n in self.heldout_images if n not in HELDOUT]
        if bad:
            raise AblationError(f"held-out images are {HELDOUT}, got {bad[0]!r}")
        self.data, self.val_data = self._photos(data, val_data)
        self.progress, self.command = progress, command
        self.log = log or (lambda line: print(f"durn ablation: {line}", file=sys.stderr, flush=True))
        self.cells = {(n, s): Cell(n, s, connection_problem(n, s)) for n in self.networks for s in self.styles}
        self.inputs: dict[str, dict] = {}
        self.runs: dict[str, str] = {}
        for cell in self.cells.values():  # every setting checked before anything is written
            if not cell.reason:
                from .train.config import make_config

                for seed in self.seeds:
                    make_config(self.settings(cell.network, cell.style, seed))

    # -- set-up ------------------------------------------------------------------
    @staticmethod
    def _photos(data, val_data):
        from .data import CleanImageFolder, sample_images

        if data is None:  # scikit-image's training photos (never camera or astronaut)
            data = [os.fspath(p) for p in sample_images("train")]
        else:
            data = os.fspath(data)
        for what, root in (("--data", data), ("--val-data", val_data)):
            if root is None:
                continue
            try:
                CleanImageFolder(root)
            except (FileNotFoundError, ValueError) as err:
                raise AblationError(f"{what}: {err}") from None
        return data, (os.fspath(val_data) if val_data is not None else None)

    def folder(self, network: str, style: str, seed: int) -> Path:
        return self.out / "runs" / network / style / f"seed{seed}"

    def scores_path(self, network: str, style: str, seed: int) -> Path:
        return self.out / "runs" / network / style / f"seed{seed}.heldout.json"

    def settings(self, network: str, style: str, seed: int) -> dict:
        """The durn.train settings of one run: everything but ``out`` is the same for every
        style (and, where the loop has one, ``connection``)."""
        task = TASKS[network]
        s = {"preset": task.preset, "data": self.data, "val_data": self.val_data, "degrade": task.degrade,
             "out": os.fspath(self.folder(network, style, seed)), "seed": seed, "lr": self.lr,
             "val_every": self.val_every, "ckpt_every": self.ckpt_every, "log_every": 10,
             "device": self.device, "progress": self.progress, **self.sizes}
        s["connection"] = style
        return {k: v for k, v in s.items() if v is not None}

    def _device(self) -> torch.device:
        from . import distributed as D
        from .train.loop import pick_device

        return pick_device(self.device, D.Dist())

    # -- runs --------------------------------------------------------------------
    def run(self) -> AblationResult:
        self.out.mkdir(parents=True, exist_ok=True)
        _check_output_folder(self.out)
        for cell in self.cells.values():
            if cell.reason:
                self.log(f"{cell.network} {cell.style}: n/a ({cell.reason})")
        for (network, style), cell in self.cells.items():  # before anything trains
            for seed in [] if cell.reason else self.seeds:
                if run_state(self.folder(network, style, seed)) == "started":
                    self._check_same_settings(network, style, seed)
        for network in self.networks:
            self.inputs[network] = self._input_scores(network)
        interrupted = None
        self._write_table()
        for seed in self.seeds:  # every style of one seed before the next seed: comparable early
            for network in self.networks:
                for style in self.styles:
                    cell = self.cells[(network, style)]
                    if cell.reason:
                        continue
                    record, interrupted = self._run_one(network, style, seed)
                    if interrupted:
                        break
                    cell.seeds[seed] = record
                    self._write_table()
                if interrupted:
                    break
            if interrupted:
                break
        doc = self._write_table()
        return AblationResult(doc, table_markdown(doc), interrupted, dict(self.runs))

    def _run_one(self, network: str, style: str, seed: int) -> tuple[dict | None, str | None]:
        from .train import train

        folder, scores_path = self.folder(network, style, seed), self.scores_path(network, style, seed)
        key = f"{network}/{style}/seed{seed}"
        settings = self.settings(network, style, seed)
        state = run_state(folder)
        step = _checkpoint_step(folder / "last.pt")
        cached = _read_json(scores_path)
        if state == "started":
            self._check_same_settings(network, style, seed)
            if cached is not None and cached.get("step") == step and cached.get("heldout") == self._heldout_key():
                self.log(f"{key}: finished ({step} steps); skipped")
                self.runs[key] = "skipped"
                return cached, None
            if settings.get("steps") and step >= settings["steps"]:  # trained; not (or differently) scored
                self.runs[key] = "scored"
                return self._score(network, style, seed, folder / "last.pt"), None
        extra = {"started": {"resume": True}, "stuck": {"overwrite": True}, "new": {}}[state]
        self.log(f"{key}: {'continuing from step ' + str(step) if state == 'started' else 'training'}"
                 f" ({settings.get('steps') or 'the full recipe of'} steps, batch {settings.get('batch_size', 'preset')}, "
                 f"crop {settings.get('crop', 'preset')})")
        try:
            result = train(**settings, **extra)
        except (FileExistsError, FileNotFoundError, KeyError) as err:
            raise AblationError(f"{key}: {err.args[0] if err.args else err}") from None
        if result.interrupted:
            self.runs[key] = "interrupted"
            self.log(f"{key}: stopped by {result.interrupted} at step {result.step} of {result.total_steps}; "
                     "run the same command again to continue")
            return None, result.interrupted
        self.runs[key] = {"started": "resumed", "stuck": "restarted", "new": "trained"}[state]
        return self._score(network, style, seed, result.last), None

    def _score(self, network: str, style: str, seed: int, last: Path) -> dict:
        key = f"{network}/{style}/seed{seed}"
        record = self._evaluate(network, style, seed, last)
        record["train_s"] = logged_train_seconds(last.parent / "log.jsonl")
        _write_json(self.scores_path(network, style, seed), record)
        m = record["mean"]
        self.log(f"{key}: held-out PSNR {m['psnr_authors']:.2f} dB, SSIM {m['ssim_authors']:.4f} "
                 f"(degraded input {self.inputs[network]['mean']['psnr_authors']:.2f} dB, "
                 f"{self.inputs[network]['mean']['ssim_authors']:.4f})")
        return record

    def _check_same_settings(self, network: str, style: str, seed: int) -> None:
        """A run folder already there must hold the run these settings make."""
        from .train.config import make_config, resume_conflicts

        folder, settings = self.folder(network, style, seed), self.settings(network, style, seed)
        saved = _read_json(folder / "config.json")
        if saved is None:
            return
        conflicts = [c for c in resume_conflicts(saved, make_config(settings)) if c.split(":")[0] in settings]
        if conflicts:
            raise AblationError(f"{folder} was trained with other settings ({'; '.join(conflicts)}); "
                                "run the command it was made with, or choose another --out")

    def _heldout_key(self) -> dict:
        return {"images": list(self.heldout_images), "crop": self.heldout_crop}

    def _evaluate(self, network: str, style: str, seed: int, last: Path) -> dict:
        import durn

        from .train import checkpoint as ckpt_io

        ck = ckpt_io.load(last)
        device = self._device()
        model = durn.get_model(network, connection=style)
        model.load_state_dict(ck["model"])
        model.eval().to(device)
        start = time.perf_counter()
        scores = heldout_scores(network, _restorer(model, device), images=self.heldout_images, crop=self.heldout_crop)
        best = ck.get("best") or {}
        return {
            "format": FORMAT + "-run", "network": network, "connection": style, "seed": seed,
            "step": int(ck["step"]), "run": os.fspath(last.parent.relative_to(self.out)),
            "weights": "last.pt", "heldout": self._heldout_key(), "mean": summarise(scores), "scores": scores,
            "val_psnr": best.get("psnr"), "val_ssim": best.get("ssim"), "val_input_psnr": best.get("input_psnr"),
            "eval_s": round(time.perf_counter() - start, 1),
        }

    def _input_scores(self, network: str) -> dict:
        path = self.out / "runs" / network / "input.heldout.json"
        cached = _read_json(path)
        if cached is not None and cached.get("heldout") == self._heldout_key():
            return cached
        scores = heldout_scores(network, lambda x: x, images=self.heldout_images, crop=self.heldout_crop)
        doc = {"format": FORMAT + "-input", "network": network, "heldout": self._heldout_key(),
               "mean": summarise(scores), "scores": scores}
        _write_json(path, doc)
        return doc

    # -- the table ---------------------------------------------------------------
    def doc(self) -> dict:
        cells: dict[str, dict] = {}
        for (network, style), cell in self.cells.items():
            entry: dict = {"status": cell.status}
            if cell.reason:
                entry["reason"] = cell.reason
            if cell.seeds:
                entry["seeds"] = {str(s): {k: r[k] for k in ("step", "run", "mean", "val_psnr", "train_s", "eval_s")
                                           if k in r} for s, r in sorted(cell.seeds.items())}
                for metric in ("psnr_authors", "ssim_authors", "psnr_standard", "ssim_standard"):
                    entry[metric] = spread([r["mean"][metric] for r in cell.seeds.values()])
            cells.setdefault(network, {})[style] = entry
        settings = {"scale": self.scale, **{k: v for k, v in self.sizes.items()}, "lr": self.lr,
                    "ckpt_every": self.ckpt_every, "val_every": self.val_every, "device": self.device,
                    "data": self.data, "val_data": self.val_data, "seeds": self.seeds,
                    "networks": self.networks, "styles": self.styles,
                    "presets": {n: TASKS[n].preset for n in self.networks},
                    "degrade": {n: TASKS[n].degrade for n in self.networks},
                    "heldout": {**self._heldout_key(), "weights": "last.pt",
                                "conditions": {n: TASKS[n].conditions or "gaussian sigma 30, 50, 70"
                                               for n in self.networks}}}
        return {"format": FORMAT, "version": VERSION, "command": self.command, "settings": settings,
                "machine": machine(), "updated": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "cells": cells, "inputs": {n: self.inputs[n]["mean"] for n in self.inputs}}

    def markdown(self) -> str:
        return table_markdown(self.doc())

    def _write_table(self) -> dict:
        doc = self.doc()
        _write_json(self.out / "ablation.json", doc)
        _write_text(self.out / "ablation.md", table_markdown(doc))
        return doc


def spread(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation (None for one value), min, max and count."""
    values = list(values)
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values), "n": len(values)}


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": cpu, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version()}


def _cell_text(entry: dict) -> str:
    if entry["status"] != "done":
        return entry["status"]
    p, s = entry["psnr_authors"], entry["ssim_authors"]
    if p["n"] == 1:
        return f"{p['mean']:.2f} / {s['mean']:.4f}"
    return f"{p['mean']:.2f} ± {p['std']:.2f} / {s['mean']:.4f} ± {s['std']:.4f}"


def table_markdown(doc: dict) -> str:
    """The table in the paper's layout: a row per connection style, a column per task."""
    import durn

    st = doc["settings"]
    networks, styles = st["networks"], st["styles"]
    header = ["connection (Fig. 1)"] + [f"{durn.NETWORKS[n].paper_name}: {TASKS[n].label}" for n in networks]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    notes: list[str] = []
    for style in styles:
        row = [STYLE_LABELS[style]]
        for n in networks:
            entry = doc["cells"][n][style]
            text = _cell_text(entry)
            if entry["status"] == "n/a":
                note = f"{durn.NETWORKS[n].paper_name} with connection='{style}': {entry['reason']}"
                notes.append(note)
                text += f" [{len(notes)}]"
            elif entry["status"] == "done" and entry["psnr_authors"]["n"] < len(st["seeds"]):
                text += f" ({entry['psnr_authors']['n']} of {len(st['seeds'])} seeds)"
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    if doc.get("inputs"):
        row = ["degraded input (no network)"]
        for n in networks:
            m = doc["inputs"].get(n)
            row.append(f"{m['psnr_authors']:.2f} / {m['ssim_authors']:.4f}" if m else "")
        lines.append("| " + " | ".join(row) + " |")
    seeds = st["seeds"]
    spread_text = (f"mean ± sample standard deviation over seeds {', '.join(map(str, seeds))}"
                   if len(seeds) > 1 else f"seed {seeds[0]}")
    where = "whole photos" if not st["heldout"]["crop"] else f"{st['heldout']['crop']} x {st['heldout']['crop']} centre crops"
    size = (f"{st['steps']} steps" if st["steps"] else "the full recipe") + \
        f", batch {st['batch_size'] or 'of the preset'}, crop {st['crop'] or 'of the preset'}" + \
        (f", {st['schedule']} learning-rate schedule" if st["schedule"] else ", the recipe's learning-rate schedule") + \
        (f", lr {st['lr']:g}" if st["lr"] else ", the preset's lr") + \
        (f", gradient norm clipped at {st['grad_clip']:g}" if st["grad_clip"] else "")
    lines += [
        "",
        (f"PSNR (dB) / SSIM of each run's last.pt on the held-out photos ({', '.join(st['heldout']['images'])}; "
        f"{where}), authors' protocol, averaged over the task's held-out conditions; {spread_text}. "
        f"Training: {size}, each network's preset otherwise."),
    ]
    for i, note in enumerate(notes, 1):
        lines.append(f"[{i}] n/a: {note}")
    return "\n".join(lines) + "\n"


def run_ablation(out, **options) -> AblationResult:
    """Train, score and tabulate; see :class:`Ablation` for the options and ``durn ablation --help``.

    >>> run_ablation("runs/ablation", networks=["durn_p"], seeds=[0, 1])   # doctest: +SKIP
    """
    return Ablation(out, **options).run()


__all__ = [
    "SCALES",
    "STYLES",
    "TABLE1_NETWORKS",
    "TASKS",
    "AblationError",
    "AblationResult",
    "connection_problem",
    "heldout_scores",
    "run_ablation",
    "table_markdown",
]
