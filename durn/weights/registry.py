"""The released weights: one :class:`Weights` entry per network and training set.

Each entry records where the file is (shipped inside the package, or a release asset
fetched into the torch hub cache), its SHA-256 and size, what the network expects
(value range, channel order), the exact commands that made it, and what it measured on
held-out photos. The README's model cards are made from these entries
(``python scripts/model_cards.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Weight files small enough to live in git ship inside the package, here.
RELEASED_DIR = Path(__file__).resolve().parent / "released"


@dataclass(frozen=True)
class Weights:
    name: str                      # "<network>.<tag>", e.g. "durn_p.photos_gaussian"
    network: str
    file: str                      # file name, in RELEASED_DIR or in the hub cache
    sha256: str
    size: int                      # bytes
    url: str | None = None         # release asset; None when the file ships with durn
    channel_order: str = "RGB"     # "L", "RGB" or "BGR"
    value_range: tuple[float, float] = (0.0, 1.0)
    storage: str = "float16"       # dtype of the stored tensors (loaded as float32)
    task: str = ""
    training_data: str = ""
    recipe: tuple[str, ...] = ()   # the exact commands, in order, that made the file
    steps: int = 0
    batch: str = ""
    hardware: str = ""
    train_time: str = ""
    protocol: str = ""             # how the metrics were measured
    # {"<image>/<condition>": {"psnr_authors": .., "ssim_authors": .., "psnr_standard": ..,
    #  "ssim_standard": ..}}, and the same for the baselines under "baselines".
    metrics: dict = field(default_factory=dict)
    baselines: dict = field(default_factory=dict)
    notes: str = ""

    @property
    def in_package(self) -> bool:
        return self.url is None


_DURN_P_RECIPE = (
    "python scripts/make_training_photos.py PHOTOS",
    "durn train --preset durn_p_gaussian --data PHOTOS/train --val-data PHOTOS/val "
    "--degrade gaussian:30,50,70 --steps 4000 --batch-size 16 --crop 64 --reuse 1 --schedule cosine "
    "--val-every 250 --ckpt-every 50 --out RUN",
    "python scripts/release_weights.py RUN/best.pt --network durn_p --name durn_p.photos_gaussian",
)

ENTRIES: tuple[Weights, ...] = ()

# The entry `pretrained=True` loads, per network.
DEFAULTS: dict[str, str] = {}
