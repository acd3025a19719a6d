"""The paper's Table 1: each connection style (Fig. 1 b, c, d) trained and scored alike.

For each network (default: the five tasks of the paper, durn_p durn_u durn_us durn_s_p
durn_s), each style and each seed, one `durn train` run with the same photos, seed, steps
and schedule, scored on the held-out photos (camera, astronaut) in the network's task;
the table goes to OUT/ablation.md and OUT/ablation.json, the runs to OUT/runs/. Running
the same command again skips finished runs and continues an interrupted one exactly.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from . import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..ablation import SCALES, STYLES, TABLE1_NETWORKS, TASKS

    small = SCALES["small"]
    g = p.add_argument_group("what")
    g.add_argument("--network", action="append", metavar="NAME",
                   help=f"network(s) to ablate, repeatable or comma-separated: {', '.join(TASKS)} "
                        f"(default: {' '.join(TABLE1_NETWORKS)})")
    g.add_argument("--styles", default=",".join(STYLES), metavar="LIST",
                   help=f"connection styles (default {','.join(STYLES)}: Fig. 1 b, c, d)")
    g.add_argument("--seeds", default="0", metavar="LIST",
                   help="training seeds, e.g. 0,1,2: each style is trained once per seed; the table gives the spread")
    g.add_argument("--out", required=True, metavar="DIR", help="folder of the table and the runs")

    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="DIR",
                   help="clean training photos, degraded on the fly by each network's task "
                        "(default: scikit-image's training photos, durn.data.sample_images('train'))")
    g.add_argument("--val-data", metavar="DIR", help="validation photos (default: held out from --data)")

    g = p.add_argument_group("training (the same for every style)")
    g.add_argument("--scale", choices=list(SCALES), default="small",
                   help=f"small (default): {small['steps']} steps, batch {small['batch_size']}, crop {small['crop']}, "
                        f"cosine schedule, gradient norm clipped at {small['grad_clip']:g}; paper: each preset's "
                        "batch, crop, schedule and full recipe")
    g.add_argument("--steps", type=int, metavar="N", help="steps per run (overrides --scale)")
    g.add_argument("--batch-size", type=int, metavar="B", help="batch size (overrides --scale)")
    g.add_argument("--crop", type=int, metavar="C", help="training crop (overrides --scale)")
    g.add_argument("--lr", type=float, help="learning rate (default: each preset's)")
    g.add_argument("--schedule", choices=("cosine", "constant", "recipe"),
                   help="learning-rate schedule (recipe: the preset's; overrides --scale)")
    g.add_argument("--grad-clip", type=float, metavar="NORM", help="clip the gradient norm (0: off; overrides --scale)")
    g.add_argument("--ckpt-every", type=int, default=50, metavar="N",
                   help="write last.pt every N steps (default 50): what a kill can lose")
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda")

    g = p.add_argument_group("scoring")
    g.add_argument("--heldout-crop", type=int, metavar="C",
                   help="score C x C centre crops of the held-out photos (quicker; default: whole photos, "
                        "the model cards' measurement)")


def run(args: argparse.Namespace) -> int:
    from ..ablation import AblationError, run_ablation

    options = {"networks": args.network if args.network else None, "styles": args.styles, "seeds": args.seeds,
               "data": args.data, "val_data": args.val_data, "scale": args.scale, "lr": args.lr,
               "ckpt_every": args.ckpt_every, "device": args.device, "heldout_crop": args.heldout_crop,
               "command": "durn ablation " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == ["ablation"] else None}
    if options["networks"] is None:
        del options["networks"]
    for name in ("steps", "batch_size", "crop", "schedule", "grad_clip"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    try:
        result = run_ablation(args.out, **options)
    except (AblationError, ValueError, FileNotFoundError, FileExistsError, KeyError) as err:
        raise UserError(err.args[0] if isinstance(err, KeyError) and err.args else str(err)) from None
    print(result.markdown, end="")
    if result.interrupted:
        print(f"durn ablation: stopped by {result.interrupted}; the table so far is in {args.out}/ablation.md. "
              "Run the same command again to continue.", file=sys.stderr)
        return 130 if result.interrupted == "SIGINT" else 143
    print(f"durn ablation: {args.out}/ablation.md and ablation.json written", file=sys.stderr)
    return 0
