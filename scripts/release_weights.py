"""Turn a training checkpoint into a released weights file and its registry facts.

    python scripts/release_weights.py RUN/best.pt --network durn_p --name durn_p.photos_gaussian

Writes ``durn/weights/released/<network>-<tag>-<sha256[:8]>.pt`` (floating tensors stored
as float16 by default; EMA weights when the run kept them) and prints the file name,
SHA-256, size and the training facts for the entry in ``durn/weights/registry.py``.
An existing file is never replaced.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from durn.checkpoints import canonical_state_dict, to_project_state_dict
from durn.models import get_model
from durn.weights import RELEASED_DIR, save_weights_file
from durn.weights.download import sha256_file


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="RUN/best.pt or RUN/last.pt")
    parser.add_argument("--network", required=True)
    parser.add_argument("--name", required=True, help="registry entry name, <network>.<tag>")
    parser.add_argument("--storage", choices=("float16", "float32"), default="float16")
    parser.add_argument("--out-dir", type=Path, default=RELEASED_DIR)
    args = parser.parse_args(argv)
    network, _, tag = args.name.partition(".")
    if network != args.network or not tag:
        raise SystemExit(f"--name must be '{args.network}.<tag>', got {args.name!r}")
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    sd, _ = to_project_state_dict(args.network, canonical_state_dict(ckpt))
    channel_order = get_model(args.network).channel_order
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tmp = args.out_dir / f".{args.name}.unnamed.pt"
    save_weights_file(tmp, args.network, sd, channel_order=channel_order, storage=getattr(torch, args.storage),
                      entry=args.name)
    digest = sha256_file(tmp)
    final = args.out_dir / f"{args.network}-{tag}-{digest[:8]}.pt"
    if final.exists():
        tmp.unlink()
        raise SystemExit(f"{final} exists already")
    os.replace(tmp, final)
    facts = {"file": final.name, "sha256": digest, "size": final.stat().st_size, "channel_order": channel_order,
             "storage": args.storage, "step": ckpt.get("step"), "best": ckpt.get("best")}
    print(json.dumps(facts, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
