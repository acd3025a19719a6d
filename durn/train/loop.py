"""The training loop: ``train(preset=..., data=..., out=..., ...)``.

One process, or one per GPU/CPU slot under ``torchrun`` (DistributedDataParallel; NCCL
on GPUs, gloo on CPU). What a step computes depends only on the configuration and the
step number (see :mod:`durn.train.stream`), and the checkpoint holds everything else
(weights, optimiser, EMA, gradient scaler, RNG, best result), so a resumed run computes
exactly the steps an uninterrupted one would.
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import checkpoint as ckpt_io
from .. import distributed as D
from ..ops import backends
from .config import TrainConfig, make_config, resume_conflicts
from .ema import EMA
from .presets import Plan, Schedule, plan
from .stream import SampleStream, ShardedBatches, generator


# Networks whose training steps run faster in channels_last on CPU (measured on 2 cores:
# durn_p 5.4 -> 3.5 s, durn_s 8.7 -> 6.5 s a step; durn_u and durn_us were slower).
CHANNELS_LAST_ON_CPU = ("durn_p", "durn_p_real", "durn_s")


class TrainingError(RuntimeError):
    """A run that cannot start or go on (bad data, a diverged loss, ...); says why."""


@dataclass
class TrainResult:
    step: int                   # steps completed
    total_steps: int
    interrupted: str | None     # "SIGINT" / "SIGTERM" when stopped by a signal
    last: Path
    best: Path | None
    best_metrics: dict | None


class StopSignals:
    """SIGINT / SIGTERM ask the loop to stop after the current step (and write last.pt);
    a second SIGINT interrupts at once (the previous checkpoint stays intact)."""

    def __init__(self):
        self.received: str | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


# --------------------------------------------------------------------------- set-up

def resolve_settings(settings: dict) -> tuple[TrainConfig, dict | None]:
    """The run's config: the saved one when resuming (explicit settings may change only
    what does not alter the computation), else the preset with the settings applied."""
    if not settings.get("resume"):
        return make_config(settings), None
    if not settings.get("out"):
        raise ValueError("out (the run folder to resume) is required")
    run = Path(settings["out"])
    saved = None
    if (run / "config.json").is_file():
        saved = json.loads((run / "config.json").read_text())
    elif (run / "last.pt").is_file():
        saved = ckpt_io.load(run / "last.pt")["config"]
    if saved is None:
        return make_config(settings), None
    saved = {**saved, "overwrite": False}
    conflicts = [c for c in resume_conflicts(saved, make_config({**saved, **settings}))
                 if c.split(":")[0] in settings]
    if conflicts:
        raise ValueError(
            "--resume continues a run exactly, so these settings cannot change: " + "; ".join(conflicts)
            + " (start a new run in another folder to change them)"
        )
    if not any((run / name).is_file() for name in ckpt_io.WEIGHT_FILES):
        # killed before its first checkpoint: continuing it is running it from step 0
        return make_config({**saved, **settings, "resume": False}), saved
    return make_config({**saved, **settings}), saved


def pick_device(spec: str, d: D.Dist) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"durn train runs on 'cpu' or 'cuda' devices, got {spec!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available (use --device cpu)")
        if d.enabled or device.index is None:
            device = torch.device("cuda", d.local_rank if d.enabled else torch.cuda.current_device())
    return device


def pick_precision(spec: str, device: torch.device) -> str:
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(spec)
    if half is not None and device.type == "cpu" and not backends.cpu_has_native(half):
        # measured on an AVX2-only EPYC: a durn_u step in bf16 unfinished after 10 minutes
        # (4.3 s in float32); a dilated 3x3 conv 134x (bf16) and 514x (fp16) slower than float32
        units, flags = backends.NATIVE_HALF[half]
        raise ValueError(
            f"--precision {spec} needs a CPU with native {spec} ({units}; lscpu lists "
            f"{flags}); this CPU emulates it, over 100x slower than float32. "
            "Use --precision fp32 or auto (a resumed run may change precision)")
    if spec != "auto":
        if spec == "fp64" and device.type == "cuda":
            pass  # allowed, just slow
        return spec
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    # measured 2x (AVX-512 BF16 EPYC) and 3-4x (AMX Xeon) faster steps than float32
    return "bf16" if backends.cpu_has_native_bf16() else "fp32"


def autocast(precision: str, device: torch.device):
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.type, dtype=dtype)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- the run

class Trainer:
    def __init__(self, config: TrainConfig, dist: D.Dist):
        self.c = config
        self.run = Path(config.out)
        self.dist = dist

    # -- set-up ------------------------------------------------------------------
    def setup(self):
        c = self.c
        from .data import build_data  # imports durn.data (numpy, PIL) only when training

        self.device = pick_device(c.device, self.dist)
        self.precision = pick_precision(c.precision, self.device)
        self.dtype = torch.float64 if self.precision == "fp64" else torch.float32
        self.channels_last = c.channels_last
        if self.channels_last is None:
            self.channels_last = self.device.type == "cuda" or c.network in CHANNELS_LAST_ON_CPU
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not c.deterministic
        if c.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)

        if c.global_batch % self.dist.world_size:
            raise ValueError(
                f"the batch size {c.global_batch} does not divide among {self.dist.world_size} processes; "
                f"choose a multiple of {self.dist.world_size}"
            )
        D.run_on_main(self.dist, self._check_run_folder)  # before anything is written

        self.data = build_data(c, self.dist)
        if self.data.train_size < 1:
            raise TrainingError("the training set is empty")
        self.plan: Plan = plan(
            _overridden(c.preset_obj.stages, loss=c.loss, schedule=c.schedule),
            dataset_size=self.data.train_size, batch_size=c.global_batch, reuse=c.steps_per_batch,
            steps=c.steps, lr=c.lr, warmup=c.warmup,
        )
        self.total = self.plan.total_steps

        import durn

        torch.manual_seed(c.seed)  # initial weights depend on the seed only
        model = durn.get_model(c.network, connection=c.connection)
        if c.init and not c.resume:  # a resumed run takes its weights from last.pt
            model.load_state_dict(durn.get_model(c.network, weights=c.init).state_dict())
        elif c.identity_init and not c.resume:
            model.zero_residual_()
        elif c.unit_init and not c.resume:
            from .init import unit_variance_init_

            # the first crops of the seeded stream, read by index: the loader's stream is untouched
            items = [self.data.train[i, 0] for i in range(min(8, self.data.train_size))]
            unit_variance_init_(model, torch.stack([item["input"] for item in items]).to(torch.float32))
        model.check_inputs = False  # the data is checked once; the checks would sync every step
        # DuRN.min_size is found by dry runs on first use; in train mode they bump BatchNorm's
        # num_batches_tracked, so find it now, in eval mode, before any state is loaded.
        model.eval()
        _ = model.min_size
        model.train()
        model.to(self.device, self.dtype)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.ema = EMA(model, c.ema) if c.ema > 0 else None
        self.step, self.stage_index = 0, 0
        self.best: dict | None = None
        self._input_scores: dict[int, tuple[float, float]] = {}  # validation pair -> input's (PSNR, SSIM)
        # Losses since the last log line (kept in checkpoints, so a resumed log is exact).
        self.window_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self.window_steps = 0
        self.optimizer = self._new_optimizer()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

        # Everything is checked; now the run folder is created (or resumed).
        resumed = D.run_on_main(self.dist, self._open_run_folder)
        if resumed is not None:
            self._load_state(resumed)

        net = model
        if self.dist.enabled:
            if c.sync_bn and self.device.type == "cuda":
                net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
                self.model = net
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if c.compile:
            net = torch.compile(net)
        self.net = net
        self.losses = {}

    def _check_run_folder(self):
        try:
            ckpt_io.check_run_folder(self.run, resume=self.c.resume, overwrite=self.c.overwrite)
        except (FileExistsError, FileNotFoundError) as err:
            raise ValueError(str(err)) from None

    def _open_run_folder(self) -> dict | None:
        """Rank 0: create the folder and config.json, or read last.pt when resuming."""
        c = self.c
        self._check_run_folder()  # again: another process may have started a run meanwhile
        self.run.mkdir(parents=True, exist_ok=True)
        if not c.resume:  # the folder is empty, or holds a run that --overwrite or no checkpoint lets go
            ckpt_io.clear_run_files(self.run)
            ckpt_io.write_json(self.run / "config.json", c.to_dict())
            return None
        ckpt_io.remove_temp_files(self.run)
        ck = ckpt_io.load(self.run / "last.pt", map_location="cpu")
        if ck["network"] != c.network:
            raise ValueError(f"{self.run / 'last.pt'} is a {ck['network']} run, not {c.network}")
        self._check_same_photos(ck.get("train_photos"))  # before the log or config.json is touched
        ckpt_io.truncate_log(self.run / "log.jsonl", ck["step"])
        # The resumed config (with any allowed runtime changes) replaces the saved one.
        ckpt_io.write_json(self.run / "config.json", c.to_dict())
        return ck

    def _load_state(self, ck: dict):
        self.model.load_state_dict(ck["model"])
        self.step = int(ck["step"])
        self.stage_index = self.plan.stage_at(self.step).index if self.step < self.total else self.plan.stages[-1].index
        if int(ck.get("stage", 0)) == self.stage_index:
            self.optimizer = self._new_optimizer()
            self.optimizer.load_state_dict(ck["optimizer"])
        else:  # stopped exactly at a stage boundary: the next stage starts a fresh optimiser
            self.optimizer = self._new_optimizer()
        if self.ema is not None:
            if "params_ema" not in ck:
                raise ValueError("the run being resumed has no EMA weights; it was started without --ema")
            self.ema.load_state_dict(ck["params_ema"])
            self.ema.updates = self.step  # one update per step
        if "grad_scaler" in ck and self.scaler.is_enabled():
            self.scaler.load_state_dict(ck["grad_scaler"])
        ckpt_io.set_rng_state(ck["rng"])
        self.best = ck.get("best")
        window = ck.get("log_window") or {"loss_sum": 0.0, "steps": 0}
        self.window_steps = int(window["steps"])
        if self.dist.is_main:  # the sum over all processes, counted once
            self.window_loss.fill_(window["loss_sum"])

    def _check_same_photos(self, saved) -> None:
        """A resumed run must see the training photos it started on (runs from before
        checkpoints recorded them are not checked)."""
        if saved is None or not self.data.photos:
            return
        before, now = {tuple(p) for p in saved}, set(self.data.photos)
        if before == now:
            return
        gone = sorted(n for n, _ in before - now)
        new = sorted(n for n, _ in now - before)
        show = lambda names: ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")  # noqa: E731
        raise ValueError(
            f"{self.c.data} does not hold the {len(before)} training photos this run started on "
            f"(now {len(now)}: " + "; ".join(x for x in (f"missing or changed: {show(gone)}" if gone else "",
                                                       f"new or changed: {show(new)}" if new else "") if x)
            + "); resume it with --data pointing at its own photos")

    def _new_optimizer(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.plan.lr_at(self.step))

    # -- checkpoints -------------------------------------------------------------
    def _checkpoint(self) -> dict:
        totals = self._window_totals()  # a collective: every process runs _checkpoint
        state = {
            "format": ckpt_io.FORMAT,
            "version": ckpt_io.VERSION,
            "network": self.c.network,
            "model": ckpt_io.plain_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "stage": self.stage_index,
            "rng": ckpt_io.rng_state(),
            "config": self.c.to_dict(),
            "best": self.best,
            "log_window": {"loss_sum": float(totals[0]), "steps": self.window_steps},
        }
        if self.data.photos:
            state["train_photos"] = [list(p) for p in self.data.photos]
        if self.ema is not None:
            state["params_ema"] = ckpt_io.plain_state_dict(self.ema.module)
        if self.scaler.is_enabled():
            state["grad_scaler"] = self.scaler.state_dict()
        return state

    def save(self, name: str) -> None:
        """Write ``RUN/name`` once (rank 0), atomically; refuse weights that are not finite.
        ``best.pt`` holds the weights and what they scored, not the optimiser state."""
        state = self._checkpoint()

        def write():
            if name == "best.pt":
                for key in ("optimizer", "grad_scaler", "rng"):
                    state.pop(key, None)
            for key, value in state["model"].items():
                if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    raise TrainingError(
                        f"the weights contain NaN/Inf at step {self.step} ({key}); {name} was not written"
                    )
            ckpt_io.save(self.run / name, state)

        D.run_on_main(self.dist, write)

    def log(self, record: dict) -> None:
        if self.dist.is_main:
            with open(self.run / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    # -- one step ----------------------------------------------------------------
    def _loss_fn(self, name: str):
        if name not in self.losses:
            from ..losses import make_loss

            fn = make_loss(name)
            self.losses[name] = fn.to(self.device) if isinstance(fn, nn.Module) else fn
        return self.losses[name]

    def _inputs(self, batch: dict, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        target = batch["target"]
        sigmas = self.c.noise_sigmas
        if sigmas is not None:
            from ..data import add_gaussian_noise

            g = generator(self.c.seed, "noise", step, self.dist.rank, device=target.device)
            inp = add_gaussian_noise(target, sigmas, g)
        else:
            inp = batch["input"]
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return inp.contiguous(memory_format=fmt), target

    def train_step(self, batch: dict, stage) -> torch.Tensor:
        inp, target = self._inputs(batch, self.step)
        lr = stage.lr_at(self.step - stage.start)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.precision, self.device):
            out = self.net(inp)
        loss = self._loss_fn(stage.loss)(out.to(target.dtype), target)
        self.scaler.scale(loss).backward()
        if self.c.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return loss.detach()

    # -- validation --------------------------------------------------------------
    @property
    def color_space(self) -> str:
        """Where the paper measures this network (gray, RGB, or Y for the rain networks)."""
        import durn

        measured = durn.NETWORKS[self.c.network].measured_on
        return {"gray": "gray", "RGB": "rgb"}.get(measured, "y")

    @torch.no_grad()
    def validate(self) -> dict | None:
        from ..metrics import compare

        val = self.data.val
        if val is None or len(val) == 0:
            return None
        model = self.ema.module if self.ema is not None else self.model
        was_training = model.training
        model.eval()
        labels = list(dict.fromkeys(val.groups)) if val.groups else [None]
        sums = torch.zeros(len(labels), 5, dtype=torch.float64)  # per condition: psnr, ssim, count, input's
        for i, item in val:
            inp = item["input"][None].to(self.device, self.dtype)
            target = item["target"][None].to(self.device, self.dtype)
            out = model(inp)  # in full precision whatever the training's: what the card measures
            m = compare(out[0].float(), target[0].float(), protocol="authors", color_space=self.color_space)
            if i not in self._input_scores:  # the pairs are fixed for the run: scored once
                # the degraded input's own score, the bar the network has to clear
                base = compare(inp[0].float(), target[0].float(), protocol="authors", color_space=self.color_space)
                self._input_scores[i] = (base["psnr"], base["ssim"])
            g = labels.index(val.groups[i]) if val.groups else 0
            sums[g] += torch.tensor([m["psnr"], m["ssim"], 1.0, *self._input_scores[i]], dtype=torch.float64)
        model.train(was_training)
        sums = D.all_sum(self.dist, sums.to(self.device)).cpu()

        def means(row) -> dict:
            n = row[2].item()
            return {"psnr": row[0].item() / n, "ssim": row[1].item() / n, "images": int(n),
                    "input_psnr": row[3].item() / n, "input_ssim": row[4].item() / n}

        result = means(sums.sum(0))
        if val.groups:
            result["conditions"] = {label: means(row) for label, row in zip(labels, sums)}
        return result

    # -- the loop ----------------------------------------------------------------
    def loader(self):
        c = self.c
        reuse = c.steps_per_batch
        first_batch = self.step // reuse
        stop = math.ceil(self.total / reuse)
        sampler = ShardedBatches(
            SampleStream(self.data.train_size, c.seed), c.global_batch,
            rank=self.dist.rank, world_size=self.dist.world_size, start=first_batch, stop=stop,
        )
        workers = c.workers if c.workers is not None else (4 if self.device.type == "cuda" else 0)
        return torch.utils.data.DataLoader(
            self.data.train, batch_sampler=sampler, num_workers=workers,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
        )

    def fit(self) -> TrainResult:
        c = self.c
        reuse = c.steps_per_batch
        interrupted = None
        window_start = time.perf_counter()
        progress = None
        if self.dist.is_main and c.progress:
            from tqdm.auto import tqdm

            # disable=None: no bar when stderr is not a terminal (log.jsonl has it all)
            progress = tqdm(total=self.total, initial=self.step, unit="step", dynamic_ncols=True, disable=None)
        try:
            with StopSignals() as signals:
                self.net.train()
                batches = iter(self.loader())
                batch = None
                if self.step == 0 and c.init and c.val_every:
                    # a fine-tune's bar is its starting weights: validated as step 0 (and kept
                    # as best.pt until a step beats them)
                    self._validate_and_keep_best()
                while self.step < self.total:
                    stage = self.plan.stage_at(self.step)
                    if stage.index != self.stage_index:
                        self.stage_index = stage.index
                        self.optimizer = self._new_optimizer()
                    if batch is None or self.step % reuse == 0:
                        batch = self._next_batch(batches)
                    loss = self.train_step(batch, stage)
                    self.window_loss += loss.to(torch.float64)
                    self.window_steps += 1
                    if progress is not None:
                        progress.update(1)
                    last = self.step == self.total
                    if c.log_every and (self.step % c.log_every == 0 or last):
                        record = self._log_window(window_start, stage)
                        if progress is not None:
                            progress.set_postfix(loss=f"{record['loss']:.4g}", lr=f"{record['lr']:.3g}")
                        self.window_loss.zero_()
                        self.window_steps, window_start = 0, time.perf_counter()
                    paused = time.perf_counter()  # validation and saving do not count as training time
                    if c.val_every and (self.step % c.val_every == 0 or last):
                        self._validate_and_keep_best()
                    stop = D.any_flag(self.dist, signals.received is not None, self.device)
                    if stop:
                        interrupted = signals.received or "SIGTERM"
                        break
                    if c.ckpt_every and self.step % c.ckpt_every == 0 and not last:
                        self.save("last.pt")
                    window_start += time.perf_counter() - paused
                self.save("last.pt")
        finally:
            if progress is not None:
                progress.close()
        best = self.run / "best.pt"
        return TrainResult(self.step, self.total, interrupted, self.run / "last.pt",
                           best if best.is_file() else None, self.best)

    def _next_batch(self, batches) -> dict:
        try:
            raw = next(batches)
        except StopIteration:  # pragma: no cover - the sampler covers every step
            raise TrainingError(f"the data ran out at step {self.step}") from None
        except Exception as err:
            # The state is consistent between steps: keep the work done so far.
            self.save("last.pt")
            raise TrainingError(
                f"reading the training data failed at step {self.step} ({type(err).__name__}: {err}); "
                f"{self.run / 'last.pt'} holds step {self.step}: fix the data and continue with --resume"
            ) from err
        target = raw["target"].to(self.device, self.dtype, non_blocking=True)
        if self.c.noise_sigmas is not None:  # the loop makes the input from the target
            return {"input": target, "target": target}
        return {"input": raw["input"].to(self.device, self.dtype, non_blocking=True), "target": target}

    def _window_totals(self) -> torch.Tensor:
        """(sum of the losses since the last log line over all processes, number of them)."""
        local = torch.stack([self.window_loss, self.window_loss.new_tensor(self.window_steps)])
        return D.all_sum(self.dist, local)

    def _log_window(self, window_start, stage) -> dict:
        window_steps = self.window_steps
        totals = self._window_totals()
        mean = (totals[0] / totals[1]).item()
        if not math.isfinite(mean):
            raise TrainingError(
                f"the loss became {mean} by step {self.step} (lr {stage.lr_at(self.step - 1 - stage.start):.3g}); "
                f"{self.run / 'last.pt'} holds the last checkpoint before it. Lower --lr, or try --grad-clip"
            )
        elapsed = max(time.perf_counter() - window_start, 1e-9)
        record = {
            "step": self.step,
            "loss": mean,
            "lr": stage.lr_at(self.step - 1 - stage.start),
            "images_per_s": window_steps * self.c.global_batch / elapsed,
            "s_per_step": elapsed / window_steps,
            "stage": stage.index,
            "epoch": math.ceil(self.step / self.c.steps_per_batch) * self.c.global_batch / self.data.train_size,
        }
        self.log(record)
        return record

    def _validate_and_keep_best(self):
        metrics = self.validate()
        if metrics is None:
            return
        improved = self.best is None or metrics["psnr"] > self.best["psnr"]
        if improved:
            self.best = {"step": self.step, **metrics}
        record = {"step": self.step, "val_psnr": metrics["psnr"], "val_ssim": metrics["ssim"],
                  "val_input_psnr": metrics["input_psnr"], "val_input_ssim": metrics["input_ssim"],
                  "val_images": metrics["images"], "best_step": self.best["step"]}
        if "conditions" in metrics:  # --val-degrade: the mean above is these conditions' mean
            record["val_conditions"] = {label: {k: m[k] for k in ("psnr", "input_psnr", "images")}
                                        for label, m in metrics["conditions"].items()}
        self.log(record)
        if improved:
            self.save("best.pt")


def _overridden(stages, *, loss: str | None, schedule: str | None):
    from dataclasses import replace

    if loss is not None:
        stages = tuple(replace(s, loss=loss) for s in stages)
    if schedule is not None:
        stages = tuple(replace(s, schedule=Schedule(schedule, s.schedule.lr)) for s in stages)
    return stages


def train(config: TrainConfig | dict | None = None, /, **settings) -> TrainResult:
    """Train a DuRN; see ``durn train --help`` for every setting.

    >>> train(preset="durn_p_gaussian", data="photos/", degrade="gaussian:30,50,70",
    ...       out="runs/p", steps=1000, batch_size=16)          # doctest: +SKIP

    ``config`` may be a :class:`TrainConfig` or a dict of settings; keyword settings
    override it. With ``resume=True`` the run's saved settings are used.
    """
    if isinstance(config, TrainConfig):
        config = config.to_dict()
    merged = {**(config or {}), **{k: v for k, v in settings.items() if v is not None}}
    dist = D.init(pick_device(str(merged.get("device", "auto")), D.Dist()).type)
    trainer = None
    try:
        # Rank 0 reads the run folder (only its machine needs it) and tells the others.
        resolved = D.run_on_main(dist, lambda: resolve_settings(merged)[0])
        trainer = Trainer(resolved, dist)
        trainer.setup()
        result = trainer.fit()
        D.barrier(dist)  # no rank tears down while another still talks to it
        return result
    finally:
        # DistributedDataParallel's reducer holds the process group: free it first, so the
        # group is destroyed here and not during interpreter exit, where gloo's threads
        # can abort the process ("terminate called without an active exception").
        del trainer
        D.shutdown(dist)
