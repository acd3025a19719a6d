"""What each network is for, what it takes, and what the paper reports."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    paper_name: str
    task: str
    in_channels: int
    params: int
    size_multiple: int
    global_ops: str  # what prevents exact tiling; "" for purely local networks
    results: dict = field(default_factory=dict)  # dataset -> (PSNR, SSIM), authors' protocol
    measured_on: str = "RGB"


NETWORKS = {
    "durn_p": NetworkInfo(
        "durn_p", "DuRN-P", "Gaussian noise removal, grayscale", 1, 816_225, 1, "",
        {"BSD200 sigma 30": (28.49, 0.8158), "BSD200 sigma 50": (26.36, 0.7355), "BSD200 sigma 70": (25.06, 0.6761)},
        "gray",
    ),
    "durn_p_real": NetworkInfo(
        "durn_p_real", "DuRN-P (real noise)", "real-world noise removal, RGB", 3, 815_651, 1, "",
        {"PolyU (40 crops)": (36.83, 0.9636)},
    ),
    "durn_u": NetworkInfo(
        "durn_u", "DuRN-U", "motion blur removal, RGB", 3, 12_856_579, 4, "instance norm",
        {"GoPro test": (29.90, 0.9101), "Car dataset": (29.23, 0.8805)},
    ),
    "durn_us": NetworkInfo(
        "durn_us", "DuRN-US", "haze removal, RGB", 3, 9_070_915, 4, "squeeze-excitation pooling",
        {"RESIDE SOTS indoor": (32.12, 0.9803), "DCPDN TestA": (32.60, 0.9828)},
    ),
    "durn_s": NetworkInfo(
        "durn_s", "DuRN-S", "rain streak removal, RGB", 3, 3_729_923, 1, "squeeze-excitation pooling",
        {"DID-MDN": (33.21, 0.9251), "DDN": (31.30, 0.9194)},
        "Y of YCrCb",
    ),
    "durn_s_p": NetworkInfo(
        "durn_s_p", "DuRN-S-P", "raindrop removal, RGB (the authors' weights expect BGR)", 3, 10_176_964, 4,
        "squeeze-excitation pooling",
        {"RainDrop test A": (31.24, 0.9259), "RainDrop test B": (25.32, 0.8174)},
        "Y of YCrCb",
    ),
}
