"""The paper-dataset adapters on tiny fake folder trees in the publishers' layouts."""
import numpy as np
import pytest
import torch
from PIL import Image

from durn.data import PAPER_DATASETS, authors_gaussian_noise, paper_dataset
from conftest import optional_import

H, W = 20, 28


def _png(path, value, size=(H, W), gray=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size if gray else (*size, 3)
    Image.fromarray(np.full(shape, value, dtype=np.uint8)).save(path, quality=100) if path.suffix.lower() in (".jpg", ".jpeg") \
        else Image.fromarray(np.full(shape, value, dtype=np.uint8)).save(path)


def _value(t):
    return float(t.mean()) * 255


def _check_pairs(ds, expected):
    """expected: {name: (input value, target value)} (tolerance 2 levels: JPEG)."""
    got = {}
    for i in range(len(ds)):
        item = ds[i]
        assert item["input"].shape == item["target"].shape
        got[item["name"]] = (_value(item["input"]), _value(item["target"]))
    assert set(got) == set(expected)
    for name, (vi, vt) in expected.items():
        assert abs(got[name][0] - vi) < 2 and abs(got[name][1] - vt) < 2, name


def test_registry_lists_every_adapter():
    assert set(PAPER_DATASETS) == {"bsd_gray", "polyu", "gopro", "car", "reside_its", "reside_sots", "dcpdn",
                                   "raindrop_train", "raindrop_test_a", "raindrop_test_b", "didmdn", "ddn"}
    for info in PAPER_DATASETS.values():
        assert info.layout and info.network.startswith("durn_")


def test_bsd_gray_bsds500_layout(tmp_path):
    base = tmp_path / "BSR" / "BSDS500" / "data" / "images"
    for split, n in (("train", 2), ("val", 1), ("test", 2)):
        for i in range(n):
            _png(base / split / f"{split}{i}.jpg", 100 + i)
    train = paper_dataset("bsd_gray", tmp_path)
    assert len(train) == 3 and train[0]["input"].shape == (1, H, W)
    assert torch.equal(train[0]["input"], train[0]["target"])  # clean: the loop adds noise
    test = paper_dataset("bsd_gray", tmp_path, split="test", sigma=30)
    item = test[0]
    noise = authors_gaussian_noise((1, H, W), 30)
    assert torch.equal(item["input"], item["target"] + noise)
    assert float(noise.std()) * 255 == pytest.approx(30, rel=0.2)
    assert torch.equal(test[1]["input"], test[1]["target"] + noise)  # the seed is reset for every image
    with pytest.raises(ValueError, match="sigma"):
        paper_dataset("bsd_gray", tmp_path, split="test")
    noisy_train = paper_dataset("bsd_gray", tmp_path, sigma=[30, 50, 70], crop=8)
    a = noisy_train[0]["input"]
    noisy_train.set_epoch(1)
    assert not torch.equal(a, noisy_train[0]["input"])


def test_bsd_gray_missing_lists_folders(tmp_path):
    _png(tmp_path / "train" / "a.png", 1)
    with pytest.raises(FileNotFoundError) as err:
        paper_dataset("bsd_gray", tmp_path, split="test", sigma=30)
    assert "test/" in str(err.value) and "Expected layout" in str(err.value) and "BSDS500" in str(err.value)
    _png(tmp_path / "train_and_val" / "b.png", 1)
    assert len(paper_dataset("bsd_gray", tmp_path)) == 1  # the authors' layout


def test_polyu(tmp_path):
    orig, crops = tmp_path / "OriginalImages", tmp_path / "CroppedImages"
    _png(orig / "Canon5D2_bag_mean.JPG", 200), _png(orig / "Canon5D2_bag_Real.JPG", 150)
    _png(orig / "Nikon800_wall_mean.JPG", 210), _png(orig / "Nikon800_wall_Real.JPG", 160)  # a test scene
    for k in range(2):
        _png(crops / f"Nikon800_wall_{k}_mean.PNG", 100 + k), _png(crops / f"Nikon800_wall_{k}_real.PNG", 50 + k)
    _check_pairs(paper_dataset("polyu", tmp_path), {"Canon5D2_bag_mean.JPG": (150, 200)})
    _check_pairs(paper_dataset("polyu", tmp_path, split="test"),
                 {"Nikon800_wall_0_mean.PNG": (50, 100), "Nikon800_wall_1_mean.PNG": (51, 101)})
    (crops / "Nikon800_wall_1_real.PNG").unlink()
    with pytest.raises(FileNotFoundError, match="Nikon800_wall_1_real.PNG"):
        paper_dataset("polyu", tmp_path, split="test")


def test_gopro_resize_and_missing(tmp_path):
    for split in ("train", "test"):
        for seq in ("GOPR0001_11_00", "GOPR0002_11_01"):
            _png(tmp_path / split / seq / "blur" / "000001.png", 60, size=(72, 128))
            _png(tmp_path / split / seq / "sharp" / "000001.png", 90, size=(72, 128))
    ds = paper_dataset("gopro", tmp_path, split="test")
    assert len(ds) == 2 and ds[0]["name"] == "GOPR0001_11_00/000001.png"
    assert ds[0]["input"].shape == (3, 360, 640)  # the authors' resize
    assert paper_dataset("gopro", tmp_path, split="test", authors_geometry=False)[0]["input"].shape == (3, 72, 128)
    _check_pairs(paper_dataset("gopro", tmp_path, split="train", authors_geometry=False),
                 {"GOPR0001_11_00/000001.png": (60, 90), "GOPR0002_11_01/000001.png": (60, 90)})
    (tmp_path / "test" / "GOPR0002_11_01" / "sharp" / "000001.png").unlink()
    with pytest.raises(FileNotFoundError, match="test/GOPR0002_11_01/sharp/000001.png"):
        paper_dataset("gopro", tmp_path, split="test")


def test_gopro_resize_is_a_rounded_2x2_mean(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    (tmp_path / "test" / "s" / "blur").mkdir(parents=True)
    (tmp_path / "test" / "s" / "sharp").mkdir(parents=True)
    Image.fromarray(img).save(tmp_path / "test" / "s" / "blur" / "1.png")
    Image.fromarray(img).save(tmp_path / "test" / "s" / "sharp" / "1.png")
    got = paper_dataset("gopro", tmp_path, split="test")[0]["input"]
    box = img.reshape(360, 2, 640, 2, 3).astype(np.int64).sum((1, 3))
    expected = (box + 2) // 4  # round half up, as OpenCV's INTER_LINEAR does at exactly 2x
    assert np.array_equal((got * 255).round().byte().permute(1, 2, 0).numpy(), expected)
    cv2 = optional_import("cv2")
    assert np.array_equal(expected, cv2.resize(img, (640, 360)))


def test_car(tmp_path):
    _png(tmp_path / "blurred" / "1.png", 10, size=(70, 70)), _png(tmp_path / "sharp" / "1.png", 20, size=(70, 70))
    ds = paper_dataset("car", tmp_path)
    assert ds[0]["input"].shape == (3, 360, 360)
    _check_pairs(paper_dataset("car", tmp_path, authors_geometry=False), {"1.png": (10, 20)})
    with pytest.raises(ValueError, match="no split 'train'"):
        paper_dataset("car", tmp_path, split="train")
    with pytest.raises(FileNotFoundError, match="sharp/"):
        paper_dataset("car", tmp_path / "blurred")


def test_reside_its_draws_a_hazy_version_per_epoch(tmp_path):
    for k, v in ((1, 10), (2, 20), (3, 30)):
        _png(tmp_path / "hazy" / f"1_{k}_0.8{k}.png", v)
    _png(tmp_path / "hazy" / "2_1_0.9.png", 40)
    _png(tmp_path / "clear" / "1.png", 100), _png(tmp_path / "clear" / "2.png", 200)
    ds = paper_dataset("reside_its", tmp_path)
    assert len(ds) == 2 and ds[0]["name"] == "1.png"
    seen = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        seen.add(round(_value(ds[0]["input"])))
        assert round(_value(ds[1]["input"])) == 40 and round(_value(ds[0]["target"])) == 100
    assert seen == {10, 20, 30}
    ds.set_epoch(3)
    again = paper_dataset("reside_its", tmp_path)
    again.set_epoch(3)
    assert torch.equal(ds[0]["input"], again[0]["input"])


def test_reside_sots_every_version(tmp_path):
    indoor = tmp_path / "indoor"
    for cid in (1400, 1401):
        for k in (1, 2, 10):
            _png(indoor / "hazy" / f"{cid}_{k}.png", k)
        _png(indoor / "gt" / f"{cid}.png", cid - 1300)
    ds = paper_dataset("reside_sots", tmp_path)
    assert [ds[i]["name"] for i in range(len(ds))] == ["1400_1.png", "1400_2.png", "1400_10.png",
                                                       "1401_1.png", "1401_2.png", "1401_10.png"]
    _check_pairs(ds, {f"{c}_{k}.png": (k, c - 1300) for c in (1400, 1401) for k in (1, 2, 10)})
    # clear images 20 px larger than the hazy ones (as published): centre-cropped to fit
    img = np.zeros((H + 20, W + 20, 3), np.uint8)
    img[10:10 + H, 10:10 + W] = 222
    Image.fromarray(img).save(indoor / "gt" / "1400.png")
    item = paper_dataset("reside_sots", tmp_path)[0]
    assert item["target"].shape == (3, H, W) and bool((item["target"] == 222 / 255).all())
    _png(indoor / "hazy" / "1402_1.png", 1)
    with pytest.raises(FileNotFoundError, match="gt/1402"):
        paper_dataset("reside_sots", tmp_path)


def test_dcpdn_h5(tmp_path):
    h5py = optional_import("h5py")
    rng = np.random.default_rng(0)
    (tmp_path / "TestA").mkdir()
    arrays = {}
    for i in range(2):
        haze, gt = rng.uniform(0, 1, (16, 12, 3)).astype(np.float32), rng.uniform(0, 1, (16, 12, 3)).astype(np.float32)
        arrays[f"{i}.h5"] = (haze, gt)
        with h5py.File(tmp_path / "TestA" / f"{i}.h5", "w") as f:
            f["ato"], f["gt"], f["haze"], f["trans"] = np.zeros(1), gt, haze, np.zeros(1)
    ds = paper_dataset("dcpdn", tmp_path, split="test")
    assert ds.float_data and len(ds) == 2
    for i in range(2):
        item = ds[i]
        haze, gt = arrays[item["name"]]
        assert torch.equal(item["input"], torch.from_numpy(haze).permute(2, 0, 1))  # float, not quantised
        assert torch.equal(item["target"], torch.from_numpy(gt).permute(2, 0, 1))
    with pytest.raises(FileNotFoundError, match="training/"):
        paper_dataset("dcpdn", tmp_path, split="train")


def test_raindrop_layouts_and_multiple_of_4(tmp_path):
    for n in (0, 1):
        _png(tmp_path / "test_a" / "test_a" / "data" / f"{n}_rain.png", 30 + n, size=(30, 42))
        _png(tmp_path / "test_a" / "test_a" / "gt" / f"{n}_clean.png", 130 + n, size=(30, 42))
        _png(tmp_path / "test_b" / "data" / f"{n}_rain.jpg", 40 + n, size=(30, 42))
        _png(tmp_path / "test_b" / "gt" / f"{n}_clean.jpg", 140 + n, size=(30, 42))
        _png(tmp_path / "train" / "data" / f"{n}_rain.png", 50, size=(30, 42))
        _png(tmp_path / "train" / "gt" / f"{n}_clean.png", 150, size=(30, 42))
    a = paper_dataset("raindrop_test_a", tmp_path)
    assert a[0]["input"].shape == (3, 28, 40)
    _check_pairs(a, {"0_rain.png": (30, 130), "1_rain.png": (31, 131)})
    _check_pairs(paper_dataset("raindrop_test_b", tmp_path), {"0_rain.jpg": (40, 140), "1_rain.jpg": (41, 141)})
    assert paper_dataset("raindrop_test_b", tmp_path, authors_geometry=False)[0]["input"].shape == (3, 30, 42)
    assert paper_dataset("raindrop_train", tmp_path)[0]["input"].shape == (3, 30, 42)
    (tmp_path / "test_b" / "gt" / "1_clean.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="test_b/gt/1_clean.jpg"):
        paper_dataset("raindrop_test_b", tmp_path)


def _side_by_side(path, left, right, size=(16, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((*size, 3), dtype=np.uint8)
    img[:, : size[1] // 2], img[:, size[1] // 2:] = left, right
    Image.fromarray(img).save(path)


def test_didmdn_halves_densities_and_flip(tmp_path):
    for d, v in (("Rain_Heavy", 10), ("Rain_Medium", 20), ("Rain_Light", 30)):
        for name in ("1.jpg", "2.jpg"):
            _side_by_side(tmp_path / d / "train2018new" / name.replace(".jpg", ".png"), v, 200)
    _side_by_side(tmp_path / "test" / "1.png", 77, 177)
    test = paper_dataset("didmdn", tmp_path, split="test")
    assert test[0]["input"].shape == (3, 16, 12)
    _check_pairs(test, {"1.png": (77, 177)})
    train = paper_dataset("didmdn", tmp_path, crop=8, seed=1)
    assert train.flip  # the authors' recipe flips rain-streak crops
    assert len(train) == 2 and train[0]["input"].shape == (3, 8, 8)
    seen = set()
    for epoch in range(10):
        train.set_epoch(epoch)
        seen.add(round(_value(train[0]["input"])))
    assert seen == {10, 20, 30}
    import shutil
    shutil.rmtree(tmp_path / "Rain_Light")
    with pytest.raises(FileNotFoundError, match="Rain_Light/train2018new/"):
        paper_dataset("didmdn", tmp_path)


def test_flip_is_deterministic_and_happens(tmp_path):
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[:, :2] = 255
    for sub in ("Rain_Heavy", "Rain_Medium", "Rain_Light"):
        (tmp_path / sub / "train2018new").mkdir(parents=True)
        Image.fromarray(np.concatenate([img, img], 1)).save(tmp_path / sub / "train2018new" / "1.png")
    ds = paper_dataset("didmdn", tmp_path, crop=8)
    flips = []
    for epoch in range(16):
        ds.set_epoch(epoch)
        item = ds[0]
        flipped = bool(item["input"][0, 0, -1] > 0.5)
        assert flipped == bool(item["target"][0, 0, -1] > 0.5)  # input and target flip together
        flips.append(flipped)
    assert 0 < sum(flips) < 16
    assert not paper_dataset("didmdn", tmp_path, crop=8, flip=False).flip


def test_ddn_layouts(tmp_path):
    for split, ids in (("training", (1, 2)), ("testing", (901,))):
        for cid in ids:
            for k in (1, 2, 14):
                _png(tmp_path / split / "rainy_image" / f"{cid}_{k}.jpg", k * 10)
            _png(tmp_path / split / "ground_truth" / f"{cid}.jpg", 250)
    assert len(paper_dataset("ddn", tmp_path)) == 2
    test = paper_dataset("ddn", tmp_path, split="test")
    _check_pairs(test, {f"901_{k}.jpg": (k * 10, 250) for k in (1, 2, 14)})
    flat = tmp_path / "flat"
    for cid in (5, 6):
        _png(flat / "rain_image" / f"{cid}_1.jpg", 10), _png(flat / "label" / f"{cid}.jpg", 20)
    with pytest.raises(ValueError, match="list_file"):
        paper_dataset("ddn", flat, split="test")
    (tmp_path / "list.txt").write_text("6.jpg\n")
    ds = paper_dataset("ddn", flat, split="test", list_file=tmp_path / "list.txt")
    assert [ds[i]["name"] for i in range(len(ds))] == ["6_1.jpg"]
    with pytest.raises(FileNotFoundError, match="ground_truth"):
        paper_dataset("ddn", tmp_path / "training" / "rainy_image", split="test")


def test_generic_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        paper_dataset("imagenet", tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        paper_dataset("gopro", tmp_path / "missing")
    with pytest.raises(ValueError, match="no split 'val'"):
        paper_dataset("gopro", tmp_path, split="val")
    _png(tmp_path / "blurred" / "1.png", 1), _png(tmp_path / "sharp" / "1.png", 1)
    with pytest.raises(ValueError, match="bsd_gray only"):
        paper_dataset("car", tmp_path, sigma=30)
