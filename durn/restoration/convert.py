"""Images in memory and the tensors a network takes: numpy arrays, PIL images, luma.

Arrays are (H, W) or (H, W, C), uint8, uint16 or float; tensors are float (C, H, W) in
[0, 1]. Integer results are rounded and clamped; float results are left as they are.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from PIL import Image

# ITU-R BT.601 luma, as PIL's convert("L"): gray from RGB wherever durn makes it.
LUMA = (0.299, 0.587, 0.114)


_INTEGER_MAX = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def array_to_chw(image: np.ndarray) -> tuple[torch.Tensor, int | None]:
    """A numpy image (H, W) or (H, W, C) -> float (C, H, W) in [0, 1] (float32; float64 stays
    float64), and the integer scale it was divided by (None for float images)."""
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] > 4):
        raise ValueError(
            f"expected a numpy image (H, W) or (H, W, C) with C <= 4, got shape {image.shape}; "
            "pass a list for several images"
        )
    dtype = image.dtype
    if dtype in _INTEGER_MAX:
        scale = _INTEGER_MAX[dtype]
    elif dtype in (np.float32, np.float64):
        scale = None
    else:
        raise ValueError(f"expected a uint8, uint16 or float numpy image, got dtype {dtype}")
    chw = image[:, :, None] if image.ndim == 2 else image
    x = torch.from_numpy(np.ascontiguousarray(chw.transpose(2, 0, 1)))
    x = x.to(torch.float64 if dtype == np.float64 else torch.float32)
    return (x / scale if scale is not None else x), scale


def chw_to_array(y: torch.Tensor, dtype, scale: int | None, two_d: bool) -> np.ndarray:
    """The inverse of :func:`array_to_chw`: integer images are rounded and clamped."""
    if scale is not None:
        y = (y.double() * scale).round_().clamp_(0, scale)
    out = y.permute(1, 2, 0).cpu().numpy().astype(dtype)
    return out[:, :, 0] if two_d else out


# Float images are in [0, 1]; unclipped noise takes them a little outside (sigma 100 on
# the 0..255 scale reaches about +-2), while images on the 0..255 scale reach far beyond.
FLOAT_RANGE = (-7.0, 8.0)


def check_float_range(x: torch.Tensor) -> None:
    """Refuse float images far outside [0, 1] (most often an image on the 0..255 scale)."""
    if x.numel() == 0:
        return
    lo, hi = float(x.detach().amin()), float(x.detach().amax())
    if lo < FLOAT_RANGE[0] or hi > FLOAT_RANGE[1]:
        raise ValueError(
            f"expected float pixel values in [0, 1] (noise may take them a little outside), got values from "
            f"{lo:.4g} to {hi:.4g}; for an image on the 0..255 scale divide by 255 (0..65535: by 65535), "
            "or pass the integer array itself"
        )


def pil_to_array(im: Image.Image, notes: list[str] | None = None) -> tuple[np.ndarray, str]:
    """Pixels of a PIL image as uint8, uint16 or float32 (H, W[, C]), and the mode the result
    should be given back in (palette and bilevel images come back as L/RGB/RGBA).

    A 32-bit integer (``"I"``) image holding only values 0..255 is taken as 8-bit data, and
    said so (appended to ``notes``, else a warning); other ``"I"`` images as 16-bit."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.array(im), mode
    if mode == "1":
        return np.array(im.convert("L")), "L"
    if mode in ("P", "PA"):
        target = "RGBA" if mode == "PA" or "transparency" in im.info else "RGB"
        return np.array(im.convert(target)), target
    if mode.startswith("I;16"):
        return np.array(im).astype(np.uint16), "I;16"
    if mode == "I":
        a = np.array(im)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError("32-bit integer images are supported only with values in 0..65535 (16-bit data)")
        if a.size and a.max() <= 255:
            note = ("a 32-bit integer ('I') image with values 0..255 is taken as 8-bit data (255 is white); "
                    "convert it to 'L' first to say so, or to 'I;16' for 16-bit data")
            if notes is None:
                warnings.warn(note, stacklevel=3)
            else:
                notes.append(note)
            return a.astype(np.uint8), "I"
        return a.astype(np.uint16), "I"
    if mode == "F":
        return np.array(im, dtype=np.float32), "F"
    if mode in ("CMYK", "YCbCr"):
        return np.array(im.convert("RGB")), mode
    if mode in ("RGBX", "HSV"):
        return np.array(im.convert("RGB")), "RGB"
    if mode == "RGBa":
        return np.array(im.convert("RGBA")), "RGBA"
    if mode == "La":
        return np.array(im.convert("LA")), "LA"
    raise ValueError(f"unsupported PIL image mode {mode!r}; convert it to 'RGB' or 'L' first")


def array_to_pil(array: np.ndarray, mode: str) -> Image.Image:
    """Inverse of :func:`pil_to_array`."""
    from PIL import Image

    if mode == "I;16":
        return Image.fromarray(array.astype(np.uint16))
    if mode == "I":
        return Image.fromarray(array.astype(np.int32))
    if mode == "F":
        return Image.fromarray(array.astype(np.float32))
    im = Image.fromarray(array)
    return im.convert(mode) if mode in ("CMYK", "YCbCr") else im
