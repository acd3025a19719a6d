"""Export a DuRN for deployment: ONNX, a torch.export program, an AOTInductor package.

Examples::

    durn export durn_us --onnx durn_us.onnx
    durn export durn_p --weights durn_p.pt --onnx durn_p.fp16.onnx --dtype float16
    durn export durn_u --weights DuRN_U_model.pt --torch-export durn_u.pt2 --check

Every file takes ``image``, float32 (N, C, H, W) in the network's channel order with
values in [0, 1], any batch and any height and width >= 2 (the padding and cropping are
in the graph), and returns ``restored`` of the same shape, not clamped; its metadata says
so (docs/export.md). Paths are checked before the trace (which takes 10 s to a minute);
an existing file is kept unless --overwrite, and files are written atomically.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from . import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..export import DEFAULT_OPSET, DTYPES
    from ..models import list_models

    parser.add_argument("network", metavar="NETWORK", choices=list_models(),
                        help=f"which network: {', '.join(list_models())}")
    parser.add_argument("--weights", default="default",
                        help="'default' (the network's released weights; the default), a released entry "
                             "(durn.weights.list_weights()), 'authors' (after durn import-authors), a durn weights "
                             "file, one of the authors' checkpoint files, or 'untrained' (random weights, to check "
                             "a pipeline)")
    parser.add_argument("--onnx", metavar="FILE", help="write an ONNX file (needs onnx and onnxscript)")
    parser.add_argument("--torch-export", metavar="FILE",
                        help="write a torch.export program (.pt2; torch.export.load reads it without durn)")
    parser.add_argument("--aoti", metavar="FILE",
                        help="write an AOTInductor package (.pt2, compiled for this machine: minutes; "
                             "torch._inductor.aoti_load_package runs it without durn)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES),
                        help="weights and computation in the files (input and output stay float32; default float32)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    parser.add_argument("--check", action="store_true",
                        help="run each file written on a random 2 x C x 37 x 53 image and compare with the eager "
                             "network (ONNX: in onnxruntime); exit 1 above the stated tolerance")


def _load(network: str, weights: str):
    """(network in eval mode, weights record) for NETWORK / --weights; user errors as UserError."""
    import warnings

    import durn
    from ..weights import UntrainedWeightsWarning, WeightsHashError, form_of, resolve

    form = form_of(weights)
    if form == "path" and not os.path.exists(weights):
        from ..weights import list_weights

        raise UserError(f"weights file not found: {weights} (expected a file, 'default', 'authors', 'untrained' "
                        f"or a released entry: {', '.join(list_weights()) or 'none'})")
    try:
        resolved = resolve(network, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UntrainedWeightsWarning)  # said below, for the terminal
            model = resolved.build()
        record = resolved.record()
    except (durn.CheckpointError, FileNotFoundError, KeyError, ValueError, WeightsHashError) as err:
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        if form == "default":
            message += " To check a pipeline without weights, pass --weights untrained (random weights)."
        raise UserError(message.replace("\n", " ")) from None
    if form == "untrained":
        print(f"WARNING: --weights untrained: {network} has RANDOM weights; the exported files are NOT "
              "restorations (use them only to check a pipeline)", file=sys.stderr)
    return model.eval(), record


def run(args: argparse.Namespace) -> int:
    from ..export import DEFAULT_OPSET, TOLERANCE, aoti_available, check_output_path, export, max_error

    outputs = {"onnx": args.onnx, "program": args.torch_export, "aoti": args.aoti}
    outputs = {kind: path for kind, path in outputs.items() if path is not None}
    if not outputs:
        raise UserError("nothing to write: pass --onnx FILE, --torch-export FILE and/or --aoti FILE")
    try:  # before reading weights or tracing, so that a bad path fails at once
        for path in outputs.values():
            check_output_path(path, overwrite=args.overwrite)
    except (OSError, TypeError) as err:
        raise UserError(str(err).replace(" (overwrite=True)", "")) from None
    if len({os.path.abspath(p) for p in outputs.values()}) < len(outputs):
        raise UserError(f"two outputs name the same file: {' and '.join(sorted(outputs.values()))}")
    if "aoti" in outputs and aoti_available() is not None:
        raise UserError(f"--aoti: {aoti_available()}; --torch-export writes a program this torch can load")
    if "onnx" in outputs:
        if args.opset < DEFAULT_OPSET:
            raise UserError(f"--opset {args.opset}: torch's ONNX exporter writes opset {DEFAULT_OPSET} and later")
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as err:
            raise UserError(f"--onnx needs the onnx and onnxscript packages ({err.name} is missing): "
                            "pip install 'durn[export]'") from None

    model, (weights_name, sha256) = _load(args.network, args.weights)
    start = time.perf_counter()
    try:
        result = export(model, onnx=args.onnx, program=args.torch_export, aoti=args.aoti, dtype=args.dtype,
                        opset=args.opset, metadata={"network": args.network, "weights": weights_name,
                                                    "weights_sha256": sha256},
                        overwrite=args.overwrite)
    except (OSError, ValueError, ImportError, RuntimeError) as err:
        raise UserError(f"{type(err).__name__}: {err}" if isinstance(err, RuntimeError) else str(err)) from None
    seconds = time.perf_counter() - start
    labels = {"onnx": f"ONNX opset {args.opset}", "program": "torch.export program", "aoti": "AOTInductor package"}
    meta = result.metadata
    for kind, path in result.files.items():
        size = os.path.getsize(path) / 1e6
        print(f"{path}: {labels[kind]}, {args.network} ({weights_name}), {args.dtype}, input {meta['input_name']!r} "
              f"(N, {meta['channels']}, H, W) {meta['channel_order']} in [0, 1], output {meta['output_name']!r}; "
              f"{size:.1f} MB")
    print(f"traced and written in {seconds:.0f} s", file=sys.stderr)
    if not args.check:
        return 0
    failed = False
    tolerance = TOLERANCE[args.dtype]
    for kind, path in result.files.items():
        try:
            error = max_error(kind, path, model)
        except ImportError as err:
            print(f"durn export: not checked: {path}: {err}", file=sys.stderr)
            continue
        verdict = "ok" if error <= tolerance else "FAILED"
        failed |= error > tolerance
        print(f"check {path}: max |file - eager| = {error:.2e} on 2 x {meta['channels']} x 37 x 53 "
              f"(tolerance {tolerance:g}): {verdict}")
    return 1 if failed else 0
