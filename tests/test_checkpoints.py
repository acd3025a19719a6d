"""The authors' checkpoint layouts, their conversion, and the errors for bad files."""

import pytest
import torch

import durn
from conftest import NETWORK_NAMES
from durn.checkpoints import (
    AUTHORS_CHANNEL_ORDER,
    CheckpointError,
    authors_layout,
    canonical_state_dict,
    project_layout,
)


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_authors_layout_matches_reference_keys(reference, name):
    ref = reference.keys(name)
    expected = {key: tuple(shape) for key, shape in ref["keys"]}
    assert authors_layout(name) == expected
    assert ref["params"] == durn.NETWORKS[name].params


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_every_key_maps_one_to_one(name):
    # Two authors' keys landing on one project key would silently drop weights.
    assert len(authors_layout(name)) == len(project_layout(name))


def _authors_sd(name, seed=3):
    """A state dict in the authors' layout with distinct random values per tensor."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(s, generator=g) if len(s) else torch.tensor(i)
        for i, (k, s) in enumerate(authors_layout(name).items())
    }


def test_wrapped_dataparallel_file_loads(tmp_path):
    sd = _authors_sd("durn_us")
    path = tmp_path / "DuRN_US_model.pt"
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()}}, path)
    model = durn.load_reference("durn_us", path)
    assert not model.training
    assert torch.equal(model.stages[0][4].t1[2].weight, sd["rud5.up_conv.conv2d.weight"])
    assert torch.equal(model.stages[0][11].t2[0].se.fc[2].bias, sd["rud12.se.se.fc.2.bias"])
    assert torch.equal(model.tail[8].weight, sd["end_conv.weight"])


def test_mapping_puts_every_tensor_in_its_place():
    sd = _authors_sd("durn_s_p")
    model = durn.load_reference("durn_s_p", sd)
    loaded = model.state_dict()
    # Every authors' tensor reaches exactly one project tensor with identical values.
    remaining = {k: v for k, v in loaded.items()}
    for key, value in sd.items():
        hits = [pk for pk, pv in remaining.items() if pv.shape == value.shape and torch.equal(pv, value)]
        assert len(hits) == 1, key
        del remaining[hits[0]]
    assert model.channel_order == "BGR" == AUTHORS_CHANNEL_ORDER["durn_s_p"]


def test_project_layout_of_durn_s_p_is_rgb(tmp_path):
    path = tmp_path / "ours.pt"
    torch.save(durn.durn_s_p().state_dict(), path)
    assert durn.load_reference("durn_s_p", path).channel_order == "RGB"


def test_project_layout_round_trip(tmp_path):
    model = durn.durn_p_real()
    path = tmp_path / "mine.pt"
    torch.save(model.state_dict(), path)
    loaded = durn.load_reference("durn_p_real", path)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


def test_checkpoint_of_another_network_names_it(tmp_path):
    path = tmp_path / "DuRN_US_model.pt"
    torch.save(_authors_sd("durn_us"), path)
    with pytest.raises(CheckpointError, match=r"checkpoint of durn_us .*not of durn_u"):
        durn.load_reference("durn_u", path)


def test_durn_p_and_durn_p_real_are_told_apart():
    with pytest.raises(CheckpointError, match="checkpoint of durn_p_real"):
        durn.load_reference("durn_p", _authors_sd("durn_p_real"))


def test_partial_checkpoint_lists_missing_keys():
    sd = _authors_sd("durn_s")
    del sd["block3.se.se.fc.0.weight"]
    sd["conv4.conv2d.weight"] = torch.zeros(3, 64, 5, 5)
    with pytest.raises(CheckpointError) as info:
        durn.load_reference("durn_s", sd)
    msg = str(info.value)
    assert "missing 1 keys" in msg and "block3.se.se.fc.0.weight" in msg
    assert "conv4.conv2d.weight (3, 64, 5, 5) (expected (3, 64, 3, 3))" in msg


def test_truncated_file(tmp_path):
    path = tmp_path / "DuRN_P_model.pt"
    torch.save(_authors_sd("durn_p"), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        durn.load_reference("durn_p", path)


def test_file_that_is_no_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        durn.load_reference("durn_p", path)


def test_empty_file_and_folder(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        durn.load_reference("durn_p", empty)
    with pytest.raises(CheckpointError, match="folder"):
        durn.load_reference("durn_p", tmp_path)
    with pytest.raises(FileNotFoundError):
        durn.load_reference("durn_p", tmp_path / "missing.pt")


class _NotATensor:
    pass


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save({"model": _NotATensor()}, path)
    with pytest.raises(CheckpointError, match="weights_only|arbitrary code"):
        durn.load_reference("durn_p", path)


def test_nan_weights_are_refused():
    sd = _authors_sd("durn_p_real")
    sd["block2.up_conv.conv2d.weight"][0, 0, 0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="block2.up_conv.conv2d.weight.*NaN"):
        durn.load_reference("durn_p_real", sd)


def test_state_dict_without_tensors():
    with pytest.raises(CheckpointError, match="expected a state dict"):
        canonical_state_dict({"epoch": 3, "lr": 0.1})


def test_builder_accepts_checkpoint_path(tmp_path):
    path = tmp_path / "DuRN_P_model.pt"
    sd = _authors_sd("durn_p")
    torch.save(sd, path)
    model = durn.durn_p(weights=path)
    assert torch.equal(model.stem[0].weight, sd["conv1.conv2d.weight"])
    with pytest.raises(FileNotFoundError):
        durn.durn_p(weights=tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="trainedmodels"):
        durn.durn_p(weights="DEFAULT")


@pytest.mark.parametrize("name", ["durn_p", "durn_s_p"])
def test_pytorch_0_3_files_without_batch_counters_load(tmp_path, name):
    """The authors saved with PyTorch 0.3.1, which wrote no BatchNorm num_batches_tracked."""
    sd = {k: v for k, v in _authors_sd(name).items() if not k.endswith("num_batches_tracked")}
    assert len(sd) < len(authors_layout(name))
    torch.save(sd, tmp_path / "old.pt")
    model = durn.load_reference(name, tmp_path / "old.pt")
    counters = {k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}
    assert counters and all(int(v) == 0 for v in counters.values())
    running = [k for k in sd if k.endswith("running_var")][0]
    assert any(torch.equal(v, sd[running]) for v in model.state_dict().values())
    with pytest.raises(CheckpointError, match="not of durn_p_real|does not match durn_p_real"):
        durn.load_reference("durn_p_real", sd)  # still no other network's file


@pytest.mark.parametrize("change", ["extra", "missing", "shape"])
def test_one_wrong_key_in_durns_layout_is_the_one_reported(change):
    """Issue 12.8: compared with durn's own layout, not with every key of the authors'."""
    sd = durn.durn_p_real().state_dict()
    key = "stages.0.3.t1.0.weight"
    if change == "extra":
        sd["stages.0.3.spare.weight"] = torch.zeros(2)
    elif change == "missing":
        del sd[key]
    else:
        sd[key] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError) as info:
        durn.load_reference("durn_p_real", sd)
    msg = str(info.value)
    assert "durn's own layout of durn_p_real" in msg and len(msg.splitlines()) == 2, msg
    assert {"extra": "1 unexpected keys, e.g. ['stages.0.3.spare.weight']", "missing": f"missing 1 keys, e.g. ['{key}']",
            "shape": f"{key} (3, 3) (expected"}[change] in msg


def test_compile_and_dataparallel_prefixes_in_any_order_load():
    sd = durn.durn_p_real().state_dict()
    for prefix in ("_orig_mod.module.", "module._orig_mod.", "module.module."):
        model = durn.load_reference("durn_p_real", {prefix + k: v for k, v in sd.items()})
        assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())


def test_a_text_file_is_not_called_a_pickled_model(tmp_path):
    """Issue 12.8: torch.load fails to unpickle text too; that is no 'pickled model'."""
    for text in ('{"lr": 0.1}\n', "# my notes\n", "0.5 0.25\n"):
        path = tmp_path / "notes.pt"
        path.write_text(text)
        with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as info:
            durn.load_reference("durn_p", path)
        assert "arbitrary code" not in str(info.value)
