"""durn.explain and `durn explain`: block feature grids, attention, residual, and the
correlation of the features with a known transmission map."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import durn
from durn.cli import main
from durn.data import make_degradation
from durn.explain import explain, haze_with_transmission, output_files, save

SIZE = (37, 45)  # not a multiple of 4: durn_us and durn_s_p pad it, and the maps are cropped back


def _smooth(channels, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    cells = torch.rand(1, channels, 5, 6, generator=g)
    return F.interpolate(cells, size=size, mode="bilinear", align_corners=False)[0].clamp(0, 1)


def _model(name, seed=0):
    torch.manual_seed(seed)
    return durn.get_model(name).eval()


def _grid_shape(c, h, w):
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    return rows * (h + 1) - 1, cols * (w + 1) - 1, cols


def _minmax_255(a):
    a = a.astype(np.float64)
    return np.round((a - a.min()) / (a.max() - a.min()) * 255).astype(np.uint8)


def test_haze_with_transmission_is_the_haze_degradation():
    clean = _smooth(3, (40, 56))
    spec = "haze:beta=1.2"
    g_ref, g = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    want = make_degradation(spec)(clean, g_ref)
    hazed, t = haze_with_transmission(clean, g, spec)
    assert torch.equal(hazed, want)  # the same draws, the same values
    assert torch.equal(g.get_state(), g_ref.get_state())  # and the generator advanced alike
    assert t.shape == (40, 56)
    assert float(t.min()) >= math.exp(-1.2 * 1.5) - 1e-6 and float(t.max()) <= math.exp(-1.2 * 0.05) + 1e-6
    # I = J t + A (1 - t): the airlight recovered from it is one number per channel
    airlight = (hazed - clean * t) / (1 - t)
    assert float(airlight.flatten(1).std(1).max()) < 1e-4
    assert 0.66 < float(airlight.min()) and float(airlight.max()) <= 1.0
    with pytest.raises(ValueError, match="haze"):
        haze_with_transmission(clean, g, "rain")


def test_durn_p_grids_and_maps(tmp_path):
    model = _model("durn_p")
    image = _smooth(1, SIZE)
    e = explain(model, image)
    assert len(e.blocks) == 6 and e.attention == [] and e.correlation is None
    # block 0's T1 and T2 outputs, recomputed from the block's formula (no hooks)
    with torch.no_grad():
        res = model.stem(image[None])
        b = model.stages[0][0]
        x = F.relu(b.norm1(b.conv1(res)))
        x = F.relu(b.norm2(b.conv2(x) + res))
        t1 = b.t1(x)
        t2 = b.t2(F.relu(t1 + res))
        out = model(image[None])[0]
    np.testing.assert_allclose(e.blocks[0].t1, t1[0].numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(e.blocks[0].t2, t2[0].numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(e.residual, (out - image).numpy(), rtol=0, atol=1e-6)

    save(e, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(output_files(model, transmission=False))
    gh, gw, cols = _grid_shape(32, *SIZE)
    for i in range(6):
        for part in ("t1", "t2"):
            with Image.open(tmp_path / f"block{i:02d}_{part}.png") as im:
                assert im.mode == "L" and im.size == (gw, gh)
                grid = np.asarray(im)
    # the last grid: channel k's cell is that channel normalised on its own; white separators
    h, w = SIZE
    features = e.blocks[5].t2
    for k in (0, 7, 31):
        r, q = divmod(k, cols)
        cell = grid[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w]
        np.testing.assert_array_equal(cell, _minmax_255(features[k]))
    assert (grid[h, :] == 255).all() and (grid[:, w] == 255).all()
    with Image.open(tmp_path / "residual.png") as im:
        residual = np.asarray(im).astype(np.float64)
    scale = np.abs(e.residual).max()
    np.testing.assert_array_equal(residual, np.round(128 + 127 * e.residual[0] / scale))
    info = json.loads((tmp_path / "summary.json").read_text())
    assert info["blocks"][0]["t1"]["shape"] == [32, *SIZE] and info["blocks"][0]["t1"]["grid_shape"] == [gh, gw]
    assert info["residual"]["scale"] == pytest.approx(float(scale)) and info["correlation"] is None


def test_durn_s_p_attention_maps(tmp_path):
    model = _model("durn_s_p")
    image = _smooth(3, SIZE, seed=1)
    e = explain(model, image)
    assert len(e.blocks) == 9 and [a.module for a in e.attention] == ["stages.0.0", "stages.0.1", "stages.0.2"]
    # 37 x 45 runs padded to 40 x 48; the 5x5 conv without padding, then two stride-2 convs: 10 x 12
    assert e.padded_size == (40, 48)
    for b in e.blocks:
        assert b.t1.shape == b.t2.shape == (128, 10, 12)
    for a in e.attention:
        assert a.gates.shape == (128,) and a.map.shape == (10, 12)
        assert ((a.gates > 0) & (a.gates < 1)).all()
    # the first attentive block's SE, by the block's formula, on the padded image
    with torch.no_grad():
        padded = durn.nn.pad_bottom_right(image[None], 40, 48)
        res = model.stem(padded)
        b = model.stages[0][0]
        x = F.relu(b.norm1(b.conv1(res)))
        x = F.relu(b.norm2(b.conv2(x) + res))
        x = F.relu(b.t1(x) + res)
        se_block = b.t2[0]
        y = se_block.bn2(se_block.conv2(F.relu(se_block.bn1(se_block.conv1(x)))))
        gates = torch.sigmoid(se_block.se.fc(y.mean((2, 3))))[0]
        attention_map = (gates[:, None, None] * y[0]).abs().mean(0)
    np.testing.assert_allclose(e.attention[0].gates, gates.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(e.attention[0].map, attention_map.numpy(), rtol=0, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(e.residual, (model(image[None])[0] - image).numpy(), atol=1e-6)

    save(e, tmp_path)
    gh, gw, _ = _grid_shape(128, 10, 12)
    for i in range(9):
        with Image.open(tmp_path / f"block{i:02d}_t1.png") as im:
            assert im.size == (gw, gh)
    for k in range(3):
        with Image.open(tmp_path / f"attention{k:02d}.png") as im:
            assert im.size == (12, 10)
            np.testing.assert_array_equal(np.asarray(im), _minmax_255(e.attention[k].map))
    info = json.loads((tmp_path / "summary.json").read_text())
    assert [a["block"] for a in info["attention"]] == [0, 1, 2] and len(info["attention"][0]["gates"]) == 128
    assert explain(_model("durn_s"), image).attention == []  # DuRB-S blocks, but no attentive part
    model.channel_order = "BGR"  # the authors' raindrop weights: the network sees B first, as durn.restore does
    bgr = explain(model, image)
    with torch.no_grad():
        want = model(image.flip(0)[None])[0].flip(0) - image
    np.testing.assert_allclose(bgr.residual, want.numpy(), atol=1e-6)
    assert bgr.channel_order == "BGR" and not np.allclose(bgr.attention[0].gates, e.attention[0].gates)


def test_durn_us_grids(tmp_path):
    model = _model("durn_us")
    image = _smooth(3, SIZE, seed=2)
    e = explain(model, image)
    assert len(e.blocks) == 12 and e.attention == [] and e.padded_size == (40, 48)
    # T1 up-samples (H/4 -> H/2), T2 down-samples back; cropped to the part covering 37 x 45
    for b in e.blocks:
        assert b.t1.shape == (64, 19, 23) and b.t2.shape == (64, 10, 12)
    save(e, tmp_path)
    for part, (c, h, w) in (("t1", (64, 19, 23)), ("t2", (64, 10, 12))):
        gh, gw, _ = _grid_shape(c, h, w)
        with Image.open(tmp_path / f"block11_{part}.png") as im:
            assert im.size == (gw, gh)


def _intensity_durn_us():
    """A durn_us whose first block's T1 channel 0 is the image's mean intensity, sampled
    every 4 pixels (centre taps only) and repeated 2 x 2 by the pixel shuffle; every other
    weight is zero."""
    model = durn.durn_us().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.stem[0].weight[0, :, 3, 3] = 1 / 3
        model.stem[2].weight[0, 0, 1, 1] = 1
        model.entry[0].weight[0, 0, 1, 1] = 1
        block = model.stages[0][0]
        block.t1[0].weight[0:4, 0, 1, 1] = 1  # the four sub-pixels of shuffled channel 0
        block.t1[2].weight[0, 0, 2, 2] = 1
    return model


def _r(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_correlation_with_a_known_transmission(tmp_path):
    model = _intensity_durn_us()
    clean = torch.full((3, 64, 96), 0.2)  # I = A - (A - J) t: the intensity is linear in t
    hazed, t = haze_with_transmission(clean, torch.Generator().manual_seed(1))
    e = explain(model, hazed, transmission=t)
    feature = e.blocks[0].t1[0]
    assert feature.shape == (32, 48)
    intensity = hazed.mean(0).numpy()
    np.testing.assert_allclose(feature, np.repeat(np.repeat(intensity[::4, ::4], 2, 0), 2, 1), rtol=0, atol=1e-6)

    # the transmission averaged over the 2 x 2 pixels each feature pixel covers
    t_small = t.numpy().astype(np.float64).reshape(32, 2, 48, 2).mean((1, 3))
    want = _r(feature, t_small)
    first = e.correlation[0]
    assert first["t1"]["r"][0] == pytest.approx(want, abs=1e-6)
    assert first["t1"]["best_channel"] == 0 and first["best_abs_r"] == pytest.approx(abs(want), abs=1e-6)
    assert abs(want) > 0.95
    assert all(r is None for r in first["t1"]["r"][1:]) and all(r is None for r in first["t2"]["r"])  # all-zero
    # what a transposed or cropped (not resized) transmission would give: far lower
    t_transposed = F.interpolate(t.T.contiguous()[None, None].double(), size=(32, 48), mode="area")[0, 0].numpy()
    assert abs(_r(feature, t_transposed)) < 0.6
    assert abs(_r(feature, t.numpy()[:32, :48])) < 0.6

    save(e, tmp_path)
    info = json.loads((tmp_path / "summary.json").read_text())
    assert info["correlation"]["blocks"][0]["t1"]["r"][0] == pytest.approx(want, abs=1e-6)
    assert len(info["correlation"]["blocks"]) == 12 and len(info["correlation"]["blocks"][0]["t1"]["r"]) == 64
    assert info["correlation"]["input_intensity_r"] == pytest.approx(_r(intensity, t.numpy()), abs=1e-6)
    with Image.open(tmp_path / "transmission.png") as im:
        np.testing.assert_array_equal(np.asarray(im), np.round(t.numpy().clip(0, 1) * 255).astype(np.uint8))


def _photo(path, size=(48, 40)):
    rgb = (_smooth(3, size[::-1], seed=4).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def test_cli_writes_the_maps_and_refuses_to_overwrite(tmp_path, capsys):
    image = _photo(tmp_path / "photo.png")
    out = tmp_path / "out"
    args = ["explain", str(image), "--network", "durn_us", "--weights", "untrained", "--degrade", "haze", "-o", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "RANDOM weights" in captured.err and "best |r|" in captured.out
    names = output_files(durn.durn_us(), transmission=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    info = json.loads((out / "summary.json").read_text())
    assert info["degrade"] == "haze" and info["seed"] == 0 and len(info["correlation"]["blocks"]) == 12
    # the transmission of --degrade haze --seed 0, as durn restore --degrade would haze the file
    with Image.open(image) as im:
        x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255
    _, t = haze_with_transmission(x, torch.Generator().manual_seed(0))
    with Image.open(out / "transmission.png") as im:
        np.testing.assert_array_equal(np.asarray(im), np.round(t.numpy() * 255).astype(np.uint8))

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    # one file of the user's where a grid would go: refused, nothing written
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "block03_t2.png").write_bytes(b"my picture")
    assert main([*args[:-1], str(mine)]) == 2
    assert [p.name for p in mine.iterdir()] == ["block03_t2.png"] and (mine / "block03_t2.png").read_bytes() == b"my picture"

    assert main([*args, "--overwrite"]) == 0  # deterministic: the same bytes again
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    # the input itself is never written, even with --overwrite
    inside = _photo(out / "input.png")
    data = inside.read_bytes()
    assert main(["explain", str(inside), "--network", "durn_us", "--weights", "untrained", "-o", str(out),
                 "--overwrite"]) == 2
    assert "input image" in capsys.readouterr().err and inside.read_bytes() == data
    assert main(["explain", str(image), "--network", "durn_us", "--weights", "untrained", "-o", str(image)]) == 2
    assert "is a file" in capsys.readouterr().err
