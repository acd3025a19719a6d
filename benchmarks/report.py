"""Turn pytest-benchmark JSON (from ``benchmarks/``) into the Markdown tables of docs/benchmarks.md.

    python benchmarks/report.py benchmarks/results/cpu-2core-2026-11-25.json [more.json ...]

Per case (network or operator, size, dtype) and variant: the median over the
interleaved rounds, its ratio to the baseline of the same run (eager for networks, the
reference for operators; > 1 is faster), and the peak memory of one call. Operators on
a GPU also get their time as a multiple of the memory-bandwidth floor.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

NETWORK_ORDER = ("durn_p", "durn_p_real", "durn_u", "durn_us", "durn_s", "durn_s_p")
FIRST_VARIANTS = ("eager", "compile", "reference")


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
            rows.append({**info, "time": bench["stats"]["median"], "source": str(path)})
    return machine, rows


def machine_line(machine: dict) -> str:
    durn = machine.get("durn", {})
    cpu = durn.get("cpu_model") or machine.get("cpu", {}).get("brand_raw") or machine.get("processor", "?")
    parts = [f"{cpu}, {durn.get('cpu_cores', machine.get('cpu', {}).get('count', '?'))} cores",
             f"{durn.get('torch_threads', '?')} torch threads", f"torch {durn.get('torch', '?')}"]
    if durn.get("gpu"):
        parts.insert(0, f"{durn['gpu']} (CUDA {durn.get('cuda', '?')})")
    when = (machine.get("datetime") or "")[:10]
    return "Machine: " + "; ".join(parts) + (f"; measured {when}" if when else "")


def _variant_order(variants) -> list[str]:
    first = [v for v in FIRST_VARIANTS if v in variants]
    return first + sorted(v for v in variants if v not in first)


def table(rows: list[dict], kind: str) -> str:
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["kind"] != kind:
            continue
        name = row["network"] if kind == "network" else row["case"]
        groups[(name, row["size"], row["dtype"], row["device"])][row["variant"]].append(row)
    if not groups:
        return ""
    variants = _variant_order({v for g in groups.values() for v in g})
    base_name = "eager" if kind == "network" else "reference"
    head = ["network" if kind == "network" else "operator", "size", "dtype"] + variants
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def sort_key(key):
        name = key[0]
        order = NETWORK_ORDER.index(name) if name in NETWORK_ORDER else len(NETWORK_ORDER)
        return (order, name, key[1], key[2], key[3])

    for key in sorted(groups, key=sort_key):
        by_variant = groups[key]
        medians = {v: statistics.median(r["time"] for r in rs) for v, rs in by_variant.items()}
        base = medians.get(base_name)
        cells = [key[0], f"{key[1]}x{key[1]}", key[2]]
        for v in variants:
            if v not in medians:
                cells.append("")
                continue
            cell = f"{_ms(medians[v])}"
            if base and v != base_name:
                cell += f" ({base / medians[v]:.2f}x)"
            mem = by_variant[v][0].get("peak_mem_mb")
            if mem is not None:
                cell += f", {mem:.0f} MB"
            floor = by_variant[v][0].get("floor_ms")
            if floor and by_variant[v][0].get("device") == "cuda":
                cell += f", {medians[v] * 1e3 / floor:.1f}x floor"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2f} ms"


def report(paths: list[Path]) -> str:
    machine, rows = load(paths)
    if not rows:
        raise SystemExit(f"no durn benchmarks found in {', '.join(map(str, paths))}")
    out = [machine_line(machine), ""]
    out += [f"Note: {note}" for note in machine.get("notes", [])] + ([""] if machine.get("notes") else [])
    networks = table(rows, "network")
    if networks:
        out += ["End to end (median over interleaved rounds; (Nx): speed-up over eager in the same run; "
                "peak memory of one call):", "", networks, ""]
    op_table = table(rows, "op")
    if op_table:
        out += ["Operators ((Nx): speed-up over the reference; on GPU, time as a multiple of the "
                "memory-bandwidth floor):", "", op_table, ""]
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
