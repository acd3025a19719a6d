"""Convert the DuRN authors' trainedmodels archive (a zip, or the folder it unpacks to) into durn's weights cache.

Each checkpoint is recognised by its keys, converted to durn's layout and stored with
its SHA-256 where ``weights="authors"`` finds it; other files are listed and skipped.
Weights imported before are never replaced by different ones without --force.
"""
from __future__ import annotations

import argparse
import sys

from . import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="ZIP_OR_DIR",
                        help="the authors' trainedmodels archive, the folder it unpacks to, or one of its .pt files")
    parser.add_argument("--dest", metavar="DIR",
                        help="where to store the converted weights (default: <torch hub dir>/checkpoints/"
                             "durn-authors, where weights='authors' looks; TORCH_HOME moves it)")
    parser.add_argument("--force", action="store_true",
                        help="replace weights imported before that differ from the ones found now")


def run(args: argparse.Namespace) -> int:
    from ..checkpoints import BUILDERS, CheckpointError
    from ..weights.authors import archive_path, import_authors

    try:
        report = import_authors(args.source, dest=args.dest, force=args.force)
    except (CheckpointError, FileNotFoundError) as err:
        raise UserError(str(err).replace("\n", " ")) from None
    for item in report:
        print(f"{item.network:<12} {item.status:<17} {item.source} -> {item.path}  sha256 {item.sha256[:12]}")
    for item in report.skipped:
        print(f"durn import-authors: skipped {item.source}: {item.reason}", file=sys.stderr)
    missing = [n for n in BUILDERS if n not in {i.network for i in report}]
    if missing:
        print("durn import-authors: not in this source: "
              + ", ".join(f"{n} ({archive_path(n)})" for n in missing), file=sys.stderr)
    return 0
