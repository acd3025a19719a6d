"""scripts/learning_curves.py: validation curves of runs, their log2 fit and projections."""
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("learning_curves", REPO / "scripts" / "learning_curves.py")
lc = importlib.util.module_from_spec(spec)
sys.modules.setdefault("learning_curves", lc)  # its dataclasses look their module up
spec.loader.exec_module(lc)


def _run(folder: Path, points, *, batch=2, extra_lines=()):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"batch_size": batch, "crop": 64, "steps": max(s for s, _ in points)}))
    lines = [json.dumps({"step": s - 1, "loss": 0.1}) for s, _ in points]
    lines += [json.dumps({"step": s, "val_psnr": p, "val_input_psnr": 20.0}) for s, p in points]
    (folder / "log.jsonl").write_text("\n".join([*lines, *extra_lines]) + "\n")
    return folder


def test_the_fit_recovers_a_log_linear_curve_and_projects_a_target(tmp_path, capsys):
    run = _run(tmp_path / "a", [(s, 20.5 + 0.25 * math.log2(s)) for s in (100, 200, 400, 800)])
    out = tmp_path / "curve.json"
    assert lc.main([str(run), "--target", "floor=+4", "--json", str(out), "--png", str(tmp_path / "c.png")]) == 0
    doc = json.loads(out.read_text())
    assert doc["fit"]["a"] == pytest.approx(20.5, abs=1e-3) and doc["fit"]["b_db_per_doubling"] == pytest.approx(0.25, abs=1e-4)
    # 24 dB = 20.5 + 0.25 log2(n): n = 2**14
    assert doc["projections"]["floor"] == {"psnr": 24.0, "steps": 2 ** 14}
    assert [p["step"] for p in doc["runs"][0]["validation"]] == [100, 200, 400, 800]
    assert "+0.25" in capsys.readouterr().out
    with Image.open(tmp_path / "c.png") as im:
        assert im.format == "PNG" and im.size == (720, 400)


def test_the_fit_uses_the_best_so_far_and_a_flat_curve_never_projects(tmp_path, capsys):
    run = _run(tmp_path / "flat", [(100, 21.0), (200, 20.9), (400, 20.8)])
    lc.main([str(run), "--target", "t=22"])
    out = capsys.readouterr().out
    assert "never on this fit" in out and "best: 21.00 dB at step 100" in out


def test_a_continued_run_is_counted_after_its_start_and_cuts_the_earlier_branch(tmp_path):
    first = _run(tmp_path / "v6", [(250, 21.0), (500, 21.2), (750, 21.1)])
    second = _run(tmp_path / "v7", [(250, 21.4), (500, 21.5)])
    curves = lc.chain([lc.read_run(str(first)), lc.read_run(f"{second}@500")])
    assert [p[0] for p in curves[0].points] == [250, 500]  # 750 is another branch
    assert [p[0] for p in curves[1].points] == [750, 1000]


def test_a_resumed_log_and_a_cut_last_line_are_read(tmp_path):
    run = _run(tmp_path / "r", [(100, 21.0), (200, 21.5)],
               extra_lines=[json.dumps({"step": 200, "val_psnr": 21.6, "val_input_psnr": 20.0}), '{"step": 21'])
    curve = lc.read_run(str(run))
    assert [(s, p) for s, p, _ in curve.points] == [(100, 21.0), (200, 21.6)]  # the later record of a step wins


@pytest.mark.parametrize("make, message", [
    (lambda d: d.mkdir(), "no log.jsonl"),
    (lambda d: (d.mkdir(), (d / "log.jsonl").write_text('{"step": 1, "loss": 0.1}\n')), "no validation records"),
])
def test_a_folder_that_is_no_validated_run_is_refused_clearly(tmp_path, make, message):
    make(tmp_path / "x")
    with pytest.raises(SystemExit, match=message):
        lc.read_run(str(tmp_path / "x"))


def test_bad_arguments_are_refused_clearly(tmp_path):
    run = _run(tmp_path / "a", [(100, 21.0), (200, 21.5)])
    with pytest.raises(SystemExit, match="RUN@STEPS"):
        lc.read_run(f"{run}@later")
    with pytest.raises(SystemExit, match="LABEL=PSNR"):
        lc.main([str(run), "--target", "floor=high"])
