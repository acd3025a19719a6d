"""Datasets over folders of clean photos: determinism, crops, epochs, sample photos."""
import numpy as np
import pytest
import torch
from PIL import Image

from durn.data import CleanImageFolder, PairDataset, SyntheticPairs, item_generator, sample_images
from conftest import optional_import


def _write(folder, n=3, size=(40, 52)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def test_item_generator_depends_only_on_its_key():
    a = torch.rand(4, generator=item_generator(1, 2, 3, 0))
    assert torch.equal(a, torch.rand(4, generator=item_generator(1, 2, 3, 0)))
    for key in [(0, 2, 3, 0), (1, 3, 3, 0), (1, 2, 4, 0), (1, 2, 3, 1)]:
        assert not torch.equal(a, torch.rand(4, generator=item_generator(*key)))
    with pytest.raises(ValueError):
        item_generator(-1, 0)


def test_clean_folder_items_and_crops(tmp_path):
    ds = CleanImageFolder(_write(tmp_path / "photos"), crop=16, seed=3)
    assert isinstance(ds, PairDataset) and len(ds) == 3
    item = ds[1]
    assert item["name"] == "img1.png" and item["input"].shape == (3, 16, 16)
    assert item["input"].dtype == torch.float32 and torch.equal(item["input"], item["target"])
    assert item["input"].data_ptr() != item["target"].data_ptr()
    # the crop is a window of the image, chosen by (seed, index, epoch) alone
    full = np.asarray(Image.open(tmp_path / "photos" / "img1.png"), dtype=np.float32) / 255
    crop = item["target"].permute(1, 2, 0).numpy()
    hits = [(t, l) for t in range(40 - 15) for l in range(52 - 15) if np.array_equal(full[t:t + 16, l:l + 16], crop)]
    assert len(hits) == 1
    assert torch.equal(CleanImageFolder(tmp_path / "photos", crop=16, seed=3)[1]["target"], item["target"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["target"], item["target"])
    ds.set_epoch(0)
    assert torch.equal(ds[1]["target"], item["target"])
    assert ds[-1]["name"] == "img2.png"
    with pytest.raises(IndexError):
        ds[3]


def test_clean_folder_decodes_each_image_once_within_its_cache(tmp_path, monkeypatch):
    import durn.data.folders as folders

    reads = []
    real = folders.read_image
    monkeypatch.setattr(folders, "read_image", lambda path, **kw: reads.append(path) or real(path, **kw))
    root = _write(tmp_path / "photos")  # 3 images of 40 x 52 x 3 = 6,240 bytes
    ds = CleanImageFolder(root, crop=16)
    first = ds[1]
    first["target"].fill_(0)  # an item is the caller's to change: the cache keeps its own pixels
    for epoch in range(3):
        ds.set_epoch(epoch)
        items = [ds[i] for i in range(3)]
    assert len(reads) == 3
    ds.set_epoch(0)
    assert torch.equal(ds[1]["target"], CleanImageFolder(root, crop=16, cache_mb=0)[1]["target"])
    assert ds[1]["target"].abs().sum() > 0 and items[0]["target"].shape == (3, 16, 16)
    # a budget of two images keeps two; the third is decoded every time
    reads.clear()
    small = CleanImageFolder(root, cache_mb=2 * 6240 / 2**20)
    for _ in range(2):
        [small[i] for i in range(3)]
    assert len(reads) == 4 and sorted(small._cache) == [0, 1]
    with pytest.raises(ValueError, match="cache_mb"):
        CleanImageFolder(root, cache_mb=-1)


def test_clean_folder_gray_and_errors(tmp_path):
    ds = CleanImageFolder(_write(tmp_path / "p", n=1), gray=True)
    assert ds[0]["input"].shape == (1, 40, 52)
    with pytest.raises(FileNotFoundError, match="not found"):
        CleanImageFolder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        CleanImageFolder(tmp_path / "empty")
    with pytest.raises(ValueError, match="smaller than the crop"):
        CleanImageFolder(tmp_path / "p", crop=64)[0]


def test_synthetic_pairs_are_deterministic_and_order_independent(tmp_path):
    folder = _write(tmp_path / "photos", n=4)
    a = SyntheticPairs(folder, "rain", crop=24, seed=7)
    b = SyntheticPairs(folder, "rain", crop=24, seed=7)
    forward = [a[i] for i in range(4)]
    backward = [b[i] for i in reversed(range(4))][::-1]
    for x, y in zip(forward, backward):
        assert torch.equal(x["input"], y["input"]) and torch.equal(x["target"], y["target"])
        assert x["input"].shape == x["target"].shape == (3, 24, 24)
    assert not torch.equal(SyntheticPairs(folder, "rain", crop=24, seed=8)[0]["input"], forward[0]["input"])
    a.set_epoch(2)
    assert not torch.equal(a[0]["target"], forward[0]["target"])


def test_synthetic_pairs_crop_is_a_window_of_the_whole_degradation(tmp_path):
    # Gaussian noise is pointwise: the degraded crop minus the clean crop is pure noise at the
    # right level, and the clean crop is a window of the clean photo.
    folder = _write(tmp_path / "photos", n=1, size=(64, 64))
    item = SyntheticPairs(folder, "gaussian:50", crop=48, seed=0, gray=True)[0]
    noise = (item["input"] - item["target"]) * 255
    assert abs(float(noise.std()) / 50 - 1) < 0.05   # 2304 samples: 1.5% standard error
    blurred = SyntheticPairs(folder, "blur", crop=32, seed=0)[0]
    assert blurred["input"].shape == blurred["target"].shape == (3, 32, 32)


def test_synthetic_pairs_over_a_dataset(tmp_path):
    source = CleanImageFolder(_write(tmp_path / "photos", n=2))
    ds = SyntheticPairs(source, "haze", seed=1)
    item = ds[0]
    assert torch.equal(item["target"], source[0]["target"])
    assert item["input"].shape == item["target"].shape and not torch.equal(item["input"], item["target"])


def test_sample_images_keep_the_reporting_photos_out():
    optional_import("skimage")
    train = {p.name for p in sample_images()}
    report = {p.name for p in sample_images("report")}
    assert report == {"camera.png", "astronaut.png"}
    assert not train & report and len(train) >= 5
    assert all(p.is_file() for p in sample_images("all"))
    with pytest.raises(ValueError):
        sample_images("test")
