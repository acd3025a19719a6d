"""One spec per network: everything durn knows about it, in one place.

Every per-network table elsewhere derives from these specs: the public builders
(``durn.models``), the authors' key conversion and channel order (``durn.checkpoints``),
the authors' archive paths (``durn.weights.authors``), the default weights
(``durn.weights.DEFAULTS``). Adding a network means adding its architecture to
``builders.py``, its key table to ``authors_keys.py`` and its spec here.

This module sits below ``durn.weights`` and ``durn.checkpoints`` (they import it); it
imports only the architectures.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch

from ..nn import DuRN
from . import authors_keys as keys
from .builders import build_durn_p, build_durn_p_real, build_durn_s, build_durn_s_p, build_durn_u, build_durn_us


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    builder: Callable[..., DuRN]   # the architecture, randomly initialised (``connection=``)
    paper_name: str
    task: str
    params: int                    # the paper's parameter count (tests hold the builder to it)
    global_ops: str                # what prevents exact tiling; "" for purely local networks
    results: dict = field(default_factory=dict)  # dataset -> (PSNR, SSIM), authors' protocol
    measured_on: str = "RGB"       # the colour space of those results
    authors_keys: tuple[tuple[str, str], ...] = ()  # authors' module prefix -> durn's
    # ``(folder, file)`` of the checkpoint in the authors' ``trainedmodels`` archive; the
    # first is what ``weights="authors"`` means, later ones are other training sets.
    authors_archive: tuple[tuple[str, str], ...] = ()
    authors_channel_order: str = "RGB"  # what the authors' weights expect
    default_weights: str | None = None  # the durn.weights entry ``pretrained=True`` loads
    preset: str | None = None           # the durn.train preset of the authors' recipe

    @property
    def authors_file(self) -> str:
        """The file name of the authors' checkpoint (``DuRN_P_model.pt``), for messages."""
        return self.authors_archive[0][1]

    @cached_property
    def _on_meta(self) -> DuRN:
        """The architecture without storage, for the facts it decides itself."""
        with torch.device("meta"):
            return self.builder()

    @property
    def in_channels(self) -> int:
        return self._on_meta.in_channels

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to a multiple of it (the architecture's stride-2 convs decide it)."""
        return self._on_meta.size_multiple


SPECS: dict[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        NetworkSpec(
            "durn_p", build_durn_p, "DuRN-P", "Gaussian noise removal, grayscale", 816_225, "",
            {"BSD200 sigma 30": (28.49, 0.8158), "BSD200 sigma 50": (26.36, 0.7355),
             "BSD200 sigma 70": (25.06, 0.6761)},
            measured_on="gray",
            authors_keys=tuple(keys.p_family_keys("P")),
            authors_archive=(("BSD_gray", "DuRN_P_model.pt"),),
            authors_channel_order="L",
            default_weights="durn_p.photos_gaussian_v3",
            preset="durn_p_gaussian",
        ),
        NetworkSpec(
            "durn_p_real", build_durn_p_real, "DuRN-P (real noise)", "real-world noise removal, RGB", 815_651, "",
            {"PolyU (40 crops)": (36.83, 0.9636)},
            authors_keys=tuple(keys.p_family_keys("P")),
            authors_archive=(("RealNoiseHKPoly", "DuRN_P_no_norm_model.pt"),),
            preset="durn_p_real",
            default_weights="durn_p_real.photos_camera_noise",
        ),
        NetworkSpec(
            "durn_u", build_durn_u, "DuRN-U", "motion blur removal, RGB", 12_856_579, "instance norm",
            {"GoPro test": (29.90, 0.9101), "Car dataset": (29.23, 0.8805)},
            authors_keys=tuple(keys.durn_u_keys()),
            authors_archive=(("GoPro", "DuRN_U_model.pt"),),
            preset="durn_u_gopro",
        ),
        NetworkSpec(
            "durn_us", build_durn_us, "DuRN-US", "haze removal, RGB", 9_070_915, "squeeze-excitation pooling",
            {"RESIDE SOTS indoor": (32.12, 0.9803), "DCPDN TestA": (32.60, 0.9828)},
            authors_keys=tuple(keys.durn_us_keys()),
            authors_archive=(("RESIDE", "DuRN-US_model.pt"), ("DCPDNData", "DuRN-US_model.pt")),
            default_weights="durn_us.photos_haze",
            preset="durn_us_reside",
        ),
        NetworkSpec(
            "durn_s", build_durn_s, "DuRN-S", "rain streak removal, RGB", 3_729_923, "squeeze-excitation pooling",
            {"DID-MDN": (33.21, 0.9251), "DDN": (31.30, 0.9194)},
            measured_on="Y of YCrCb",
            authors_keys=tuple(keys.p_family_keys("S")),
            authors_archive=(("DIDMDN_Data", "DuRN_S_model.pt"), ("DDN_Data", "DuRN_S_model.pt"),
                             ("DDN_Data_b", "DuRN_S_model.pt")),
            default_weights="durn_s.photos_rain",
            preset="durn_s_didmdn",
        ),
        NetworkSpec(
            "durn_s_p", build_durn_s_p, "DuRN-S-P", "raindrop removal, RGB (the authors' weights expect BGR)",
            10_176_964, "squeeze-excitation pooling",
            {"RainDrop test A": (31.24, 0.9259), "RainDrop test B": (25.32, 0.8174)},
            measured_on="Y of YCrCb",
            authors_keys=tuple(keys.durn_s_p_keys()),
            authors_archive=(("RainDrop", "DuRN_S_P_model.pt"),),
            authors_channel_order="BGR",  # trained and evaluated on images read with OpenCV
            default_weights="durn_s_p.photos_raindrop",
            preset="durn_s_p_raindrop",
        ),
    )
}


def list_models() -> list[str]:
    """The networks' names, in the order of durn's tables (durn_p first, durn_s_p last)."""
    return list(SPECS)


def get_spec(name: str) -> NetworkSpec:
    if name not in SPECS:
        raise ValueError(f"unknown network {name!r}; expected one of {sorted(SPECS)}")
    return SPECS[name]
