"""Save a DuRN's per-block feature maps, attention and final residual as PNG grids.

Examples::

    durn explain photo.png --network durn_us --degrade haze -o explained/
    durn explain drops.png --network durn_s_p --weights DuRN_S_P_model.pt -o drops/

Writes into -o: input.png, output.png, residual.png, blockNN_t1.png / blockNN_t2.png per
dual residual block, attentionNN.png (durn_s_p), transmission.png (with --degrade haze or
--transmission) and summary.json (shapes; with a transmission, the per-channel Pearson
correlations of every block's features with it). See docs/explain.md.

Existing files are never replaced without --overwrite: when any of the files it would
write exists, nothing is written. The input image is never written, even with
--overwrite. Every file is written to a temporary file and renamed into place.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models import list_models

    parser.add_argument("image", metavar="IMAGE", help="the image file to run the network on")
    parser.add_argument("--network", choices=list_models(),
                        help="which network (default: recognised from the --weights file)")
    parser.add_argument("--weights", default="default",
                        help="as for durn restore: 'default' (the released weights; the default), a released entry, "
                             "'authors', a weights file, or 'untrained' (random weights, to check the pipeline)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the pictures and summary.json")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in DIR")
    parser.add_argument("--degrade", metavar="SPEC",
                        help="degrade the image first (gaussian:50, blur, haze, rain, raindrop, ...); with haze, its "
                             "transmission map is saved and correlated with the features")
    parser.add_argument("--seed", type=int, default=0, help="random seed of --degrade (default 0, as durn restore)")
    parser.add_argument("--transmission", metavar="FILE",
                        help="a gray image (the image's size) to correlate the features with, as transmission "
                             "in [0, 1]; instead of the one --degrade haze gives")
    parser.add_argument("--device", default="cpu", help="'cpu' (default), 'auto', 'cuda', 'cuda:1', ...")


def _network_name(args) -> str | None:
    from ..weights import WEIGHTS, form_of

    if args.network is not None:
        return args.network
    form = form_of(args.weights)
    if form == "entry":
        return WEIGHTS[args.weights].network
    if form == "path" and os.path.isfile(args.weights):
        from .restore import identify_network

        try:
            return identify_network(args.weights)
        except UserError:
            raise
        except Exception:  # not a readable checkpoint: load_model says so, as durn restore does
            return None
    return None


def _read(path: str):
    """The image as float (C, H, W) in [0, 1], colour channels only."""
    from ..restoration import array_to_chw
    from ..restoration.image_io import ImageReadError, read_image, shown

    try:
        loaded = read_image(path)
    except ImageReadError as err:
        raise UserError(f"cannot read {shown(path)}: {err}") from None
    x = array_to_chw(loaded.pixels)[0].float()
    return x[:1] if x.shape[0] <= 2 else x[:3], loaded.notes


def _transmission_file(path: str, size):
    import numpy as np

    from ..restoration import array_to_chw
    from ..restoration.convert import LUMA
    from ..restoration.image_io import ImageReadError, read_image, shown

    try:
        loaded = read_image(path)
    except ImageReadError as err:
        raise UserError(f"--transmission: cannot read {shown(path)}: {err}") from None
    x = array_to_chw(loaded.pixels)[0].double()
    if x.shape[0] >= 3:
        x = sum(w * x[i] for i, w in enumerate(LUMA))
    else:
        x = x[0]
    if tuple(x.shape) != tuple(size):
        raise UserError(f"--transmission {shown(path)} is {x.shape[1]} x {x.shape[0]} pixels; the image is "
                        f"{size[1]} x {size[0]}")
    return np.asarray(x, dtype=np.float32)


def _to_network_channels(x, channels: int):
    """Gray images go to RGB networks as three equal channels; colour images to gray
    networks as their BT.601 luma."""
    import torch

    from ..restoration.convert import LUMA

    if x.shape[0] == channels:
        return x
    if channels == 3:
        return x.expand(3, *x.shape[1:]).clone()
    return (torch.tensor(LUMA, dtype=x.dtype).view(3, 1, 1) * x).sum(0, keepdim=True)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..data.degradations import Haze, make_degradation
    from ..explain import explain, haze_with_transmission, output_files, save
    from ..restoration.image_io import shown
    from .restore import load_model, pick_device

    out = args.output
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"-o {shown(out)} is a file; -o takes a folder for the pictures")
    degradation = None
    if args.degrade:
        try:
            degradation = make_degradation(args.degrade)
        except ValueError as err:
            raise UserError(f"--degrade: {err}") from None
    if args.transmission and isinstance(degradation, Haze):
        raise UserError("--degrade haze gives the transmission map; --transmission is for images hazed elsewhere")
    network = _network_name(args)
    image, notes = _read(args.image)
    model = load_model(network, args.weights)
    names = output_files(model, transmission=bool(args.transmission) or isinstance(degradation, Haze),
                         network=network)
    targets = [os.path.join(out, n) for n in names]
    source = os.path.realpath(args.image)
    for path in targets:
        if os.path.realpath(path) == source:
            raise UserError(f"{shown(path)} would be written, and it is the input image; choose another -o")
    existing = [p for p in targets if os.path.lexists(p)]
    if existing and not args.overwrite:
        raise UserError(f"{shown(existing[0])} exists ({len(existing)} of the {len(targets)} files durn explain "
                        "writes there do); pass --overwrite to replace them, or choose another -o")

    transmission = None
    if degradation is not None:
        g = torch.Generator().manual_seed(args.seed)
        if isinstance(degradation, Haze):
            image, transmission = haze_with_transmission(image, g, degradation)
        else:
            image = degradation(image, g)
    if args.transmission:
        transmission = _transmission_file(args.transmission, tuple(image.shape[-2:]))
    image = _to_network_channels(image, model.in_channels)
    model = model.to(pick_device(args.device))
    try:
        explanation = explain(model, image, transmission=transmission, network=network)
    except ValueError as err:
        raise UserError(str(err)) from None
    info = {"image_file": os.path.abspath(args.image), "weights": str(args.weights),
            "degrade": degradation.spec if degradation is not None else None,
            "seed": args.seed if degradation is not None else None}
    try:
        written = save(explanation, out, overwrite=args.overwrite, info=info)
    except FileExistsError as err:  # appeared since the check above
        raise UserError(f"{err}; pass --overwrite to replace them") from None
    for note in notes:
        print(f"durn explain: {shown(args.image)}: {note}", file=sys.stderr)
    print(f"durn explain: wrote {len(written)} files to {shown(out)}")
    if explanation.correlation is not None:
        best = ", ".join("-" if c["best_abs_r"] is None else f"{c['best_abs_r']:.2f}" for c in explanation.correlation)
        print(f"durn explain: best |r| with the transmission per block: {best}")
    return 0
