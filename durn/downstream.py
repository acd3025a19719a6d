"""What restoration buys a downstream task: any user callable (a classifier, a detector,
...) scored on the clean, the degraded and the restored images (``durn evaluate
--downstream MODULE:FN``; docs/data.md, "Downstream tasks").

The contract. ``fn(images) -> scores``:

* ``images``: a float32 tensor (N, C, H, W) with values in [0, 1] (each image clamped to
  [0, 1]), RGB (C = 3) or gray (C = 1, ``durn_p``) in the network's channel count, on the
  evaluation's device. For each dataset item ``fn`` is called once with N = 3, the rows
  being the clean image, the degraded one and the network's restoration of it, in that
  order, under ``torch.no_grad()``. Row ``i`` of the result must depend on row ``i`` only.
* the result is one of:

  - a tensor (N, K), K >= 2, of **logits** (a classifier; for a detector, e.g. the
    logits of the class of its top box). Each image is compared with the clean one:
    ``agreement`` (1 when its top-1 class is the clean image's, argmax ties going to the
    lower index), ``clean_label_probability`` (the softmax probability it gives the
    clean image's top-1 class) and ``kl_from_clean`` (``KL(p_clean || p)`` in nats).
    On the clean row these are 1, its own top probability and 0.
  - a **dict** ``{name: N numbers}`` (a tensor, array or list per name) of per-image
    metrics the callable computes itself (a detection count, a mean confidence, a score
    against labels it holds, ...). Each is averaged as it is.

  Every value must be finite; every call must return the same form (and names).

The report gives, per metric, the mean over the images for clean / degraded / restored.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

__all__ = [
    "CONDITIONS", "DownstreamError", "DownstreamResult", "compare_logits", "evaluate_downstream",
    "format_downstream", "load_callable", "read_scores",
]

CONDITIONS = ("clean", "degraded", "restored")
LOGIT_METRICS = {
    "agreement": "top-1 agreement with clean",
    "clean_label_probability": "p(clean top-1 class)",
    "kl_from_clean": "KL(clean || image), nats",
}


class DownstreamError(ValueError):
    """A callable that cannot be loaded or that breaks the contract; one line."""


def load_callable(spec: str) -> Callable:
    """``"package.module:function"`` (or ``module:Class.method``, or ``path/to/file.py:fn``)
    -> the callable. Modules are looked up on ``sys.path`` and in the current folder."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(p.strip() for p in spec.split(":")):
        raise DownstreamError(f"expected MODULE:FUNCTION (e.g. mytask.detect:score), got {spec!r}")
    module_name, attr = (p.strip() for p in spec.split(":"))
    if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
        module = _module_from_file(module_name, spec)
    else:
        module = _import(module_name, spec)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            where = module_name if obj is module else f"{module_name}:{attr.rsplit('.', 1)[0]}"
            raise DownstreamError(f"{spec}: {where} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise DownstreamError(f"{spec} is not callable (it is a {type(obj).__name__!r} object); "
                             "expected a function fn(images) -> scores")
    return obj


def _import(name: str, spec: str):
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:  # as `python -m` would find it; the `durn` script does not search the current folder
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and (name == err.name or name.startswith(err.name + ".")):
            raise DownstreamError(f"{spec}: no module named {err.name!r} (on sys.path or in {cwd})") from None
        raise DownstreamError(f"{spec}: importing {name} failed: {type(err).__name__}: {err}") from None
    except Exception as err:
        raise DownstreamError(f"{spec}: importing {name} failed: {type(err).__name__}: {err}") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _module_from_file(path: str, spec: str):
    if not os.path.isfile(path):
        raise DownstreamError(f"{spec}: no such file {path!r}")
    name = "durn_downstream_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise DownstreamError(f"{spec}: {path} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        raise DownstreamError(f"{spec}: importing {path} failed: {type(err).__name__}: {err}") from None
    return module


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def read_scores(value, n: int, spec: str = "the callable") -> tuple[str, object]:
    """Check ``fn``'s result for a batch of ``n`` against the contract: ``("logits",
    (n, K) float64 tensor)`` or ``("metrics", {name: (n,) float64 tensor})``."""
    expected = (f"expected a ({n}, K) tensor of logits (K >= 2) or a dict of per-image metrics "
                f"{{name: {n} numbers}}")
    if isinstance(value, Mapping):
        if not value:
            raise DownstreamError(f"{spec} returned an empty dict; {expected}")
        metrics = {}
        for key, v in value.items():
            if not isinstance(key, str) or not key:
                raise DownstreamError(f"{spec} returned a dict with the key {key!r}; metric names must be "
                                      "non-empty strings")
            try:
                t = torch.as_tensor(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):
                raise DownstreamError(f"{spec} returned {_describe(v)} for {key!r}; expected {n} numbers") from None
            if t.dim() != 1 or t.shape[0] != n:
                raise DownstreamError(f"{spec} returned {_describe(v)} for {key!r}; expected {n} numbers "
                                      "(one per image)")
            if not bool(torch.isfinite(t).all()):
                raise DownstreamError(f"{spec} returned NaN or Inf for {key!r}; every value must be finite")
            metrics[key] = t
        return "metrics", metrics
    if isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":
        t = torch.as_tensor(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
        if not t.is_floating_point() or t.dim() != 2 or t.shape[0] != n or t.shape[1] < 2:
            hint = " (for one score per image, return a dict such as {'score': scores})" if t.dim() == 1 else ""
            raise DownstreamError(f"{spec} returned {_describe(value)}; {expected}{hint}")
        t = t.double()
        if not bool(torch.isfinite(t).all()):
            raise DownstreamError(f"{spec} returned logits with NaN or Inf; every value must be finite")
        return "logits", t
    raise DownstreamError(f"{spec} returned {_describe(value)}; {expected}")


def compare_logits(logits: torch.Tensor) -> list[dict[str, float]]:
    """Per row of (N, K) logits, compared with row 0 (the clean image): ``agreement``,
    ``clean_label_probability``, ``kl_from_clean`` (see the module's docstring)."""
    logp = torch.log_softmax(logits.double(), dim=1)
    p_clean, label = logp[0].exp(), int(logits[0].argmax())
    out = []
    for row in range(logits.shape[0]):
        kl = float((p_clean * (logp[0] - logp[row])).sum())
        out.append({"agreement": float(int(logits[row].argmax()) == label),
                    "clean_label_probability": float(logp[row, label].exp()),
                    "kl_from_clean": max(kl, 0.0)})
    return out


@dataclass
class DownstreamResult:
    callable: str
    kind: str | None = None                             # "logits" or "metrics", from the first call
    # per image: {"index", "name", "clean": {metric: value}, "degraded": {...}, "restored": {...}}
    images: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)    # items that could not be read

    @property
    def metrics(self) -> list[str]:
        return list(self.images[0]["clean"]) if self.images else []

    def mean(self) -> dict[str, dict[str, float]]:
        """{condition: {metric: mean over images}}."""
        return {c: {m: sum(r[c][m] for r in self.images) / len(self.images) for m in self.metrics}
                for c in CONDITIONS} if self.images else {c: {} for c in CONDITIONS}

    def to_json(self) -> dict:
        return {"callable": self.callable, "kind": self.kind, "conditions": list(CONDITIONS),
                "count": len(self.images), "mean": self.mean(), "images": self.images}


def evaluate_downstream(fn: Callable, model: torch.nn.Module, dataset, *, device="cpu", indices=None,
                        spec: str | None = None, progress: bool = False) -> DownstreamResult:
    """Score ``fn`` on ``dataset[i]``'s ``"target"`` (clean), ``"input"`` (degraded) and
    ``model``'s restoration of the input (``durn.evaluate.restore_tensor``: the network's
    ``channel_order`` honoured), for ``i`` in ``indices`` (default: all)."""
    from .evaluate import dataset_items, restore_tensor

    spec = spec or getattr(fn, "__qualname__", repr(fn))
    result = DownstreamResult(spec)
    names = None
    for i, item in dataset_items(dataset, indices, failed=result.failed, progress=progress, desc="downstream"):
        clean, degraded = item["target"], item["input"]
        if clean.shape != degraded.shape:
            raise DownstreamError(f"{item['name']}: the clean image is {tuple(clean.shape)} and the degraded one "
                                  f"{tuple(degraded.shape)}; the downstream task needs them the same size")
        restored = restore_tensor(model, degraded, device)
        batch = torch.stack([clean.float(), degraded.float(), restored.float()]).clamp(0, 1).to(device)
        with torch.no_grad():
            value = fn(batch)
        kind, scores = read_scores(value, len(CONDITIONS), spec)
        if result.kind is None:
            result.kind = kind
        elif kind != result.kind:
            raise DownstreamError(f"{spec} returned {kind} for {item['name']} but {result.kind} before; "
                                  "every call must return the same form")
        if kind == "logits":
            rows = compare_logits(scores)
        else:
            if names is None:
                names = list(scores)
            elif sorted(scores) != sorted(names):
                raise DownstreamError(f"{spec} returned the metrics {sorted(scores)} for {item['name']} but "
                                      f"{sorted(names)} before; every call must return the same names")
            rows = [{m: float(scores[m][row]) for m in names} for row in range(len(CONDITIONS))]
        result.images.append({"index": i, "name": item["name"], **dict(zip(CONDITIONS, rows))})
    return result


def _fmt(v: float) -> str:
    return f"{v:.4f}" if math.isfinite(v) else str(v)


def format_downstream(result: DownstreamResult) -> str:
    """The report: one row per metric, its mean on clean / degraded / restored images."""
    n = len(result.images)
    kind = {"logits": "logits, each image compared with the clean one", "metrics": "per-image metrics"}
    head = (f"downstream {result.callable} ({kind.get(result.kind, 'no scores')}): "
            f"mean of {n} image{'s' if n != 1 else ''}")
    if not n:
        return head
    mean = result.mean()
    label = (lambda m: LOGIT_METRICS.get(m, m)) if result.kind == "logits" else (lambda m: m)
    rows = [(label(m), *(_fmt(mean[c][m]) for c in CONDITIONS)) for m in result.metrics]
    header = ("metric", *CONDITIONS)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([head, line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])
