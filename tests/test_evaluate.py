"""durn.evaluate and the `durn evaluate` command."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import durn
from durn.cli import main
from durn.data import SyntheticPairs
from durn.evaluate import evaluate, format_table, restore_tensor, shard_indices, write_json
from durn.metrics import compare


def _photos(folder, n=3, size=(24, 26)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.integers(0, 256, (size[0] // 4, size[1] // 4, 3), dtype=np.uint8)
        Image.fromarray(base).resize(size[::-1], Image.BILINEAR).save(folder / f"p{i}.png")
    return folder


class HalveFirstChannel(nn.Module):
    def __init__(self, order):
        super().__init__()
        self.channel_order = order
        self.in_channels = 3

    def forward(self, x):
        y = x.clone()
        y[:, 0] *= 0.5
        return y


def test_shards_cover_every_item_once():
    for n in range(0, 11):
        for world in range(1, 5):
            parts = [shard_indices(n, r, world) for r in range(world)]
            flat = sorted(i for p in parts for i in p)
            assert flat == list(range(n))
    with pytest.raises(ValueError):
        shard_indices(5, 2, 2)


def test_restore_honours_channel_order():
    x = torch.rand(3, 8, 8)
    rgb = restore_tensor(HalveFirstChannel("RGB"), x, "cpu")
    bgr = restore_tensor(HalveFirstChannel("BGR"), x, "cpu")
    assert torch.equal(rgb[0], x[0] * 0.5) and torch.equal(rgb[2], x[2])
    assert torch.equal(bgr[2], x[2] * 0.5) and torch.equal(bgr[0], x[0])  # the network saw B first


def test_evaluate_matches_compare(tmp_path):
    ds = SyntheticPairs(_photos(tmp_path / "p"), "haze", seed=0)
    model = HalveFirstChannel("RGB")
    ev = evaluate(model, ds, protocol="authors", color_space="rgb", indices=[2, 0])
    assert [r["index"] for r in ev.images] == [2, 0]
    for r in ev.images:
        item = ds[r["index"]]
        want = compare(model(item["input"][None])[0], item["target"], protocol="authors", color_space="rgb")
        assert (r["psnr"], r["ssim"]) == (want["psnr"], want["ssim"])
        assert r["input_psnr"] == compare(item["input"], item["target"], protocol="authors", color_space="rgb")["psnr"]
    assert ev.mean()["psnr"] == pytest.approx(sum(r["psnr"] for r in ev.images) / 2, abs=1e-12)
    table = format_table(ev)
    assert "p2.png" in table and "mean of 2" in table


def test_write_json_is_atomic_and_never_clobbers(tmp_path):
    out = tmp_path / "sub" / "r.json"
    write_json(out, {"a": 1.0, "b": float("inf")})
    assert json.loads(out.read_text()) == {"a": 1.0, "b": "inf"}
    with pytest.raises(FileExistsError):
        write_json(out, {"a": 2})
    assert json.loads(out.read_text())["a"] == 1.0
    write_json(out, {"a": 3}, overwrite=True)
    assert json.loads(out.read_text()) == {"a": 3}
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.json"]  # no temporary files left


def test_cli_untrained_pipeline_check(tmp_path, capsys):
    data = _photos(tmp_path / "photos")
    out = tmp_path / "r.json"
    args = ["evaluate", "--network", "durn_p", "--weights", "untrained", "--data", str(data),
            "--degrade", "gaussian:30", "--json", str(out), "--device", "cpu", "--limit", "2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "RANDOM weights" in captured.err and "mean of 2" in captured.out
    res = json.loads(out.read_text())
    assert res["protocol"] == "authors" and res["color_space"] == "gray" and res["count"] == 2
    assert [r["name"] for r in res["images"]] == ["p0.png", "p1.png"]
    assert res["degrade"] == "gaussian:30" and res["weights"] == "untrained"
    # the untrained network is seeded (--seed): the same one in every run and process
    torch.manual_seed(0)
    want = evaluate(durn.durn_p().eval(), SyntheticPairs(data, "gaussian:30", gray=True), protocol="authors",
                    color_space="gray", indices=[0, 1])
    assert [r["psnr"] for r in res["images"]] == [r["psnr"] for r in want.images]
    assert main(args) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert json.loads(out.read_text()) == res


def test_cli_weights_file_gives_that_networks_numbers(tmp_path):
    data = _photos(tmp_path / "photos", n=1)
    torch.manual_seed(3)
    model = durn.durn_p().eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--network", "durn_p", "--weights", str(tmp_path / "w.pt"), "--data", str(data),
                 "--degrade", "gaussian:50", "--protocol", "standard", "--json", str(out), "--device", "cpu",
                 "--quiet"]) == 0
    res = json.loads(out.read_text())
    want = evaluate(model, SyntheticPairs(data, "gaussian:50", gray=True), protocol="standard", color_space="gray")
    assert [r["psnr"] for r in res["images"]] == [r["psnr"] for r in want.images]
    assert len(res["weights_sha256"]) == 64


def test_cli_runs_bgr_weights_in_bgr(tmp_path, monkeypatch):
    # durn.load_reference gives the authors' raindrop weights channel_order "BGR"
    # (tests/test_checkpoints.py); here a stand-in with that attribute goes through the CLI.
    data = _photos(tmp_path / "photos", n=1)
    monkeypatch.setattr(durn, "get_model", lambda name, **kw: HalveFirstChannel("BGR"))
    out = tmp_path / "r.json"
    assert main(["evaluate", "--network", "durn_s_p", "--weights", "untrained", "--data", str(data),
                 "--degrade", "raindrop", "--json", str(out), "--device", "cpu"]) == 0
    item = SyntheticPairs(data, "raindrop")[0]
    bgr_out = item["input"].clone()
    bgr_out[2] *= 0.5  # the network's first channel is blue
    rgb_out = item["input"].clone()
    rgb_out[0] *= 0.5
    res = json.loads(out.read_text())["images"][0]
    assert res["psnr"] == compare(bgr_out, item["target"], protocol="authors", color_space="y")["psnr"]
    assert res["psnr"] != compare(rgb_out, item["target"], protocol="authors", color_space="y")["psnr"]


def test_cli_paper_dataset(tmp_path, capsys):
    for sub, v in (("blurred", 60), ("sharp", 90)):
        (tmp_path / "car" / sub).mkdir(parents=True)
        Image.fromarray(np.full((16, 20, 3), v, np.uint8)).save(tmp_path / "car" / sub / "a.png")
    assert main(["evaluate", "--network", "durn_u", "--weights", "untrained", "--data", str(tmp_path / "car"),
                 "--dataset", "car", "--protocol", "standard", "--device", "cpu"]) == 0
    assert "a.png" in capsys.readouterr().out


def test_cli_reports_unreadable_images_and_keeps_the_results(tmp_path, capsys):
    """Issue 12.3: a zero-byte, truncated or corrupt image is one line each, not a traceback
    losing the results; the others are evaluated and written, and the exit code says so."""
    data = _photos(tmp_path / "photos", n=2)
    (data / "empty.png").write_bytes(b"")
    (data / "cut.png").write_bytes((data / "p0.png").read_bytes()[:120])
    corrupt = bytearray((data / "p1.png").read_bytes())
    corrupt[60:70] = b"\xff" * 10
    (data / "crc.png").write_bytes(bytes(corrupt))
    out = tmp_path / "r.json"
    assert main(["evaluate", "--network", "durn_p", "--weights", "untrained", "--data", str(data),
                 "--degrade", "gaussian:30", "--json", str(out), "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    bad = [line for line in captured.err.splitlines() if line.startswith("durn evaluate: cannot read image")]
    assert sorted(line.split(": ")[1].rsplit("/", 1)[1] for line in bad) == ["crc.png", "cut.png", "empty.png"]
    assert "Traceback" not in captured.err and "mean of 2" in captured.out and "3 images could not be read" in captured.out
    res = json.loads(out.read_text())
    assert [r["name"] for r in res["images"]] == ["p0.png", "p1.png"] and res["count"] == 2
    assert len(res["failed"]) == 3 and all("cannot read image" in f["error"] for f in res["failed"])


@pytest.mark.parametrize("extra, message", [
    (["--weights", "missing.pt", "--degrade", "blur"], "weights file not found"),
    (["--weights", "untrained", "--degrade", "blur", "--sigma", "30"], "--sigma applies"),
    (["--weights", "untrained", "--dataset", "gopro"], "not found under"),
    (["--weights", "untrained", "--degrade", "fog"], "unknown degradation"),
])
def test_cli_user_errors(tmp_path, capsys, extra, message):
    data = _photos(tmp_path / "photos", n=1)
    assert main(["evaluate", "--network", "durn_u", "--data", str(data), "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_shard_and_gather(tmp_path):
    data = _photos(tmp_path / "photos", n=5, size=(20, 22))
    common = ["-m", "durn", "evaluate", "--network", "durn_p_real", "--weights", "untrained", "--data", str(data),
              "--degrade", "gaussian:30", "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    dist = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *common,
                           "--json", str(tmp_path / "two.json")], capture_output=True, text=True, env=env, timeout=300)
    assert dist.returncode == 0, dist.stderr[-2000:]
    assert dist.stdout.count("mean of 5") == 1  # only rank 0 prints
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["processes"] == 2
    torch.manual_seed(0)  # the CLI's untrained network (--seed 0)
    one = evaluate(durn.durn_p_real().eval(), SyntheticPairs(data, "gaussian:30"), protocol="authors", color_space="rgb")
    keys = ("index", "name", "psnr", "ssim", "input_psnr", "input_ssim")
    assert [[r[k] for k in keys] for r in two["images"]] == [[r[k] for k in keys] for r in one.images]
