"""Trace a DuRN once and write it as ONNX, a ``torch.export`` program and an AOTInductor package.

Every file has the same interface (:mod:`durn.export.traceable`): input ``image``, output
``restored``, float32 (N, C, H, W) with values in [0, 1], dynamic batch, height and width
(H, W >= 2), the mirror padding and the crop inside the graph. The facts a caller needs
(network, weights, channel order, value range, names, dtype, opset) travel in the file:
ONNX ``metadata_props`` (``onnxruntime``: ``session.get_modelmeta().custom_metadata_map``),
the ``durn.json`` extra file of a ``.pt2`` program, the AOTInductor package's metadata.

Output paths are checked before the (slow) trace, so a bad path fails at once; files are
written atomically (``durn.atomic``) and an existing file is kept unless ``overwrite``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..atomic import atomic_output, atomic_write
from ..nn import DuRN
from .traceable import Traceable, check_network

__all__ = [
    "DEFAULT_OPSET", "DTYPES", "EXAMPLE_SHAPE", "INPUT_NAME", "OUTPUT_NAME", "PROGRAM_METADATA_FILE", "TOLERANCE",
    "ExportResult", "aoti_available", "check_output_path", "export", "export_onnx", "export_program",
    "load_program", "max_error", "metadata_for",
]

INPUT_NAME = "image"
OUTPUT_NAME = "restored"
DEFAULT_OPSET = 18  # the oldest the dynamo-based exporter writes; onnxruntime >= 1.14 runs it
DTYPES = {"float32": torch.float32, "float16": torch.float16}
# The trace's example input: batch 2 and odd sizes, since torch.export specialises sizes 0
# and 1 and a multiple of 4 would hide nothing (no size is specialised: see traceable.py).
EXAMPLE_SHAPE = (2, 37, 53)
PROGRAM_METADATA_FILE = "durn.json"  # the metadata's name among a .pt2 program's extra files
# Largest absolute difference from the eager float32 network that :func:`max_error` (and
# ``durn export --check``) accepts, on images in [0, 1]. float32: the files run the same
# arithmetic in another order (measured at most 2.5e-6 over the six networks, durn_u; the
# others 2e-7), a 40th of an 8-bit step (1/255). float16: rounding to half precision alone
# moves values near 1.0 by up to 2.4e-4, and every layer adds its rounding (measured in
# onnxruntime: durn_p 5e-4, durn_us 7e-4, durn_u 2.5e-3 to 3.2e-3 and 6e-3 on a 2 x 2
# image): 2.5 8-bit steps, so a saved 8-bit image can differ by a few levels.
TOLERANCE = {"float32": 1e-4, "float16": 1e-2}


@dataclass
class ExportResult:
    """What :func:`export` traced and wrote."""

    program: torch.export.ExportedProgram
    metadata: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)  # "onnx" / "program" / "aoti" -> path


def _dtype(dtype) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        return DTYPES[dtype]
    if dtype not in DTYPES.values():
        raise ValueError(f"dtype must be torch.float32 or torch.float16, got {dtype}")
    return dtype


def _dtype_name(dtype: torch.dtype) -> str:
    return next(name for name, value in DTYPES.items() if value == dtype)


def check_output_path(path, *, overwrite: bool = False) -> str:
    """``path`` as a string if a file can be written there: its folder exists and takes a
    new file, it is not a folder, and it does not exist unless ``overwrite``. Raises
    FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError or
    PermissionError with the reason."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"an output path must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if not text:
        raise FileNotFoundError("an output path is empty")
    folder = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise IsADirectoryError(f"{text} is a folder; expected a file name")
    if os.path.lexists(text) and not overwrite:
        raise FileExistsError(f"{text} exists; pass --overwrite (overwrite=True) to replace it")
    if not os.path.exists(folder):
        raise FileNotFoundError(f"cannot write {text}: the folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"cannot write {text}: {folder} is not a folder")
    try:  # a real probe: os.access says yes to root, also on a read-only file system
        fd, probe = tempfile.mkstemp(prefix=".durn-export-probe.", dir=folder)
    except OSError as err:
        raise PermissionError(f"cannot write {text}: the folder {folder} is not writable ({err.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return text


def network_name(model: DuRN) -> str:
    """The name of the network whose layout ``model``'s state dict has (durn_p, ...), or
    ``"custom"`` for a DuRN of no known layout."""
    from ..checkpoints import identify

    exact = sorted({name for score, name, kind in identify(model.state_dict()) if score == 1.0 and kind == "project"})
    return exact[0] if len(exact) == 1 else "custom"


def metadata_for(traceable: Traceable, *, network: str, opset: int | None = None,
                 extra: Mapping[str, object] | None = None) -> dict[str, str]:
    """The metadata every exported file carries, as str -> str."""
    import durn
    from ..models import NETWORKS

    multiple, min_size = traceable.multiple, traceable.min_size
    meta = {
        "producer": f"durn {durn.__version__}",
        "network": network,
        "task": NETWORKS[network].task if network in NETWORKS else "",
        "weights": "",
        "weights_sha256": "",
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "layout": "NCHW",
        "channels": str(traceable.in_channels),
        "channel_order": traceable.network.channel_order,
        "value_range": "[0.0, 1.0]",
        "output_clamped": "false",
        "io_dtype": "float32",
        "compute_dtype": _dtype_name(traceable.dtype),
        "dynamic_axes": "batch, height, width",
        "min_height_width": "2",
        "padding": (f"mirror at the bottom and right to a multiple of {multiple} and at least {min_size}, "
                    "cropped back, inside the graph"),
        "size_multiple": str(multiple),
        "min_size": str(min_size),
    }
    if opset is not None:
        meta["opset"] = str(opset)
    for key, value in (extra or {}).items():
        meta[str(key)] = "" if value is None else str(value)
    return meta


def _known_network(name: str) -> None:
    from ..models import list_models

    if name not in list_models():
        raise ValueError(f"unknown network {name!r}; expected one of {list_models()}")


def _model(model, weights) -> tuple[DuRN, dict[str, str]]:
    """(network, metadata of its weights) for a network name or module."""
    if isinstance(model, str):
        from ..weights import resolve

        _known_network(model)
        resolved = resolve(model, weights)
        name, sha256 = resolved.record()
        return resolved.build(), {"network": model, "weights": name, "weights_sha256": sha256}
    return check_network(model), {}


@contextlib.contextmanager
def _quiet_exporters():
    """The exporters log and warn about things that are not the caller's concern (missing
    torchvision ops, deprecated internals); keep them quiet while tracing."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export",
                                                    "torch.fx.experimental.symbolic_shapes",
                                                    "torch._dynamo", "torch._inductor")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def trace(traceable: Traceable) -> torch.export.ExportedProgram:
    """``torch.export`` of ``traceable`` with dynamic batch (>= 1), height and width (>= 2)."""
    from torch.export import Dim

    n, h, w = EXAMPLE_SHAPE
    example = torch.rand(n, traceable.in_channels, h, w, generator=torch.Generator().manual_seed(0))
    dynamic = {"image": {0: Dim("batch", min=1), 2: Dim("height", min=2), 3: Dim("width", min=2)}}
    with _quiet_exporters(), torch.no_grad():
        return torch.export.export(traceable, (example,), dynamic_shapes=dynamic, strict=False)


def _onnx_modules():
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
    except ImportError as err:
        raise ImportError(
            f"ONNX export needs the onnx and onnxscript packages ({err.name} is missing): "
            "pip install 'durn[export]'"
        ) from None
    return onnx


def to_onnx(program: torch.export.ExportedProgram, metadata: Mapping[str, str], opset: int):
    """The ONNX ``ModelProto`` of ``program``, its metadata set."""
    onnx = _onnx_modules()
    with _quiet_exporters():
        onnx_program = torch.onnx.export(program, f=None, dynamo=True, opset_version=opset,
                                         input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                         verbose=False, optimize=True)
    proto = onnx_program.model_proto
    _name_dynamic_axes(proto)
    proto.producer_name = "durn"
    proto.producer_version = metadata["producer"].split()[-1]
    proto.doc_string = (f"{metadata['network']}: {metadata['task'] or 'a DuRN'}. Input {INPUT_NAME!r}, output "
                        f"{OUTPUT_NAME!r}: float32 NCHW, {metadata['channel_order']}, values in [0, 1] "
                        "(output not clamped); any batch, height and width >= 2.")
    onnx.helper.set_model_props(proto, dict(metadata))
    proto.graph.input[0].doc_string = f"float32 (batch, {metadata['channels']}, height, width), " \
                                      f"{metadata['channel_order']}, values in [0, 1]"
    proto.graph.output[0].doc_string = "float32, the input's shape and value range (not clamped)"
    return proto


def _name_dynamic_axes(proto) -> None:
    """Name the symbolic dimensions of the input (and of every value with the same
    symbols) ``batch``, ``height`` and ``width``; the exporter calls them s0, s1, ..."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    names = {dims[axis].dim_param: name for axis, name in ((0, "batch"), (2, "height"), (3, "width"))
             if dims[axis].dim_param}
    for value in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]


def aoti_available() -> str | None:
    """None where this torch can write AOTInductor packages, else why not."""
    inductor = _inductor()
    if inductor is None or not hasattr(inductor, "aoti_compile_and_package"):
        return f"torch {torch.__version__} has no AOTInductor packaging (torch._inductor.aoti_compile_and_package)"
    import shutil

    if not any(shutil.which(cc) for cc in (os.environ.get("CXX", "g++"), "g++", "clang++", "c++")):
        return "AOTInductor needs a C++ compiler (g++ or clang++) on the PATH"
    return None


def _inductor():
    try:
        import torch._inductor as inductor
    except ImportError:
        return None
    return inductor


def _write_aoti(program, tmp: str, metadata: Mapping[str, str]) -> None:
    """Compile ``program`` into an AOTInductor package at ``tmp`` (the package tools want
    a name ending in .pt2, so it is built in a scratch folder beside it and moved)."""
    from torch._inductor import aoti_compile_and_package

    with tempfile.TemporaryDirectory(prefix=".durn-aoti.", dir=os.path.dirname(tmp)) as scratch:
        with _quiet_exporters():
            package = aoti_compile_and_package(
                program, package_path=os.path.join(scratch, "model.pt2"),
                inductor_configs={"aot_inductor.metadata": dict(metadata)},
            )
        os.replace(package, tmp)


def export(model, *, onnx=None, program=None, aoti=None, dtype="float32", opset: int = DEFAULT_OPSET,
           weights="default", metadata: Mapping[str, object] | None = None, overwrite: bool = False) -> ExportResult:
    """Trace ``model`` once and write the files asked for.

    Args:
        model: a DuRN (``durn.get_model(...)``, any dtype and device; it is copied, not
            changed) or a network name (``"durn_p"``, ...), built with ``weights``.
        onnx: path of the ONNX file to write (needs ``onnx`` and ``onnxscript``).
        program: path of the ``torch.export`` program (``.pt2``, read with
            :func:`load_program` or ``torch.export.load``).
        aoti: path of an AOTInductor package (``.pt2``; ``torch._inductor.aoti_load_package``
            runs it without durn, on the machine kind it was compiled for; compiling takes
            minutes).
        dtype: ``"float32"`` or ``"float16"`` (weights and computation; the file's input and
            output stay float32).
        opset: the ONNX opset (18 or later).
        weights: the weights of a network given by name (``durn.weights.resolve``).
        metadata: extra str -> str entries for every file (``weights`` / ``weights_sha256``
            here say what the module's weights are).
        overwrite: replace existing files (else FileExistsError, before tracing).
    """
    targets = {"onnx": onnx, "program": program, "aoti": aoti}
    targets = {kind: check_output_path(path, overwrite=overwrite) for kind, path in targets.items() if path is not None}
    if len(set(map(os.path.abspath, targets.values()))) < len(targets):
        raise ValueError(f"two outputs are the same file: {sorted(targets.values())}")
    dtype = _dtype(dtype)
    if isinstance(model, str):
        _known_network(model)
    else:
        check_network(model)
    if onnx is not None:
        if not isinstance(opset, int) or opset < DEFAULT_OPSET:
            raise ValueError(f"opset must be an integer >= {DEFAULT_OPSET} (torch.onnx's dynamo exporter), "
                             f"got {opset!r}")
        _onnx_modules()
    if aoti is not None and aoti_available() is not None:
        raise RuntimeError(aoti_available())
    network, weights_meta = _model(model, weights)
    traceable = Traceable(network, dtype)
    meta = metadata_for(traceable, network=weights_meta.pop("network", None) or network_name(network),
                        extra={**weights_meta, **(metadata or {})})
    exported = trace(traceable)
    result = ExportResult(exported, meta)
    if "onnx" in targets:
        proto = to_onnx(exported, {**meta, "opset": str(opset)}, opset)
        atomic_write(targets["onnx"], lambda f: f.write(proto.SerializeToString()), overwrite=overwrite)
        result.files["onnx"] = targets["onnx"]
    if "program" in targets:
        extra = {PROGRAM_METADATA_FILE: json.dumps(meta, indent=1)}
        atomic_write(targets["program"], lambda f: torch.export.save(exported, f, extra_files=extra),
                     overwrite=overwrite)
        result.files["program"] = targets["program"]
    if "aoti" in targets:
        with atomic_output(targets["aoti"], overwrite=overwrite) as tmp:
            _write_aoti(exported, tmp, meta)
        result.files["aoti"] = targets["aoti"]
    return result


def export_onnx(model, path, *, dtype="float32", opset: int = DEFAULT_OPSET, weights="default",
                metadata: Mapping[str, object] | None = None, overwrite: bool = False) -> dict[str, str]:
    """Write ``model`` (a DuRN or a network name) as an ONNX file at ``path``; returns the
    metadata stored in it. Dynamic batch, height and width, the padding inside the graph;
    see :func:`export` for the arguments."""
    result = export(model, onnx=path, dtype=dtype, opset=opset, weights=weights, metadata=metadata,
                    overwrite=overwrite)
    return {**result.metadata, "opset": str(opset)}


def export_program(model, path=None, *, dtype="float32", weights="default", aoti=None,
                   metadata: Mapping[str, object] | None = None,
                   overwrite: bool = False) -> torch.export.ExportedProgram:
    """The ``torch.export`` program of ``model`` (a DuRN or a network name), dynamic batch,
    height and width; written to ``path`` (``.pt2``) when given, and compiled into an
    AOTInductor package at ``aoti`` when given. See :func:`export`."""
    return export(model, program=path, aoti=aoti, dtype=dtype, weights=weights, metadata=metadata,
                  overwrite=overwrite).program


def max_error(kind: str, path, model, *, shape=EXAMPLE_SHAPE, seed: int = 0) -> float:
    """Largest absolute difference between the file at ``path`` (``kind``: "onnx", run in
    onnxruntime on the CPU; "program"; "aoti") and ``model`` run eagerly, on one random
    image of ``shape`` (N, H, W) with values in [0, 1]."""
    network = check_network(model)
    n, h, w = shape
    x = torch.rand(n, network.in_channels, h, w, generator=torch.Generator().manual_seed(seed))
    param = next(network.parameters())
    with torch.no_grad():
        expected = network(x.to(param.device, param.dtype)).float().cpu()
        if kind == "onnx":
            try:
                import onnxruntime
            except ImportError:
                raise ImportError("checking an ONNX file needs onnxruntime: pip install 'durn[export]'") from None
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
            got = torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])
        elif kind == "program":
            got = torch.export.load(os.fspath(path)).module()(x)
        elif kind == "aoti":
            got = _inductor().aoti_load_package(os.fspath(path))(x)
        else:
            raise ValueError(f"kind must be 'onnx', 'program' or 'aoti', got {kind!r}")
    if got.shape != expected.shape:
        raise AssertionError(f"{path} returned shape {tuple(got.shape)} for an input of {tuple(x.shape)}")
    return float((got.float() - expected).abs().max())


def load_program(path) -> tuple[torch.export.ExportedProgram, dict[str, str]]:
    """(program, metadata) of a ``.pt2`` file that :func:`export_program` wrote; call
    ``program.module()(image)``. Plain ``torch.export.load`` reads it too, without durn."""
    extra = {PROGRAM_METADATA_FILE: ""}
    program = torch.export.load(os.fspath(path), extra_files=extra)
    return program, json.loads(extra[PROGRAM_METADATA_FILE] or "{}")
