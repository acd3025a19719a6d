"""`durn import-authors`: the authors' trainedmodels archive -> durn's weights cache.

The real archive is not reachable offline, so these tests build fake ones with the
authors' key layouts (random values), laid out as the authors' test scripts expect
(trainedmodels/<dataset>/<file>), including a file saved like PyTorch 0.3.1 on a GPU.
"""
import hashlib
import io
import json
import zipfile
from collections import OrderedDict

import pytest
import torch

import durn
from durn.checkpoints import AUTHORS_CHANNEL_ORDER, CheckpointError, authors_layout, to_project_state_dict
from durn.cli import main
from durn.weights import authors
from durn.weights.authors import authors_dir, import_authors, load_authors

pytestmark = pytest.mark.usefixtures("one_thread")

PATHS = {
    "durn_p": "trainedmodels/BSD_gray/DuRN_P_model.pt",
    "durn_p_real": "trainedmodels/RealNoiseHKPoly/DuRN_P_no_norm_model.pt",
    "durn_u": "trainedmodels/GoPro/DuRN_U_model.pt",
    "durn_us": "trainedmodels/RESIDE/DuRN-US_model.pt",
    "durn_s": "trainedmodels/DIDMDN_Data/DuRN_S_model.pt",
    "durn_s_p": "trainedmodels/RainDrop/DuRN_S_P_model.pt",
}
SMALL = ("durn_p", "durn_p_real", "durn_s_p")


def authors_sd(name, seed):
    """The authors' layout with random values (batch counters: distinct integers)."""
    g = torch.Generator().manual_seed(seed)
    return OrderedDict(
        (k, torch.randn(s, generator=g) if len(s) else torch.tensor(i + 1))
        for i, (k, s) in enumerate(authors_layout(name).items())
    )


def save(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_like_pytorch_031(sd, monkeypatch) -> bytes:
    """The legacy (pre-zip) format, pickle protocol 2, tensors on cuda:0, and no
    num_batches_tracked (PyTorch < 0.4 had none): how the authors' files were written."""
    sd = OrderedDict((k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    buffer = io.BytesIO()
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(sd, buffer, _use_new_zipfile_serialization=False, pickle_protocol=2)
    return buffer.getvalue()


def expected_state_dict(name, sd, counters_zero=False):
    if counters_zero:
        sd = {k: (torch.tensor(0) if k.endswith("num_batches_tracked") else v) for k, v in sd.items()}
    return to_project_state_dict(name, dict(sd))[0]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def write_folder(root, members):
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def assert_same_state_dict(got, expected):
    assert list(got) == list(expected)
    for k, v in expected.items():
        assert got[k].dtype == (torch.float32 if v.is_floating_point() else v.dtype), k
        assert got[k].is_contiguous() and torch.equal(got[k], v), k


@pytest.fixture(scope="module")
def originals():
    return {name: authors_sd(name, seed=i) for i, name in enumerate(SMALL)}


@pytest.fixture(scope="module")
def members(originals):
    """Archive members: durn_p as PyTorch 0.3.1 wrote it on a GPU, durn_p_real saved from
    DataParallel (module. prefix), durn_s_p plain."""
    mp = pytest.MonkeyPatch()
    try:
        p = save_like_pytorch_031(originals["durn_p"], mp)
    finally:
        mp.undo()
    return {
        PATHS["durn_p"]: p,
        PATHS["durn_p_real"]: save(OrderedDict(("module." + k, v) for k, v in originals["durn_p_real"].items())),
        PATHS["durn_s_p"]: save(originals["durn_s_p"]),
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory, members):
    return write_zip(tmp_path_factory.mktemp("archive") / "trainedmodels.zip", members)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A temporary torch hub dir (where weights='authors' looks), restored afterwards."""
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)
    torch.hub.set_dir(str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_authors_dir_follows_the_torch_hub_dir(hub):
    assert authors_dir() == hub / "checkpoints" / "durn-authors"


def test_zip_import_converts_exactly_and_records_hashes(hub, archive, members, originals):
    report = import_authors(archive)
    assert {i.network: i.status for i in report} == dict.fromkeys(SMALL, "imported")
    assert report.skipped == []
    manifest = json.loads((authors_dir() / "manifest.json").read_text())
    assert sorted(manifest) == sorted(SMALL)
    for item in report:
        name = item.network
        sd, order = load_authors(name)
        assert order == AUTHORS_CHANNEL_ORDER[name]
        # durn_p was saved without batch counters: they load as 0, as BatchNorm does
        assert_same_state_dict(sd, expected_state_dict(name, originals[name], counters_zero=name == "durn_p"))
        data = item.path.read_bytes()
        assert item.path == authors_dir() / f"{name}.pt"
        entry = manifest[name]
        assert entry["sha256"] == item.sha256 == sha256(data)
        assert entry["size"] == len(data) and entry["file"] == f"{name}.pt"
        assert entry["source"] == item.source == PATHS[name]
        assert entry["source_sha256"] == sha256(members[PATHS[name]])
        payload = torch.load(item.path, weights_only=True)
        assert payload["format"] == "durn-weights-1" and payload["network"] == name
        assert payload["value_range"] == [0.0, 1.0] and payload["source"] == PATHS[name]
    assert [load_authors(n)[1] for n in SMALL] == ["L", "RGB", "BGR"]
    # the converted weights are what the networks load, and what weights="authors" resolves to
    sd, order = durn.weights.resolve_weights("durn_p_real", "authors")
    model = durn.load_reference("durn_p_real", sd)
    assert torch.equal(model.tail[3].weight, originals["durn_p_real"]["conv4.conv2d.weight"])
    assert order == "RGB"


def test_reimport_from_the_unpacked_folder_changes_nothing(hub, archive, members, tmp_path):
    import_authors(archive)
    before = {p.name: p.read_bytes() for p in authors_dir().iterdir()}
    folder = write_folder(tmp_path / "unpacked", members)
    # the folder's paths differ from the zip's (no trainedmodels/ prefix): still the same files
    report = import_authors(folder / "trainedmodels")
    assert {i.network: i.status for i in report} == dict.fromkeys(SMALL, "already imported")
    assert {p.name: p.read_bytes() for p in authors_dir().iterdir()} == before


def test_different_weights_are_refused_unless_forced(hub, archive, tmp_path):
    import_authors(archive)
    old = (authors_dir() / "durn_p.pt").read_bytes()
    new = authors_sd("durn_p", seed=99)
    folder = write_folder(tmp_path / "other", {"BSD_gray/DuRN_P_model.pt": save(new)})
    with pytest.raises(CheckpointError, match=r"durn_p\.pt .*differs from BSD_gray/DuRN_P_model\.pt.*--force"):
        import_authors(folder)
    assert (authors_dir() / "durn_p.pt").read_bytes() == old
    report = import_authors(folder, force=True)
    assert [(i.network, i.status) for i in report] == [("durn_p", "replaced")]
    assert_same_state_dict(load_authors("durn_p")[0], expected_state_dict("durn_p", new))
    # the other networks' entries are kept
    manifest = json.loads((authors_dir() / "manifest.json").read_text())
    assert sorted(manifest) == sorted(SMALL) and manifest["durn_p"]["source"] == "BSD_gray/DuRN_P_model.pt"
    assert load_authors("durn_s_p")[1] == "BGR"


def test_a_changed_cached_file_is_detected(hub, archive):
    import_authors(archive)
    path = authors_dir() / "durn_p_real.pt"
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["tail.3.bias"] += 1e-3  # still a valid file, with other weights
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="changed since it was imported"):
        load_authors("durn_p_real")
    with pytest.raises(CheckpointError, match="changed since import"):
        import_authors(archive)
    assert {i.network: i.status for i in import_authors(archive, force=True)}["durn_p_real"] == "replaced"
    assert load_authors("durn_p_real")[1] == "RGB"


def test_bad_files_are_reported_and_skipped(hub, tmp_path, members, originals):
    nan = dict(originals["durn_p"])
    nan["conv1.conv2d.weight"] = nan["conv1.conv2d.weight"].clone()
    nan["conv1.conv2d.weight"][0, 0, 0, 0] = float("nan")
    real = members[PATHS["durn_p_real"]]
    bad = {
        "trainedmodels/GoPro/DuRN_U_model.pt": real[: len(real) // 2],
        "extra/resnet18.pth": save({"conv1.weight": torch.randn(4, 3, 3, 3), "fc.weight": torch.randn(10, 4)}),
        "extra/whole_model.pt": save(torch.nn.Linear(2, 2)),
        "extra/empty.pt": b"",
        "extra/nan.pt": save(nan),
        "extra/durn_own_layout.pt": save(expected_state_dict("durn_p_real", originals["durn_p_real"])),
    }
    ignored = {"__MACOSX/trainedmodels/._DuRN_P_model.pt": b"\0\5\26\7", "trainedmodels/readme.txt": b"hi"}
    archive = write_zip(tmp_path / "mixed.zip", {PATHS["durn_p_real"]: real, **bad, **ignored})
    report = import_authors(archive)
    assert [(i.network, i.status) for i in report] == [("durn_p_real", "imported")]
    reasons = {s.source: s.reason for s in report.skipped}
    assert sorted(reasons) == sorted(bad)
    assert "truncated or corrupted" in reasons["trainedmodels/GoPro/DuRN_U_model.pt"]
    assert "not a checkpoint of any DuRN network" in reasons["extra/resnet18.pth"]
    assert "Python objects other than tensors" in reasons["extra/whole_model.pt"]
    assert "empty" in reasons["extra/empty.pt"]
    assert "NaN" in reasons["extra/nan.pt"]
    assert "durn's own layout" in reasons["extra/durn_own_layout.pt"]
    assert all("\n" not in r for r in reasons.values())


def test_oversized_members_are_not_read(hub, tmp_path, members, monkeypatch):
    monkeypatch.setattr(authors, "MAX_MEMBER_BYTES", len(members[PATHS["durn_p_real"]]))
    report = import_authors(write_zip(tmp_path / "a.zip", members))
    assert [i.network for i in report] == ["durn_p_real"]
    reasons = {s.source: s.reason for s in report.skipped}
    assert sorted(reasons) == sorted([PATHS["durn_p"], PATHS["durn_s_p"]])
    assert f"more than the {authors.MAX_MEMBER_BYTES} bytes allowed" in reasons[PATHS["durn_s_p"]]


def test_nothing_recognisable_raises_and_writes_nothing(hub, tmp_path):
    foreign = write_zip(tmp_path / "foreign.zip", {"models/net.pth": save({"fc.weight": torch.randn(3, 2)}),
                                                  "README": b"x"})
    with pytest.raises(CheckpointError) as err:
        import_authors(foreign)
    message = str(err.value)
    assert "searched 1 .pt/.pth file" in message and "models/net.pth: not a checkpoint" in message
    for path in PATHS.values():  # says what was expected
        assert path in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no .pt/.pth files"):
        import_authors(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(CheckpointError, match="neither a folder, a zip or tar archive"):
        import_authors(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError):
        import_authors(tmp_path / "missing.zip")
    assert not authors_dir().exists()


def test_two_different_files_for_one_network_are_an_error(hub, tmp_path, members):
    one, two = save(authors_sd("durn_p", 5)), save(authors_sd("durn_p", 6))
    folder = write_folder(tmp_path / "dl", {"a/BSD_gray/DuRN_P_model.pt": one, "b/BSD_gray/DuRN_P_model.pt": two,
                                            PATHS["durn_p_real"]: members[PATHS["durn_p_real"]]})
    with pytest.raises(CheckpointError, match=r"2 different checkpoints of durn_p .*a/BSD_gray/DuRN_P_model\.pt, "
                                              r"b/BSD_gray/DuRN_P_model\.pt"):
        import_authors(folder)
    assert not authors_dir().exists()
    # importing the wanted file on its own works
    assert [i.status for i in import_authors(folder / "a/BSD_gray/DuRN_P_model.pt")] == ["imported"]
    # byte-identical copies are one file
    copies = write_folder(tmp_path / "copies", {"x/DuRN_P_model.pt": one, "BSD_gray/DuRN_P_model.pt": one})
    report = import_authors(copies)
    assert [(i.network, i.status, i.source) for i in report] == [
        ("durn_p", "already imported", "DuRN_P_model.pt")]
    assert [(s.source, s.reason) for s in report.skipped] == [
        ("x/DuRN_P_model.pt", "the same file as BSD_gray/DuRN_P_model.pt")]


def test_all_six_networks_and_the_other_training_sets(hub, tmp_path):
    originals = {name: authors_sd(name, seed=10 + i) for i, name in enumerate(PATHS)}
    files = {PATHS[n]: save(sd) for n, sd in originals.items()}
    files["trainedmodels/DCPDNData/DuRN-US_model.pt"] = save(authors_sd("durn_us", 50))
    files["trainedmodels/DDN_Data/DuRN_S_model.pt"] = save(authors_sd("durn_s", 51))
    report = import_authors(write_folder(tmp_path / "dl", files))
    assert {i.network: i.source for i in report} == PATHS
    assert sorted(s.source for s in report.skipped) == ["trainedmodels/DCPDNData/DuRN-US_model.pt",
                                                        "trainedmodels/DDN_Data/DuRN_S_model.pt"]
    assert all("load_reference" in s.reason for s in report.skipped)
    for name, sd in originals.items():
        got, order = load_authors(name)
        assert order == AUTHORS_CHANNEL_ORDER[name]
        assert_same_state_dict(got, expected_state_dict(name, sd))


def test_not_imported_says_where_to_get_the_archive(hub):
    with pytest.raises(FileNotFoundError, match=r"durn_u are not imported: download the trainedmodels archive from "
                                                r"https://drive\.google\.com/.*durn import-authors"):
        load_authors("durn_u")


def test_cli(hub, archive, tmp_path, capsys):
    assert main(["import-authors", str(archive)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3
    for line, name in zip(lines, SMALL):
        sha = sha256((authors_dir() / f"{name}.pt").read_bytes())
        assert line.split()[:2] == [name, "imported"] and PATHS[name] in line and f"sha256 {sha[:12]}" in line
    assert "not in this source: durn_u (trainedmodels/GoPro/DuRN_U_model.pt)" in err
    assert main(["import-authors", str(archive)]) == 0
    assert capsys.readouterr().out.count("already imported") == 3

    other = tmp_path / "other"
    write_folder(other, {"DuRN_P_model.pt": save(authors_sd("durn_p", 7)), "junk.pt": b"junk"})
    assert main(["import-authors", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: not replacing" in err and "--force" in err
    assert main(["import-authors", str(other), "--force", "--dest", str(tmp_path / "elsewhere")]) == 0
    out, err = capsys.readouterr()
    assert "durn_p" in out and "imported" in out and (tmp_path / "elsewhere" / "durn_p.pt").is_file()
    assert "skipped junk.pt: not a PyTorch checkpoint" in err
    assert main(["import-authors", str(other), "--force"]) == 0
    assert "replaced" in capsys.readouterr().out

    assert main(["import-authors", str(tmp_path / "nope.zip")]) == 2
    assert "nope.zip not found" in capsys.readouterr().err
