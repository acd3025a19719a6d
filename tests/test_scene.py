"""Scene structure drawn into clean training photos (hard negatives): durn.data.scene."""
import json
import math

import pytest
import torch

from durn.data import SyntheticPairs
from durn.data.scene import ThinLines, make_scene, segment_coverage
from durn.cli import main as cli_main


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_segment_coverage_is_a_line_of_the_given_width():
    cov = segment_coverage(41, 41, (5.0, 20.0), (35.0, 20.0), 3.0)  # vertical, 30 px, 3 px wide
    assert cov[20, 19:22].eq(1).all() and cov[20, 18].eq(0) and cov[20, 22].eq(0)
    assert cov[20].sum().item() == pytest.approx(3.0, abs=1e-5)  # a row across it covers its width
    assert segment_coverage(41, 41, (5.0, 20.5), (35.0, 20.5), 3.0)[20].sum().item() == pytest.approx(3.0, abs=1e-5)
    assert cov[:4].eq(0).all() and cov[37:].eq(0).all()  # stops half a pixel past its ends
    assert 0 < cov.sum().item() / (30 * 4) < 1.1


def test_thin_lines_are_long_thin_and_deterministic():
    x = torch.full((3, 96, 96), 0.5)
    lines = make_scene("lines:count=1,length=80,width=2,angle=20,opacity=1")
    y = lines(x, _gen(3))
    assert torch.equal(y, lines(x, _gen(3))) and not torch.equal(y, lines(x, _gen(4)))
    changed = (y - x).abs().amax(0) > 0.2
    rows, cols = changed.nonzero(as_tuple=True)
    # one straight line at 20 degrees from vertical: its pixels fit a line of that slope,
    # it is long (the part inside the image) and thin (about 2-3 px across)
    slope = torch.linalg.lstsq(torch.stack([rows.float(), torch.ones_like(rows, dtype=torch.float)], 1),
                               cols.float()[:, None]).solution[0].item()
    assert slope == pytest.approx(math.tan(math.radians(20)), abs=0.05)
    extent = float(rows.max() - rows.min())
    assert extent > 20
    assert 1.5 < changed.sum().item() / (extent / math.cos(math.radians(20))) < 4.5
    dark_or_bright = y[:, rows, cols].mean()
    assert dark_or_bright < 0.3 or dark_or_bright > 0.7
    assert y.min() >= 0 and y.max() <= 1


def test_thin_lines_count_zero_is_the_identity_and_defaults_vary():
    x = torch.rand(1, 40, 40)
    assert torch.equal(make_scene("lines:count=0")(x, _gen(0)), x)
    counts = [int(((make_scene("lines")(x, _gen(s)) - x).abs() > 0).any()) for s in range(20)]
    assert 0 < sum(counts) < 20  # the default draws 0-4 lines: some photos get none
    assert make_scene("lines").spec == "lines" and isinstance(make_scene(ThinLines()), ThinLines)
    with pytest.raises(ValueError, match="unknown scene 'wires'"):
        make_scene("wires")
    with pytest.raises(ValueError, match="bad parameter 'thickness=2' for lines"):
        make_scene("lines:thickness=2")


def test_synthetic_pairs_draw_the_scene_into_input_and_target(tmp_path, train_photos):
    plain = SyntheticPairs(train_photos, "gaussian:0", crop=48, seed=1)
    drawn = SyntheticPairs(train_photos, "gaussian:0", crop=48, seed=1, scene="lines:count=3")
    a, b = plain[0], drawn[0]
    assert torch.equal(b["input"], b["target"])  # a zero-strength degradation: the lines are in both
    changed = (b["target"] - a["target"]).abs().amax(0)
    assert changed.gt(0.05).float().mean() > 0.01  # the lines
    assert changed.eq(0).float().mean() > 0.5  # the same crop of the same photo around them
    again = SyntheticPairs(train_photos, "gaussian:30", crop=48, seed=1, scene="lines:count=3")[0]
    assert torch.equal(again["target"], b["target"])  # the scene draws from its own stream, not the noise's


def test_train_scene_option(tmp_path, train_photos, capsys):
    base = ["train", "--preset", "durn_p_real", "--data", str(train_photos), "--steps", "1", "--batch-size", "1",
            "--crop", "16", "--val-every", "0", "--no-progress"]
    assert cli_main(base + ["--degrade", "rain", "--scene", "lines", "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["scene"] == "lines"
    assert cli_main(base + ["--degrade", "rain", "--scene", "lines:count=1", "--out", str(tmp_path / "a"),
                            "--resume"]) == 2
    assert "cannot change: scene" in capsys.readouterr().err
    assert cli_main(base + ["--degrade", "gaussian:10", "--scene", "lines", "--out", str(tmp_path / "b")]) == 2
    assert "durn_p adds its noise in the loop" in capsys.readouterr().err
    assert cli_main(base + ["--degrade", "rain", "--scene", "wires", "--out", str(tmp_path / "c")]) == 2
    assert "unknown scene" in capsys.readouterr().err
