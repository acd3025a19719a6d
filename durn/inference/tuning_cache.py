"""The on-disk record of measured per-layer algorithm choices, so a tuning is paid once
per machine: ``<torch hub dir>/durn/tuning.json`` (``TORCH_HOME`` or ``torch.hub.set_dir``
move it; ``DURN_TUNING_CACHE=<file>`` replaces it, ``DURN_TUNING_CACHE=off`` disables it).

An entry is keyed by what decides a layer's speed: the device's name, torch's version,
the thread count, and the layer's signature (weight and input shapes, strides, dtype,
settings, backend) with the candidates measured. A file that cannot be read or parsed,
or of another format version, is ignored and rewritten; an entry whose choice is not among
the layer's candidates now is ignored (measured again). Writes merge with the file's
current content and replace it atomically, so concurrent processes only ever lose an
entry, never the file.
"""
from __future__ import annotations

import functools
import json
import os
import platform
from pathlib import Path

import torch

from ..atomic import atomic_write

FORMAT = "durn-tuning-1"


def path() -> Path | None:
    """The cache file, or None when ``DURN_TUNING_CACHE=off``."""
    setting = os.environ.get("DURN_TUNING_CACHE", "")
    if setting.lower() in ("off", "0", "none", "false"):
        return None
    if setting:
        return Path(setting)
    return Path(torch.hub.get_dir()) / "durn" / "tuning.json"


@functools.lru_cache(maxsize=None)
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or platform.machine()
    return device.type


def key(signature: tuple, candidates: tuple[str, ...], device: torch.device) -> str:
    """A stable text key; ``signature`` is ``FusedConv2d.signature`` (its device made text)."""
    parts = [device_name(device), torch.__version__, f"threads={torch.get_num_threads()}",
             repr(tuple(str(p) if isinstance(p, torch.device) else p for p in signature)), ",".join(candidates)]
    return " | ".join(parts)


def load(file: Path | None) -> dict[str, str]:
    if file is None:
        return {}
    try:
        doc = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("choices"), dict):
        return {}
    return {k: v for k, v in doc["choices"].items() if isinstance(k, str) and isinstance(v, str)}


def save(file: Path | None, new: dict[str, str]) -> bool:
    """Merge ``new`` into the file; False (and nothing written) when it cannot be written."""
    if file is None or not new:
        return False
    choices = {**load(file), **new}
    text = json.dumps({"format": FORMAT, "choices": choices}, indent=0, sort_keys=True)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(file, lambda f: f.write(text), mode="w")
    except OSError:
        return False
    return True
