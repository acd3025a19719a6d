"""pytest-benchmark set-up for ``benchmarks/bench_*.py`` (not part of the default test run).

Run (the exact command: 5 minutes on the quiet 2-core CPU, 15 with other jobs running;
the tables of docs/benchmarks.md come from its JSON)::

    python -m pytest benchmarks --benchmark-enable --benchmark-json=benchmarks/results/cpu-2core-<date>.json
    python benchmarks/report.py benchmarks/results/cpu-2core-<date>.json

Options: ``--bench-rounds N`` (interleaved rounds, default 3 on CPU, 5 on GPU),
``--bench-networks durn_p,durn_u``, ``--bench-sizes 256``, ``--bench-no-compile``,
``--bench-threads N``, ``--bench-device cpu|cuda``.

Every benchmark is one timed call per round; the items are ordered so that all variants
of one case (eager, torch.compile, each backend) run in turn, round after round, so a
slow spell of a shared machine hits them alike. report.py takes the median over rounds.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_device, machine_description  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("durn benchmarks")
    group.addoption("--bench-rounds", type=int, default=None, help="interleaved rounds per case")
    group.addoption("--bench-networks", default=None, help="comma-separated network names")
    group.addoption("--bench-sizes", default=None, help="comma-separated image sizes (override the defaults)")
    group.addoption("--bench-no-compile", action="store_true", help="skip the torch.compile variants")
    group.addoption("--bench-device", default=None, help="cpu or cuda (default: cuda when available)")
    group.addoption("--bench-threads", type=int, default=None, help="torch.set_num_threads for the run")


def pytest_configure(config):
    threads = config.getoption("--bench-threads", default=None)
    if threads:
        torch.set_num_threads(threads)


def pytest_collect_file(file_path, parent):
    # bench_*.py files are collected here; a file named on the command line pytest
    # collects by itself.
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(session, config, items):
    """Interleave: per case, round r of every variant before round r + 1 of any."""
    def key(item):
        spec = getattr(item, "callspec", None)
        if spec is None or "variant" not in spec.params:
            return (0, item.nodeid, 0, 0)
        params = spec.params
        case = tuple(str(params[k]) for k in sorted(params) if k not in ("variant", "round"))
        return (1, (item.module.__name__,) + case, params.get("round", 0), spec.indices.get("variant", 0))

    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (key(item), order[id(item)]))


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["durn"] = machine_description(bench_device(config))


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    dev = bench_device(request.config)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return dev
