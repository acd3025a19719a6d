"""Evaluate a DuRN on a dataset: per-image and mean PSNR / SSIM under a named protocol.

``evaluate(model, dataset, protocol=..., color_space=...)`` runs the network on every item
(or this process's shard under ``torchrun``) and returns an :class:`Evaluation`; the
``durn evaluate`` command wraps it (see ``durn/cli/evaluate.py``).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .atomic import atomic_write, remove_stale_temp_files
from .metrics import PROTOCOLS, compare

__all__ = [
    "Evaluation", "color_space_for", "distributed_env", "evaluate", "format_table", "restore_tensor",
    "shard_indices", "write_json",
]


def color_space_for(network: str, protocol: str, channels: int) -> str:
    """The colour space results are measured in: the authors' per-task choice (the spec's
    table, ``durn.NETWORKS[name].measured_on``) or, for ``"standard"``, Y for RGB images."""
    if protocol == "standard":
        return "gray" if channels == 1 else "y"
    from .models import NETWORKS

    measured_on = NETWORKS[network].measured_on
    return {"gray": "gray", "RGB": "rgb", "Y of YCrCb": "y"}[measured_on]


def restore_tensor(model: torch.nn.Module, image: torch.Tensor, device) -> torch.Tensor:
    """Run ``model`` on one RGB (or gray) float (C, H, W) image; honours
    ``model.channel_order`` ("BGR": channels reversed before the network and after)."""
    bgr = getattr(model, "channel_order", "RGB") == "BGR"
    x = image.flip(0) if bgr else image
    with torch.inference_mode():
        y = model(x[None].to(device=device, dtype=torch.float32))[0].float().cpu()
    return y.flip(0) if bgr else y


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Indices of process ``rank`` out of ``world_size``: every ``world_size``-th item from
    ``rank`` (each item exactly once over all ranks, no padding, so means are exact)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad rank {rank} for world size {world_size}")
    return list(range(rank, n, world_size))


def distributed_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment variables ((0, 1, 0) when unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


@dataclass
class Evaluation:
    protocol: str
    color_space: str
    images: list[dict] = field(default_factory=list)   # one dict per image, in dataset order
    failed: list[dict] = field(default_factory=list)   # {"index", "error"} of items that could not be read

    def mean(self) -> dict[str, float | None]:
        """Arithmetic means over images (the authors average per-image PSNR and SSIM)."""
        out = {}
        for key in ("psnr", "ssim", "input_psnr", "input_ssim"):
            vals = [r[key] for r in self.images if r.get(key) is not None]
            out[key] = sum(vals) / len(vals) if vals else None
        return out


def dataset_items(dataset, indices=None, *, failed: list, progress: bool = False, desc: str = "evaluate"):
    """``(i, dataset[i])`` for ``i`` in ``indices`` (default: all), with a progress bar if
    asked; an item that cannot be read is recorded in ``failed`` and skipped."""
    from .data.images import ImageFileError

    indices = list(range(len(dataset))) if indices is None else list(indices)
    iterator = indices
    if progress:
        from tqdm import tqdm

        iterator = tqdm(indices, desc=desc, unit="img", leave=False)
    for i in iterator:
        try:
            item = dataset[i]
        except ImageFileError as err:
            failed.append({"index": i, "error": str(err)})
            continue
        yield i, item


def evaluate(model: torch.nn.Module, dataset, *, protocol: str, color_space: str, device="cpu",
             indices=None, float_data: bool | None = None, progress: bool = False) -> Evaluation:
    """Restore ``dataset[i]["input"]`` for ``i`` in ``indices`` (default: all) and compare
    with ``"target"``; also measures the degraded input itself (``input_psnr``, ...).
    Items whose image files cannot be read are listed in ``failed`` (and left out of the
    means); the others are evaluated."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {sorted(PROTOCOLS)}")
    if float_data is None:
        float_data = bool(getattr(dataset, "float_data", False))
    result = Evaluation(protocol, color_space)
    for i, item in dataset_items(dataset, indices, failed=result.failed, progress=progress, desc="evaluate"):
        inp, tgt = item["input"], item["target"]
        start = time.perf_counter()
        out = restore_tensor(model, inp, device)
        seconds = time.perf_counter() - start
        m = compare(out, tgt, protocol=protocol, color_space=color_space, float_data=float_data)
        mi = compare(inp, tgt, protocol=protocol, color_space=color_space, float_data=float_data)
        result.images.append({
            "index": i, "name": item["name"], "height": int(tgt.shape[-2]), "width": int(tgt.shape[-1]),
            "psnr": m["psnr"], "ssim": m["ssim"], "input_psnr": mi["psnr"], "input_ssim": mi["ssim"],
            "seconds": seconds,
        })
    return result


def _finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def write_json(path, data: dict, *, overwrite: bool = False) -> Path:
    """Write ``data`` as JSON atomically (a temporary file in the same folder, then a
    rename): readers never see a half-written file. Without ``overwrite``, an existing file
    is never replaced (``FileExistsError``), also when it appears while writing.
    Infinite PSNRs (identical images) are written as the string ``"inf"``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(f):
        json.dump(_finite(data), f, indent=2, allow_nan=False)
        f.write("\n")

    remove_stale_temp_files([path])  # of a run killed while writing it
    try:
        atomic_write(path, write, overwrite=overwrite, mode="w")
    except FileExistsError:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it") from None
    return path


def _fmt(v, digits):
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def format_table(evaluation: Evaluation, *, per_image: bool = True) -> str:
    """A plain-text table: one row per image, then the mean."""
    rows = []
    if per_image:
        rows = [(str(r["index"]), r["name"], _fmt(r["psnr"], 2), _fmt(r["ssim"], 4),
                 _fmt(r["input_psnr"], 2), _fmt(r["input_ssim"], 4)) for r in evaluation.images]
    m = evaluation.mean()
    mean_row = ("", f"mean of {len(evaluation.images)}", _fmt(m["psnr"], 2), _fmt(m["ssim"], 4),
                _fmt(m["input_psnr"], 2), _fmt(m["input_ssim"], 4))
    header = ("#", "image", "PSNR", "SSIM", "input PSNR", "input SSIM")
    widths = [max(len(row[i]) for row in [header, mean_row, *rows]) for i in range(len(header))]

    def line(row):
        return "  ".join(c.rjust(w) if i != 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows), *([sep] if rows else []), line(mean_row)])
