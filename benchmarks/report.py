"""Turn pytest-benchmark JSON (from ``benchmarks/``) into the Markdown tables of docs/benchmarks.md.

    python benchmarks/report.py benchmarks/results/cpu-2core-2026-12-02.json [more.json ...]

One table per network (or user model) and size: per variant the median over every timed
call of the interleaved rounds, the spread (IQR as a fraction of the median, min and
max), the ratios to eager (durn's module) and to ``torch.compile`` (> 1: faster), the
one-time costs and the peak memory of one call. Operators: one table, the median and
its ratio to the reference (on GPU also the time as a multiple of the memory-bandwidth
floor). The ``durn restore`` command: wall and CPU time of the folder. A variant whose
IQR exceeds 10% of its median is flagged: the machine was busy while it ran.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

NETWORK_ORDER = ("durn_p", "durn_p_real", "durn_u", "durn_us", "durn_s", "durn_s_p")
NETWORK_VARIANTS = ("eager", "eager-authors", "compile", "opt-torch", "opt-cpp", "opt-triton", "opt-cuda", "fast",
                    "restore-api")
CLI_VARIANTS = ("eager", "cold", "warm")
BUSY_SPREAD = 0.10  # IQR / median above this: the machine was busy (a warning, not a failure)


def load(paths: list[Path]) -> tuple[dict, list[dict]]:
    machine, rows = {}, []
    for path in paths:
        data = json.loads(Path(path).read_text())
        machine = machine or data.get("machine_info", {})
        machine.setdefault("datetime", data.get("datetime"))
        if data.get("durn_note"):
            machine.setdefault("notes", []).append(data["durn_note"])
        for bench in data.get("benchmarks", []):
            info = bench.get("extra_info", {})
            if "kind" not in info:
                continue
            samples = bench["stats"].get("data") or [bench["stats"]["median"]]
            rows.append({**info, "samples": samples, "source": str(path)})
    return machine, rows


def machine_line(machine: dict) -> str:
    durn = machine.get("durn", {})
    cpu = durn.get("cpu_model") or machine.get("cpu", {}).get("brand_raw") or machine.get("processor", "?")
    parts = [f"{cpu}, {durn.get('cpu_cores', machine.get('cpu', {}).get('count', '?'))} cores",
             f"{durn.get('torch_threads', '?')} torch threads", f"torch {durn.get('torch', '?')}"]
    if durn.get("gpu"):
        parts.insert(0, f"{durn['gpu']} (CUDA {durn.get('cuda', '?')})")
    loads = [durn.get(k, {}) or {} for k in ("load_start", "load_end")]
    if all(load.get("loadavg") for load in loads):
        parts.append("load average (1 min) {} at the start, {} at the end".format(
            *(load["loadavg"][0] for load in loads)))
    when = (machine.get("datetime") or "")[:10]
    return "Machine: " + "; ".join(parts) + (f"; measured {when}" if when else "")


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, med, q3 = statistics.quantiles(sorted(xs), n=4, method="inclusive")
    return q1, med, q3


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2f} ms"


def _s(seconds) -> str:
    return "" if seconds is None else f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2f} s"


def _order(names, preferred) -> list[str]:
    return [v for v in preferred if v in names] + sorted(v for v in names if v not in preferred)


def _one_time(variant: str, costs: dict) -> str:
    if not costs:
        return ""
    if variant == "compile":
        return f"compile + first call {_s(costs.get('first_call_s'))}"
    if variant == "fast":
        return (f"optimize {_s(costs.get('optimize_cold_s'))} cold, {_s(costs.get('optimize_warm_s'))} warm; "
                f"first call {_s(costs.get('first_call_s'))}")
    if variant.startswith("opt-"):
        return f"optimize {_s(costs.get('build_s'))}; first call {_s(costs.get('first_call_s'))}"
    if variant == "eager-authors":
        return f"copy {_s(costs.get('build_s'))}; first call {_s(costs.get('first_call_s'))}"
    return f"first call {_s(costs.get('first_call_s'))}"


def _busy(spread: float) -> str:
    return " (busy)" if spread > BUSY_SPREAD else ""


def network_tables(rows: list[dict]) -> tuple[str, list[str]]:
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["kind"] == "network":
            groups[(row["network"], row["size"], row["dtype"], row["device"])][row["variant"]].append(row)
    out, warnings = [], []

    def sort_key(key):
        order = NETWORK_ORDER.index(key[0]) if key[0] in NETWORK_ORDER else len(NETWORK_ORDER)
        return (order, key[0], key[1], key[2], key[3])

    for key in sorted(groups, key=sort_key):
        by_variant = groups[key]
        samples = {v: [t for r in rs for t in r["samples"]] for v, rs in by_variant.items()}
        medians = {v: statistics.median(xs) for v, xs in samples.items()}
        out += [f"**{key[0]}**, {key[1]}x{key[1]}, {key[2]}, {key[3]}:", "",
                "| variant | median | spread (IQR) | min - max | calls (rounds) | vs eager | vs compile "
                "| one-time costs | peak memory |", "|---|---|---|---|---|---|---|---|---|"]
        for v in _order(by_variant, NETWORK_VARIANTS):
            xs = samples[v]
            q1, med, q3 = _quartiles(xs)
            spread = (q3 - q1) / med if med else 0.0
            if spread > BUSY_SPREAD:
                warnings.append(f"{key[0]} {key[1]}x{key[1]} {key[2]} {v}: IQR {spread:.0%} of the median")
            first = by_variant[v][0]
            vs_eager = f"{medians['eager'] / medians[v]:.2f}x" if "eager" in medians and v != "eager" else ""
            vs_compile = f"{medians['compile'] / medians[v]:.2f}x" if "compile" in medians and v != "compile" else ""
            mem = first.get("peak_mem_mb")
            out.append("| " + " | ".join([
                v, _ms(medians[v]), f"{spread:.1%}{_busy(spread)}", f"{_ms(min(xs))} - {_ms(max(xs))}",
                f"{len(xs)} ({len(by_variant[v])})", vs_eager, vs_compile, _one_time(v, first.get("costs") or {}),
                "" if mem is None else f"{mem:.0f} MB"]) + " |")
        out.append("")
    return "\n".join(out), warnings


def op_table(rows: list[dict]) -> tuple[str, list[str]]:
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["kind"] == "op":
            groups[(row["case"], row["size"], row["dtype"], row["device"])][row["variant"]].append(row)
    if not groups:
        return "", []
    variants = _order({v for g in groups.values() for v in g}, ("reference", "compile"))
    lines = ["| operator | size | dtype | " + " | ".join(variants) + " |", "|" + "---|" * (3 + len(variants))]
    warnings = []
    for key in sorted(groups):
        by_variant = groups[key]
        samples = {v: [t for r in rs for t in r["samples"]] for v, rs in by_variant.items()}
        medians = {v: statistics.median(xs) for v, xs in samples.items()}
        base = medians.get("reference")
        cells = [key[0], f"{key[1]}x{key[1]}", key[2]]
        for v in variants:
            if v not in medians:
                cells.append("")
                continue
            q1, med, q3 = _quartiles(samples[v])
            spread = (q3 - q1) / med if med else 0.0
            if spread > BUSY_SPREAD:
                warnings.append(f"{key[0]} {key[1]}x{key[1]} {v}: IQR {spread:.0%} of the median")
            cell = _ms(medians[v])
            if base and v != "reference":
                cell += f" ({base / medians[v]:.2f}x)"
            cell += f" ±{spread / 2:.0%}"
            mem = by_variant[v][0].get("peak_mem_mb")
            if mem is not None:
                cell += f", {mem:.0f} MB"
            floor = by_variant[v][0].get("floor_ms")
            if floor and by_variant[v][0].get("device") == "cuda":
                cell += f", {medians[v] * 1e3 / floor:.1f}x floor"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), warnings


def cli_table(rows: list[dict]) -> tuple[str, list[str]]:
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["kind"] == "restore-cli":
            groups[(row["network"], row["size"], row["device"], row.get("images"))][row["variant"]].append(row)
    if not groups:
        return "", []
    lines = ["| network | photos | variant | median | min - max | rounds | per photo | vs eager | CPU | CPU vs eager |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(groups):
        by_variant = groups[key]
        wall = {v: [t for r in rs for t in r["samples"]] for v, rs in by_variant.items()}
        cpu = {v: [t for r in rs for t in r.get("cpu_samples_s") or []] for v, rs in by_variant.items()}
        med = {v: statistics.median(xs) for v, xs in wall.items()}
        cmed = {v: statistics.median(xs) for v, xs in cpu.items() if xs}
        for v in _order(by_variant, CLI_VARIANTS):
            lines.append("| " + " | ".join([
                key[0], f"{key[3]} x {key[1]}x{key[1]}", v, _s(med[v]), f"{_s(min(wall[v]))} - {_s(max(wall[v]))}",
                str(len(wall[v])), _ms(med[v] / key[3]) if key[3] else "",
                f"{med['eager'] / med[v]:.2f}x" if v != "eager" and "eager" in med else "",
                _s(cmed.get(v)), f"{cmed['eager'] / cmed[v]:.2f}x" if v != "eager" and "eager" in cmed and v in cmed
                else ""]) + " |")
    return "\n".join(lines), []


def report(paths: list[Path]) -> str:
    machine, rows = load(paths)
    if not rows:
        raise SystemExit(f"no durn benchmarks found in {', '.join(map(str, paths))}")
    out = [machine_line(machine), ""]
    out += [f"Note: {note}" for note in machine.get("notes", [])] + ([""] if machine.get("notes") else [])
    warnings = []
    networks, warn = network_tables(rows)
    warnings += warn
    if networks:
        out += ["End to end (per image, batch 1; median and spread over every timed call of the interleaved rounds; "
                "vs eager / vs compile: their median over the variant's, > 1 is faster; one-time costs: "
                "building, tuning, compiling and the first call; peak memory of one call):", "", networks]
    ops, warn = op_table(rows)
    warnings += warn
    if ops:
        out += ["Operators (median, (Nx): speed-up over the reference, ±half the IQR as a fraction of the "
                "median; peak memory; on GPU, time as a multiple of the memory-bandwidth floor):", "", ops, ""]
    cli, warn = cli_table(rows)
    warnings += warn
    if cli:
        out += ["`durn restore` of a folder of photos (wall time of the command; CPU: the process's CPU time):",
                "", cli, ""]
    if warnings:
        out += [f"**Warning: the machine was busy** for {len(warnings)} variant(s) (IQR above "
                f"{BUSY_SPREAD:.0%} of the median): compare the ratios of one run, not times across runs. "
                + "; ".join(warnings[:8]) + (f"; and {len(warnings) - 8} more" if len(warnings) > 8 else "") + ".",
                ""]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", type=Path, help="pytest-benchmark JSON files")
    args = parser.parse_args(argv)
    for path in args.json:
        if not path.exists():
            print(f"report.py: no such file: {path}", file=sys.stderr)
            return 2
    print(report(args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
