"""``durn`` command line: ``durn restore | train | evaluate | import-authors | export | ablation | explain``.

Each subcommand lives in its own module of this package, defining
``add_arguments(parser)`` and ``run(args) -> int``; only modules that exist are offered.
User errors are reported in one line (no traceback) with a non-zero exit code.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

SUBCOMMANDS = {
    "restore": ("durn.cli.restore", "restore images, folders or globs with a DuRN"),
    "train": ("durn.cli.train", "train a DuRN (paper recipes or your own photos)"),
    "evaluate": ("durn.cli.evaluate", "PSNR/SSIM of a DuRN on a dataset, paper or standard protocol"),
    "import-authors": ("durn.cli.import_authors", "convert the authors' trainedmodels archive"),
    "export": ("durn.cli.export", "write a DuRN as ONNX / torch.export files for deployment"),
    "ablation": ("durn.cli.ablation", "the paper's Table 1: each connection style trained and scored alike"),
    "explain": ("durn.cli.explain", "save a DuRN's feature, attention and residual maps as PNG grids"),
}


class UserError(Exception):
    """An error caused by the user's input; printed as one line without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="durn", description="Dual Residual Networks for image restoration")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as err:
        one_line = " ".join(str(err).split("\n"))  # names in it are quoted already; this keeps the promise
        print(f"durn {args.command}: error: {one_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"durn {args.command}: interrupted", file=sys.stderr)
        return 130
