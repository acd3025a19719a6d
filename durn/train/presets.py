"""The authors' six training recipes (../shared/spec/architectures.md, "Training settings
reported by the authors"), as data.

Lengths and learning-rate milestones are kept in **epochs**, as the authors state them.
An epoch is one pass over the training set: ``len(train set) / batch`` data batches,
and for durn_p, whose every batch is reused for ``reuse = 10`` optimiser steps with
fresh noise, ten times as many steps. :func:`plan` turns a recipe into steps:

* full recipe: ``steps per epoch = len(train set) * reuse / batch`` (a float: the sample
  stream runs across epoch boundaries, so every step has a full batch, and an epoch is
  exactly ``len(train set)`` samples); each stage lasts ``round(epochs * steps per
  epoch)`` steps and a milestone at epoch ``m`` of a stage takes effect from step
  ``round(m * steps per epoch)`` of that stage.
* ``steps=N`` (``--steps``): the recipe is compressed into ``N`` steps: stage lengths
  and milestones keep their fractions of the recipe (every stage gets at least one step
  when ``N`` >= number of stages).

Where the authors' released scripts differ from the table (the table is what is
implemented): their scripts apply a milestone ``m`` after 0-based epoch ``m`` ends, one
epoch later than "at epoch m"; their rain-streak script builds the cosine scheduler but
never steps it, so its learning rate actually stayed at 1e-4; their loaders do not
shuffle (durn shuffles every epoch). The cosine schedule here decays per step, from the
base rate to 0 over the stage.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..models.registry import SPECS

# Loss names understood by durn.losses.make_loss.
L2 = "l2"
SSIM_L1 = "ssim_l1"   # 1.1 * (-SSIM) + 0.75 * L1
L1_11 = "l1_x1.1"     # 1.1 * L1 (durn_s_p, second stage)


@dataclass(frozen=True)
class Schedule:
    """Learning rate of one stage: ``"step"`` (times ``gamma`` at each milestone, in
    epochs of the stage), ``"cosine"`` (to 0 over the stage) or ``"constant"``."""

    kind: str
    lr: float
    milestones: tuple[float, ...] = ()
    gamma: float = 0.1

    def __post_init__(self):
        if self.kind not in ("step", "cosine", "constant"):
            raise ValueError(f"schedule kind must be 'step', 'cosine' or 'constant', got {self.kind!r}")
        if self.lr <= 0:
            raise ValueError(f"learning rate must be positive, got {self.lr}")


@dataclass(frozen=True)
class Stage:
    """A stretch of training with one loss and one schedule (a fresh Adam optimiser
    starts each stage, as rerunning the authors' script on the previous weights did)."""

    epochs: float
    loss: str
    schedule: Schedule


@dataclass(frozen=True)
class Preset:
    name: str
    network: str
    dataset: str              # durn.data.PAPER_DATASETS name of the authors' training set
    degradation: str | None   # durn.data.make_degradation spec for training on your own photos
    batch_size: int
    crop: int
    stages: tuple[Stage, ...]
    hflip: bool = False       # random horizontal flip of input and target together
    reuse: int = 1            # optimiser steps per drawn batch
    noise_sigmas: tuple[float, ...] | None = None  # loop-added Gaussian noise (0-255 scale), per sample
    gray: bool = False
    summary: str = ""
    notes: str = ""

    @property
    def epochs(self) -> float:
        return sum(s.epochs for s in self.stages)


def _ssim_l1(epochs, schedule):
    return (Stage(epochs, SSIM_L1, schedule),)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "durn_p_gaussian", "durn_p", "bsd_gray", "gaussian:30,50,70",
            batch_size=100, crop=64,
            stages=(Stage(3000, L2, Schedule("step", 1e-3, (500, 1000, 1500, 2500), 0.1)),),
            reuse=10, noise_sigmas=(30.0, 50.0, 70.0), gray=True,
            summary="Gaussian noise, gray; L2; lr 1e-3 x0.1 at epochs 500/1000/1500/2500 of 3000",
            notes="each clean batch is reused for 10 steps, with fresh noise (sigma 30, 50 or 70 "
                  "per sample, 0-255 scale, not clipped) added by the loop at every step",
        ),
        Preset(
            "durn_p_real", "durn_p_real", "polyu", "camera_noise",
            batch_size=30, crop=128,
            stages=_ssim_l1(3500, Schedule("step", 1e-4, (1000, 2000), 0.1)),
            summary="real camera noise (PolyU); 1.1*(-SSIM)+0.75*L1; lr 1e-4 x0.1 at 1000/2000 of 3500",
        ),
        Preset(
            "durn_u_gopro", "durn_u", "gopro", "blur",
            batch_size=10, crop=256,
            stages=_ssim_l1(5000, Schedule("step", 1e-4, (2000, 4000), 0.1)),
            summary="motion blur (GoPro at 640x360); 1.1*(-SSIM)+0.75*L1; lr 1e-4 x0.1 at 2000/4000 of 5000",
        ),
        Preset(
            "durn_us_reside", "durn_us", "reside_its", "haze",
            batch_size=40, crop=256,
            stages=_ssim_l1(3000, Schedule("step", 1e-4, (700, 1400), 0.1)),
            summary="haze (RESIDE indoor); 1.1*(-SSIM)+0.75*L1; lr 1e-4 x0.1 at 700/1400 of 3000",
        ),
        Preset(
            "durn_s_didmdn", "durn_s", "didmdn", "rain",
            batch_size=40, crop=64, hflip=True,
            stages=_ssim_l1(2000, Schedule("cosine", 1e-4)),
            summary="rain streaks (DID-MDN); 1.1*(-SSIM)+0.75*L1; lr 1e-4 cosine over 2000; random h-flip",
        ),
        Preset(
            "durn_s_p_raindrop", "durn_s_p", "raindrop_train", "raindrop",
            batch_size=24, crop=256,
            stages=(
                Stage(4000, SSIM_L1, Schedule("step", 1e-4, (2000,), 0.5)),
                Stage(100, L1_11, Schedule("constant", 1e-5)),
            ),
            summary="raindrops (RainDrop); stage 1: 1.1*(-SSIM)+0.75*L1, lr 1e-4 x0.5 at 2000 of 4000; "
                    "stage 2: 1.1*L1, lr 1e-5 for 100",
            notes="the authors' RainDrop loader reads BGR (OpenCV); the dataset adapter decides the order",
        ),
    )
}

# Network name -> its preset (each network's spec names it), so `--preset durn_u` works too.
PRESET_OF_NETWORK = {name: spec.preset for name, spec in SPECS.items() if spec.preset}


def get_preset(name: str) -> Preset:
    name = PRESET_OF_NETWORK.get(name, name)
    if name not in PRESETS:
        raise KeyError(
            f"unknown preset {name!r}; expected one of {sorted(PRESETS)} (or a network name: "
            f"{sorted(PRESET_OF_NETWORK)})"
        )
    return PRESETS[name]


@dataclass(frozen=True)
class StagePlan:
    """One stage in steps: ``[start, start + steps)`` of the run."""

    index: int
    start: int
    steps: int
    loss: str
    kind: str
    lr: float
    milestones: tuple[int, ...] = ()   # steps from the start of the stage
    gamma: float = 0.1
    warmup: int = 0                    # the stage's first steps ramp the rate up linearly

    def lr_at(self, step_in_stage: int) -> float:
        return self._scheduled(step_in_stage) * min(1.0, (step_in_stage + 1) / self.warmup if self.warmup else 1.0)

    def _scheduled(self, step_in_stage: int) -> float:
        if self.kind == "constant":
            return self.lr
        if self.kind == "step":
            return self.lr * self.gamma ** sum(1 for m in self.milestones if step_in_stage >= m)
        # cosine: from lr at the stage's first step to 0 after its last
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * step_in_stage / self.steps))


@dataclass(frozen=True)
class Plan:
    stages: tuple[StagePlan, ...]
    # steps per epoch of the recipe (with steps=N: N / the recipe's epochs)
    steps_per_epoch: float = field(default=0.0)

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def stage_at(self, step: int) -> StagePlan:
        for s in self.stages:
            if step < s.start + s.steps:
                return s
        return self.stages[-1]

    def lr_at(self, step: int) -> float:
        s = self.stage_at(step)
        return s.lr_at(step - s.start)


def _split(total: int, weights: list[float]) -> list[int]:
    """Integers summing to ``total`` in proportion to ``weights`` (largest remainder),
    each at least 1 when ``total`` allows."""
    if total < len(weights):
        counts = [0] * len(weights)
        for i in range(total):
            counts[i] = 1
        return counts
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(e) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: -(exact[i] - counts[i]))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    for i in range(len(counts)):
        if counts[i] == 0:
            counts[max(range(len(counts)), key=lambda j: counts[j])] -= 1
            counts[i] = 1
    return counts


def plan(stages: tuple[Stage, ...], *, dataset_size: int | None = None, batch_size: int | None = None,
         reuse: int = 1, steps: int | None = None, lr: float | None = None, warmup: int = 0) -> Plan:
    """Turn a recipe's stages (in epochs) into steps; see the module docstring.

    ``lr`` overrides the first stage's base learning rate (later stages keep theirs).
    ``warmup``: each stage's rate rises linearly over its first ``warmup`` steps (from
    ``lr / warmup``), multiplying its schedule; each stage starts a fresh Adam, whose
    first steps move every weight by about the rate whatever its gradient."""
    if warmup < 0:
        raise ValueError(f"warmup must be at least 0 steps, got {warmup}")
    if steps is None:
        if not dataset_size or not batch_size:
            raise ValueError("the full recipe needs the training set size and the batch size (or give steps)")
        spe = dataset_size * reuse / batch_size
        counts = [max(1, round(s.epochs * spe)) for s in stages]
    else:
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        counts = _split(steps, [s.epochs for s in stages])
        spe = steps / sum(s.epochs for s in stages)
    out, start = [], 0
    for i, (stage, n) in enumerate(zip(stages, counts)):
        sch = stage.schedule
        per_epoch = spe if steps is None else n / stage.epochs
        milestones = tuple(round(m * per_epoch) for m in sch.milestones)
        base = lr if (lr is not None and i == 0) else sch.lr
        out.append(StagePlan(i, start, n, stage.loss, sch.kind, base, milestones, sch.gamma, warmup))
        start += n
    return Plan(tuple(s for s in out if s.steps > 0), spe)
