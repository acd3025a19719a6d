"""Deployment files of a DuRN: ONNX, ``torch.export`` programs, AOTInductor packages.

    durn.export_onnx("durn_us", "durn_us.onnx")                 # released weights, float32
    durn.export_onnx(model, "durn_u.fp16.onnx", dtype="float16")
    program = durn.export_program(model, "durn_p.pt2")           # also returns the program

Every file takes ``image``, float32 (N, C, H, W), values in [0, 1], any batch and any
height and width >= 2 (the mirror padding to the network's size multiple and the crop are
inside the graph), and gives ``restored``, the same shape and range (not clamped). Its
metadata says the network, weights, channel order, value range, dtype and opset
(``docs/export.md``). The command line: ``durn export NETWORK --weights ... --onnx FILE``.
"""
from .core import (
    DEFAULT_OPSET,
    DTYPES,
    INPUT_NAME,
    OUTPUT_NAME,
    PROGRAM_METADATA_FILE,
    TOLERANCE,
    ExportResult,
    aoti_available,
    check_output_path,
    export,
    export_onnx,
    export_program,
    load_program,
    max_error,
    metadata_for,
)
from .traceable import Traceable, mirror_index

__all__ = [
    "DEFAULT_OPSET", "DTYPES", "INPUT_NAME", "OUTPUT_NAME", "PROGRAM_METADATA_FILE", "TOLERANCE",
    "ExportResult", "Traceable", "aoti_available", "check_output_path", "export", "export_onnx",
    "export_program", "load_program", "max_error", "metadata_for", "mirror_index",
]
