"""pytest-benchmark set-up for ``benchmarks/bench_*.py`` (not part of the default test run).

Quick (durn_p at 128x128 and its operators, CPU; about 2 minutes on 2 cores)::

    python -m pytest benchmarks --benchmark-enable --benchmark-json=quick.json
    python benchmarks/report.py quick.json

Full (the six networks at two sizes each, every operator, the ``durn restore`` command;
the committed ``benchmarks/results/`` files come from it, on a quiet machine)::

    python -m pytest benchmarks --benchmark-enable --bench-full \\
        --benchmark-json=benchmarks/results/cpu-2core-$(date +%F).json

Options (they apply to every file): ``--bench-networks durn_p,durn_u``,
``--bench-model package.module:builder`` (your own model: any ``nn.Module`` taking an
image batch; a DuRN also gets the fast-path variants), ``--bench-sizes 256``,
``--bench-rounds N`` (exactly N rounds; default: 3 to 12, until stable),
``--bench-no-compile``, ``--bench-threads N``, ``--bench-device cpu|cuda``.

The variants of one case run interleaved, one round of each in turn (A B C A B C ...),
so a slow spell of a shared machine hits them alike; each item is one round of one
variant (a few timed calls). Rounds stop once every variant's median is known to within
3% (the 95% interval of a median, 1.57 IQR / sqrt(n)) after at least 3, or when the
case's time budget is spent: the items not needed are skipped and say why.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import bench_device, machine_description, machine_load  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("durn benchmarks")
    group.addoption("--bench-full", action="store_true", help="every network at two sizes, every operator, the CLI")
    group.addoption("--bench-networks", default=None, help="comma-separated registered network names")
    group.addoption("--bench-model", action="append", default=[], metavar="package.module:builder",
                    help="benchmark your own model (repeatable)")
    group.addoption("--bench-sizes", default=None, help="comma-separated image sizes (override the defaults)")
    group.addoption("--bench-rounds", type=int, default=None, help="exactly this many interleaved rounds")
    group.addoption("--bench-no-compile", action="store_true", help="skip the torch.compile variants")
    group.addoption("--bench-device", default=None, help="cpu or cuda (default: cuda when available)")
    group.addoption("--bench-threads", type=int, default=None, help="torch.set_num_threads for the run")


def pytest_configure(config):
    threads = config.getoption("--bench-threads", default=None)
    if threads:
        torch.set_num_threads(threads)
    config._durn_load_start = machine_load()
    if config.getoption("--benchmark-enable", default=False) or config.getoption("--collect-only", default=False):
        common.chosen_networks(config)  # bad --bench-networks / --bench-model: one clear error, before collection
        for spec in config.getoption("--bench-model"):
            common.load_user_model(spec)


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
    machine_info["durn"]["load_start"] = getattr(config, "_durn_load_start", None)
    machine_info["durn"]["load_end"] = machine_load()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    busy = []
    for key, rounds in common.ROUNDS.items():
        for variant, samples in rounds.samples.items():
            if len(samples) > 1 and common.spread(samples)["iqr_rel"] > common.BUSY_SPREAD:
                busy.append(f"{' '.join(map(str, key[1:]))} {variant}: IQR {common.spread(samples)['iqr_rel']:.0%} "
                            "of the median")
    if busy:
        terminalreporter.section("durn benchmarks: wide spread")
        terminalreporter.write_line(f"WARNING: the machine looks busy ({len(busy)} variant(s) with an IQR above "
                                    f"{common.BUSY_SPREAD:.0%} of the median); compare ratios, not times:")
        for line in busy:
            terminalreporter.write_line("  " + line)


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    dev = bench_device(request.config)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return dev
