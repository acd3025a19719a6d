"""The GPU check: durn's install, GPU tests, kernel equivalence, benchmarks and a ``durn
restore`` on the lent GPU machine in one bounded command (see docs/gpu.md, "The GPU check").

    OUT=/some/empty/folder python3 scripts/gpu_check.py --out "$OUT"          # what scripts/gpu_check.sh runs
    python scripts/gpu_check.py --device cpu --quick --no-install --out /tmp/x  # the whole path on a CPU, ~30 s

Stages, each a subprocess with its own time limit (the limits of the later stages are
cut to what is left of ``--budget-s``, 530 s by default, so one hang cannot eat the
budget; a stage past its limit gets SIGINT, then SIGKILL):

1. install: ``pip install --no-deps --no-build-isolation --no-index -v -e .``, which builds
   ``durn._C`` and ``durn._C_cuda`` against the machine's torch (setup.py; MAX_JOBS = the
   cores, CUDA_HOME=/usr/local/cuda where unset). If it fails or runs out of time, durn
   is installed without compiled kernels (``DURN_BUILD_EXTENSION=0``) and the reason is
   recorded. Later stages run with ``DURN_JIT_BUILD=0`` (no silent rebuild in a test).
2. env: versions, the GPU, each backend's availability and one small op per backend
   against the reference.
3. tests: five pytest processes in parallel (JUnit XML each), Triton compiled natively
   (TRITON_INTERPRET unset): test_triton_ops; test_gpu_equivalence; test_cuda_compile +
   test_cpp_ops; test_optimize + test_ops_contract; test_restore + test_fast_path.
   Without pytest-benchmark, pytest's ``--benchmark-disable`` addopt is replaced.
4. bench: the six networks at 512x512 batch 1 in bfloat16, then float16: eager (cuDNN,
   ``cudnn.benchmark``; NCHW and channels-last) and ``optimize_for_inference`` with the
   backends "torch", "triton" and "cuda"; rounds interleave the variants; CUDA-event
   timing; each output's max abs difference from the float32 eager output.
5. restore: ``durn restore`` of 8 real photos (the scikit-image training photos, never
   camera or astronaut) on the device: the fast path, ``--no-optimize`` and
   ``--precision bf16`` (``--quick``: 2 small photos, the fast path only); wall times and
   how far the other runs' 8-bit outputs are from eager's.
6. compile: ``torch.compile(mode="max-autotune", dynamic=False)`` network by network
   (bfloat16 first) against eager, while the time lasts; what was in flight at the limit
   is recorded as such.

Everything lands in ``--out`` (at most 8 files): summary.json (every stage's result,
rewritten after each stage), gpu_check.log (each stage's output, tail-capped) and
junit-<group>.xml. The last line printed is a one-line summary.

Exit status: 0 when every stage that applies ran and passed; 1 when something failed or
timed out; 2 for bad arguments; 3 when interrupted by a signal.
"""
from __future__ import annotations

import argparse
import copy
import glob
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORMAT = "durn-gpu-check-1"
NETWORKS = ("durn_p", "durn_p_real", "durn_u", "durn_us", "durn_s", "durn_s_p")
BACKENDS = ("torch", "triton", "cuda")
# One pytest process per group, all at once (Triton compiles on the CPU, one kernel at a time
# per process; the CPU tests are single-threaded mostly).
TEST_GROUPS = {
    "triton": ["tests/test_triton_ops.py"],
    "equivalence": ["tests/test_gpu_equivalence.py"],
    "cuda": ["tests/test_cuda_compile.py", "tests/test_cpp_ops.py"],
    "optimize": ["tests/test_optimize.py", "tests/test_ops_contract.py"],
    "restore": ["tests/test_restore.py", "tests/test_fast_path.py"],
}
QUICK_TEST_GROUPS = {"quick": ["tests/test_ops_contract.py::test_pixel_shuffle_conv_reference"]}
# Stage: (time cap in seconds, the least it is worth starting with). Quick: the CPU dry run.
STAGES = {"install": (200, 30), "env": (45, 10), "tests": (180, 40), "bench": (150, 30), "restore": (50, 20),
          "compile": (150, 45)}
QUICK_STAGES = {"install": (60, 10), "env": (60, 5), "tests": (60, 5), "bench": (60, 5), "restore": (60, 5),
                "compile": (30, 5)}
GRACE_S = 15  # from SIGINT to SIGKILL for a stage past its limit
LOG_TAIL_BYTES = 2 * 2**20  # of each stage's output kept in gpu_check.log
MAX_OUT_FILES = 8


# ============================================================================ helpers

def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def short(err: BaseException, n: int = 400) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return text if len(text) <= n else text[: n - 3] + "..."


def say(msg: str) -> None:
    print(msg, flush=True)


# ============================================================================ the orchestrator

class Orchestrator:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="durn-gpu-check-"))
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "logs").mkdir(exist_ok=True)
        self.t0 = time.time()
        self.deadline = self.t0 + args.budget_s
        self.caps = QUICK_STAGES if args.quick else STAGES
        self.children: list[subprocess.Popen] = []
        self.log = self.out / "gpu_check.log"
        self.log.write_text(f"durn gpu_check started {now()} (budget {args.budget_s:.0f} s, work {self.work})\n")
        self.env = self._base_env()
        self.summary = {
            "format": FORMAT, "started": now(), "finished": None, "device": args.device, "quick": args.quick,
            "budget_s": args.budget_s, "wall_s": None, "repo": str(REPO), "work": str(self.work),
            "stages": {}, "install": None, "env": None, "tests": None, "bench": None, "restore": None,
            "compile": None, "ok": None, "line": None,
        }

    # ---------------------------------------------------------------- environment of the stages
    def _base_env(self) -> dict:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        if self.args.device.startswith("cuda"):
            env.pop("TRITON_INTERPRET", None)  # Triton compiled natively
        env.setdefault("DURN_TUNING_CACHE", str(self.work / "tuning.json"))
        env.setdefault("MPLBACKEND", "Agg")
        return env

    def elapsed(self) -> float:
        return time.time() - self.t0

    def left(self) -> float:
        return self.deadline - time.time()

    def limit_for(self, stage: str, later: list[str]) -> float:
        cap, _ = self.caps[stage]
        reserve = sum(self.caps[s][1] for s in later)
        return min(cap, self.left() - reserve - GRACE_S - 2)

    # ---------------------------------------------------------------- running things
    def run(self, name: str, cmd: list[str], limit: float, env: dict | None = None) -> dict:
        """Runs ``cmd`` (its own process group) for at most ``limit`` seconds; output to
        work/logs/NAME.log. Returns rc, seconds, timed_out."""
        return self.run_many({name: cmd}, limit, env)[name]

    def run_many(self, cmds: dict[str, list[str]], limit: float, env: dict | None = None) -> dict:
        env = env or self.env
        procs = {}
        start = time.time()
        for name, cmd in cmds.items():
            logf = open(self.work / "logs" / f"{name}.log", "wb")
            logf.write((" ".join(cmd) + "\n").encode())
            logf.flush()
            p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                 start_new_session=True)
            procs[name] = (p, logf)
            self.children.append(p)
        results, ended = {}, {}
        while len(ended) < len(procs) and time.time() - start < limit:
            for name, (p, _) in procs.items():
                if name not in ended and p.poll() is not None:
                    ended[name] = round(time.time() - start, 1)
            time.sleep(0.2)
        for name, (p, _) in procs.items():
            if name not in ended and p.poll() is not None:
                ended[name] = round(time.time() - start, 1)
        late = [name for name in procs if name not in ended]
        # Past the limit: SIGINT to each late group at once (pytest then still writes its
        # JUnit XML), SIGKILL to what is left after the grace period.
        for sig, grace in ((signal.SIGINT, GRACE_S - 3), (signal.SIGKILL, 3)):
            still = [name for name in late if procs[name][0].poll() is None]
            for name in still:
                try:
                    os.killpg(procs[name][0].pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            until = time.time() + grace
            for name in still:
                try:
                    procs[name][0].wait(timeout=max(0.1, until - time.time()))
                except subprocess.TimeoutExpired:
                    pass
        for name, (p, logf) in procs.items():
            logf.close()
            self.children.remove(p)
            results[name] = {"rc": p.poll(), "seconds": ended.get(name, round(time.time() - start, 1)),
                             "timed_out": name in late}
            self._append_log(name, name in late)
        return results

    def _append_log(self, name: str, timed_out: bool) -> None:
        path = self.work / "logs" / f"{name}.log"
        size = 0
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                if size > LOG_TAIL_BYTES:
                    f.seek(size - LOG_TAIL_BYTES)
                data = f.read()
        except OSError:
            data = b""
        with open(self.log, "ab") as log:
            head = f"\n===== {name}{' (TIMED OUT)' if timed_out else ''} [{self.elapsed():.0f} s]"
            if size > LOG_TAIL_BYTES:
                head += f" (last {LOG_TAIL_BYTES} of {size} bytes)"
            log.write((head + " =====\n").encode())
            log.write(data)

    def stage_cmd(self, stage: str, limit: float) -> list[str]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", stage, "--work", str(self.work),
               "--out", str(self.out), "--device", self.args.device, "--deadline", f"{time.time() + limit:.1f}"]
        return cmd + (["--quick"] if self.args.quick else [])

    def record(self, stage: str, result: dict, limit: float | None, skipped: str | None = None) -> None:
        entry = dict(result or {}, limit_s=None if limit is None else round(limit, 1), skipped=skipped)
        self.summary["stages"][stage] = entry
        rc = entry.get("rc")
        status = f"skipped ({skipped})" if skipped else ("TIMED OUT" if entry.get("timed_out") else f"rc={rc}")
        took = f" in {entry['seconds']} s" if "seconds" in entry else ""
        say(f"[{self.elapsed():5.0f} s] {stage}: {status}{took}")
        self.write_summary()

    def write_summary(self) -> None:
        self.summary["wall_s"] = round(self.elapsed(), 1)
        write_json(self.out / "summary.json", self.summary)

    # ---------------------------------------------------------------- the stages
    def main(self) -> int:
        order = ["install", "env", "tests", "bench", "restore", "compile"]
        skip = set(self.args.skip or [])
        if self.args.no_install:
            skip.add("install")
        for i, stage in enumerate(order):
            later = [s for s in order[i + 1:] if s not in skip]
            if stage in skip:
                self.record(stage, {}, None, skipped="--no-install" if stage == "install" else "--skip")
                continue
            limit = self.limit_for(stage, later)
            if limit < self.caps[stage][1]:
                self.record(stage, {}, limit, skipped=f"no time left ({limit:.0f} s)")
                continue
            getattr(self, f"do_{stage}")(limit)
        return self.finish()

    def do_install(self, limit: float) -> None:
        env = dict(self.env, MAX_JOBS=str(os.cpu_count() or 4))
        if not env.get("CUDA_HOME") and os.path.exists("/usr/local/cuda/bin/nvcc"):
            env["CUDA_HOME"] = "/usr/local/cuda"
        extra = _nvidia_include_dirs()
        if extra:
            env["CPATH"] = os.pathsep.join(filter(None, [env.get("CPATH", "")] + extra))
        pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-v",
               "-e", "."]
        result = self.run("install", pip, limit, env)
        info = {"mode": "with compiled kernels", "command": " ".join(pip[2:]), **result,
                "setup_messages": _grep(self.work / "logs" / "install.log", "durn setup:", 20)}
        if result["rc"] != 0:
            left = min(45.0, self.left() - 60)
            fallback = self.run("install-fallback", pip, max(left, 10.0),
                                dict(self.env, DURN_BUILD_EXTENSION="0"))
            info["fallback"] = fallback
            info["mode"] = "without compiled kernels (DURN_BUILD_EXTENSION=0 after a failed build)"
            if fallback["rc"] != 0:
                info["mode"] = "not installed: stages run with PYTHONPATH=<repo>"
                self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), self.env.get("PYTHONPATH", "")]))
        info["built"] = {m: sorted(os.path.basename(p) for p in glob.glob(str(REPO / "durn" / f"{m}.*.so")))
                         for m in ("_C", "_C_cuda")}
        self.summary["install"] = info
        self.env["DURN_JIT_BUILD"] = "0"  # a failed build is not retried inside a test
        self.record("install", result, limit)

    def do_env(self, limit: float) -> None:
        result = self.run("env", self.stage_cmd("env", limit), limit)
        self.summary["env"] = read_json(self.work / "env.json")
        self.record("env", result, limit)

    def do_tests(self, limit: float) -> None:
        groups = QUICK_TEST_GROUPS if self.args.quick else TEST_GROUPS
        addopts = []
        if importlib.util.find_spec("pytest_benchmark") is None:
            addopts = ["-o", "addopts=-ra"]  # pyproject's addopts carry --benchmark-disable
        cmds = {}
        for group, files in groups.items():
            cmds[f"tests-{group}"] = [sys.executable, "-m", "pytest", *files, "-q", "-rfE", "-p", "no:cacheprovider",
                                      f"--junitxml={self.out / f'junit-{group}.xml'}", "--durations=10", *addopts]
        env = dict(self.env)
        threads = max(1, (os.cpu_count() or 2) // len(cmds))
        env.setdefault("OMP_NUM_THREADS", str(threads))
        results = self.run_many(cmds, limit, env)
        tests = {"groups": {}, "pytest_benchmark": not addopts, "omp_num_threads": env["OMP_NUM_THREADS"]}
        for group, files in groups.items():
            res = results[f"tests-{group}"]
            tests["groups"][group] = {"files": files, **res, **parse_junit(self.out / f"junit-{group}.xml")}
        totals = {k: sum(g.get(k) or 0 for g in tests["groups"].values())
                  for k in ("tests", "passed", "failures", "errors", "skipped")}
        tests["totals"] = totals
        self.summary["tests"] = tests
        rc = max((r["rc"] if r["rc"] is not None else 99) for r in results.values())
        self.record("tests", {"rc": rc, "seconds": max(r["seconds"] for r in results.values()),
                              "timed_out": any(r["timed_out"] for r in results.values())}, limit)

    def _python_stage(self, stage: str, limit: float) -> None:
        result = self.run(stage, self.stage_cmd(stage, limit), limit)
        data = read_json(self.work / f"{stage}.json")
        if data is not None and result["timed_out"]:
            data["stopped_at_limit"] = True
        self.summary[stage] = data
        self.record(stage, result, limit)

    def do_bench(self, limit: float) -> None:
        self._python_stage("bench", limit)

    def do_restore(self, limit: float) -> None:
        self._python_stage("restore", limit)

    def do_compile(self, limit: float) -> None:
        if self.args.quick:
            self.summary["compile"] = {"skipped": "--quick (torch.compile runs only on the real check)"}
            self.record("compile", {}, limit, skipped="--quick")
            return
        self._python_stage("compile", limit)

    # ---------------------------------------------------------------- the end
    def finish(self) -> int:
        ok, line = verdict(self.summary)
        self.summary.update(ok=ok, line=line, finished=now())
        for stage in ("bench", "compile"):
            if isinstance(self.summary.get(stage), dict) and "cells" in self.summary[stage]:
                self.summary[f"{stage}_table"] = table_lines(self.summary[stage])
        self.write_summary()
        extra = [p.name for p in self.out.iterdir()]
        if len(extra) > MAX_OUT_FILES:
            say(f"warning: {len(extra)} files in {self.out} (the device tool returns {MAX_OUT_FILES})")
        with open(self.log, "a") as log:
            log.write(f"\n{line}\n")
        say(line)
        return 0 if ok else 1

    def interrupt(self, signum, frame) -> None:
        for p in list(self.children):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.summary["interrupted"] = f"signal {signum} at {self.elapsed():.0f} s"
        ok, line = verdict(self.summary)
        self.summary.update(ok=False, line=line + " | INTERRUPTED", finished=now())
        self.write_summary()
        say(self.summary["line"])
        os._exit(3)


def _nvidia_include_dirs() -> list[str]:
    """Headers of the pip-installed CUDA libraries (torch's CUDA wheels depend on them);
    the toolkit may lack some (cublas, cusparse) that torch's CUDA headers include."""
    found = []
    for site in {p for p in sys.path if p.endswith("site-packages")}:
        found += sorted(glob.glob(os.path.join(site, "nvidia", "*", "include")))
        found += sorted(glob.glob(os.path.join(site, "nvidia", "cu*", "*", "include")))
    return [d for d in found if os.path.isdir(d)]


def _grep(path: Path, needle: str, n: int) -> list[str]:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if needle in ln]
    except OSError:
        return []
    return lines[-n:]


def parse_junit(path: Path) -> dict:
    """Counts and the failed tests (name and first line of the message) of a JUnit XML."""
    if not path.exists():
        return {"junit": None, "tests": None, "passed": None, "failures": None, "errors": None, "skipped": None,
                "failed": []}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        return {"junit": path.name, "parse_error": str(err), "tests": None, "passed": None, "failures": None,
                "errors": None, "skipped": None, "failed": []}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = []
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                message = (node.get("message") or node.text or "").strip().splitlines()
                failed.append({"test": f"{case.get('classname')}::{case.get('name')}", "kind": tag,
                               "message": (message[0] if message else "")[:300]})
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {"junit": path.name, **counts, "seconds": round(sum(float(s.get("time", 0)) for s in suites), 1),
            "failed": failed[:40]}


def verdict(summary: dict) -> tuple[bool, str]:
    """Whether everything that applies passed, and the one-line summary."""
    parts, ok = [], True
    env = summary.get("env") or {}
    parts.append(env.get("gpu") or env.get("device_name") or summary.get("device", "?"))
    for stage, entry in summary.get("stages", {}).items():
        # pytest's status is judged from its JUnit counts below; the compile stage is meant
        # to be cut off by its time cap (what finished is recorded).
        if stage == "compile":
            ok = ok and (entry.get("timed_out") or entry.get("rc") in (0, None))
        elif entry.get("timed_out") or (entry.get("rc") not in (0, None) and stage != "tests"):
            ok = False
    inst = summary.get("install")
    if inst:
        built = [m for m, files in inst.get("built", {}).items() if files]
        parts.append(f"install rc={inst.get('rc')} built={','.join(built) or 'none'}")
        cuda_backend = (env.get("backends") or {}).get("cuda")
        loaded = cuda_backend["ok"] if cuda_backend else "_C_cuda" in built
        if summary.get("device", "").startswith("cuda") and not loaded:
            ok = False  # the CUDA kernels were to be built and loaded here
    elif "install" in summary.get("stages", {}):
        parts.append("install " + (summary["stages"]["install"].get("skipped") or "?"))
    backends = env.get("backends") or {}
    if backends:
        parts.append("backends " + ",".join(b for b, s in backends.items() if s.get("ok")))
    tests = summary.get("tests")
    if tests:
        t = tests["totals"]
        timed = [g for g, r in tests["groups"].items() if r.get("timed_out")]
        parts.append(f"tests {t['passed']} passed {t['failures']} failed {t['errors']} errors {t['skipped']} skipped"
                     + (f" (timed out: {','.join(timed)})" if timed else ""))
        if t["failures"] or t["errors"] or timed or any(g.get("tests") is None for g in tests["groups"].values()):
            ok = False
    elif "tests" in summary.get("stages", {}) and not summary["stages"]["tests"].get("skipped"):
        ok = False
    for stage in ("bench", "compile"):
        data = summary.get(stage)
        if not data or "cells" not in data:
            if stage in summary.get("stages", {}) and not summary["stages"][stage].get("skipped"):
                parts.append(f"{stage} no result")
                ok = False
            continue
        cells = data["cells"]
        errors = sum(1 for c in cells for v in c["variants"].values() if v.get("error"))
        parts.append(f"{stage} {len(cells)}/{data.get('planned', len(cells))} cells"
                     + (f" {errors} errors" if errors else "") + _best(cells))
        ok = ok and not errors  # cells left for lack of time are in the line ("8/12 cells"), not failures
    restore = summary.get("restore")
    if restore and restore.get("runs"):
        good = [r for r in restore["runs"] if r.get("rc") == 0 and r.get("outputs") == restore.get("photos_count")]
        parts.append(f"restore {len(good)}/{len(restore['runs'])} runs ok")
        ok = ok and len(good) == len(restore["runs"])
    elif "restore" in summary.get("stages", {}) and not summary["stages"]["restore"].get("skipped"):
        parts.append("restore no result")
        ok = False
    parts.append(f"{summary.get('wall_s')} s")
    return ok, "gpu_check: " + ("OK" if ok else "PROBLEMS") + " | " + " | ".join(str(p) for p in parts)


def table_lines(data: dict) -> list[str]:
    """One line per (network, dtype): each variant's median and its ratio to eager."""
    lines = []
    for c in data["cells"]:
        parts = []
        for name, v in c["variants"].items():
            if v.get("median_ms") is not None:
                ratio = f" ({v['vs_eager']:.2f}x)" if v.get("vs_eager") else ""
                parts.append(f"{name} {v['median_ms']:.3g} ms{ratio}")
            elif v.get("error"):
                parts.append(f"{name} ERROR")
        lines.append(f"{c['network']} {c['dtype']} {c['size']}x{c['size']}: " + " | ".join(parts))
    return lines


def _best(cells: list[dict]) -> str:
    best = None
    for c in cells:
        for name, v in c["variants"].items():
            if name != "eager" and v.get("vs_eager") and (best is None or v["vs_eager"] > best[0]):
                best = (v["vs_eager"], f"{c['network']} {c['dtype']} {name}")
    return f" (best vs eager: {best[1]} {best[0]:.2f}x)" if best else ""


# ============================================================================ the stages (subprocesses)

def _device(args):
    import torch

    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch.cuda.is_available() is False")
    return torch, dev


def _sync(torch, dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def stage_env(args) -> int:
    info: dict = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count(),
                  "env": {k: os.environ.get(k) for k in ("TRITON_INTERPRET", "CUDA_HOME", "DURN_JIT_BUILD",
                                                         "DURN_TUNING_CACHE", "PYTHONPATH")}}
    path = Path(args.work) / "env.json"
    write_json(path, info)
    torch, dev = _device(args)
    info.update(torch=torch.__version__, torch_cuda=torch.version.cuda, device=str(dev),
                cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2**30, 1), gpu_count=torch.cuda.device_count())
    for mod in ("triton", "numpy", "PIL", "skimage", "pytest", "pytest_benchmark", "pytorch_msssim"):
        try:
            m = __import__(mod)
            info[f"{mod}_version"] = getattr(m, "__version__", "present")
        except Exception as err:  # absent or broken: say which
            info[f"{mod}_version"] = f"absent ({short(err, 120)})"
    try:
        done = subprocess.run(["nvcc", "--version"], capture_output=True, text=True, timeout=20)
        info["nvcc"] = done.stdout.strip().splitlines()[-1] if done.returncode == 0 else f"rc {done.returncode}"
    except (OSError, subprocess.TimeoutExpired) as err:
        info["nvcc"] = f"absent ({short(err, 120)})"
    write_json(path, info)

    import durn
    from durn import ops
    from durn.ops import extension, reference

    info["durn_file"] = durn.__file__
    info["backends"] = {}
    for name in ops.BACKENDS:
        t = time.time()
        ok, why = ops.backend_status(name)
        entry = {"ok": ok, "why": why, "runs_on_device": ops.runs_on(name, dev), "load_s": round(time.time() - t, 2)}
        if name in ("cpp", "cuda") and ok:
            entry["library"] = extension.library_path(name)
        info["backends"][name] = entry
        write_json(path, info)
    if info["backends"]["triton"]["ok"]:
        from durn.ops import triton_backend

        info["kernels_file"] = triton_backend.import_kernels().__file__
    # One small op per usable backend against the reference in float64 (an odd size, reflect).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 13, 15, generator=g)
    w = torch.randn(12, 8, 3, 3, generator=g) / 8.5
    b = torch.randn(12, generator=g)
    want = reference.fused_conv2d(x.double(), w.double(), b.double(), padding=1, padding_mode="reflect",
                                  activation="relu")
    info["smoke"] = {}
    for name, entry in info["backends"].items():
        if not (entry["ok"] and entry["runs_on_device"]):
            continue
        try:
            got = ops.fused_conv2d(x.to(dev), w.to(dev), b.to(dev), padding=1, padding_mode="reflect",
                                   activation="relu", backend=name)
            _sync(torch, dev)
            info["smoke"][name] = {"max_abs_diff": float((got.double().cpu() - want).abs().max())}
        except Exception as err:  # recorded, the check goes on
            info["smoke"][name] = {"error": short(err)}
    write_json(path, info)
    return 0


class Timer:
    """Per-call time of ``fn``: CUDA events on a GPU, perf_counter on a CPU."""

    def __init__(self, torch, dev):
        self.torch, self.dev = torch, dev

    def __call__(self, fn, iters: int) -> float:
        torch = self.torch
        if self.dev.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / iters
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        return (time.perf_counter() - t) / iters


def _interleaved(torch, dev, runners: dict, rounds: int, deadline: float) -> dict[str, list[float]]:
    """``rounds`` rounds, each timing every runner in turn (the order rotates each round);
    iterations per timing chosen from the warm-up so one timing is about 0.1 s (1-10)."""
    timer = Timer(torch, dev)
    iters = {}
    for name, fn in runners.items():
        t = timer(fn, 1)
        iters[name] = max(1, min(10, int(0.1 / max(t, 1e-6))))
    samples = {name: [] for name in runners}
    names = list(runners)
    for r in range(rounds):
        if r >= 2 and time.time() > deadline:
            break
        for name in names[r % len(names):] + names[: r % len(names)]:
            samples[name].append(timer(runners[name], iters[name]))
    return samples


def _stats(samples: list[float], base: float | None) -> dict:
    if not samples:
        return {}
    med = statistics.median(samples)
    return {"median_ms": round(med * 1e3, 4), "min_ms": round(min(samples) * 1e3, 4),
            "max_ms": round(max(samples) * 1e3, 4), "rounds": len(samples),
            "samples_ms": [round(s * 1e3, 4) for s in samples],
            "vs_eager": round(base / med, 3) if base else None}


def _peak_mb(torch, dev, fn) -> float | None:
    if dev.type != "cuda":
        return None
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev)
    with torch.no_grad():
        fn()
    torch.cuda.synchronize(dev)
    return round((torch.cuda.max_memory_allocated(dev) - before) / 2**20, 1)


def _bench_setup(args):
    torch, dev = _device(args)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    quick = args.quick
    size = 64 if quick else 512
    dtypes = ["float32"] if quick else ["bfloat16", "float16"]
    networks = ["durn_p"] if quick else list(NETWORKS)
    return torch, dev, size, dtypes, networks


def _reference_output(torch, model32, x32):
    """The float32 eager output, with TF32 off (the yardstick for the low-precision runs)."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            return model32(x32).float()
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def _diff(torch, y, ref) -> dict:
    y = y.float()
    finite = bool(torch.isfinite(y).all())
    return {"max_abs_diff_vs_fp32": round(float((y - ref).abs().max()), 6) if finite else None, "finite": finite}


def stage_bench(args) -> int:
    torch, dev, size, dtypes, networks = _bench_setup(args)
    import durn
    from durn import ops
    from durn.inference import optimize_for_inference

    deadline = args.deadline
    rounds = 2 if args.quick else 5
    path = Path(args.work) / "bench.json"
    data = {"size": size, "batch": 1, "device": str(dev), "rounds": rounds,
            "timing": "CUDA events around 1-10 calls per sample (about 0.1 s), rounds interleaving the variants"
            if dev.type == "cuda" else "perf_counter", "cudnn_benchmark": dev.type == "cuda",
            "planned": len(dtypes) * len(networks), "cells": [], "not_run": []}
    write_json(path, data)
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        for net in networks:
            left = deadline - time.time()
            if left < (5 if args.quick else 12):
                data["not_run"].append({"network": net, "dtype": dtype_name, "why": f"no time left ({left:.0f} s)"})
                write_json(path, data)
                continue
            say(f"bench {net} {dtype_name} {size}x{size}")
            cell = {"network": net, "dtype": dtype_name, "size": size, "variants": {}}
            data["cells"].append(cell)
            try:
                _bench_cell(torch, dev, durn, ops, optimize_for_inference, net, dtype, size, rounds, cell, deadline,
                            lambda: write_json(path, data), quick=args.quick)
            except Exception as err:  # the cell failed as a whole (e.g. building the model)
                cell["error"] = short(err)
                traceback.print_exc()
            write_json(path, data)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return 0


def _bench_cell(torch, dev, durn, ops, optimize_for_inference, net, dtype, size, rounds, cell, deadline, save,
                quick=False):
    torch.manual_seed(0)
    model32 = durn.get_model(net).eval().to(dev)
    model32.min_size  # noqa: B018
    g = torch.Generator().manual_seed(0)
    x32 = torch.rand(1, model32.in_channels, size, size, generator=g).to(dev)
    ref = _reference_output(torch, model32, x32)
    model = copy.deepcopy(model32).to(dtype)
    x = x32.to(dtype)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    del model32
    builders = {"eager": lambda: model, "eager-cl": lambda: model_cl}
    inputs = {"eager-cl": x_cl}
    for b in BACKENDS:
        ok, why = ops.backend_status(b)
        if ok and not ops.runs_on(b, dev):
            ok, why = False, f"does not run on {dev.type} tensors"
        if ok and b == "triton" and dev.type == "cpu":
            ok, why = False, "the Triton interpreter (CPU) is for tests, not timing"
        if not ok:
            cell["variants"][f"fast-{b}"] = {"skipped": why}
            continue
        algorithms = "direct" if dev.type == "cpu" else "auto"  # on a GPU only direct convs exist
        builders[f"fast-{b}"] = lambda b=b, a=algorithms: optimize_for_inference(model, b, algorithms=a)
    runners = {}
    for name, build in builders.items():
        entry = cell["variants"].setdefault(name, {})
        xi = inputs.get(name, x)
        try:
            t = time.perf_counter()
            fn = build()
            entry["build_s"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            with torch.no_grad():
                y = fn(xi)
            _sync(torch, dev)
            entry["first_call_s"] = round(time.perf_counter() - t, 3)
            entry.update(_diff(torch, y, ref))
            del y
            with torch.no_grad():
                fn(xi)
                fn(xi)
            _sync(torch, dev)
            entry["peak_mem_mb"] = _peak_mb(torch, dev, lambda fn=fn, xi=xi: fn(xi))
            runners[name] = (lambda fn=fn, xi=xi: fn(xi))
        except Exception as err:  # recorded; the other variants still run
            entry["error"] = short(err)
            traceback.print_exc()
        save()
    with torch.no_grad():
        samples = _interleaved(torch, dev, runners, rounds, deadline - 3)
    base = statistics.median(samples["eager"]) if samples.get("eager") else None
    for name, s in samples.items():
        cell["variants"][name].update(_stats(s, base if name != "eager" else None))


def stage_compile(args) -> int:
    torch, dev, size, dtypes, networks = _bench_setup(args)
    import durn

    deadline = args.deadline
    mode = "max-autotune" if dev.type == "cuda" else None
    path = Path(args.work) / "compile.json"
    data = {"size": size, "batch": 1, "device": str(dev), "mode": mode or "default", "dynamic": False,
            "planned": len(dtypes) * len(networks), "cells": [], "not_run": [], "in_flight": None,
            "note": "one network at a time while the stage's time lasts; a compile still running at the limit "
                    "is left in 'in_flight'"}
    write_json(path, data)
    min_left = 20 if args.quick else 45
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        for net in networks:
            left = deadline - time.time()
            if left < min_left:
                data["not_run"].append({"network": net, "dtype": dtype_name, "why": f"no time left ({left:.0f} s)"})
                continue
            data["in_flight"] = {"network": net, "dtype": dtype_name, "started": now(), "left_s": round(left)}
            write_json(path, data)
            say(f"compile {net} {dtype_name} ({left:.0f} s left)")
            cell = {"network": net, "dtype": dtype_name, "size": size, "variants": {"eager": {}, "compile": {}}}
            try:
                torch._dynamo.reset()
                torch.manual_seed(0)
                model32 = durn.get_model(net).eval().to(dev)
                model32.min_size  # noqa: B018
                g = torch.Generator().manual_seed(0)
                x32 = torch.rand(1, model32.in_channels, size, size, generator=g).to(dev)
                ref = _reference_output(torch, model32, x32)
                model, x = model32.to(dtype), x32.to(dtype)
                compiled = torch.compile(model, mode=mode, dynamic=False)
                t = time.perf_counter()
                with torch.no_grad():
                    y = compiled(x).clone()
                _sync(torch, dev)
                cell["variants"]["compile"]["first_call_s"] = round(time.perf_counter() - t, 2)
                cell["variants"]["compile"].update(_diff(torch, y, ref))
                with torch.no_grad():
                    cell["variants"]["eager"].update(_diff(torch, model(x), ref))
                    samples = _interleaved(torch, dev, {"eager": lambda: model(x), "compile": lambda: compiled(x)},
                                           5, deadline - 5)
                base = statistics.median(samples["eager"])
                cell["variants"]["eager"].update(_stats(samples["eager"], None))
                cell["variants"]["compile"].update(_stats(samples["compile"], base))
            except Exception as err:
                cell["variants"]["compile"]["error"] = short(err)
                traceback.print_exc()
            data["cells"].append(cell)
            data["in_flight"] = None
            write_json(path, data)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return 0


def _photos(folder: Path, quick: bool) -> list[dict]:
    """8 real photos (2 small ones with --quick): the scikit-image training photos as RGB
    PNGs at their own sizes (never camera or astronaut: durn.data.sample_images("train"))."""
    from PIL import Image

    from durn.data import sample_images

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for path in sample_images("train")[: 2 if quick else 8]:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if quick:
                scale = 48 / min(im.size)
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
            im.save(folder / f"{path.stem}.png")
            made.append({"file": f"{path.stem}.png", "size": list(im.size)})
    return made


def stage_restore(args) -> int:
    import numpy as np
    from PIL import Image

    work = Path(args.work)
    folder = work / "photos"
    photos = _photos(folder, args.quick)
    device = "cuda" if args.device.startswith("cuda") else "cpu"
    network = "durn_p"
    runs_planned = [("fast", [])]  # --quick: the default path only (each run is a process start)
    if not args.quick:
        # --precision bf16 runs eagerly under autocast: the fast path is float32 only.
        runs_planned += [("eager", ["--no-optimize"]), ("bf16", ["--precision", "bf16"])]
    data = {"network": network, "device": device, "photos": photos, "photos_count": len(photos),
            "folder": str(folder), "runs": [], "not_run": []}
    path = work / "restore.json"
    write_json(path, data)
    for name, extra in runs_planned:
        left = args.deadline - time.time()
        if left < 5:
            data["not_run"].append({"run": name, "why": f"no time left ({left:.0f} s)"})
            continue
        out = work / f"restored-{name}"
        cmd = [sys.executable, "-m", "durn", "restore", str(folder), "-o", str(out), "--weights", "untrained",
               "--network", network, "--device", device, "-q", *extra]
        run = {"run": name, "command": " ".join(["durn"] + cmd[3:])}
        t = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=left - 2)
            run.update(rc=done.returncode, stderr_tail=done.stderr[-1500:])
        except subprocess.TimeoutExpired:
            run.update(rc=None, timed_out=True)
        run["wall_s"] = round(time.perf_counter() - t, 2)
        run["outputs"] = len(list(out.glob("*.png"))) if out.exists() else 0
        data["runs"].append(run)
        write_json(path, data)
    # How far the fast path's (and bf16's) 8-bit outputs are from eager's.
    eager = work / "restored-eager"
    for run in data["runs"]:
        if run["run"] == "eager" or not eager.exists():
            continue
        worst = 0
        for p in photos:
            a, b = eager / p["file"], work / f"restored-{run['run']}" / p["file"]
            if a.exists() and b.exists():
                da = np.asarray(Image.open(a), dtype=np.int16)
                db = np.asarray(Image.open(b), dtype=np.int16)
                worst = max(worst, int(np.abs(da - db).max()) if da.shape == db.shape else 999)
        run["max_level_diff_vs_eager"] = worst
    write_json(path, data)
    return 0


STAGE_FUNCS = {"env": stage_env, "bench": stage_bench, "compile": stage_compile, "restore": stage_restore}


# ============================================================================ command line

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT"), help="output folder (default: $OUT)")
    p.add_argument("--device", default="cuda", help="cuda (the real check) or cpu (a dry run)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and one test, for the CPU dry run")
    p.add_argument("--no-install", action="store_true", help="skip the pip install stage")
    p.add_argument("--skip", action="append", choices=list(STAGES), help="skip a stage (repeatable)")
    p.add_argument("--budget-s", type=float, default=530.0, help="seconds for the whole check (default 530)")
    p.add_argument("--work", help="scratch folder (default: a new temporary one)")
    p.add_argument("--stage", choices=list(STAGE_FUNCS), help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out (or $OUT) is required")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.stage:
        args.deadline = args.deadline or time.time() + 600
        return STAGE_FUNCS[args.stage](args)
    orchestrator = Orchestrator(args)
    signal.signal(signal.SIGTERM, orchestrator.interrupt)
    signal.signal(signal.SIGINT, orchestrator.interrupt)
    return orchestrator.main()


if __name__ == "__main__":
    sys.exit(main())
