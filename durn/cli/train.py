"""Train a DuRN with one of the authors' recipes, on a paper dataset or on your own photos.

Settings come from the preset, then from --config FILE (JSON or TOML, keys as the long
options with underscores), then from the options given. Run it under
``torchrun --nproc-per-node N -m durn train ...`` for several processes.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..nn.block import CONNECTIONS
from . import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.presets import PRESETS

    S = argparse.SUPPRESS  # only options the user gives override the preset / config file
    g = p.add_argument_group("recipe")
    g.add_argument("--preset", default=S, metavar="NAME",
                   help=f"one of {', '.join(PRESETS)} (or a network name); default durn_p_gaussian")
    g.add_argument("--list-presets", action="store_true", default=S, help="print the presets and exit")
    g.add_argument("--config", default=S, metavar="FILE", help="JSON or TOML file of settings")
    g.add_argument("--steps", type=int, default=S, metavar="N",
                   help="train N steps (the recipe's schedule is compressed to fit); default: the full recipe")
    g.add_argument("--batch-size", type=int, default=S, metavar="B", help="global batch size (all processes)")
    g.add_argument("--crop", type=int, default=S, metavar="C", help="square training crop size")
    g.add_argument("--lr", type=float, default=S, help="base learning rate of the first stage")
    g.add_argument("--loss", default=S, help="replace every stage's loss (a durn.losses name)")
    g.add_argument("--schedule", default=S, choices=("cosine", "constant"),
                   help="replace the recipe's learning-rate schedule (each stage keeps its base rate); "
                        "cosine suits short runs, whose compressed step milestones come too early")
    g.add_argument("--warmup", type=int, default=S, metavar="N",
                   help="raise the learning rate linearly over each stage's first N steps (networks without "
                        "norms, durn_p_real: Adam's first full-rate steps kill their ReLUs)")
    g.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=S, help="random horizontal flips")
    g.add_argument("--reuse", type=int, default=S, metavar="K", help="optimiser steps per drawn batch")
    g.add_argument("--seed", type=int, default=S)
    g.add_argument("--init", default=S, metavar="WEIGHTS",
                   help="start from these weights instead of a random initialisation (fine-tuning): a released "
                        "entry, 'default', 'authors' or a checkpoint file such as RUN/best.pt")
    g.add_argument("--connection", default=S, choices=CONNECTIONS,
                   help="the blocks' wiring (the paper's Fig. 1: dual residual, default; paired and separate "
                        "shortcuts, for the Table 1 ablation: durn ablation)")
    g.add_argument("--identity-init", action="store_true", default=S,
                   help="start a fresh network as the identity (its last conv zeroed: output = input), so "
                        "early steps learn the correction instead of how to pass the image through")
    g.add_argument("--unit-init", action="store_true", default=S,
                   help="rescale a fresh network's convs to unit output variance on real crops, the last to a "
                        "small residual (for networks without norms: durn_p_real; use --lr 1e-4)")

    g = p.add_argument_group("data")
    g.add_argument("--data", default=S, metavar="DIR",
                   help="the preset's paper dataset root; with --degrade, a folder of clean photos")
    g.add_argument("--dataset", default=S, metavar="NAME", help="another paper dataset than the preset's")
    g.add_argument("--degrade", default=S, metavar="SPEC",
                   help="train on your own photos degraded synthetically: gaussian:30,50,70, blur, haze, rain, raindrop")
    g.add_argument("--scene", default=S, metavar="SPEC",
                   help="draw structure into the clean training photos before --degrade (input and target alike), "
                        "for the network to keep: lines (long thin lines; validation photos stay as they are)")
    g.add_argument("--val-data", default=S, metavar="DIR", help="validation data (default: held out from --data)")
    g.add_argument("--val-degrade", default=S, metavar="SPECS",
                   help="validate every validation photo at fixed degradations instead of one --degrade draw "
                        "each: specs joined by ';', or 'card' for the model card's conditions (on the validation "
                        "photos, never the card's); best.pt is then the best mean over those conditions")
    g.add_argument("--val-images", type=int, default=S, metavar="N", help="at most N validation images (default 16)")
    g.add_argument("--val-crop", type=int, default=S, metavar="C",
                   help="centre crop of validation images (default 256; 0: whole images)")

    g = p.add_argument_group("run")
    g.add_argument("--out", default=S, metavar="RUN", help="run folder: last.pt, best.pt, log.jsonl, config.json")
    g.add_argument("--resume", action="store_true", default=S, help="continue the run in --out exactly")
    g.add_argument("--overwrite", action="store_true", default=S, help="replace the training files of an existing run")
    g.add_argument("--log-every", type=int, default=S, metavar="K", help="log every K steps (default 10)")
    g.add_argument("--val-every", type=int, default=S, metavar="N", help="validate every N steps (default 500; 0: never)")
    g.add_argument("--ckpt-every", type=int, default=S, metavar="N", help="write last.pt every N steps (default 500)")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=S, help="no progress bar")

    g = p.add_argument_group("hardware")
    g.add_argument("--device", default=S, help="auto (default), cpu, cuda, cuda:1")
    g.add_argument("--precision", default=S, choices=("auto", "fp32", "bf16", "fp16", "fp64"),
                   help="auto: bf16 autocast on CUDA and on CPUs with native bf16 (AVX-512 BF16 or AMX), else fp32")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=S,
                   help="channels_last memory format (default: on for CUDA; on CPU for durn_p, durn_p_real, durn_s)")
    g.add_argument("--workers", type=int, default=S, help="data loader processes per training process")
    g.add_argument("--ema", type=float, default=S, metavar="DECAY", help="keep an EMA of the weights (e.g. 0.999)")
    g.add_argument("--grad-clip", type=float, default=S, metavar="NORM", help="clip the gradient norm")
    g.add_argument("--compile", action="store_true", default=S, help="torch.compile the network")
    g.add_argument("--sync-bn", action="store_true", default=S,
                   help="SyncBatchNorm across GPU processes (default: per-process batch statistics)")
    g.add_argument("--deterministic", action="store_true", default=S, help="deterministic algorithms where they exist")


def settings_from_args(args: argparse.Namespace) -> dict:
    from ..train.config import read_config_file

    given = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("command",)}
    values = {}
    if "config" in given:
        try:
            values = read_config_file(given.pop("config"))
        except (OSError, ValueError) as err:
            raise UserError(str(err)) from None
    values.update(given)
    return values


def presets_table() -> str:
    from ..train.presets import PRESETS

    lines = []
    for p in PRESETS.values():
        lines.append(f"{p.name:18} {p.network:12} batch {p.batch_size:3}  crop {p.crop:3}  {p.summary}")
        if p.notes:
            lines.append(f"{'':32}({p.notes})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "list_presets", False):
        print(presets_table())
        return 0
    settings = settings_from_args(args)
    settings.pop("list_presets", None)
    if "out" not in settings:
        raise UserError("--out RUN is required (the folder for last.pt, best.pt and log.jsonl)")

    from ..train.loop import TrainingError, train

    main_process = int(os.environ.get("RANK", "0")) == 0
    try:
        result = train(**settings)
    except (ValueError, FileNotFoundError, FileExistsError, TrainingError, KeyError) as err:
        if not main_process:  # under torchrun every process fails alike; rank 0 says why
            return 2
        raise UserError(err.args[0] if isinstance(err, KeyError) and err.args else str(err)) from None
    if not main_process:
        return 0 if result.interrupted is None else (130 if result.interrupted == "SIGINT" else 143)
    if result.interrupted:
        print(
            f"durn train: stopped by {result.interrupted} after step {result.step} of {result.total_steps}; "
            f"{result.last} written. Continue with: durn train --out {os.fspath(settings['out'])} --resume",
            file=sys.stderr,
        )
        return 130 if result.interrupted == "SIGINT" else 143
    best = ""
    if result.best_metrics:
        m = result.best_metrics
        best = f"; best {result.best} (validation PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} at step {m['step']})"
    print(f"durn train: {result.step} steps done; {result.last}{best}")
    return 0
