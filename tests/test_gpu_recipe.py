"""The GPU training recipe, tested on the CPU: packing crops (scripts/pack_crops.py), shards
(durn.train.shards), the recipe's planning and process control, and a 2-step run of
scripts/gpu_recipe.py whose shards load back into durn.get_model."""
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import durn
from durn.train.shards import ShardError, extract, read_manifest, read_shards, write_shards
from durn.ops.backends import cpu_has_native_bf16

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20


def _script(name):
    spec = importlib.util.spec_from_file_location(f"durn_script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pack_crops = _script("pack_crops")
gpu_recipe = _script("gpu_recipe")


def _texture(h, w, channels, seed):
    """A photo-like image: smooth gradients plus noise, so PNGs neither vanish nor explode."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(x / (7 + seed)) * np.cos(y / 11)
    planes = [base + rng.normal(0, 20, (h, w)) + 30 * c for c in range(channels)]
    pixels = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
    return pixels[..., 0] if channels == 1 else pixels


@pytest.fixture
def photos(tmp_path):
    """PHOTOS/train (an RGB and a gray photo, and one too small to crop), PHOTOS/val, and
    the manifest make_training_photos.py writes."""
    root = tmp_path / "photos"
    for rel, (h, w, c) in {"train/a-rgb.png": (100, 130, 3), "train/b-gray.png": (90, 90, 1),
                           "train/c-tiny.png": (20, 40, 3), "val/v-rgb.png": (60, 70, 3)}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_texture(h, w, c, len(rel))).save(root / rel)
    manifest = [{"file": rel, "source": f"synthetic {rel}"} for rel in
                ("train/a-rgb.png", "train/b-gray.png", "train/c-tiny.png", "val/v-rgb.png")]
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _folder_bytes(folder):
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- pack_crops

def test_pack_crops_respects_budget_and_is_deterministic(photos, tmp_path):
    everything = pack_crops.pack(photos, tmp_path / "all", crop=32, budget=4 * MIB, rounds=1, vendor=False)
    tiles = (100 // 32) * (130 // 32) + (90 // 32) ** 2
    assert everything["tiles_available"] == tiles and everything["train_crops"] == tiles
    assert [s["photo"] for s in everything["skipped"]] == ["train/c-tiny.png"]

    budget = _folder_bytes(tmp_path / "all") // 2
    half = pack_crops.pack(photos, tmp_path / "half", crop=32, budget=budget, rounds=1, vendor=False)
    assert 0 < half["train_crops"] < tiles
    assert _folder_bytes(tmp_path / "half") <= budget  # every file, the manifest included

    again = pack_crops.pack(photos, tmp_path / "again", crop=32, budget=budget, rounds=1, vendor=False)
    assert again["crops"] == half["crops"]
    other = pack_crops.pack(photos, tmp_path / "other", crop=32, budget=budget, rounds=1, seed=1, vendor=False)
    assert other["crops"] != half["crops"]

    manifest = json.loads((tmp_path / "half" / "manifest.json").read_text())
    assert manifest["crops"] == half["crops"]
    for entry in manifest["crops"]:
        data = (tmp_path / "half" / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        left, top, right, bottom = entry["box"]
        source = np.asarray(Image.open(photos / entry["photo"]))
        crop = np.asarray(Image.open(tmp_path / "half" / entry["file"]))
        np.testing.assert_array_equal(crop, source[top:bottom, left:right])  # 8-bit, exactly the box
        if entry["split"] == "train":
            assert right - left == bottom - top == 32
            assert entry["origin"] == f"synthetic {entry['photo']}"
    val = [e for e in manifest["crops"] if e["split"] == "val"]
    assert [e["file"] for e in val] == ["val/v-rgb.png"] and val[0]["box"] == [0, 0, 70, 60]  # whole


def test_pack_crops_rounds_fill_the_budget_without_repeating(photos, tmp_path):
    one = pack_crops.pack(photos, tmp_path / "one", crop=32, budget=8 * MIB, rounds=1, vendor=False)
    three = pack_crops.pack(photos, tmp_path / "three", crop=32, budget=8 * MIB, rounds=3, val_crop=40,
                            vendor=True)
    boxes = [(e["photo"], tuple(e["box"])) for e in three["crops"] if e["split"] == "train"]
    assert len(boxes) == len(set(boxes)) > one["train_crops"]
    assert boxes[:one["train_crops"]] == [(e["photo"], tuple(e["box"])) for e in one["crops"] if e["split"] == "train"]
    assert [e["box"] for e in three["crops"] if e["split"] == "val"] == [[15, 10, 55, 50]]  # centre 40x40
    vendored = {e["file"] for e in three["vendor"]}
    assert "vendor/pytorch_msssim/__init__.py" in vendored
    assert all((tmp_path / "three" / f).is_file() for f in vendored)


def test_pack_crops_refuses_forbidden_images_and_foreign_folders(photos, tmp_path):
    Image.fromarray(_texture(64, 64, 3, 0)).save(photos / "train" / "skimage-astronaut.png")
    with pytest.raises(pack_crops.PackError, match="astronaut"):
        pack_crops.pack(photos, tmp_path / "out", crop=32, budget=MIB, vendor=False)
    (photos / "train" / "skimage-astronaut.png").unlink()
    manifest = json.loads((photos / "manifest.json").read_text())
    manifest[0]["source"] = "/usr/share/wallpapers/Next/contents/images/1920x1080.png"
    (photos / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(pack_crops.PackError, match="plasma-workspace"):
        pack_crops.pack(photos, tmp_path / "out", crop=32, budget=MIB, vendor=False)
    for stem, origin in [("x", "sklearn/datasets/images/china.jpg"), ("grace_hopper", ""), ("face", ""),
                         ("skimage-camera", "")]:
        assert pack_crops.forbidden_reason(stem, origin), stem
    assert pack_crops.forbidden_reason("opencv-surface", "/usr/share/doc/opencv-doc/x.jpg") is None

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not crops")
    with pytest.raises(pack_crops.PackError, match="not a crops folder"):
        pack_crops.pack(photos, tmp_path / "mine", crop=32, budget=MIB, vendor=False, overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").is_file()


def test_auto_budget_leaves_room_for_the_checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "big.bin").write_bytes(b"\0" * (10 * MIB))
    (repo / ".gitignore").write_text("ignored/\n")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "huge.bin").write_bytes(b"\0" * (30 * MIB))
    budget, note = pack_crops.resolve_budget("auto", repo / "crops")
    travels = 10 * MIB + len("ignored/\n")  # big.bin and .gitignore; neither .git nor the ignored file
    assert budget == 64 * MIB - travels - MIB
    assert "10.0 MiB" in note
    _, warning = pack_crops.resolve_budget("60", repo / "crops")
    assert "WARNING" in warning


# --------------------------------------------------------------------------- shards

def _state():
    g = torch.Generator().manual_seed(0)
    return {"conv.weight": torch.randn(64, 32, 3, 3, generator=g), "half": torch.randn(1000, generator=g).half(),
            "bf": torch.randn(300, generator=g).bfloat16(), "count": torch.tensor(7), "steps": 12,
            "nested": {"lr": 1e-4, "ids": [1, 2, 3]}}


def _assert_bit_exact(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert value.dtype == b[key].dtype and value.shape == b[key].shape
            assert torch.equal(value.view(-1).view(torch.uint8), b[key].view(-1).view(torch.uint8)), key
        else:
            assert value == b[key]


def test_shards_round_trip_bit_exact_in_several_shards(tmp_path):
    state = _state()
    manifest = write_shards(state, tmp_path, max_bytes=20_000, name="net")
    assert len(manifest["shards"]) > 3
    assert all(s["size"] <= 20_000 for s in manifest["shards"])
    assert sum(s["size"] for s in manifest["shards"]) == manifest["size"]
    _assert_bit_exact(state, read_shards(tmp_path / "net.shards.json"))
    _assert_bit_exact(state, read_shards(tmp_path))  # the folder's only shard set, its only member

    file = tmp_path / "orig" / "best.pt"
    file.parent.mkdir()
    torch.save(state, file)
    both = write_shards([("best.pt", file), ("last.pt", state)], tmp_path / "two", max_bytes=50_000, name="run")
    data = read_shards(tmp_path / "two", "best.pt", raw=True)
    assert data == file.read_bytes()
    whole = b"".join((tmp_path / "two" / s["file"]).read_bytes() for s in both["shards"])
    assert hashlib.sha256(whole).hexdigest() == both["sha256"]
    written = extract(tmp_path / "two" / "run.shards.json", tmp_path / "out")
    assert [p.name for p in written] == ["best.pt", "last.pt"]
    assert (tmp_path / "out" / "best.pt").read_bytes() == file.read_bytes()
    _assert_bit_exact(state, torch.load(tmp_path / "out" / "last.pt", weights_only=True))
    with pytest.raises(FileExistsError):
        extract(tmp_path / "two", tmp_path / "out")
    with pytest.raises(ShardError, match="name one"):
        read_shards(tmp_path / "two")

    # A smaller rewrite of the same set leaves no stale shard behind.
    write_shards({"x": torch.zeros(2)}, tmp_path / "two", name="run")
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["run.shard00", "run.shards.json"]


def test_shards_detect_corrupt_missing_and_truncated_shards(tmp_path):
    manifest = write_shards(_state(), tmp_path, max_bytes=20_000, name="net")
    third = tmp_path / manifest["shards"][2]["file"]
    good = third.read_bytes()
    third.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])
    with pytest.raises(ShardError, match=r"net\.shard02 \(3 of \d+\).* corrupt"):
        read_shards(tmp_path)
    third.write_bytes(good[:-1])
    with pytest.raises(ShardError, match="truncated"):
        read_shards(tmp_path)
    third.unlink()
    with pytest.raises(ShardError, match=r"missing shard net\.shard02"):
        read_shards(tmp_path)
    third.write_bytes(good)
    read_shards(tmp_path)
    with pytest.raises(ShardError, match="no shard manifest"):
        read_shards(tmp_path / "elsewhere")


class _NotWeights:  # a pickle that torch.load(weights_only=True) must refuse to build
    pass


def test_shards_load_with_weights_only(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"x": _NotWeights()}, evil)
    write_shards(evil, tmp_path / "s")
    with pytest.raises(ShardError, match="weights_only"):
        read_shards(tmp_path / "s")
    assert read_shards(tmp_path / "s", raw=True) == evil.read_bytes()


# --------------------------------------------------------------------------- planning

def test_planning_from_log_windows():
    records = [{"step": 5, "loss": 1.0, "s_per_step": 2.0}, {"step": 5, "val_psnr": 20.0, "val_ssim": 0.5},
               {"step": 10, "loss": 1.0, "s_per_step": 0.3}, {"step": 20, "loss": 1.0, "s_per_step": 0.2},
               {"step": 30, "loss": 1.0, "s_per_step": 0.1}]
    windows = gpu_recipe.step_windows(records)
    assert [n for n, _ in windows] == [5, 5, 10, 10]
    assert gpu_recipe.steady_rate(windows) == pytest.approx((2.0 + 1.0) / 20)  # later half, first window left out
    assert gpu_recipe.plan_steps(300, 0.15, margin=0.9) == 1800
    with pytest.raises(gpu_recipe.RecipeError, match="no time left"):
        gpu_recipe.plan_steps(0.1, 0.15)
    # 10 validations and 4 checkpoints at 0.5 s each leave 293 s; slow validations are cut down to 1
    assert gpu_recipe.plan_run(300, 0.25, 0.5, vals=10, margin=1.0) == (1172, 10)
    assert gpu_recipe.plan_run(45, 0.25, 3.0, vals=10, margin=1.0) == (120, 1)
    assert gpu_recipe.cadence(1800, 10) == {"val_every": 180, "ckpt_every": 450, "log_every": 9}
    assert gpu_recipe.cadence(2, 10) == {"val_every": 1, "ckpt_every": 1, "log_every": 1}


def test_checkpoint_options_follow_the_device_limits():
    limits = {"max_files": 8, "max_file": 16 * MIB, "max_total": 64 * MIB}
    other = [16_000, 200_000, 64_000]

    def options(weights_mib):  # sizes of a network's files, as the recipe offers them
        best, fp16 = weights_mib * MIB, weights_mib * MIB // 2
        return [("fp32 best + resumable last", [("best.pt", best), ("last.pt", 3 * best)]),
                ("fp16 best + resumable last", [("best.fp16.pt", fp16), ("last.pt", 3 * best)]),
                ("fp16 best + fp16 last", [("best.fp16.pt", fp16), ("last.fp16.pt", fp16)]),
                ("fp16 best", [("best.fp16.pt", fp16)])]

    choose = gpu_recipe.choose_members
    assert choose(options(3.1), **limits, other_files=other)[0] == "fp32 best + resumable last"  # durn_p
    assert choose(options(14.2), **limits, other_files=other)[0] == "fp32 best + resumable last"  # durn_s: 57 MiB
    assert choose(options(49.0), **limits, other_files=other)[0] == "fp16 best + fp16 last"  # durn_u
    assert choose(options(49.0), **{**limits, "max_files": 5}, other_files=other)[0] == "fp16 best"
    with pytest.raises(gpu_recipe.RecipeError, match="no checkpoint option fits"):
        choose(options(200.0), **limits, other_files=other)


# --------------------------------------------------------------------------- processes

FAKE_TRAINER = textwrap.dedent("""
    import json, signal, sys, time
    log, rate, obey = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "obey"
    stop = []
    signal.signal(signal.SIGTERM, (lambda *a: stop.append(1)) if obey else signal.SIG_IGN)
    time.sleep(0.3)  # start-up
    step = 0

    def write(record):
        with open(log, "a") as f:
            f.write(json.dumps(record) + "\\n")

    while not stop:
        time.sleep(rate * 5)
        step += 5
        write({"step": step, "loss": 0.5, "s_per_step": rate * (3 if step == 5 else 1)})
        if step % 10 == 0:
            time.sleep(0.25)  # a validation
            write({"step": step, "val_psnr": 20.0, "val_ssim": 0.5})
    sys.exit(143)
""")


def test_pause_per_validation_from_record_times():
    records = [{"step": 5, "loss": 1, "s_per_step": 0.1}, {"step": 10, "loss": 1, "s_per_step": 0.1},
               {"step": 10, "val_psnr": 1, "val_ssim": 0}, {"step": 15, "loss": 1, "s_per_step": 0.1},
               {"step": 20, "loss": 1, "s_per_step": 0.1}, {"step": 20, "val_psnr": 1, "val_ssim": 0},
               {"step": 25, "loss": 1, "s_per_step": 0.1}, {"step": 30, "loss": 1, "s_per_step": 0.1}]
    # windows of 0.5 s; the validation after step 20 (the second) took 2 s
    seen = [1.0, 1.5, 9.0, 9.5, 10.0, 12.0, 12.5, 13.0]
    assert gpu_recipe.pause_per_validation(records, seen) == pytest.approx(2.0)
    assert gpu_recipe.pause_per_validation(records[:6], seen[:6]) == 0.0  # no validation after the first


def test_warm_up_measures_and_stops_the_training(tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE_TRAINER)
    log = tmp_path / "log.jsonl"
    start = time.monotonic()
    m = gpu_recipe.warm_up([sys.executable, str(fake), str(log), "0.02", "obey"], log, tmp_path / "console",
                           seconds=1.5, limit=20, grace=5, env=dict(os.environ))
    assert time.monotonic() - start < 10
    assert m["s_per_step"] == pytest.approx(0.02)
    assert m["windows"] >= 4 and 0.1 < m["startup_s"] < 5
    assert 0.1 < m["pause_per_val_s"] < 0.5  # 0.25 s, read at 0.2 s polls


def test_run_until_stops_at_the_deadline(tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE_TRAINER)
    # generous start-up and grace for the obeying trainer: on a loaded machine a Python
    # start can take seconds, and a late handler would turn SIGTERM into a SIGKILL
    for mode, expected, grace in (("obey", "deadline (SIGTERM)", 10.0), ("ignore", "deadline (SIGKILL)", 0.5)):
        rc, why = gpu_recipe.run_until([sys.executable, str(fake), str(tmp_path / "log"), "0.02", mode],
                                       time.monotonic() + 3.0, grace=grace, env=dict(os.environ))
        assert why == expected
        assert rc == (143 if mode == "obey" else -9)


# --------------------------------------------------------------------------- the script, 2 steps on CPU

def test_gpu_recipe_two_steps_on_cpu_ship_loadable_shards(photos, tmp_path):
    crops, out, work = tmp_path / "crops", tmp_path / "out", tmp_path / "work"
    pack_crops.pack(photos, crops, crop=48, budget=2 * MIB, vendor=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the recipe's bf16 where this CPU has it natively (emulated bf16 is refused: 100x slower)
    precision = "bf16" if cpu_has_native_bf16() else "fp32"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_recipe.py"), "--network", "durn_p", "--crops", str(crops),
         "--out", str(out), "--work", str(work), "--device", "cpu", "--steps", "2", "--batch-size", "2",
         "--crop", "32", "--max-file-mib", "1", "--precision", precision],
        capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all((out / f).stat().st_size <= MIB for f in files)
    assert {"durn_p.shards.json", "log.jsonl", "summary.json"} <= set(files)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["planned_steps"] == summary["steps_done"] == 2 and summary["completed"]
    assert summary["device"]["torch"] == torch.__version__ and summary["device"]["name"].startswith("cpu")
    assert summary["val_curve"] and summary["val_curve"][-1]["step"] == 2
    assert summary["settings"]["precision"] == precision and summary["settings"]["channels_last"]
    # durn_p's fp32 best.pt and last.pt (~13 MB) pass 8 files of 1 MiB: the fp16 weights travel.
    assert summary["checkpoint"]["option"] == "fp16 best + fp16 last"
    manifest, _ = read_manifest(out)
    assert len(manifest["shards"]) > 1 and [m["name"] for m in manifest["members"]] == ["best.fp16.pt", "last.fp16.pt"]

    best = torch.load(work / "run" / "best.pt", weights_only=True)
    expected = {k: v.half().float() if v.is_floating_point() else v for k, v in best["model"].items()}
    from_state = durn.get_model("durn_p", weights=read_shards(out, "best.fp16.pt")["state_dict"])
    extract(out, tmp_path / "release")
    from_file = durn.get_model("durn_p", weights=tmp_path / "release" / "best.fp16.pt")
    for model in (from_state, from_file):
        _assert_bit_exact(expected, {k: v for k, v in model.state_dict().items()})
    assert (out / "log.jsonl").read_text() == (work / "run" / "log.jsonl").read_text()


def test_gpu_recipe_says_what_is_wrong(tmp_path):
    script = [sys.executable, str(REPO / "scripts" / "gpu_recipe.py"), "--network", "durn_p", "--device", "cpu"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.txt").write_text("x")
    proc = subprocess.run([*script, "--crops", str(tmp_path), "--out", str(tmp_path / "full")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "is not empty" in proc.stderr
    proc = subprocess.run([*script, "--crops", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "pack the crops first" in proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "pack the crops first" in summary["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["summary.json"]
