"""Datasets, synthetic degradations and sample photos for training and evaluating DuRNs.

Every dataset returns ``{"input": (C, H, W) float32, "target": (C, H, W) float32,
"name": str}`` items (:class:`PairDataset`), deterministic under its seed, the item index
and the epoch (``dataset.set_epoch(e)``).

- :func:`paper_dataset` / :data:`PAPER_DATASETS`: the paper's datasets in their
  publishers' folder layouts.
- :class:`CleanImageFolder`: clean photos only (DuRN-P's recipe adds noise in the loop,
  with :func:`add_gaussian_noise`).
- :class:`SyntheticPairs` with :func:`make_degradation`: (degraded, clean) pairs from any
  folder of clean photos: ``"gaussian:30,50,70"``, ``"blur"``, ``"haze"``, ``"rain"``,
  ``"raindrop"``.
- :func:`sample_images`: scikit-image's bundled photographs, offline.
"""
from .base import PairDataset, PairDatasetBase
from .crops import item_generator
from .degradations import (
    DEGRADATIONS,
    Degradation,
    GaussianNoise,
    Haze,
    MotionBlur,
    RainStreaks,
    Raindrops,
    add_gaussian_noise,
    make_degradation,
)
from .folders import CleanImageFolder, SyntheticPairs
from .images import list_images, load_tensor, read_image, sample_images
from .paper import AUTHORS_NOISE_SEED, PAPER_DATASETS, PaperDatasetInfo, authors_gaussian_noise, paper_dataset

__all__ = [
    "AUTHORS_NOISE_SEED",
    "CleanImageFolder",
    "DEGRADATIONS",
    "Degradation",
    "GaussianNoise",
    "Haze",
    "MotionBlur",
    "PAPER_DATASETS",
    "PairDataset",
    "PairDatasetBase",
    "PaperDatasetInfo",
    "RainStreaks",
    "Raindrops",
    "SyntheticPairs",
    "add_gaussian_noise",
    "authors_gaussian_noise",
    "item_generator",
    "list_images",
    "load_tensor",
    "make_degradation",
    "paper_dataset",
    "read_image",
    "sample_images",
]
