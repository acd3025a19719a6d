"""Reading images into the tensors every dataset returns, and the offline sample photos."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# scikit-image's bundled photographs. camera and astronaut are kept out of anything used
# for training: they are the pictures results are reported on.
REPORTING_PHOTOS = ("camera.png", "astronaut.png")
TRAINING_PHOTOS = (
    "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "brick.png",
    "grass.png", "gravel.png", "coins.png", "moon.png", "page.png",
)


class ImageFileError(ValueError):
    """An image file that cannot be read (missing, unreadable, damaged or not an image)."""


def is_image_file(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (sorted by path; hidden files skipped)."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in folder.glob(pattern)
        if p.is_file() and is_image_file(p) and not p.name.startswith(".")
    )


def read_image(path: str | os.PathLike, *, gray: bool = False) -> np.ndarray:
    """An 8-bit image as a numpy array (H, W, 3) RGB, or (H, W) with ``gray=True``.

    EXIF orientation is applied. Colour images become gray by ITU-R 601 luma (PIL's "L");
    16-bit images are scaled to 8 bits. :class:`ImageFileError` says why a file cannot be read.
    """
    from ..restoration.image_io import file_problem, shown

    problem = file_problem(path)
    if problem:
        raise ImageFileError(f"cannot read image {shown(path)}: {problem}")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                scale = 65535.0 if arr.max() > 255 else 255.0
                im = Image.fromarray(np.clip(arr / scale * 255.0 + 0.5, 0, 255).astype(np.uint8))
            im = im.convert("L" if gray else "RGB")
            return np.array(im)
    except Image.UnidentifiedImageError as err:
        size = os.path.getsize(path)
        raise ImageFileError(f"cannot read image {shown(path)}: not an image file Pillow can read ({size} bytes)") from err
    except Exception as err:  # Pillow raises many kinds (OSError, SyntaxError, zlib.error...) for damaged files
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ImageFileError(f"cannot read image {shown(path)}: damaged or truncated: {reason}") from err


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C) -> float32 (C, H, W) in [0, 1] (``x / 255`` in float32)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div(255.0)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()


def load_tensor(path: str | os.PathLike, *, gray: bool = False) -> torch.Tensor:
    """Read an image file as float32 (C, H, W) in [0, 1] (C = 1 with ``gray=True``, else 3)."""
    return to_tensor(read_image(path, gray=gray))


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """(3, H, W) float RGB -> (1, H, W) by ITU-R 601 luma (the weights of PIL's "L")."""
    from ..restoration.convert import LUMA

    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(0, keepdim=True)


def skimage_data_dir() -> Path:
    try:
        import skimage
    except ImportError as err:  # pragma: no cover - scikit-image is a test dependency
        raise ImportError("sample_images() needs scikit-image (pip install scikit-image)") from err
    return Path(skimage.__file__).parent / "data"


def sample_images(kind: str = "train") -> list[Path]:
    """Paths of real photographs that install offline with scikit-image.

    ``kind="train"``: photos usable for training and demos (never camera or astronaut);
    ``"report"``: camera and astronaut, kept for reporting results; ``"all"``: both.
    Only files present in the installed scikit-image are returned.
    """
    names = {"train": TRAINING_PHOTOS, "report": REPORTING_PHOTOS,
             "all": TRAINING_PHOTOS + REPORTING_PHOTOS}.get(kind)
    if names is None:
        raise ValueError(f"kind must be 'train', 'report' or 'all', got {kind!r}")
    root = skimage_data_dir()
    found = [root / n for n in names if (root / n).is_file()]
    if not found:
        raise FileNotFoundError(f"none of scikit-image's sample photos {list(names)} found in {root}")
    return found


def resize_bilinear_uint8(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 (H, W[, C]) to ``size = (width, height)`` like OpenCV's ``cv2.resize`` with
    its default INTER_LINEAR: bilinear with half-pixel centres, edge-clamped, no
    antialiasing, rounded to the nearest integer (the authors' GoPro and Car resize)."""
    width, height = size
    if image.shape[0] == height and image.shape[1] == width:
        return image.copy()
    squeeze = image.ndim == 2
    arr = image[:, :, None] if squeeze else image
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).to(torch.float64)[None]
    y = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    out = torch.floor(y[0] + 0.5).clamp(0, 255).to(torch.uint8).numpy().transpose(1, 2, 0)
    return out[:, :, 0] if squeeze else out
