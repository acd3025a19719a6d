"""Learning curves of training runs: validation PSNR against steps, a fit, and the steps
a target would take.

    python scripts/learning_curves.py ../runs/durn_u_camera_blur_v6 \\
        --target "+2 dB over the input=+2" --json curve.json --png curve.png

Reads each run's ``log.jsonl`` (the validation records ``durn train`` writes: step,
val_psnr, val_input_psnr) and ``config.json``. A run continued from another run's
checkpoint is given as ``RUN@STEPS``: its steps are counted after the ``STEPS`` its
starting point had trained (v7@1750 continues v6's step 1,750), so chained runs read as
one curve (the earlier run's validations after that step are left out: another branch).

The fit is ``PSNR = a + b log2(step)`` by least squares over the best-so-far validation
PSNR from step ``--fit-from`` on (default: the first validation), the shape these runs
have shown (each doubling of the steps adds about the same dB until the data or the
network run out); ``b`` is the dB per doubling. A target (an absolute PSNR, or ``+D`` for
D dB over the degraded input's validation PSNR) is reached, on that fit, at
``2 ** ((target - a) / b)`` steps. It is an extrapolation beyond the measured steps:
a curve that bends over (the cosine schedule's end, a network at its capacity) reaches
the target later or never, which the table states as what it is, a projection.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from durn.atomic import atomic_write
from durn.train.checkpoint import log_lines


@dataclass
class Curve:
    name: str
    offset: int
    batch_size: int | None
    crop: int | None
    planned: int | None
    points: list[tuple[int, float, float]] = field(default_factory=list)  # (step incl. offset, psnr, input psnr)


def read_run(spec: str) -> Curve:
    path, _, offset = spec.partition("@")
    run = Path(path)
    log = run / "log.jsonl"
    if not log.is_file():
        raise SystemExit(f"{run}: no log.jsonl (expected a durn train run folder)")
    try:
        start = int(offset) if offset else 0
    except ValueError:
        raise SystemExit(f"{spec}: expected RUN or RUN@STEPS, STEPS a whole number") from None
    config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    curve = Curve(run.name, start, config.get("batch_size"), config.get("crop"), config.get("steps"))
    seen = {}
    for _, record in log_lines(log):  # lines cut by a kill are left out
        if "val_psnr" in record and "val_input_psnr" in record:
            seen[record["step"]] = (record["val_psnr"], record["val_input_psnr"])  # a resumed run may log a step twice
    curve.points = [(start + step, psnr, base) for step, (psnr, base) in sorted(seen.items())]
    if not curve.points:
        raise SystemExit(f"{run}: log.jsonl has no validation records (was --val-data given?)")
    return curve


def chain(curves: list[Curve]) -> list[Curve]:
    """Curves in training order, each earlier one cut at the step the next one continued
    from (its later validations are another branch of the training, not this curve)."""
    for i in range(len(curves) - 1, 0, -1):
        start = curves[i].offset
        if start > 0:
            for earlier in curves[:i]:
                earlier.points = [p for p in earlier.points if p[0] <= start]
    return [c for c in curves if c.points]


def best_so_far(points):
    best, out = -math.inf, []
    for step, psnr, base in points:
        best = max(best, psnr)
        out.append((step, best, base))
    return out


def fit_log2(points, fit_from: int = 0):
    """(a, b) of ``psnr = a + b log2(step)`` on the best-so-far PSNR of ``points`` with
    step >= fit_from; None with fewer than two distinct steps."""
    xy = [(math.log2(s), p) for s, p, _ in best_so_far(points) if s >= max(fit_from, 1)]
    if len({x for x, _ in xy}) < 2:
        return None
    n = len(xy)
    mx, my = sum(x for x, _ in xy) / n, sum(y for _, y in xy) / n
    b = sum((x - mx) * (y - my) for x, y in xy) / sum((x - mx) ** 2 for x, _ in xy)
    return my - b * mx, b


def steps_to(target: float, fit) -> float | None:
    """Steps at which the fit reaches ``target``; None when it never does (flat or falling)."""
    a, b = fit
    if b <= 1e-9:
        return None
    return 2 ** ((target - a) / b)


def parse_target(text: str) -> tuple[str, str]:
    label, _, value = text.rpartition("=")
    value = value.strip()
    try:
        float(value)
    except ValueError:
        raise SystemExit(f"--target {text!r}: expected LABEL=PSNR or LABEL=+DB (dB over the input)") from None
    return (label or value).strip(), value


def chart(curves, targets, fit):
    """A PIL image: each run's validation PSNR (dots) and best so far (line), the input's
    PSNR (thin line), the fit (gray) and the targets (orange) against log2 steps."""
    from PIL import Image, ImageDraw

    pts = [p for c in curves for p in c.points]
    xs = [math.log2(max(s, 1)) for s, _, _ in pts]
    # the input's line only when it is near the curve: 12 dB below, it would flatten the curve
    show_input = min(b for _, _, b in pts) > min(p for _, p, _ in pts) - 4
    ys = [p for _, p, _ in pts] + ([b for _, _, b in pts] if show_input else []) + [t for _, t in targets]
    x0, x1 = min(xs) - 0.3, max(xs) + 0.3
    y0, y1 = min(ys) - 0.2, max(ys) + 0.2
    W, H, L, B, T, R = 720, 400, 56, 44, 28, 16
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)

    def px(x, y):
        return L + (x - x0) / (x1 - x0) * (W - L - R), H - B - (y - y0) / (y1 - y0) * (H - B - T)

    draw.line([(L, T), (L, H - B), (W - R, H - B)], fill="black")
    for k in range(math.ceil(x0), math.floor(x1) + 1):
        x, _ = px(k, y0)
        draw.line([(x, H - B), (x, H - B + 4)], fill="black")
        draw.text((x, H - B + 6), f"{2 ** k:,}", fill="black", anchor="ma")
    step = 0.5 if y1 - y0 < 6 else 2.0
    for k in range(math.ceil(y0 / step), math.floor(y1 / step) + 1):
        _, y = px(x0, k * step)
        draw.line([(L - 4, y), (L, y)], fill="black")
        draw.line([(L + 1, y), (W - R, y)], fill=(235, 235, 235))
        draw.text((L - 6, y), f"{k * step:g}", fill="black", anchor="rm")
    draw.text(((W + L) / 2, H - 14), "training steps (log scale)", fill="black", anchor="mm")
    draw.text((6, 6), "validation PSNR (dB)", fill="black", anchor="la")
    if fit is not None:
        a, b = fit
        draw.line([px(x0, a + b * x0), px(x1, a + b * x1)], fill=(150, 150, 150), width=1)
    for label, t in targets:
        _, y = px(x0, t)
        draw.line([(L, y), (W - R, y)], fill=(255, 127, 14), width=1)
        draw.text((W - R - 2, y - 3), label, fill=(255, 127, 14), anchor="rd")
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    for i, c in enumerate(curves):
        colour = colours[i % len(colours)]
        light = tuple(int(v + (255 - v) * 0.55) for v in colour)
        base = [px(math.log2(s), b) for s, _, b in c.points]
        if show_input and len(base) > 1:
            draw.line(base, fill=light, width=1)
        line = [px(math.log2(s), p) for s, p, _ in best_so_far(c.points)]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for x, y in (px(math.log2(s), p) for s, p, _ in c.points):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        draw.text((W - R - 4, H - B - 6 - 14 * (len(curves) - 1 - i)),
                  f"{c.name} (dots: validations; " + ("thin: the degraded input)" if show_input else
                                                              f"the degraded input: {c.points[-1][2]:.2f} dB)"),
                  fill=colour, anchor="rd")
    return image


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN[@STEPS]", help="run folders, in training order")
    parser.add_argument("--target", action="append", default=[], metavar="LABEL=PSNR",
                        help="a validation PSNR to project (PSNR in dB, or +D: D dB over the input); repeatable")
    parser.add_argument("--fit-from", type=int, default=0, metavar="STEP",
                        help="fit only the validations from this step on (default: all)")
    parser.add_argument("--json", type=Path, help="write the points, the fit and the projections here")
    parser.add_argument("--png", type=Path, help="write the chart here (PNG)")
    args = parser.parse_args(argv)

    curves = chain([read_run(spec) for spec in args.runs])
    points = sorted(p for c in curves for p in c.points)
    base = points[-1][2]
    targets = []
    for text in args.target:
        label, value = parse_target(text)
        targets.append((label, base + float(value) if value.startswith("+") else float(value)))
    fit = fit_log2(points, args.fit_from)

    print("| run | step | validation PSNR | input | gain |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for c in curves:
        for s, p, b in c.points:
            print(f"| {c.name} | {s:,} | {p:.2f} | {b:.2f} | {p - b:+.2f} |")
    best = max(points, key=lambda p: p[1])
    print(f"\nbest: {best[1]:.2f} dB at step {best[0]:,} ({best[1] - best[2]:+.2f} dB over the input)")
    projections = {}
    if fit is None:
        print("fit: needs validations at two or more steps")
    else:
        print(f"fit: PSNR = {fit[0]:.3f} + {fit[1]:.3f} log2(step) ({fit[1]:+.3f} dB per doubling of the steps)")
        for label, t in targets:
            n = steps_to(t, fit)
            projections[label] = {"psnr": t, "steps": None if n is None else round(n)}
            print(f"{label} ({t:.2f} dB): " + ("never on this fit (it does not rise)" if n is None
                                                else f"about {n:,.0f} steps on this fit ({n / best[0]:.3g}x the best step)"))
    if args.json:
        doc = {"runs": [{"name": c.name, "offset": c.offset, "batch_size": c.batch_size, "crop": c.crop,
                         "planned_steps": c.planned,
                         "validation": [{"step": s, "psnr": round(p, 4), "input_psnr": round(b, 4)} for s, p, b in c.points]}
                        for c in curves],
               "fit": None if fit is None else {"a": round(fit[0], 4), "b_db_per_doubling": round(fit[1], 4),
                                                "from_step": args.fit_from},
               "projections": projections}
        atomic_write(args.json, lambda f: f.write(json.dumps(doc, indent=1) + "\n"), mode="w")
    if args.png:
        atomic_write(args.png, lambda f: chart(curves, targets, fit).save(f, format="PNG"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
