"""benchmarks/ (not timed here): what each filter selects, the stopping rule of the
interleaved rounds, a user's own model end to end, and the report's spread and warnings."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import REPO
import durn

BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import report  # noqa: E402


def _collect(*args) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", str(BENCH), "--collect-only", "-q", "-p", "no:cacheprovider",
                           *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def _case_networks(items: list[str]) -> set[str]:
    return {i.split("[", 1)[1].split("-", 1)[0] for i in items if "test_network[" in i}


def test_quick_default_is_one_network_one_size():
    items = _collect()
    assert _case_networks(items) == {common.QUICK_NETWORK}
    sizes = {int(i.split("[", 1)[1].split("-")[1]) for i in items if "test_network[" in i or "test_op[" in i}
    assert sizes == {common.QUICK_SIZE}
    ops = {i.split("[", 1)[1].split("-")[0] for i in items if "test_op[" in i}
    bench_ops = pytest.importorskip("bench_ops")
    assert ops == {c for c, (owners, _) in bench_ops.CASES.items() if common.QUICK_NETWORK in owners}
    assert any("test_cli[cli]" in i for i in items)  # the command: one skipped item saying --bench-full


def test_network_filter_applies_to_every_file():
    items = _collect("--bench-networks", "durn_u", "--bench-sizes", "64")
    assert _case_networks(items) == {"durn_u"}
    bench_ops = pytest.importorskip("bench_ops")
    ops = {i.split("[", 1)[1].split("-")[0] for i in items if "test_op[" in i}
    assert ops == {c for c, (owners, _) in bench_ops.CASES.items() if "durn_u" in owners} != set()
    assert {int(i.split("[", 1)[1].split("-")[1]) for i in items if "test_op[" in i} == {64}


def test_bad_filters_are_one_clear_error():
    for args, expected in ((["--bench-networks", "nope"], "unknown network"),
                           (["--bench-model", "no_such_module_xyz:build"], "cannot import"),
                           (["--bench-model", "durn"], "package.module:builder"),
                           (["--bench-sizes", "big"], "integers")):
        proc = subprocess.run([sys.executable, "-m", "pytest", str(BENCH), "--collect-only", "-q",
                               "-p", "no:cacheprovider", *args], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0
        assert expected in proc.stdout + proc.stderr, (args, proc.stdout[-1500:], proc.stderr[-1500:])


def _conv_signatures(model) -> set[tuple]:
    return {(m.in_channels, m.out_channels, m.kernel_size[0], m.dilation[0], m.stride[0])
            for m in model.modules() if isinstance(m, torch.nn.Conv2d)}


def test_each_operator_case_is_a_layer_of_its_networks():
    bench_ops = pytest.importorskip("bench_ops")
    for case, (owners, make) in bench_ops.CASES.items():
        tensors, kwargs, upscale = make(32, torch.float32, torch.device("cpu"))
        for net in owners:
            model = durn.get_model(net)
            if case.startswith("se"):
                hidden, channels = tensors["w1"].shape
                fcs = [m.fc for m in model.modules() if type(m).__name__ == "SqueezeExcitation"]
                assert any((fc[0].in_features, fc[0].out_features) == (channels, hidden) for fc in fcs), (case, net)
                continue
            o, c, k, _ = tensors["weight"].shape
            assert (c, o, k, kwargs["dilation"], kwargs["stride"]) in _conv_signatures(model), (case, net)


def test_rounds_stop_when_stable_or_over_budget():
    stable = common.CaseRounds("network")
    for r in range(common.MIN_ROUNDS):
        assert stable.skip_reason(r, fixed=False) is None
        for v in ("a", "b"):
            stable.add(v, [0.100, 0.1001])
    reason = stable.skip_reason(common.MIN_ROUNDS, fixed=False)
    assert reason and reason.startswith("stable")
    assert stable.skip_reason(common.MIN_ROUNDS + 1, fixed=False) == reason  # later rounds stay stopped

    noisy = common.CaseRounds("op")
    for r in range(common.MIN_ROUNDS):
        assert noisy.skip_reason(r, fixed=False) is None
        noisy.add("a", [0.001, 0.003])  # an IQR of the median's size: never stable
    assert noisy.skip_reason(common.MIN_ROUNDS, fixed=False) is None  # under the budget: on
    noisy.add("a", [common.CASE_BUDGET_S["op"]])
    assert noisy.skip_reason(common.MIN_ROUNDS + 1, fixed=False).startswith("time budget")
    assert noisy.skip_reason(common.MIN_ROUNDS + 2, fixed=True) is None  # --bench-rounds N runs N


def test_spread_notch():
    s = common.spread([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s["min"], s["q1"], s["median"], s["q3"], s["max"]) == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert s["iqr_rel"] == pytest.approx(2 / 3)
    assert s["notch"] == pytest.approx(1.57 * 2 / 5 ** 0.5 / 3)


USER_MODELS = textwrap.dedent("""
    import torch
    from torch import nn

    import durn


    def small_durn():
        return durn.durn_p_real()


    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return x + self.conv(x)


    def plain():
        return Plain()
""")


def test_a_users_own_model_end_to_end(tmp_path):
    (tmp_path / "my_models.py").write_text(USER_MODELS)
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               OMP_NUM_THREADS="1", DURN_TUNING_CACHE=str(tmp_path / "tuning.json"))
    proc = subprocess.run([sys.executable, "-m", "pytest", str(BENCH / "bench_networks.py"), "--benchmark-enable",
                           "-q", "-p", "no:cacheprovider", "--bench-model", "my_models:plain",
                           "--bench-model", "my_models:small_durn", "--bench-sizes", "24", "--bench-rounds", "1",
                           "--bench-no-compile", f"--benchmark-json={out}", "-rs"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "not a durn.nn.DuRN" in proc.stdout  # the plain module's fast-path variants say why they skip
    rows = [b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]]
    by_model = {}
    for row in rows:
        by_model.setdefault(row["network"], set()).add(row["variant"])
    assert by_model["my_models:plain"] == {"eager"}
    assert {"eager", "opt-torch", "fast", "restore-api"} <= by_model["my_models:small_durn"]
    assert "eager-authors" not in by_model["my_models:small_durn"]  # the authors' structure: the six networks only
    for row in rows:
        assert row["costs"]["max_abs_diff_vs_eager"] < 1e-4, row
    text = report.report([out])
    assert "**my_models:small_durn**, 24x24, float32, cpu:" in text
    assert "| fast |" in text and "optimize" in text


def _fake_results(tmp_path, spread: float):
    benches = []
    for variant, base in (("eager", 0.2), ("compile", 0.15), ("fast", 0.1)):
        data = [base * (1 - spread), base, base * (1 + spread)] * 2
        benches.append({"stats": {"data": data, "median": base},
                        "extra_info": {"kind": "network", "network": "durn_p", "size": 128, "dtype": "float32",
                                       "device": "cpu", "variant": variant, "round": 0, "costs": {}}})
    path = tmp_path / f"fake-{spread}.json"
    path.write_text(json.dumps({"machine_info": {}, "datetime": "2026-12-02", "benchmarks": benches}))
    return path


def test_report_ratios_and_busy_warning(tmp_path):
    quiet = report.report([_fake_results(tmp_path, 0.01)])
    line = next(x for x in quiet.splitlines() if x.startswith("| fast |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[5] == "2.00x" and cells[6] == "1.50x"  # vs eager, vs compile
    assert "busy" not in quiet
    busy = report.report([_fake_results(tmp_path, 0.3)])
    assert "**Warning: the machine was busy**" in busy and "(busy)" in busy
