"""Export for deployment (``durn.export``, ``durn export``): every network as ONNX (run in
onnxruntime) and as a ``torch.export`` program, at sizes other than the traced one.

Each network is traced once (module-scoped fixture, seeded random weights) and written as
ONNX and as a program; the tests run them at odd sizes, batch 1 and 2, against the eager
network's outputs. Tolerances (largest absolute difference on images in [0, 1]) are
``durn.export.TOLERANCE``: float32 1e-4 (the same arithmetic in another order; measured
at most 2.5e-6, durn_u, the others 2e-7; a 40th of an 8-bit step); float16 1e-2, 2.5
8-bit steps (half precision alone rounds values near 1.0 by up to 2.4e-4; measured
5e-4 for durn_p, 7e-4 for durn_us, up to 6e-3 for durn_u). About two minutes of CPU on
one core, almost all of it the ONNX exporter (durn_u: 45 s).
"""
import json
import os
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import durn
from conftest import NETWORK_NAMES, optional_import
from durn.cli import main
from durn.export import TOLERANCE, export, export_onnx, export_program, load_program, max_error

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]

# (N, H, W): the odd sizes, batch 2; 1 x C x 300 x 17 (tall and narrow); and the
# smallest image (2 x 2, below every network's padded minimum).
SIZES = ((2, 37, 53), (2, 70, 99), (1, 300, 17), (1, 2, 2))
FLOAT16 = ("durn_p", "durn_us")  # batch norm; strided convs and squeeze-excitation pooling


def _untrained(name):
    return durn.get_model(name, weights="untrained")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(name, dtype) -> Exported, each network traced once and written as both files; the
    eager network's outputs on the test images are computed once too."""
    cache = {}
    have_onnx = all(_importable(m) for m in ("onnx", "onnxscript"))

    def get(name, dtype="float32"):
        if (name, dtype) not in cache:
            folder = tmp_path_factory.mktemp(f"{name}-{dtype}")
            result = export(name, weights="untrained", onnx=folder / f"{name}.onnx" if have_onnx else None,
                            program=folder / f"{name}.pt2" if dtype == "float32" else None, dtype=dtype)
            model = _untrained(name)  # the same seeded weights as the files'
            if (name, "float32") in cache:
                images, expected = cache[name, "float32"].images, cache[name, "float32"].expected
            else:
                g = torch.Generator().manual_seed(1)
                images = [torch.rand(n, model.in_channels, h, w, generator=g) for n, h, w in SIZES]
                with torch.no_grad():
                    expected = [model(x) for x in images]
            cache[name, dtype] = Exported(model, result.program, result.files, result.metadata, images, expected)
        return cache[name, dtype]

    return get


@dataclass
class Exported:
    model: nn.Module
    program: torch.export.ExportedProgram  # what was written, in memory
    files: dict
    metadata: dict
    images: list  # the test images, SIZES
    expected: list  # the eager network's outputs on them

    def onnx(self):
        return self.files.get("onnx") or pytest.skip("onnx / onnxscript are not installed")


def _importable(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _session(path):
    ort = optional_import("onnxruntime", "onnxruntime runs the exported ONNX files (pip install 'durn[test]')")
    optional_import("onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def _error(got, expected) -> float:
    got = torch.as_tensor(got)
    assert got.shape == expected.shape and got.dtype == torch.float32
    return (got - expected).abs().max().item()


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_onnx_runs_any_size_in_onnxruntime_like_eager(exported, name):
    files = exported(name)
    session = _session(files.onnx())
    for x, expected in zip(files.images, files.expected):
        (got,) = session.run(["restored"], {"image": x.numpy()})
        assert _error(got, expected) <= TOLERANCE["float32"], (name, tuple(x.shape))


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_program_runs_any_size_like_eager(exported, name):
    files = exported(name)
    program = files.program.module()
    for x, expected in zip(files.images, files.expected):
        assert _error(program(x), expected) <= TOLERANCE["float32"], (name, tuple(x.shape))


def test_program_file_loads_and_runs_with_plain_torch(exported):
    """The .pt2 file, read by torch alone (no durn code is in it). One network: loading
    takes 5-15 s (durn_u the longest); the CLI test loads durn_p's with load_program."""
    files = exported("durn_s_p")
    extra = {"durn.json": ""}
    program = torch.export.load(os.fspath(files.files["program"]), extra_files=extra).module()
    assert json.loads(extra["durn.json"]) == files.metadata
    for x, expected in zip(files.images, files.expected):
        assert _error(program(x), expected) <= TOLERANCE["float32"], tuple(x.shape)


@pytest.mark.parametrize("name", ("durn_p", "durn_s_p"))
def test_metadata_names_axes_and_opset(exported, name):
    files = exported(name)
    model, meta = files.model, files.metadata
    assert meta["network"] == name and meta["channel_order"] == model.channel_order
    assert meta["input_name"] == "image" and meta["output_name"] == "restored"
    assert meta["value_range"] == "[0.0, 1.0]" and meta["layout"] == "NCHW" and meta["weights"] == "untrained"
    assert int(meta["channels"]) == model.in_channels and meta["compute_dtype"] == meta["io_dtype"] == "float32"
    session = _session(files.onnx())
    stored = session.get_modelmeta().custom_metadata_map
    assert stored == {**meta, "opset": "18"}
    (image,), (restored,) = session.get_inputs(), session.get_outputs()
    assert (image.name, image.shape, image.type) == ("image", ["batch", model.in_channels, "height", "width"],
                                                     "tensor(float)")
    assert (restored.name, restored.shape, restored.type) == ("restored", image.shape, "tensor(float)")
    import onnx

    proto = onnx.load(files.onnx())
    assert [(o.domain, o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [("", 18)]
    assert json.loads(stored["value_range"]) == [0.0, 1.0]


@pytest.mark.parametrize("name", FLOAT16)
def test_float16_variant(exported, name):
    """float16 weights and arithmetic, float32 input and output. Run in onnxruntime only:
    torch's CPU float16 convolutions are too slow for a test (the program's weights are
    checked to be float16). Also a flat image: its channels have zero variance."""
    files = exported(name, "float16")
    assert files.metadata["compute_dtype"] == "float16" and files.metadata["io_dtype"] == "float32"
    # the convolutions in float16; instance norms and squeeze-excitation stay float32
    assert {p.dtype for p in files.program.state_dict.values() if p.dim() == 4} == {torch.float16}
    session = _session(files.onnx())
    import onnx

    proto = onnx.load(files.onnx())
    assert {t.data_type for t in proto.graph.initializer if len(t.dims) == 4} == {onnx.TensorProto.FLOAT16}
    flat = torch.full((1, files.model.in_channels, 24, 20), 0.5)
    with torch.no_grad():
        cases = [*zip(files.images, files.expected), (flat, files.model(flat))]
    for x, expected in cases:
        (got,) = session.run(None, {"image": x.numpy()})
        assert _error(got, expected) <= TOLERANCE["float16"], (name, tuple(x.shape))


# ---------------------------------------------------------------------------------------
# The command line and the exporter's errors
# ---------------------------------------------------------------------------------------


def test_cli_writes_checks_and_overwrites_only_when_asked(tmp_path, capsys):
    target = tmp_path / "durn_p.pt2"
    target.write_bytes(b"keep me")
    argv = ["export", "durn_p", "--weights", "untrained", "--torch-export", str(target), "--check"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "exists; pass --overwrite" in err and "Traceback" not in err
    assert target.read_bytes() == b"keep me"

    assert main(argv + ["--overwrite"]) == 0
    captured = capsys.readouterr()
    assert "RANDOM weights" in captured.err
    assert f"{target}: torch.export program, durn_p (untrained), float32" in captured.out
    assert "tolerance 0.0001): ok" in captured.out
    program, meta = load_program(target)
    assert meta["network"] == "durn_p" and meta["weights"] == "untrained" and meta["channel_order"] == "L"
    x = torch.rand(1, 1, 21, 40)
    with torch.no_grad():
        assert _error(program.module()(x), _untrained("durn_p")(x)) <= TOLERANCE["float32"]
    assert sorted(os.listdir(tmp_path)) == ["durn_p.pt2"]  # no temporary file left


def test_cli_unknown_network(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "durn_x", "--onnx", "x.onnx"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'durn_x'" in capsys.readouterr().err


def test_weights_of_another_network_are_refused(tmp_path, capsys):
    checkpoint = tmp_path / "durn_p_real.pt"
    torch.save(_untrained("durn_p_real").state_dict(), checkpoint)
    out = ["--torch-export", str(tmp_path / "p.pt2")]
    assert main(["export", "durn_p", "--weights", str(checkpoint), *out]) == 2
    err = capsys.readouterr().err
    assert "is a checkpoint of durn_p_real" in err and "not of durn_p" in err and "Traceback" not in err
    assert main(["export", "durn_p", "--weights", "durn_us.photos_haze", *out]) == 2
    assert "are for durn_us, not durn_p" in capsys.readouterr().err
    assert main(["export", "durn_u", *out]) == 2  # no released weights
    assert "--weights untrained" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["durn_p_real.pt"]


def test_paths_that_cannot_be_written_fail_before_the_trace(tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    cases = {
        str(tmp_path / "missing" / "p.onnx"): "does not exist",
        str(tmp_path / "a_file" / "p.onnx"): "is not a folder",
        str(tmp_path): "is a folder",
    }
    for path, reason in cases.items():
        assert main(["export", "durn_p", "--weights", "untrained", "--onnx", path]) == 2
        err = capsys.readouterr().err
        assert reason in err and err.startswith("durn export: error:") and len(err.splitlines()) == 1, err
    assert main(["export", "durn_p", "--weights", "untrained"]) == 2
    assert "nothing to write" in capsys.readouterr().err
    same = str(tmp_path / "x.pt2")
    assert main(["export", "durn_p", "--weights", "untrained", "--torch-export", same, "--aoti", same]) == 2
    assert "same file" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            export_onnx("durn_p", folder / "p.onnx", weights="untrained")
    finally:
        folder.chmod(0o755)


def test_api_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown network 'durn_x'"):
        export_onnx("durn_x", tmp_path / "x.onnx")
    with pytest.raises(TypeError, match="expected a DuRN network"):
        export_program(nn.Conv2d(3, 3, 3))
    with pytest.raises(TypeError, match="fused fast path"):
        export_program(durn.optimize_for_inference(_untrained("durn_p_real"), algorithms="direct"))
    with pytest.raises(ValueError, match="dtype must be one of"):
        export_program("durn_p", weights="untrained", dtype="bfloat16")
    (tmp_path / "old.onnx").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="exists"):
        export_onnx("durn_p", tmp_path / "old.onnx", weights="untrained")
    assert (tmp_path / "old.onnx").read_bytes() == b"old"


def test_max_error_rejects_unknown_kinds(tmp_path):
    with pytest.raises(ValueError, match="kind must be"):
        max_error("tflite", tmp_path / "x", _untrained("durn_p"))


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DURN_TEST_AOTI") != "1",
                    reason="AOTInductor compiles C++ for minutes; set DURN_TEST_AOTI=1")
def test_aoti_package_runs_without_durn(tmp_path):
    from durn.export import aoti_available

    if aoti_available() is not None:
        pytest.skip(aoti_available())
    model = _untrained("durn_p")
    export_program(model, aoti=tmp_path / "durn_p.aoti.pt2", metadata={"network": "durn_p"})
    runner = torch._inductor.aoti_load_package(str(tmp_path / "durn_p.aoti.pt2"))
    assert runner.get_metadata()["network"] == "durn_p"
    for n, h, w in SIZES[:3]:
        x = torch.rand(n, 1, h, w)
        with torch.no_grad():
            assert _error(runner(x), model(x)) <= TOLERANCE["float32"]
