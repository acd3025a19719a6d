"""durn ablation (durn/ablation.py): the paper's Table 1 on a tiny budget.

Tiny runs of durn_p_real (the smallest network) on generated photos: 3 steps of batch 1
at 16 x 16, scored on a 32 x 32 centre crop of camera. Checks the table's cells, the
JSON, that a rerun skips finished runs, that an interrupted run continues exactly, the
n/a cells and the errors for bad input.
"""
import json
import os
import signal

import pytest
import torch

import durn
from durn import ablation
from durn.ablation import AblationError, run_ablation

TINY = {"networks": ["durn_p_real"], "steps": 3, "batch_size": 1, "crop": 16, "ckpt_every": 1,
        "heldout_crop": 32, "heldout_images": ("camera",), "device": "cpu"}


def _photos(folder, n, seed):
    from PIL import Image

    folder.mkdir()
    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        coarse = torch.rand(1, 3, 5, 5, generator=g)
        image = torch.nn.functional.interpolate(coarse, size=(40, 40), mode="bilinear", align_corners=False)[0]
        image = (image + 0.05 * torch.rand(3, 40, 40, generator=g)).clamp(0, 1)
        pixels = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(folder / f"photo{i}.png")
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return {"data": _photos(root / "train", 3, 1), "val_data": _photos(root / "val", 1, 2)}


@pytest.fixture(scope="module")
def first(tmp_path_factory, photos):
    """paired and dual, seed 0, run once; then the same call again."""
    out = tmp_path_factory.mktemp("ablation")
    lines = []
    result = run_ablation(out, styles="paired,dual", seeds=[0], log=lines.append, **photos, **TINY)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")}
    return out, result, lines, mtimes


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_table_has_a_cell_per_style_and_the_json(first):
    out, result, _, _ = first
    assert result.interrupted is None
    assert result.runs == {"durn_p_real/paired/seed0": "trained", "durn_p_real/dual/seed0": "trained"}
    doc = json.loads((out / "ablation.json").read_text())
    assert doc["format"] == "durn-ablation" and doc == json.loads(json.dumps(result.doc))
    cells = doc["cells"]["durn_p_real"]
    assert set(cells) == {"paired", "dual"}
    for style, cell in cells.items():
        assert cell["status"] == "done"
        assert cell["psnr_authors"]["n"] == 1 and cell["psnr_authors"]["std"] is None
        assert 5 < cell["psnr_authors"]["mean"] < 60 and 0 < cell["ssim_authors"]["mean"] <= 1
        assert cell["seeds"]["0"]["step"] == 3
        run = out / cell["seeds"]["0"]["run"]
        assert run == out / "runs" / "durn_p_real" / style / "seed0"
        assert {"last.pt", "config.json", "log.jsonl"} <= set(os.listdir(run))
        scores = json.loads((run.parent / "seed0.heldout.json").read_text())
        assert scores["connection"] == style and scores["step"] == 3
        assert set(scores["scores"]) == {f"camera/{c}" for c in ablation.TASKS["durn_p_real"].conditions}
    # the paper's layout: one row per style (Fig. 1 order), one column per task, and the input row
    md = (out / "ablation.md").read_text()
    assert md == result.markdown
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert rows[0].count("|") == 3 and "DuRN-P (real noise)" in rows[0]
    assert rows[1].startswith("| (b) paired") and rows[2].startswith("| (d) dual")
    assert rows[3].startswith("| degraded input")
    p = cells["paired"]["psnr_authors"]["mean"]
    assert f"{p:.2f} / " in rows[1]
    assert doc["inputs"]["durn_p_real"]["psnr_authors"] > 0


def test_the_styles_start_alike_and_train_differently(first):
    out, *_ = first
    runs = out / "runs" / "durn_p_real"
    configs = [json.loads((runs / s / "seed0" / "config.json").read_text()) for s in ("paired", "dual")]
    assert [c["connection"] for c in configs] == ["paired", "dual"]  # the loop's own setting
    same = lambda c: {k: v for k, v in c.items() if k not in ("out", "connection")}  # noqa: E731
    assert same(configs[0]) == same(configs[1])
    paired, dual = (_weights(runs / s / "seed0" / "last.pt") for s in ("paired", "dual"))
    assert paired.keys() == dual.keys()
    assert any(not torch.equal(paired[k], dual[k]) for k in paired)


def test_a_rerun_skips_finished_runs(first, photos):
    out, _, _, mtimes = first
    lines = []
    again = run_ablation(out, styles="paired,dual", seeds=[0], log=lines.append, **photos, **TINY)
    assert set(again.runs.values()) == {"skipped"}
    assert sum("skipped" in line for line in lines) == 2
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")} == mtimes
    assert again.doc["cells"] == first[1].doc["cells"]


def test_changed_settings_are_refused_before_anything_runs(first, photos):
    out, _, _, mtimes = first
    before = (out / "ablation.json").read_text()
    with pytest.raises(AblationError, match="steps: run has 3, now 4"):
        run_ablation(out, styles="dual", seeds=[0], **photos, **{**TINY, "steps": 4})
    assert (out / "ablation.json").read_text() == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")} == mtimes


def test_an_interrupted_run_continues_exactly(first, photos, tmp_path, monkeypatch):
    from durn.train.loop import Trainer

    step = Trainer.train_step
    fired = []

    def stop_after_first_step(self, batch, stage):
        loss = step(self, batch, stage)
        if self.step == 1 and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # the loop stops after this step and writes last.pt
        return loss

    monkeypatch.setattr(Trainer, "train_step", stop_after_first_step)
    stopped = run_ablation(tmp_path, styles="dual", seeds=[0], log=lambda line: None, **photos, **TINY)
    assert stopped.interrupted == "SIGINT"
    run = tmp_path / "runs" / "durn_p_real" / "dual" / "seed0"
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 1
    assert not (run.parent / "seed0.heldout.json").exists()
    assert stopped.doc["cells"]["durn_p_real"]["dual"]["status"] == "pending"
    assert "| pending |" in (tmp_path / "ablation.md").read_text()

    monkeypatch.setattr(Trainer, "train_step", step)
    resumed = run_ablation(tmp_path, styles="dual", seeds=[0], log=lambda line: None, **photos, **TINY)
    assert resumed.interrupted is None and resumed.runs == {"durn_p_real/dual/seed0": "resumed"}
    uninterrupted = _weights(first[0] / "runs" / "durn_p_real" / "dual" / "seed0" / "last.pt")
    got = _weights(run / "last.pt")
    assert all(torch.equal(got[k], uninterrupted[k]) for k in uninterrupted)
    assert resumed.doc["cells"]["durn_p_real"]["dual"]["psnr_authors"] == \
        first[1].doc["cells"]["durn_p_real"]["dual"]["psnr_authors"]


def test_impossible_wirings_are_na_with_the_reason(photos, tmp_path):
    assert ablation.connection_problem("durn_p", "separate") is None
    assert "T1" in ablation.connection_problem("durn_u", "separate")
    result = run_ablation(tmp_path, **{**TINY, "networks": ["durn_us"]}, styles="separate", **photos)
    cell = result.doc["cells"]["durn_us"]["separate"]
    assert cell["status"] == "n/a" and "T1" in cell["reason"]
    assert not (tmp_path / "runs" / "durn_us" / "separate").exists()  # nothing trained
    md = (tmp_path / "ablation.md").read_text()
    assert "| n/a [1] |" in md and "[1] n/a: DuRN-US with connection='separate'" in md


def test_the_loop_builds_the_wiring_it_is_given(photos, tmp_path):
    from durn.train import loop
    from durn.train.config import make_config, validate

    with pytest.raises(ValueError, match="connection must be one of"):
        validate(make_config(preset="durn_p_real", connection="plain", out="unused"))
    for style in ("paired", "dual"):
        config = make_config(preset="durn_p_real", connection=style, degrade="blur", steps=1, batch_size=1, crop=16,
                             device="cpu", out=str(tmp_path / style), progress=False, **photos)
        trainer = loop.Trainer(config, loop.D.Dist())
        trainer.setup()
        assert ablation.connections_of(trainer.model) == {style}


@pytest.mark.parametrize("argv, message", [
    (["--network", "durn_x"], "unknown network 'durn_x'"),
    (["--styles", "dual,plain"], "unknown connection style 'plain'"),
    (["--seeds", "0,a"], "seeds are integers"),
    (["--seeds", "1,1"], "seed '1' is given twice"),
    (["--data", "no/such/folder"], "--data"),
    (["--steps", "0"], "steps must be >= 1"),
])
def test_bad_input_is_one_line_and_writes_nothing(argv, message, tmp_path, capsys):
    from durn.cli import main

    out = tmp_path / "out"
    assert main(["ablation", "--out", str(out), "--network", "durn_p_real", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("durn ablation: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_users_files_are_never_replaced(photos, tmp_path):
    (tmp_path / "ablation.json").write_text('{"mine": true}\n')
    with pytest.raises(AblationError, match="not a durn ablation table"):
        run_ablation(tmp_path, styles="dual", **photos, **TINY)
    assert (tmp_path / "ablation.json").read_text() == '{"mine": true}\n'
    assert not (tmp_path / "runs").exists()
