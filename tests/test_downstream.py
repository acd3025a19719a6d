"""`durn evaluate --downstream MODULE:FN`: a user's callable scored on clean, degraded and
restored images (durn/downstream.py)."""
import json
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import durn
from durn.cli import main
from durn.data import SyntheticPairs
from durn.downstream import DownstreamError, load_callable, read_scores

# A stand-in "detector", written to a module of the test's own: two classes, "noisy"
# (logit 200 * high-frequency energy) against "clean" (a fixed logit of 8, i.e. energy
# 0.04), and a third that follows the brightness. It records what it was given.
TASK = textwrap.dedent("""
    import torch
    import torch.nn.functional as F

    CALLS = []
    NOT_CALLABLE = 3

    def energy(images):
        blur = F.avg_pool2d(images, 3, 1, 1, count_include_pad=False)
        return (images - blur).abs().mean((1, 2, 3))

    def classify(images):
        CALLS.append(images.clone())
        n = images.shape[0]
        return torch.stack([200 * energy(images), torch.full((n,), 8.0), 10 * images.mean((1, 2, 3))], 1)

    def measure(images):
        return {"brightness": images.mean((1, 2, 3)), "bright_fraction": (images > 0.5).float().mean((1, 2, 3)).tolist()}

    def one_score(images):
        return energy(images)

    def text(images):
        return "a cat"

    def nan_logits(images):
        return torch.full((images.shape[0], 2), float("nan"))

    def short(images):
        return {"brightness": images.mean((1, 2, 3))[:2]}

    class Model:
        @staticmethod
        def score(images):
            return {"brightness": images.mean((1, 2, 3))}
""")


@pytest.fixture
def task(tmp_path, monkeypatch):
    """The module name of TASK, importable (unique per test: no stale sys.modules entry)."""
    name = f"dstask_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(TASK)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _photos(folder, n=3, size=(24, 28)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.integers(0, 256, (size[0] // 4, size[1] // 4, 3), dtype=np.uint8)
        Image.fromarray(base).resize(size[::-1], Image.BILINEAR).save(folder / f"p{i}.png")
    return folder


class Smoother(nn.Module):
    """A stand-in denoiser (a 5 x 5 mean): it takes the noise's high frequencies away."""
    in_channels = 3
    channel_order = "RGB"

    def forward(self, x):
        return F.avg_pool2d(x, 5, 1, 2, count_include_pad=False)


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_classifier_agreement_on_clean_degraded_restored(tmp_path, task, monkeypatch, capsys):
    data = _photos(tmp_path / "photos")
    monkeypatch.setattr(durn, "get_model", lambda name, **kw: Smoother())
    out = tmp_path / "r.json"
    assert main(["evaluate", "--network", "durn_p_real", "--weights", "untrained", "--data", str(data),
                 "--degrade", "gaussian:30", "--device", "cpu", "--json", str(out), "--quiet",
                 "--downstream", f"{task}:classify"]) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())["downstream"]
    assert res["kind"] == "logits" and res["count"] == 3 and res["callable"] == f"{task}:classify"

    # independently: the same items, the stand-in's output, the logits, softmax, argmax, KL
    import importlib

    module = importlib.import_module(task)
    calls = list(module.CALLS)
    module.CALLS.clear()
    assert len(calls) == 3 and all(c.shape == (3, 3, 24, 28) for c in calls)
    dataset = SyntheticPairs(data, "gaussian:30", seed=0)
    want = {c: {"agreement": [], "clean_label_probability": [], "kl_from_clean": []}
            for c in ("clean", "degraded", "restored")}
    for i, batch in enumerate(calls):
        item = dataset[i]
        images = [item["target"], item["input"], Smoother()(item["input"][None])[0]]
        expected = torch.stack(images).clamp(0, 1)
        assert torch.equal(batch, expected)  # rows: clean, degraded, restored; clamped to [0, 1]
        assert float(item["input"].min()) < 0 or float(item["input"].max()) > 1  # noise is not clipped
        logits = module.classify(expected).double().numpy()
        p = [_softmax(z) for z in logits]
        label = int(np.argmax(logits[0]))
        for row, cond in enumerate(("clean", "degraded", "restored")):
            want[cond]["agreement"].append(float(np.argmax(logits[row]) == label))
            want[cond]["clean_label_probability"].append(p[row][label])
            want[cond]["kl_from_clean"].append(float(np.sum(p[0] * (np.log(p[0]) - np.log(p[row])))))
    for cond, metrics in want.items():
        for metric, values in metrics.items():
            assert res["mean"][cond][metric] == pytest.approx(np.mean(values), abs=1e-9), (cond, metric)
            assert [r[cond][metric] for r in res["images"]] == pytest.approx(values, abs=1e-9)
    # the noise flips the stand-in detector; the smoothing brings it back
    assert res["mean"]["clean"]["agreement"] == 1 and res["mean"]["degraded"]["agreement"] == 0
    assert res["mean"]["restored"]["agreement"] == 1
    assert res["mean"]["degraded"]["kl_from_clean"] > res["mean"]["restored"]["kl_from_clean"] > 0
    row = next(line for line in printed.splitlines() if line.startswith("top-1 agreement with clean"))
    assert row.split()[-3:] == ["1.0000", "0.0000", "1.0000"]
    assert "clean  degraded  restored" in printed


def test_dict_of_per_image_metrics_with_a_real_network(tmp_path, task, capsys):
    data = _photos(tmp_path / "photos", n=2)
    out = tmp_path / "r.json"
    assert main(["evaluate", "--network", "durn_p_real", "--weights", "untrained", "--data", str(data),
                 "--degrade", "gaussian:50", "--device", "cpu", "--json", str(out), "--quiet",
                 "--downstream", f"{task}:measure"]) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    down = res["downstream"]
    assert down["kind"] == "metrics" and set(down["mean"]["clean"]) == {"brightness", "bright_fraction"}
    torch.manual_seed(0)  # --weights untrained: the seeded random network
    model = durn.durn_p_real().eval()
    dataset = SyntheticPairs(data, "gaussian:50", seed=0)
    for cond, key in (("clean", "target"), ("degraded", "input"), ("restored", None)):
        values = []
        for i in range(2):
            item = dataset[i]
            with torch.no_grad():
                x = model(item["input"][None])[0] if key is None else item[key]
            values.append(float(x.clamp(0, 1).mean()))
        assert down["mean"][cond]["brightness"] == pytest.approx(np.mean(values), abs=1e-6), cond
    assert [r["name"] for r in down["images"]] == [r["name"] for r in res["images"]] == ["p0.png", "p1.png"]
    line = next(line for line in printed.splitlines() if line.startswith("brightness"))
    assert len(line.split()) == 4


def test_callable_from_the_current_folder_and_from_a_file(tmp_path, monkeypatch):
    (tmp_path / "cwd_task_xyz.py").write_text(TASK)
    monkeypatch.chdir(tmp_path)
    assert load_callable("cwd_task_xyz:Model.score")(torch.ones(2, 3, 4, 4))["brightness"].tolist() == [1.0, 1.0]
    fn = load_callable(f"{tmp_path / 'cwd_task_xyz.py'}:measure")
    assert callable(fn) and fn.__name__ == "measure"


def test_scores_contract():
    kind, logits = read_scores(torch.zeros(3, 4), 3)
    assert kind == "logits" and logits.dtype == torch.float64
    kind, metrics = read_scores({"a": [1, 2, 3]}, 3)
    assert kind == "metrics" and metrics["a"].tolist() == [1.0, 2.0, 3.0]
    for bad in (torch.zeros(3), torch.zeros(3, 1), torch.zeros(2, 4), torch.zeros(3, 4, dtype=torch.int64),
                {}, {"a": [1, 2]}, {"a": "abc"}, {"": [1, 2, 3]}, [0.1, 0.2, 0.3], None):
        with pytest.raises(DownstreamError):
            read_scores(bad, 3)


@pytest.mark.parametrize("spec, message", [
    ("no_colon_here", "expected MODULE:FUNCTION"),
    ("no_such_module_for_durn_q:fn", "no module named 'no_such_module_for_durn_q'"),
    ("{task}:missing", "has no attribute 'missing'"),
    ("{task}:NOT_CALLABLE", "is not callable (it is a 'int' object)"),
    ("{task}:one_score", "returned a torch.float32 tensor of shape (3,)"),
    ("{task}:text", "returned a str"),
    ("{task}:nan_logits", "NaN or Inf"),
    ("{task}:short", "expected 3 numbers"),
])
def test_bad_callables_give_one_line(tmp_path, task, capsys, spec, message):
    data = _photos(tmp_path / "photos", n=1)
    code = main(["evaluate", "--network", "durn_p_real", "--weights", "untrained", "--data", str(data),
                 "--degrade", "gaussian:30", "--device", "cpu", "--downstream", spec.format(task=task)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("durn evaluate: error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert message in errors[0] and "--downstream" in errors[0]


def test_torchrun_gathers_the_downstream_scores(tmp_path, task):
    import os
    import socket
    import subprocess
    import sys

    data = _photos(tmp_path / "photos", n=5, size=(20, 24))
    common = ["-m", "durn", "evaluate", "--network", "durn_p_real", "--weights", "untrained", "--data", str(data),
              "--degrade", "gaussian:30", "--device", "cpu", "--quiet", "--downstream", f"{task}:measure"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_addr", "127.0.0.1", "--master_port", str(port), *common,
                          "--json", str(tmp_path / "two.json")], capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("downstream ") == 1  # only rank 0 reports
    assert main([*common[2:], "--json", str(tmp_path / "one.json")]) == 0
    one, both = (json.loads((tmp_path / f"{n}.json").read_text())["downstream"] for n in ("one", "two"))
    assert [r["index"] for r in both["images"]] == list(range(5))
    assert both["images"] == one["images"] and both["mean"] == one["mean"]
