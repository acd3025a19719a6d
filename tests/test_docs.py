"""The README and docs/ pages are current where their text comes from code, and their links resolve."""
import importlib.util
import re

import pytest

from conftest import REPO
from durn.models import NETWORKS

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_readme_network_table_is_the_specs():
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        match = re.match(r"\| `(\w+)` \|", line)
        if match and match.group(1) in NETWORKS:
            rows[match.group(1)] = line
    assert list(rows) == list(NETWORKS)
    for name, spec in NETWORKS.items():
        assert f"| {spec.params:,} |" in rows[name], name
        for psnr, ssim in spec.results.values():
            assert f"{psnr:.2f}/{ssim:.4f}" in rows[name], name


def test_benchmark_tables_are_report_py_on_the_results():
    spec = importlib.util.spec_from_file_location("benchmarks_report", REPO / "benchmarks" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    page = (REPO / "docs" / "benchmarks.md").read_text()
    results = sorted((REPO / "benchmarks" / "results").glob("*.json"))
    assert results
    for path in results:
        assert report.report([path]) in page, f"docs/benchmarks.md lacks `python benchmarks/report.py {path.name}`"


def _anchors(page) -> set[str]:
    """GitHub's anchors of a page's headings (outside code blocks)."""
    anchors, code = set(), False
    for line in page.read_text().splitlines():
        code ^= line.startswith("```")
        if not code and line.startswith("#"):
            anchors.add(re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page):
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
        if "://" in target:
            continue
        linked = (page.parent / target).resolve() if target else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name} links to {target}#{anchor}: no such heading"
