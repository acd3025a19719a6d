"""PSNR/SSIM of a DuRN on a paper dataset or on synthetic degradations of a clean folder.

Examples::

    durn evaluate --network durn_us --weights trainedmodels/RESIDE/DuRN-US_model.pt \\
        --data data/SOTS/indoor --dataset reside_sots --protocol authors --json sots.json
    durn evaluate --network durn_p --weights durn_p.pt --data photos/ --degrade gaussian:50 \\
        --protocol standard
    durn evaluate --network durn_us --data photos/ --degrade haze --downstream mytask:classify

``--downstream MODULE:FN`` also scores a callable of yours on the clean, degraded and
restored images (the contract: ``durn/downstream.py``).

Under ``torchrun --nproc_per_node N durn evaluate ...`` every process evaluates its own
shard (every N-th image) and rank 0 gathers the results, prints and writes them.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from . import UserError


def add_arguments(parser) -> None:
    from ..data import PAPER_DATASETS
    from ..metrics import PROTOCOLS
    from ..models import NETWORKS

    parser.add_argument("--network", required=True, choices=sorted(NETWORKS), help="which DuRN")
    parser.add_argument("--weights", default="default",
                        help="'default' (the network's released weights; the default), a released entry, 'authors' "
                             "(after durn import-authors), a weights file (a durn checkpoint or one of the authors' "
                             "files), or 'untrained' for a pipeline check with random weights")
    parser.add_argument("--data", required=True, help="the dataset's root folder, or a folder of clean images with --degrade")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=sorted(PAPER_DATASETS), help="a paper dataset found under --data")
    source.add_argument("--degrade", metavar="SPEC",
                        help="degrade the clean images of --data: gaussian:SIGMA[,SIGMA...] | blur | haze | rain | raindrop")
    parser.add_argument("--split", default="test", help="dataset split (default: test)")
    parser.add_argument("--sigma", type=float, help="noise level on the 0..255 scale for --dataset bsd_gray (30, 50, 70)")
    parser.add_argument("--list", dest="list_file", help="evaluate only the images named in this file (one per line)")
    parser.add_argument("--protocol", default="authors", choices=sorted(PROTOCOLS),
                        help="authors: the DuRN authors' exact procedure; standard: BasicSR's (default: authors)")
    parser.add_argument("--json", dest="json_out", help="write per-image and mean results here (JSON)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic degradations (default 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--quiet", action="store_true", help="print only the mean, not every image")
    parser.add_argument("--downstream", metavar="MODULE:FN",
                        help="also score FN (a classifier or detector of yours: fn(images (N, C, H, W) in [0, 1]) -> "
                             "(N, K) logits or a dict of N per-image metrics) on the clean, degraded and restored "
                             "images; see docs/data.md")


def _load_model(args, device):
    """(network in eval mode on ``device``, its resolved weights, whose record the JSON keeps)."""
    import warnings

    import durn

    from ..weights import UntrainedWeightsWarning, form_of, resolve

    form = form_of(args.weights)
    if form == "untrained":
        print("WARNING: --weights untrained: the network has RANDOM weights. The numbers below only check "
              "the pipeline; they say nothing about DuRN.", file=sys.stderr)
    elif form == "path" and not Path(args.weights).is_file():
        raise UserError(f"weights file not found: {args.weights} (pass a file, 'default', 'authors', a released "
                        "entry, or 'untrained' for a pipeline check)")
    try:
        weights = resolve(args.network, args.weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UntrainedWeightsWarning)  # said above, for the terminal
            model = durn.get_model(args.network, weights=weights)
    except (durn.CheckpointError, ValueError, FileNotFoundError, OSError) as err:
        raise UserError(str(err).replace("\n", " ")) from None
    return model.eval().to(device), weights


def _dataset(args, in_channels: int):
    from ..data import PAPER_DATASETS, SyntheticPairs, paper_dataset

    gray = in_channels == 1
    if not Path(args.data).exists():
        raise UserError(f"--data {args.data} does not exist")
    try:
        if args.degrade:
            if args.sigma is not None:
                raise UserError("--sigma applies to --dataset bsd_gray; with --degrade write gaussian:SIGMA")
            return SyntheticPairs(args.data, args.degrade, seed=args.seed, gray=gray)
        if args.sigma is not None and args.dataset != "bsd_gray":
            raise UserError("--sigma applies to --dataset bsd_gray only")
        info = PAPER_DATASETS[args.dataset]
        if info.network != args.network:
            print(f"note: {args.dataset} is the paper's dataset for {info.network}, not {args.network}", file=sys.stderr)
        return paper_dataset(args.dataset, args.data, split=args.split, gray=gray, sigma=args.sigma,
                             list_file=args.list_file, authors_geometry=args.protocol == "authors")
    except (FileNotFoundError, ValueError, ImportError) as err:
        raise UserError(str(err)) from None


def _first_input(dataset, n: int):
    """The input of the first readable item (to check its channels), None when there is none
    to evaluate; unreadable items are reported with the results."""
    from ..data.images import ImageFileError

    error = None
    for i in range(n):
        try:
            return dataset[i]["input"]
        except ImageFileError as err:
            error = error or err
    if error is not None:
        raise UserError(f"none of the {n} images can be read ({error})")
    return None


def run(args) -> int:
    import torch
    import torch.distributed as dist

    import durn

    from ..distributed import init_process_group, shutdown
    from ..downstream import DownstreamError, evaluate_downstream, format_downstream, load_callable
    from ..evaluate import color_space_for, distributed_env, evaluate, format_table, shard_indices, write_json
    from ..metrics import PROTOCOLS

    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.json_out and Path(args.json_out).exists() and not args.overwrite:
        raise UserError(f"{args.json_out} exists; pass --overwrite to replace it")
    task = None
    if args.downstream:
        try:
            task = load_callable(args.downstream)
        except DownstreamError as err:
            raise UserError(f"--downstream {err}") from None
    rank, world, local_rank = distributed_env()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda but no CUDA device is available")
        if world > 1 and device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    initialized_here = False
    if world > 1 and not dist.is_initialized():
        init_process_group(device.type)
        initialized_here = True
    try:
        model, weights = _load_model(args, device)
        dataset = _dataset(args, model.in_channels)
        n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
        first = _first_input(dataset, n)
        if first is not None and first.shape[0] != model.in_channels:
            raise UserError(f"{args.network} takes {model.in_channels}-channel images; the dataset gives {first.shape[0]}")
        color_space = color_space_for(args.network, args.protocol, model.in_channels)
        downstream = None
        if task is not None:  # first: a callable that breaks the contract says so at the first image
            try:
                downstream = evaluate_downstream(task, model, dataset, device=device,
                                                 indices=shard_indices(n, rank, world), spec=args.downstream,
                                                 progress=rank == 0 and sys.stderr.isatty())
            except DownstreamError as err:
                raise UserError(f"--downstream {err}") from None
        start = time.perf_counter()
        result = evaluate(model, dataset, protocol=args.protocol, color_space=color_space, device=device,
                          indices=shard_indices(n, rank, world), progress=rank == 0 and sys.stderr.isatty())
        if world > 1:
            gathered = [None] * world if rank == 0 else None
            dist.gather_object((result.images, result.failed), gathered, dst=0)
            if rank == 0:
                result.images = sorted((r for part, _ in gathered for r in part), key=lambda r: r["index"])
                result.failed = sorted((r for _, part in gathered for r in part), key=lambda r: r["index"])
            if downstream is not None:
                parts = [None] * world if rank == 0 else None
                dist.gather_object((downstream.kind, downstream.images), parts, dst=0)
                if rank == 0:
                    downstream.kind = next((kind for kind, _ in parts if kind is not None), None)
                    downstream.images = sorted((r for _, part in parts for r in part), key=lambda r: r["index"])
        elapsed = time.perf_counter() - start
        if rank != 0:
            return 0
        for failure in result.failed:
            print(f"durn evaluate: {failure['error']}", file=sys.stderr)
        mean = result.mean()
        header = (f"{args.network} on {args.dataset or 'degraded ' + args.data} "
                  f"({args.split if args.dataset else args.degrade}), protocol {args.protocol}, "
                  f"measured on {color_space}, {len(result.images)} images, {elapsed:.1f} s"
                  + (f", {world} processes" if world > 1 else ""))
        print(header)
        print(format_table(result, per_image=not args.quiet))
        if result.failed:
            k = len(result.failed)
            print(f"{k} image{'s' if k > 1 else ''} could not be read: not in the mean (see above)")
        if downstream is not None:
            print(format_downstream(downstream))
        if args.json_out:
            weights_name, weights_sha256 = weights.record()
            data = {
                "durn_version": durn.__version__, "torch_version": torch.__version__,
                "network": args.network,
                "weights": weights_name, "weights_sha256": weights_sha256,
                "data": str(Path(args.data).resolve()), "dataset": args.dataset,
                "split": args.split if args.dataset else None, "degrade": dataset.degradation.spec if args.degrade else None,
                "seed": args.seed if args.degrade else None, "sigma": args.sigma, "list": args.list_file,
                "protocol": args.protocol, "protocol_description": PROTOCOLS[args.protocol],
                "color_space": color_space, "float_data": bool(getattr(dataset, "float_data", False)),
                "device": str(device), "processes": world, "seconds": elapsed, "count": len(result.images),
                "mean": mean, "paper": {k: {"psnr": v[0], "ssim": v[1]} for k, v in durn.NETWORKS[args.network].results.items()},
                "images": result.images, "failed": result.failed,
            }
            if downstream is not None:
                data["downstream"] = downstream.to_json()
            try:
                path = write_json(args.json_out, data, overwrite=args.overwrite)
            except FileExistsError as err:
                raise UserError(str(err)) from None
            print(f"wrote {path}")
        return 1 if result.failed else 0
    finally:
        if initialized_here:
            shutdown()
