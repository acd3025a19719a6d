"""Model cards: the description of each released weights file in ``docs/weights.md``, made
from its registry entry (``python scripts/model_cards.py --readme`` prints them; a test
checks the page holds exactly these)."""
from __future__ import annotations

from .registry import Weights

BEGIN, END = "<!-- model cards: begin -->", "<!-- model cards: end -->"


def _cell(result: dict, protocol: str) -> str:
    return f"{result[f'psnr_{protocol}']:.2f} / {result[f'ssim_{protocol}']:.4f}"


def _heading(key: str) -> str:
    return key.replace("/sigma", " σ").replace("/", " ")


def results_table(rows) -> str:
    """Markdown tables, one per protocol, of ``(method, {"camera/sigma30": cell, ...})`` rows;
    columns in the order the rows first name them."""
    keys = list(dict.fromkeys(k for _, results in rows for k in results))
    lines = []
    for protocol in ("authors", "standard"):
        lines += [f"PSNR / SSIM, {protocol} protocol:", "",
                  "| method | " + " | ".join(_heading(k) for k in keys) + " |",
                  "| --- |" + " --- |" * len(keys)]
        for method, results in rows:
            lines.append(f"| {method} | " + " | ".join(_cell(results[k], protocol) if k in results else ""
                                                       for k in keys) + " |")
        lines.append("")
    return "\n".join(lines)


def metrics_table(entry: Weights) -> str:
    return results_table([("**" + entry.name + "**", entry.metrics), *entry.baselines.items()])


def _status(entry: Weights, defaults) -> str:
    if defaults.get(entry.network) == entry.name:
        return f"the default of `{entry.network}`: what `pretrained=True` and `weights=\"default\"` load"
    if entry.network in defaults:
        return f"an earlier release of `{entry.network}`; load it by name: `weights=\"{entry.name}\"`"
    return (f"**in progress**: below the quality a default must reach, so `{entry.network}` has no default yet; "
            f"kept so that training continues from it (`durn train --init {entry.name}`) and loadable by name: "
            f"`weights=\"{entry.name}\"`")


def model_card(entry: Weights, defaults: dict[str, str]) -> str:
    """``defaults``: each network's default entry name (durn.weights.DEFAULTS), for the card's status row."""
    where = "ships with durn (`durn/weights/released/`)" if entry.in_package else f"downloaded from {entry.url}"
    facts = [
        ("status", _status(entry, defaults)),
        ("task", entry.task),
        ("file", f"`{entry.file}`, {entry.size:,} bytes, {entry.storage}; {where}"),
        ("SHA-256", f"`{entry.sha256}`"),
        ("input", f"{entry.channel_order} in [{entry.value_range[0]:g}, {entry.value_range[1]:g}]"),
        ("training data", entry.training_data),
        ("training", f"{entry.steps:,} steps of {entry.batch}; {entry.hardware}; {entry.train_time}"),
        ("made by", "<br>".join(f"`{c}`" for c in entry.recipe)),
        ("measured", entry.protocol),
    ]
    lines = [f"#### `{entry.name}`", "", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in facts]
    lines += ["", metrics_table(entry)]
    if entry.notes:
        lines += [entry.notes, ""]
    return "\n".join(lines)


def readme_block(entries, defaults: dict[str, str]) -> str:
    body = "\n".join(model_card(e, defaults) for e in entries) if entries else "No weights are released yet.\n"
    return f"{BEGIN}\n{body}{END}"
