"""scripts/gpu_check.py, tested on the CPU: its dry run (``--device cpu --quick
--no-install``) runs every stage's code path (each a subprocess with a time limit) and
writes the summary the GPU run writes; its JUnit parsing and verdict on made-up inputs."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = REPO / "scripts" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("durn_script_gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _module()


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check_out")
    work = tmp_path_factory.mktemp("gpu_check_work")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--no-install",
                           "--out", str(out), "--work", str(work), "--budget-s", "280"],
                          capture_output=True, text=True, timeout=320, cwd=REPO, env=env)
    return proc, out


def test_dry_run_writes_the_summary(dry_run):
    proc, out = dry_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("gpu_check: OK |"), last
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu_check.log", "junit-quick.xml", "summary.json"]
    assert len(files) <= gpu_check.MAX_OUT_FILES

    s = json.loads((out / "summary.json").read_text())
    assert s["format"] == gpu_check.FORMAT and s["ok"] is True and s["line"] == last
    assert s["quick"] and s["device"] == "cpu" and s["finished"] and 0 < s["wall_s"] < 280
    assert list(s["stages"]) == ["install", "env", "tests", "bench", "restore", "compile"]
    assert s["stages"]["install"]["skipped"] == "--no-install" and s["stages"]["compile"]["skipped"] == "--quick"
    for name in ("env", "tests", "bench", "restore"):
        stage = s["stages"][name]
        assert stage["rc"] == 0 and not stage["timed_out"] and 0 < stage["seconds"] <= stage["limit_s"], name

    env = s["env"]
    assert env["torch"] and env["durn_file"].startswith(str(REPO))
    assert set(env["backends"]) == {"torch", "triton", "cpp", "cuda"}
    assert env["backends"]["torch"]["ok"] and not env["backends"]["cuda"]["ok"]
    assert env["smoke"]["torch"]["max_abs_diff"] < 1e-5

    group = s["tests"]["groups"]["quick"]
    assert group["junit"] == "junit-quick.xml" and group["tests"] == group["passed"] == 1 and group["failed"] == []
    assert s["tests"]["totals"]["failures"] == 0

    bench = s["bench"]
    assert bench["planned"] == len(bench["cells"]) == 1 and not bench["not_run"]
    cell = bench["cells"][0]
    assert (cell["network"], cell["dtype"], cell["size"]) == ("durn_p", "float32", 64)
    assert set(cell["variants"]) == {"eager", "eager-cl", "fast-torch", "fast-triton", "fast-cuda"}
    for name in ("eager", "eager-cl", "fast-torch"):
        v = cell["variants"][name]
        assert "error" not in v, v
        assert 0 < v["min_ms"] <= v["median_ms"] <= v["max_ms"] and v["rounds"] == len(v["samples_ms"]) == 2
        assert v["finite"] and v["max_abs_diff_vs_fp32"] < 1e-4
        assert (v["vs_eager"] is None) == (name == "eager")
    assert "skipped" in cell["variants"]["fast-cuda"]

    restore = s["restore"]
    assert restore["photos_count"] == 2 and [r["run"] for r in restore["runs"]] == ["fast"]
    assert restore["runs"][0]["rc"] == 0 and restore["runs"][0]["outputs"] == 2
    assert "bench" in (out / "gpu_check.log").read_text()


def test_junit_parsing(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="4" failures="1" errors="1" skipped="1" '
        'time="2.5"><testcase classname="tests.test_a" name="test_ok"/>'
        '<testcase classname="tests.test_a" name="test_bad"><failure message="assert 1 == 2">long</failure></testcase>'
        '<testcase classname="tests.test_a" name="test_err"><error message="boom"/></testcase>'
        '<testcase classname="tests.test_a" name="test_skip"><skipped message="no gpu"/></testcase>'
        '</testsuite></testsuites>')
    got = gpu_check.parse_junit(xml)
    assert (got["tests"], got["passed"], got["failures"], got["errors"], got["skipped"]) == (4, 1, 1, 1, 1)
    assert [f["test"] for f in got["failed"]] == ["tests.test_a::test_bad", "tests.test_a::test_err"]
    assert got["failed"][0]["message"] == "assert 1 == 2"
    assert gpu_check.parse_junit(tmp_path / "missing.xml")["tests"] is None


def test_verdict_flags_what_failed():
    ok_summary = {"device": "cuda", "wall_s": 500, "stages": {"install": {"rc": 0}, "tests": {"rc": 0}},
                  "install": {"rc": 0, "built": {"_C": ["_C.so"], "_C_cuda": ["_C_cuda.so"]}},
                  "env": {"gpu": "NVIDIA H200"},
                  "tests": {"totals": {"passed": 3, "failures": 0, "errors": 0, "skipped": 1},
                            "groups": {"kernels": {"tests": 4, "timed_out": False}}}}
    ok, line = gpu_check.verdict(ok_summary)
    assert ok and line.startswith("gpu_check: OK | NVIDIA H200 |") and "built=_C,_C_cuda" in line
    no_cuda = json.loads(json.dumps(ok_summary))
    no_cuda["install"]["built"]["_C_cuda"] = []
    assert not gpu_check.verdict(no_cuda)[0]
    failing = json.loads(json.dumps(ok_summary))
    failing["tests"]["totals"]["failures"] = 2
    assert not gpu_check.verdict(failing)[0]
    capped = json.loads(json.dumps(ok_summary))  # the compile stage is meant to stop at its cap
    capped["stages"]["compile"] = {"rc": None, "timed_out": True}
    capped["compile"] = {"planned": 12, "cells": [{"network": "durn_p", "dtype": "bfloat16",
                                                  "variants": {"eager": {}, "compile": {"vs_eager": 1.5}}}]}
    ok, line = gpu_check.verdict(capped)
    assert ok and "compile 1/12 cells" in line
    slow_bench = json.loads(json.dumps(ok_summary))
    slow_bench["stages"]["bench"] = {"rc": None, "timed_out": True}
    assert not gpu_check.verdict(slow_bench)[0]


def test_the_shell_wrapper_runs_the_check_on_cuda():
    text = (REPO / "scripts" / "gpu_check.sh").read_text()
    assert "scripts/gpu_check.py" in text and "--device cuda" in text and '"$OUT"' in text


def test_a_stage_past_its_limit_is_stopped_and_recorded(tmp_path):
    args = gpu_check.parse_args(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"), "--device", "cpu",
                                 "--quick"])
    orchestrator = gpu_check.Orchestrator(args)
    hang = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(120)"]
    done = orchestrator.run_many({"hang": hang, "quick": [sys.executable, "-c", "pass"]}, limit=3)
    assert done["hang"]["timed_out"] and done["hang"]["rc"] is not None and done["hang"]["seconds"] < 20
    assert not done["quick"]["timed_out"] and done["quick"]["rc"] == 0
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert "===== hang (TIMED OUT)" in log and "started" in log
