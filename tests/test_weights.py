"""The weights registry: packaged and downloaded entries, hash checks, `weights=` forms."""
import dataclasses
import hashlib

import pytest
import torch

import durn
import durn.weights as W
from durn.checkpoints import CheckpointError
from durn.heldout import CONDITIONS, HELDOUT, SIGMAS
from durn.weights import Weights, WeightsHashError

from conftest import REPO, optional_import


@pytest.fixture
def hub_dir(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


@pytest.fixture
def trained_like():
    """A durn_p with non-trivial weights and BN statistics, and its float16-rounded state."""
    torch.manual_seed(3)
    model = durn.durn_p()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    rounded = {k: (v.half().float() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    return model, rounded


def _entry_for(path, name="durn_p.test", **changes):
    entry = Weights(name=name, network="durn_p", file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                    size=path.stat().st_size, channel_order="L")
    return dataclasses.replace(entry, **changes)


@pytest.fixture
def packaged(tmp_path, monkeypatch, trained_like):
    """A registry with one packaged durn_p entry (the default) in a temporary folder."""
    model, rounded = trained_like
    folder = tmp_path / "released"
    folder.mkdir()
    path = folder / "durn_p-test.pt"
    W.save_weights_file(path, "durn_p", model.state_dict(), channel_order="L", entry="durn_p.test")
    entry = _entry_for(path)
    monkeypatch.setattr(W, "RELEASED_DIR", folder)
    monkeypatch.setattr(W, "WEIGHTS", {entry.name: entry})
    monkeypatch.setattr(W, "DEFAULTS", {"durn_p": entry.name})
    return entry, path, rounded


def _same_state(model, expected):
    state = model.state_dict()
    assert state.keys() == expected.keys()
    for k, v in expected.items():
        assert state[k].dtype == (torch.float32 if v.is_floating_point() else v.dtype), k
        assert torch.equal(state[k], v), k


def test_packaged_entry_loads_by_name_default_and_object(packaged):
    entry, _, rounded = packaged
    for spec in ("durn_p.test", "default", entry):
        model = durn.durn_p(weights=spec)
        _same_state(model, rounded)
        assert model.channel_order == "L" and not model.training


def test_hub_pretrained_uses_the_default_entry(packaged, hubconf):
    _, _, rounded = packaged
    _same_state(hubconf.durn_p(pretrained=True), rounded)


def test_restore_defaults_to_the_released_weights(packaged):
    _, _, rounded = packaged
    from durn.restoration import load_network

    _same_state(load_network("durn_p"), rounded)


def test_float16_storage_halves_the_file(packaged, tmp_path, trained_like):
    entry, path, _ = packaged
    full = tmp_path / "full.pt"
    W.save_weights_file(full, "durn_p", trained_like[0].state_dict(), channel_order="L", storage=torch.float32)
    assert path.stat().st_size < 0.55 * full.stat().st_size


def test_modified_packaged_file_is_refused_and_kept(packaged):
    entry, path, _ = packaged
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsHashError, match="was modified"):
        durn.durn_p(weights="durn_p.test")
    assert path.read_bytes() == bytes(data)  # the user's file is not deleted


def test_entry_of_another_network_is_refused(packaged):
    with pytest.raises(ValueError, match="for durn_p, not durn_u"):
        durn.durn_u(weights=packaged[0])


def test_weights_file_of_another_network_is_named(packaged):
    with pytest.raises(CheckpointError, match="holds weights for durn_p, not durn_p_real"):
        durn.durn_p_real(weights=str(packaged[1]))


def test_no_default_entry_explains_how_to_get_weights(monkeypatch):
    monkeypatch.setattr(W, "DEFAULTS", {})
    with pytest.raises(ValueError, match=r"import-authors.*weights='authors'.*DuRN_U_model\.pt"):
        durn.durn_u(weights="default")


def test_no_default_message_names_the_entries_in_progress(monkeypatch):
    """A network whose entries are all below the release floor has no default; its error
    names them, so a user can still load one by name."""
    entry = W.WEIGHTS["durn_p.photos_gaussian"]
    monkeypatch.setattr(W, "DEFAULTS", {})
    monkeypatch.setattr(W, "WEIGHTS", {entry.name: entry})
    with pytest.raises(ValueError, match=r"no pretrained weights for durn_p yet \(work in progress.*'durn_p\.photos_gaussian'"):
        durn.durn_p(weights="default")


@pytest.mark.parametrize("bad", ["durn_p.nonexistent", "no/such/file.pt"])
def test_unknown_names_and_missing_files(bad):
    with pytest.raises((ValueError, FileNotFoundError), match="unknown weights|not found"):
        durn.durn_p(weights=bad)


# --------------------------------------------------------------------------- downloads
@pytest.fixture
def hosted(tmp_path, monkeypatch, trained_like, hub_dir):
    """A registry entry hosted at a file:// URL (no network needed)."""
    model, rounded = trained_like
    server = tmp_path / "server"
    server.mkdir()
    path = server / "durn_p-hosted.pt"
    W.save_weights_file(path, "durn_p", model.state_dict(), channel_order="L")
    entry = _entry_for(path, name="durn_p.hosted", url=path.as_uri())
    monkeypatch.setattr(W, "WEIGHTS", {entry.name: entry})
    return entry, path, rounded


def test_download_verifies_and_caches(hosted):
    entry, source, rounded = hosted
    _same_state(durn.durn_p(weights="durn_p.hosted", progress=False), rounded)
    cached = W.cache_dir() / entry.file
    assert cached.read_bytes() == source.read_bytes()
    source.unlink()  # the cached copy is used from now on
    _same_state(durn.durn_p(weights="durn_p.hosted", progress=False), rounded)
    assert sorted(p.name for p in cached.parent.iterdir()) == [entry.file]  # no temporary files left


def test_tampered_cache_is_deleted_and_fetched_again(hosted, capsys):
    entry, source, rounded = hosted
    W.weights_path(entry, progress=False)
    cached = W.cache_dir() / entry.file
    cached.write_bytes(b"tampered")
    _same_state(durn.durn_p(weights=entry, progress=False), rounded)
    assert cached.read_bytes() == source.read_bytes()
    assert "deleting it and downloading it again" in capsys.readouterr().err


def test_download_with_wrong_hash_is_deleted(hosted):
    entry, source, _ = hosted
    wrong = dataclasses.replace(entry, sha256="0" * 64)
    with pytest.raises(WeightsHashError, match="it was deleted"):
        W.weights_path(wrong, progress=False)
    assert not (W.cache_dir() / entry.file).exists()
    assert list(W.cache_dir().iterdir()) == []


# --------------------------------------------------------------------------- the real registry
@pytest.mark.parametrize("name", sorted(W.WEIGHTS) or [pytest.param(None, marks=pytest.mark.skip("no entries"))])
def test_registry_entry_is_complete_and_verified(name):
    entry = W.WEIGHTS[name]
    assert entry.name.startswith(entry.network + ".")
    assert entry.network in durn.NETWORKS and entry.channel_order in ("L", "RGB", "BGR")
    assert entry.recipe and entry.training_data and entry.hardware and entry.steps > 0
    if entry.in_package:
        path = W.RELEASED_DIR / entry.file
        assert path.stat().st_size == entry.size
        assert W.sha256_file(path) == entry.sha256
        model = durn.get_model(entry.network, weights=name)
        assert model.channel_order == entry.channel_order
    if entry.network == "durn_p":
        expected = {f"{n}/sigma{s}" for n in HELDOUT for s in SIGMAS}
    else:
        expected = {f"{n}/{c}" for n in HELDOUT for c in CONDITIONS[entry.network]}
    for table in (entry.metrics, *entry.baselines.values()):
        assert set(table) == expected
        for cell in table.values():
            assert set(cell) == {"psnr_authors", "ssim_authors", "psnr_standard", "ssim_standard"}


# --------------------------------------------------------------------------- held-out photos
def test_heldout_haze_is_one_scene_at_growing_strengths():
    """Each image keeps its seeded depth field across the three strengths, so the hazy
    input only gets worse with beta; and every call gives the same hazy image."""
    optional_import("skimage")
    from durn.metrics import psnr
    from durn.heldout import degraded, heldout_rgb

    for name in HELDOUT:
        clean = heldout_rgb(name)
        assert clean.shape[0] == 3 and clean.dtype == torch.float32
        assert torch.equal(clean * 255, (clean * 255).round())
        specs = list(CONDITIONS["durn_us"].values())
        hazy = [degraded(clean, name, s) for s in specs]
        assert torch.equal(hazy[1], degraded(clean, name, specs[1]))
        scores = [float(psnr(h, clean, 1.0)) for h in hazy]
        assert scores[0] > scores[1] > scores[2] > 5, scores
        assert bool(((hazy[2] - hazy[0]).abs() > 0).all())   # the same scene, hazier everywhere


def test_measure_restorer_scores_the_output_in_the_tasks_colour_space():
    optional_import("skimage")
    from durn.metrics import compare
    from durn.heldout import degraded, heldout_rgb, measure_restorer

    spec = CONDITIONS["durn_us"]["haze-beta1.2"]
    seen = []
    got = measure_restorer(lambda x: seen.append(x) or x * 0.9, "durn_us", images=("camera",),
                           conditions={"haze-beta1.2": spec})
    assert list(got) == ["camera/haze-beta1.2"]
    clean = heldout_rgb("camera")
    assert torch.equal(seen[0], degraded(clean, "camera", spec))
    want = compare(seen[0] * 0.9, clean, protocol="authors", color_space="rgb")   # durn_us: the authors measured RGB
    assert got["camera/haze-beta1.2"]["psnr_authors"] == pytest.approx(float(want["psnr"]), abs=1e-4)
    with pytest.raises(ValueError, match="no held-out conditions for 'durn_p'"):
        measure_restorer(lambda x: x, "durn_p")


def test_heldout_blur_is_one_path_at_two_lengths():
    optional_import("skimage")
    from durn.heldout import degraded, heldout_rgb

    clean = heldout_rgb("astronaut")
    for kind in ("shake", "linear"):
        short, long = (degraded(clean, "astronaut", CONDITIONS["durn_u"][f"{kind}-{px}px"]) for px in (9, 18))
        assert torch.equal(short * 255, (short * 255).round())              # 8-bit, as a photo
        err = [float(((x - clean) ** 2).mean()) for x in (short, long)]
        assert 0 < err[0] < err[1]                                           # longer blur, further from the photo
        assert torch.equal(degraded(clean, "astronaut", CONDITIONS["durn_u"][f"{kind}-9px"]), short)  # seeded


def test_results_table_columns_follow_the_rows():
    from durn.weights.cards import results_table

    cell = {"psnr_authors": 20.0, "ssim_authors": 0.5, "psnr_standard": 21.0, "ssim_standard": 0.6}
    table = results_table([("a", {"camera/haze-beta0.8": cell}), ("b", {"astronaut/sigma50": cell})])
    assert "| method | camera haze-beta0.8 | astronaut σ50 |" in table
    assert "| a | 20.00 / 0.5000 |  |" in table and "| b |  | 21.00 / 0.6000 |" in table


def test_defaults_point_at_entries_of_their_network():
    for network, name in W.DEFAULTS.items():
        assert W.WEIGHTS[name].network == network


@pytest.mark.skipif(not W.DEFAULTS.get("durn_p"), reason="no released durn_p weights")
def test_released_durn_p_reproduces_its_model_card(one_thread):
    """The card's camera / sigma 50 numbers are recomputed from the packaged file: 0.01 dB
    and 1e-4 SSIM allow for float32 summation order across machines, nothing more."""
    optional_import("skimage")
    from durn.heldout import measure_denoiser

    entry = W.default_weights("durn_p")
    model = durn.durn_p(weights="default")
    got = measure_denoiser(lambda x, sigma: model(x[None])[0], images=("camera",), sigmas=(50,))["camera/sigma50"]
    card = entry.metrics["camera/sigma50"]
    for key in card:
        assert got[key] == pytest.approx(card[key], abs=0.01 if key.startswith("psnr") else 1e-4), key
    noisy_psnr = entry.baselines["noisy input"]["camera/sigma50"]["psnr_authors"]
    assert got["psnr_authors"] > noisy_psnr + 5  # it restores: far above the noisy input


@pytest.mark.parametrize("network, condition, baseline, gain", [
    ("durn_us", "haze-beta1.2", "hazy input", 1),         # it dehazes
    ("durn_p_real", "camera-shot0.004", "noisy input", 3),  # it denoises: the release floor on that cell
    ("durn_s_p", "drops-many", "raindrop input", 2),       # it removes raindrops (+3.69 dB on that cell)
    ("durn_s", "rain-heavy", "rainy input", 5),            # it removes heavy rain (+7.57 dB on that cell)
])
def test_released_colour_network_reproduces_its_model_card(one_thread, network, condition, baseline, gain):
    """One camera cell of the card recomputed from the packaged file, with the same
    tolerances as durn_p's, and its gain over the degraded input."""
    if not W.DEFAULTS.get(network):
        pytest.skip(f"no released {network} weights")
    optional_import("skimage")
    from durn.evaluate import restore_tensor
    from durn.heldout import measure_restorer

    entry = W.default_weights(network)
    model = durn.get_model(network, weights="default").eval()
    key = f"camera/{condition}"
    got = measure_restorer(lambda x: restore_tensor(model, x, "cpu"), network, images=("camera",),
                           conditions={condition: CONDITIONS[network][condition]})[key]
    card = entry.metrics[key]
    for name in card:
        assert got[name] == pytest.approx(card[name], abs=0.01 if name.startswith("psnr") else 1e-4), name
    assert got["psnr_authors"] > entry.baselines[baseline][key]["psnr_authors"] + gain


def test_released_files_ship_with_the_package():
    text = (REPO / "pyproject.toml").read_text()
    assert '"durn.weights" = ["released/*.pt"]' in text


def test_readme_model_cards_are_the_registry():
    """The cards (docs/weights.md) are rendered from the registry (scripts/model_cards.py --readme)."""
    from durn.weights.cards import BEGIN, END, readme_block

    page = (REPO / "docs" / "weights.md").read_text()
    assert page.count(BEGIN) == 1 and page.count(END) == 1, "one block of cards, pasted once"
    assert page[page.index(BEGIN):page.index(END) + len(END)] == readme_block(list(W.WEIGHTS.values()), W.DEFAULTS)


def test_model_card_says_whether_an_entry_is_the_default_an_earlier_release_or_in_progress():
    from durn.weights.cards import model_card

    entry = W.WEIGHTS["durn_p.photos_gaussian"]
    status = lambda defaults: next(l for l in model_card(entry, defaults).splitlines() if l.startswith("| status |"))
    assert "the default of `durn_p`" in status({"durn_p": entry.name})
    assert "earlier release" in status({"durn_p": "durn_p.photos_gaussian_v3"})
    assert "in progress" in status({}) and "--init durn_p.photos_gaussian" in status({})


def test_evaluate_defaults_to_the_released_weights_and_records_them(packaged, tmp_path, capsys):
    import json

    import numpy as np
    from PIL import Image

    from durn.cli import main

    entry, _, _ = packaged
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 24), dtype=np.uint8)).save(data / f"{i}.png")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--network", "durn_p", "--data", str(data), "--degrade", "gaussian:30",
                 "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["weights"] == entry.name and result["weights_sha256"] == entry.sha256
    assert main(["evaluate", "--network", "durn_u", "--data", str(data), "--degrade", "blur"]) == 2
    assert "released no pretrained weights for durn_u" in capsys.readouterr().err


def test_durn_u_card_baseline_unsharp_mask_sharpens_in_8_bit():
    """durn_u's card compares with Pillow's unsharp mask, a blind user's one-line sharpening."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("model_cards", REPO / "scripts" / "model_cards.py")
    cards = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cards)
    edge = torch.zeros(3, 24, 24)
    edge[:, :, 12:] = 0.8
    blurred = torch.nn.functional.avg_pool2d(edge[None], 5, 1, 2, count_include_pad=False)[0]
    out = cards.unsharp_mask()(blurred)
    assert out.shape == blurred.shape and out.dtype == torch.float32
    assert ((out * 255) - (out * 255).round()).abs().max() < 1e-4  # 8-bit levels
    assert out[:, :, 13].mean() > blurred[:, :, 13].mean() + 0.02  # the bright side of the edge lifted
    assert out[:, :, 10].mean() < blurred[:, :, 10].mean()  # the dark side lowered
