"""``TrainConfig``: everything a run depends on, resolved from a preset, an optional
config file (JSON, or TOML on Python >= 3.11) and explicit overrides, in that order."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from .presets import get_preset

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "fp64")
# A compressed recipe keeps its milestones' fractions, which decays too early for a short
# run; these replace every stage's schedule (each keeping its base rate).
SCHEDULE_OVERRIDES = ("cosine", "constant")


@dataclass
class TrainConfig:
    preset: str = "durn_p_gaussian"
    out: str | None = None            # the run folder (required)
    data: str | None = None           # paper dataset root, or a folder of clean photos with `degrade`
    dataset: str | None = None        # paper dataset name (default: the preset's)
    degrade: str | None = None        # train on your own photos: synthetic degradation spec
    scene: str | None = None          # drawn into the clean training photos first (input and target): "lines"
    val_data: str | None = None       # separate validation data (same kind as `data`)
    val_images: int = 16              # at most this many validation images
    val_crop: int | None = 256        # centre crop of validation images (None: whole images)
    val_degrade: str | None = None    # validation at fixed degradations: specs joined by ";", or "card"
    steps: int | None = None          # None: the preset's full recipe, in steps
    batch_size: int | None = None     # global batch (split over processes)
    crop: int | None = None
    lr: float | None = None           # base learning rate of the first stage
    loss: str | None = None           # replaces every stage's loss
    schedule: str | None = None       # replaces every stage's schedule: "cosine" or "constant"
    warmup: int = 0                   # linear learning-rate warm-up over each stage's first steps
    hflip: bool | None = None
    reuse: int | None = None          # optimiser steps per drawn batch
    seed: int = 0
    init: str | None = None           # start from these weights (anything weights= accepts): fine-tuning
    identity_init: bool = False       # zero the tail's last conv: the network starts as the identity
    unit_init: bool = False           # scale each conv to unit output variance on real crops (durn.train.init)
    connection: str = "dual"          # the blocks' wiring (paper Fig. 1; "paired", "separate": the Table 1 ablation)
    log_every: int = 10
    val_every: int = 500
    ckpt_every: int = 500
    workers: int | None = None        # DataLoader workers per process (None: 0 on CPU, 4 on GPU)
    device: str = "auto"              # "auto", "cpu", "cuda", "cuda:1"
    precision: str = "auto"           # auto (bf16 on CUDA and on CPUs with native bf16, else fp32), fp32, bf16, fp16, fp64
    channels_last: bool | None = None  # None: on for CUDA, and on CPU for durn_p, durn_p_real, durn_s
    ema: float = 0.0                  # EMA decay of the weights (0: off)
    grad_clip: float = 0.0            # max gradient norm (0: off)
    compile: bool = False
    sync_bn: bool = False             # SyncBatchNorm across GPU processes (default: per-process statistics)
    deterministic: bool = False
    progress: bool = True
    resume: bool = False
    overwrite: bool = False

    # Fields that may differ when a run is resumed: they do not change what is computed
    # (or, for device/precision, only the hardware it is computed on), or they say where
    # the data now lives.
    RESUMABLE_CHANGES = (
        "out", "data", "val_data", "workers", "device", "precision", "channels_last", "compile",
        "deterministic", "progress", "resume", "overwrite", "log_every", "ckpt_every",
    )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def preset_obj(self):
        return get_preset(self.preset)

    # Values after applying the preset's defaults.
    @property
    def network(self) -> str:
        return self.preset_obj.network

    @property
    def global_batch(self) -> int:
        return self.batch_size if self.batch_size is not None else self.preset_obj.batch_size

    @property
    def crop_size(self) -> int:
        return self.crop if self.crop is not None else self.preset_obj.crop

    @property
    def use_hflip(self) -> bool:
        return self.hflip if self.hflip is not None else self.preset_obj.hflip

    @property
    def noise_sigmas(self) -> tuple[float, ...] | None:
        """Sigmas of the noise the loop adds itself (durn_p's reused batches)."""
        p = self.preset_obj
        if p.noise_sigmas is None:
            return None
        if self.degrade is None:
            return p.noise_sigmas
        if self.degrade.startswith("gaussian"):
            return parse_gaussian(self.degrade)
        return None

    @property
    def steps_per_batch(self) -> int:
        if self.reuse is not None:
            return self.reuse
        return self.preset_obj.reuse if self.noise_sigmas is not None else 1


def parse_gaussian(spec: str) -> tuple[float, ...]:
    """``"gaussian:30,50,70"`` -> (30.0, 50.0, 70.0); ``"gaussian"`` -> (30, 50, 70)."""
    _, _, rest = spec.partition(":")
    if not rest:
        return (30.0, 50.0, 70.0)
    try:
        sigmas = tuple(float(s) for s in rest.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"expected 'gaussian:S1,S2,...' with sigmas on the 0-255 scale, got {spec!r}") from None
    if not sigmas or any(s < 0 for s in sigmas):
        raise ValueError(f"expected non-negative sigmas in {spec!r}")
    return sigmas


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text()
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ValueError("TOML config files need Python >= 3.11; use JSON") from None
        values = tomllib.loads(text)
    elif path.suffix == ".json":
        values = json.loads(text)
    else:
        raise ValueError(f"config file must be .json or .toml, got {path.name}")
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a table of settings at the top level")
    return {k.replace("-", "_"): v for k, v in values.items()}


def make_config(values: dict | None = None, **overrides) -> TrainConfig:
    """Build a config from dicts of settings (later ones win); unknown keys are errors."""
    merged = dict(values or {})
    merged.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("out", "data", "val_data"):
        if isinstance(merged.get(key), os.PathLike):
            merged[key] = os.fspath(merged[key])
    if merged.get("val_crop") == 0:
        merged["val_crop"] = None
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(merged) - known)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}; known settings: {sorted(known)}")
    config = TrainConfig(**merged)
    validate(config)
    return config


def validate(c: TrainConfig) -> None:
    get_preset(c.preset)  # KeyError with the list of presets
    if not c.out:
        raise ValueError("out (the run folder for last.pt, best.pt and log.jsonl) is required")
    if c.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {c.precision!r}")
    for name in ("log_every", "val_every", "ckpt_every", "val_images"):
        if getattr(c, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(c, name)}")
    for name in ("batch_size", "crop", "steps", "reuse"):
        value = getattr(c, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if c.lr is not None and c.lr <= 0:
        raise ValueError(f"lr must be positive, got {c.lr}")
    if not 0.0 <= c.ema < 1.0:
        raise ValueError(f"ema is a decay in [0, 1), got {c.ema}")
    if c.grad_clip < 0:
        raise ValueError(f"grad_clip must be >= 0, got {c.grad_clip}")
    if c.degrade is not None and c.degrade.startswith("gaussian"):
        parse_gaussian(c.degrade)
    if c.scene is not None:
        from ..data.scene import make_scene

        if c.degrade is None or c.degrade.startswith("gaussian"):
            raise ValueError("scene draws into the photos a synthetic --degrade is applied to; "
                             "it needs --degrade other than gaussian (durn_p adds its noise in the loop)")
        make_scene(c.scene)
    if c.val_degrade is not None:
        val_conditions(c)  # ValueError naming what was expected
    from ..nn.block import CONNECTIONS

    if c.connection not in CONNECTIONS:
        raise ValueError(f"connection must be one of {CONNECTIONS}, got {c.connection!r}")
    if c.identity_init and c.init:
        raise ValueError("identity_init starts from a fresh network as the identity; it cannot be combined with init")
    if c.unit_init and (c.init or c.identity_init):
        raise ValueError("unit_init rescales a fresh network; it cannot be combined with init or identity_init")
    if c.warmup < 0:
        raise ValueError(f"warmup must be at least 0 steps, got {c.warmup}")
    if c.schedule is not None and c.schedule not in SCHEDULE_OVERRIDES:
        raise ValueError(f"schedule must be one of {SCHEDULE_OVERRIDES}, got {c.schedule!r}")
    if c.loss is not None:
        from ..losses import LOSSES

        if c.loss not in LOSSES:
            raise ValueError(f"unknown loss {c.loss!r}; expected one of {sorted(LOSSES)}")


def val_conditions(c: TrainConfig) -> dict[str, str] | None:
    """The fixed degradations validation runs at (label -> spec), or None for one draw of
    ``degrade`` per validation photo. ``"card"`` is the network's held-out card conditions
    (:data:`durn.heldout.CONDITIONS`), applied to the validation photos: checkpoints are
    then chosen under the card's settings without touching the card's images."""
    if c.val_degrade is None:
        return None
    if c.degrade is None or c.degrade.startswith("gaussian"):
        raise ValueError("val_degrade validates own photos at fixed degradations; it needs --degrade other than "
                         "gaussian (durn_p's validation already cycles its sigmas over the photos)")
    from ..data import make_degradation

    if c.val_degrade.strip() == "card":
        from ..heldout import CONDITIONS

        network = c.network
        if network not in CONDITIONS:
            raise ValueError(f"val_degrade 'card': {network} has no card conditions; networks with some: "
                             f"{sorted(CONDITIONS)} (or give the specs, joined by ';')")
        conditions = dict(CONDITIONS[network])
    else:
        specs = [s.strip() for s in c.val_degrade.split(";")]
        if not all(specs):
            raise ValueError(f"val_degrade is 'card' or degradation specs joined by ';', got {c.val_degrade!r}")
        conditions = {spec: spec for spec in specs}
    for label, spec in conditions.items():
        try:
            make_degradation(spec)
        except (ValueError, KeyError) as err:
            raise ValueError(f"val_degrade: bad degradation {spec!r}: {err}") from None
    return conditions


def resume_conflicts(saved: dict, current: TrainConfig) -> list[str]:
    """Settings that differ from the run being resumed and would change its result."""
    now = current.to_dict()
    out = []
    for key, value in saved.items():
        if key in TrainConfig.RESUMABLE_CHANGES or key not in now:
            continue
        if now[key] != value:
            out.append(f"{key}: run has {value!r}, now {now[key]!r}")
    # a setting newer than the run: it ran with the default
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for key in sorted(set(now) - set(saved) - set(TrainConfig.RESUMABLE_CHANGES)):
        if now[key] != defaults.get(key):
            out.append(f"{key}: run has the default {defaults.get(key)!r} (it predates the setting), now {now[key]!r}")
    return out
