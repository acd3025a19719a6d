"""The fast path by default: durn.restore / Restore run the fused network, built once per
process and network, rebuilt when the weights change; tuning recorded on disk, bounded in
time; optimized networks pickle to the size of their weights."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import durn
from durn.inference import clear_tuning_cache, tuner, tuning_cache
from durn.restoration import fast

pytestmark = pytest.mark.usefixtures("one_thread")

# The fused network's float32 output against the eager network's (docs/inference.md: 2e-5
# from the float64 result, which eager float32 also meets).
TOL = 2e-5


def _untrained(name):
    torch.manual_seed(1)
    return getattr(durn, name)().eval()


@pytest.mark.parametrize("name", ["durn_p", "durn_us"])
def test_restore_runs_the_fused_network_within_float32_rounding(name):
    model = _untrained(name)
    x = torch.rand(1, 3, 37, 53)
    eager = durn.restore(model, x, optimize=False)
    assert model not in fast._FAST
    got = durn.restore(model, x)
    held = fast._FAST[model]["cpu"][1]
    assert isinstance(held, durn.inference.FusedDuRN)
    assert (got - eager).abs().max().item() <= TOL
    assert durn.restore(model, x).equal(got)  # the same fused copy again
    assert fast._FAST[model]["cpu"][1] is held


def test_changed_weights_are_optimized_again():
    model = _untrained("durn_p")
    x = torch.rand(1, 3, 40, 41)
    durn.restore(model, x)
    first = fast._FAST[model]["cpu"][1]
    state = {k: v * 1.1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    got = durn.restore(model, x)
    assert fast._FAST[model]["cpu"][1] is not first
    assert (got - durn.restore(model, x, optimize=False)).abs().max().item() <= TOL


def test_what_cannot_be_fused_runs_eagerly():
    class Plain(torch.nn.Module):
        in_channels = 3

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return x + 0.1 * self.conv(x)

    plain = Plain().eval()
    x = torch.rand(3, 20, 21)
    assert durn.restore(plain, x).equal(durn.restore(plain, x, optimize=False))
    assert plain not in fast._FAST
    half = _untrained("durn_p").half()
    assert fast.fast_network(half, torch.device("cpu"), True) is None


def test_optimize_must_be_a_bool():
    with pytest.raises(TypeError, match="optimize must be True or False"):
        durn.restore(_untrained("durn_p"), torch.rand(3, 8, 8), optimize="yes")
    with pytest.raises(TypeError, match="optimize must be True or False"):
        durn.Restore(_untrained("durn_p"), optimize=1)


def test_restore_module_pickles_the_eager_network_only():
    model = _untrained("durn_us")
    module = durn.Restore(model)
    x = torch.rand(3, 36, 44)
    y = module(x)
    assert model in fast._FAST  # the fused copy exists in this process ...
    blob = pickle.dumps(module)
    assert len(blob) < 1.05 * len(pickle.dumps(model))  # ... but does not travel
    again = pickle.loads(blob)
    assert again.optimize and (again(x) - y).abs().max().item() <= TOL


def test_optimized_network_pickles_to_its_weights_and_rebuilds_its_transforms():
    model = _untrained("durn_us")
    optimized = durn.optimize_for_inference(model, algorithms="transform")
    assert any(layer.transform is not None for layer in optimized.fused_convs())
    blob = pickle.dumps(optimized)
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert len(blob) < 1.1 * weights
    again = pickle.loads(blob)
    assert again.algorithm_choices() == optimized.algorithm_choices()
    assert [m.transform is not None for m in again.fused_convs()] == \
        [m.transform is not None for m in optimized.fused_convs()]
    x = torch.rand(1, 3, 45, 38)
    assert again(x).equal(optimized(x))
    module = durn.Restore(optimized)  # an optimized network handed to Restore runs as it is
    assert len(pickle.dumps(module)) < 1.1 * weights
    assert pickle.loads(pickle.dumps(module))(x[0]).equal(optimized(x)[0])


def test_shape_only_passes_do_not_poison_the_transform_constants():
    """A FakeTensorMode pass (the tuner's recall, torch.compile's tracing) that asks for a
    tile's DFT or Winograd matrices first must not leave fake tensors in their caches."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from durn.ops import fft_conv, winograd_conv

    fft_conv.fourier_matrices.__wrapped__.cache_clear()
    winograd_conv.winograd_matrices.__wrapped__.cache_clear()
    with FakeTensorMode():
        fft_conv.fourier_matrices(40, 9)
        winograd_conv.winograd_matrices(4, 3)
    w = torch.randn(4, 3, 9, 9, dtype=torch.float64)
    x = torch.rand(1, 3, 50, 47, dtype=torch.float64)
    want = torch.nn.functional.conv2d(x, w, padding=4)
    got = fft_conv.fft_conv(w, 1, 40)(x, None, padding=4)
    assert (got - want).abs().max().item() < 1e-10
    w3 = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    got3 = winograd_conv.winograd_conv(w3, 1, 4)(x, None, padding=1)
    assert (got3 - torch.nn.functional.conv2d(x, w3, padding=1)).abs().max().item() < 1e-10


# -- the on-disk record ---------------------------------------------------------------------

_OPTIMIZE = """
import json, sys, time, torch, durn
torch.manual_seed(1)
model = durn.durn_p().eval()
start = time.perf_counter()
fast = durn.optimize_for_inference(model, tune_size=48)
print(json.dumps({"measured": sorted(fast.tuning_report), "choices": fast.algorithm_choices(),
                  "seconds": time.perf_counter() - start}))
"""


def _optimize_in_a_process(record):
    env = {**os.environ, "DURN_TUNING_CACHE": str(record), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _OPTIMIZE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_measures_nothing(tmp_path):
    record = tmp_path / "tuning.json"
    first = _optimize_in_a_process(record)
    assert first["measured"], "the first process measures"
    doc = json.loads(record.read_text())
    assert doc["format"] == tuning_cache.FORMAT and len(doc["choices"]) >= 1
    second = _optimize_in_a_process(record)
    assert second["measured"] == [] and second["choices"] == first["choices"]
    assert not [p for p in tmp_path.iterdir() if p.name != "tuning.json"]  # no temporary files left


@pytest.mark.parametrize("broken", ["{not json", json.dumps({"format": "durn-tuning-0", "choices": {}}), "[]"])
def test_a_corrupt_or_stale_record_is_ignored_and_rewritten(tmp_path, monkeypatch, broken):
    record = tmp_path / "tuning.json"
    record.write_text(broken)
    monkeypatch.setenv("DURN_TUNING_CACHE", str(record))
    clear_tuning_cache()
    again = durn.optimize_for_inference(_untrained("durn_p"), tune_size=48)
    assert again.tuning_report  # measured
    assert json.loads(record.read_text())["format"] == tuning_cache.FORMAT  # and rewritten


def test_a_recorded_choice_that_is_no_longer_a_candidate_is_measured_again(tmp_path, monkeypatch):
    record = tmp_path / "tuning.json"
    monkeypatch.setenv("DURN_TUNING_CACHE", str(record))
    clear_tuning_cache()
    model = _untrained("durn_p")
    durn.optimize_for_inference(model, tune_size=48)
    doc = json.loads(record.read_text())
    doc["choices"] = {k: "fourier:999" for k in doc["choices"]}
    record.write_text(json.dumps(doc))
    clear_tuning_cache()
    again = durn.optimize_for_inference(model, tune_size=48)
    assert again.tuning_report  # measured again
    assert "fourier:999" not in json.loads(record.read_text())["choices"].values()


def test_off_disables_the_record(tmp_path, monkeypatch):
    monkeypatch.setenv("DURN_TUNING_CACHE", "off")
    assert tuning_cache.path() is None
    clear_tuning_cache()
    durn.optimize_for_inference(_untrained("durn_p"), tune_size=48)
    assert not list(tmp_path.iterdir())


def test_the_budget_bounds_measuring_and_leaves_defaults_unrecorded(tmp_path, monkeypatch):
    record = tmp_path / "tuning.json"
    monkeypatch.setenv("DURN_TUNING_CACHE", str(record))
    clear_tuning_cache()
    model = _untrained("durn_p")
    optimized = durn.optimize_for_inference(model, tune_size=48, tune_budget_s=0.0)
    assert optimized.tuning_report == {}
    layers = {m.source: m for m in optimized.fused_convs()}
    assert set(optimized.tuning_defaulted) and set(optimized.tuning_defaulted) <= set(layers)
    for name in optimized.tuning_defaulted:
        layer = layers[name]
        assert layer.algorithm == ("direct" if layer.kernel_size < 7 else layer.algorithm)
        assert layer.kernel_size < 7 or layer.algorithm.startswith("fourier:")
    assert not record.exists()  # defaults are not measurements
    x = torch.rand(1, 1, 33, 35)
    assert (optimized(x) - model(x)).abs().max().item() <= TOL


@pytest.mark.parametrize("kernel, expected", [(3, "direct"), (5, "direct"), (7, "fourier"), (11, "fourier")])
def test_default_algorithm_by_kernel(kernel, expected):
    from durn.inference import FusedConv2d

    layer = FusedConv2d(torch.randn(8, 8, kernel, kernel), torch.zeros(8), stride=1, padding=kernel // 2,
                        dilation=1, padding_mode="zeros", backend="torch")
    candidates = layer.candidates(torch.rand(1, 8, 64, 64))
    choice = tuner.default_algorithm(layer, candidates)
    assert choice in candidates and choice.partition(":")[0] == expected
    if expected == "fourier":  # the tile with the fewest multiply-adds: listed first
        assert choice == next(c for c in candidates if c.startswith("fourier:"))


def test_uint8_photo_through_the_default_path_matches_eager_to_one_level():
    model = _untrained("durn_s_p")
    photo = (np.random.default_rng(0).random((31, 46, 3)) * 255).astype(np.uint8)
    a = durn.restore(model, photo).astype(int)
    b = durn.restore(model, photo, optimize=False).astype(int)
    assert np.abs(a - b).max() <= 1


def test_bfloat16_networks_optimize_on_cpu():
    """aten::_add_relu_ fails for bfloat16 on CPU; the direct conv's epilogue avoids it there."""
    model = _untrained("durn_p").to(torch.bfloat16)
    optimized = durn.optimize_for_inference(model, algorithms="direct")
    x = torch.rand(1, 1, 40, 37, dtype=torch.bfloat16)
    # bf16 keeps 8 bits of mantissa: one unit in the last place near 1.0 is 2**-7.
    assert (optimized(x).float() - model(x).float()).abs().max().item() <= 2 ** -7
