"""Image files in and out: formats, 8 and 16 bits, EXIF orientation, atomic writes.

:func:`read_image` returns the pixels as a numpy array (H, W) or (H, W, C), uint8 or
uint16, turned upright by the EXIF orientation, plus what is needed to write the result
back the same way (format, ICC profile, EXIF without the orientation tag, DPI, JPEG
quantisation tables, TIFF compression). :func:`write_image` writes through a temporary
file in the destination folder and renames it into place, so an interrupted write never
leaves a partial file under the final name.

Pillow reads and writes most of this; two gaps are filled here: Pillow decodes 16-bit
RGB(A) PNGs to 8 bits (so the PNG decoder is run a second time with a raw mode that keeps
the low bytes) and cannot write them (so 16-bit PNGs are encoded here, with zlib). 16-bit
colour TIFFs go through ``tifffile`` when it is installed (scikit-image depends on it).
"""
from __future__ import annotations

import errno
import os
import stat
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..atomic import atomic_output
from .convert import pil_to_array

IMAGE_EXTENSIONS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
    ".webp": "WEBP", ".bmp": "BMP", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM",
}
ORIENTATION = 0x0112


class ImageReadError(Exception):
    """A file that is missing, unreadable or not an image; the message says which and why."""


@dataclass
class LoadedImage:
    pixels: np.ndarray  # (H, W) or (H, W, C), uint8 or uint16, upright
    format: str  # Pillow's format name: "PNG", "JPEG", "TIFF", ...
    mode: str  # the file's Pillow mode, for writing back (e.g. "CMYK")
    icc_profile: bytes | None = None
    exif: bytes | None = None  # without the orientation tag (the pixels are upright)
    dpi: tuple[float, float] | None = None
    save_options: dict = field(default_factory=dict)  # format-specific (JPEG tables, TIFF compression)
    notes: list[str] = field(default_factory=list)


def is_image_path(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


def shown(path: str | os.PathLike) -> str:
    """A file name for a one-line message: as it is, or quoted with escapes when it holds
    newlines or other unprintable characters."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be opened for reading as a file, in words; None when it can."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken symbolic link (to {shown(os.readlink(path))})"
        return "no such file"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symbolic link loop"
        if err.errno == errno.EACCES:
            return "permission denied (a folder on its path cannot be searched)"
        return err.strerror or str(err)
    if stat.S_ISDIR(st.st_mode):
        return "is a folder"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    try:
        with open(path, "rb"):
            return None
    except PermissionError:
        return "permission denied (this user may not read it)"
    except OSError as err:
        return err.strerror or str(err)


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``array`` (H, W[, C]) upright for EXIF ``orientation`` 1..8 (as
    ``PIL.ImageOps.exif_transpose`` does)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(array)) if op else array


# ----------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read an image file (first frame), upright, keeping 16 bits where the file has them."""
    path = os.fspath(path)
    problem = file_problem(path)
    if problem:
        raise ImageReadError(problem)
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as err:
        raise ImageReadError(_first_line(err)) from None
    except Exception as err:  # Pillow raises many kinds for foreign or damaged files
        size = os.path.getsize(path)
        raise ImageReadError(f"not an image file Pillow can read ({size} bytes): {_first_line(err)}") from None
    with im:
        try:
            return _decode(im, path)
        except ImageReadError:
            raise
        except Exception as err:
            raise ImageReadError(f"damaged or truncated {im.format} file: {_first_line(err)}") from None


def _decode(im: Image.Image, path: str) -> LoadedImage:
    notes = []
    # the decoder's raw mode tells the PNG bit depth; read it before getexif(), which may
    # decode the image (a PNG's eXIf chunk can follow the pixel data)
    tiles = list(im.tile)
    if getattr(im, "n_frames", 1) > 1:
        notes.append(f"only the first of its {im.n_frames} frames is restored")
    exif = im.getexif()
    orientation = exif.get(ORIENTATION, 1)
    if ORIENTATION in exif:
        del exif[ORIENTATION]
    pixels, mode = None, im.mode
    if im.format == "PNG":
        pixels = _png16(im, path, tiles, notes)
    elif im.format == "TIFF":
        pixels = _tiff16_colour(im, path, notes)
    if pixels is None:
        im.load()
        pixels, _ = pil_to_array(im, notes)
        if pixels.dtype == np.float32:
            raise ImageReadError("floating-point images are not supported; save it as 8- or 16-bit")
    options = {}
    if im.format == "JPEG":
        from PIL import JpegImagePlugin

        options = {"qtables": getattr(im, "quantization", None), "subsampling": JpegImagePlugin.get_sampling(im),
                   "progressive": bool(im.info.get("progressive") or im.info.get("progression"))}
    elif im.format == "TIFF":
        options = {"compression": im.info.get("compression")}
    dpi = im.info.get("dpi")
    return LoadedImage(
        pixels=apply_orientation(pixels, orientation),
        format=im.format,
        mode=mode,
        icc_profile=im.info.get("icc_profile"),
        exif=exif.tobytes() if len(exif) else None,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
        save_options=options,
        notes=notes,
    )


def _png16(im: Image.Image, path: str, tiles: list, notes: list[str]) -> np.ndarray | None:
    """A 16-bit RGB(A) PNG as uint16. Pillow's decoder keeps only the high byte of each
    sample; decoding again with the little-endian raw mode yields the low bytes (the
    unfiltering is the same, only the final unpacking differs). None for other PNGs."""
    if len(tiles) != 1:
        return None
    rawmode = tiles[0].args if isinstance(tiles[0].args, str) else tiles[0].args[0]
    if rawmode == "LA;16B":
        return _png16_gray_alpha(im, path, notes)
    if rawmode not in ("RGB;16B", "RGBA;16B") or im.mode not in ("RGB", "RGBA"):
        return None
    im.load()
    high = np.asarray(im)
    with Image.open(path) as again:
        t = again.tile[0]
        low_mode = rawmode.replace("16B", "16L")
        args = low_mode if isinstance(t.args, str) else (low_mode, *t.args[1:])
        again.tile = [t._replace(args=args)]
        again.load()
        low = np.asarray(again)
    return (high.astype(np.uint16) << 8) | low.astype(np.uint16)


def _png16_gray_alpha(im: Image.Image, path: str, notes: list[str]) -> np.ndarray:
    """A 16-bit gray + alpha PNG as uint16 (H, W, 2). Pillow has no unpacker that keeps both
    bytes of these samples, but its 8-bit RGBA unpacker takes the same 4 bytes per pixel
    (so the unfiltering is the same) and keeps them all: gray high, gray low, alpha high,
    alpha low."""
    try:
        with Image.open(path) as again:
            t = again.tile[0]
            again.tile = [t._replace(args="RGBA" if isinstance(t.args, str) else ("RGBA", *t.args[1:]))]
            again._mode = "RGBA"  # the decoder is made for the image's mode
            again.load()
            raw = np.asarray(again)
    except Exception:  # a Pillow without this private attribute: fall back to its 8 bits
        im.load()
        notes.append("16-bit gray + alpha PNG read as 8-bit")
        return np.array(im)[:, :, [0, 3]].astype(np.uint16) * 257
    return (raw[:, :, 0::2].astype(np.uint16) << 8) | raw[:, :, 1::2]


def _tiff16_colour(im: Image.Image, path: str, notes: list[str]) -> np.ndarray | None:
    bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
    bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
    if len(bits) < 2 or max(b or 0 for b in bits) <= 8:
        return None
    try:
        import tifffile
    except ImportError:
        notes.append("16-bit colour TIFF read as 8-bit (install tifffile to keep 16 bits)")
        return None
    array = tifffile.imread(path, key=0)
    if array.dtype != np.uint16 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageReadError(f"unsupported TIFF layout: {array.dtype} {array.shape}")
    return array


# ----------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------




def format_for(path: str | os.PathLike) -> str:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"unknown image extension {ext!r}; expected one of {sorted(IMAGE_EXTENSIONS)}")
    return IMAGE_EXTENSIONS[ext]


def write_image(path: str | os.PathLike, pixels: np.ndarray, like: LoadedImage | None = None) -> list[str]:
    """Write ``pixels`` (uint8 or uint16, (H, W[, C])) to ``path`` atomically, in the format
    its extension names, with the metadata of ``like``. Returns notes on anything that
    could not be kept."""
    fmt = format_for(path)
    like = like or LoadedImage(pixels, fmt, "")
    notes: list[str] = []
    if pixels.dtype == np.uint16 and fmt not in ("PNG", "TIFF"):
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
        notes.append(f"{fmt} holds 8 bits: written as 8-bit")
    with atomic_output(path) as tmp:
        if pixels.dtype == np.uint16 and fmt == "PNG":
            write_png16(tmp, pixels, icc_profile=like.icc_profile, dpi=like.dpi, exif=like.exif)
        elif pixels.dtype == np.uint16 and fmt == "TIFF" and pixels.ndim == 3:
            _write_tiff16_colour(tmp, pixels, like)
        else:
            _pil_save(tmp, pixels, fmt, like)
    return notes


def _pil_save(tmp: str, pixels: np.ndarray, fmt: str, like: LoadedImage) -> None:
    im = Image.fromarray(pixels)
    if like.mode in ("CMYK", "YCbCr") and fmt in ("JPEG", "TIFF") and pixels.ndim == 3:
        im = im.convert(like.mode)
    options: dict = {}
    if like.icc_profile and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["icc_profile"] = like.icc_profile
    if like.exif and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["exif"] = like.exif
    if like.dpi and fmt in ("PNG", "JPEG", "TIFF", "BMP"):
        options["dpi"] = like.dpi
    if fmt == "JPEG":
        qtables = like.save_options.get("qtables")
        if qtables and like.format == "JPEG":
            # the source's quantisation tables: the same quality as the file that came in
            options["qtables"] = qtables
            sampling = like.save_options.get("subsampling", -1)
            if sampling is not None and sampling >= 0:
                options["subsampling"] = sampling
        else:
            options["quality"] = 95
        options["progressive"] = like.save_options.get("progressive", False)
    elif fmt == "TIFF":
        compression = like.save_options.get("compression")
        lossless = ("raw", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits")
        options["compression"] = compression if compression in lossless else "tiff_adobe_deflate"
    elif fmt == "WEBP":
        options["quality"] = 95
    im.save(tmp, format=fmt, **options)


def _write_tiff16_colour(tmp: str, pixels: np.ndarray, like: LoadedImage) -> None:
    try:
        import tifffile
    except ImportError:
        raise OSError("writing a 16-bit colour TIFF needs the tifffile package") from None
    kwargs = {}
    if like.dpi:
        kwargs.update(resolution=like.dpi, resolutionunit="INCH")
    if like.icc_profile:
        kwargs["iccprofile"] = like.icc_profile
    if pixels.shape[2] == 4:
        kwargs["extrasamples"] = ["unassalpha"]
    tifffile.imwrite(tmp, pixels, photometric="rgb", compression="zlib", **kwargs)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path: str, pixels: np.ndarray, *, icc_profile: bytes | None = None,
                dpi: tuple[float, float] | None = None, exif: bytes | None = None) -> None:
    """A 16-bit PNG (gray, gray + alpha, RGB or RGBA) from a uint16 array (H, W[, C]).
    Every row uses the 'Up' filter (the difference from the row above), which suits photos."""
    if pixels.dtype != np.uint16:
        raise ValueError(f"expected uint16 pixels, got {pixels.dtype}")
    a = pixels[:, :, None] if pixels.ndim == 2 else pixels
    h, w, c = a.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = a.astype(">u2").reshape(h, w * c).view(np.uint8)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)))
        if icc_profile:
            f.write(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
        if dpi:
            ppm = [round(d / 0.0254) for d in dpi]
            f.write(_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
        if exif:
            f.write(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
        compressor = zlib.compressobj(6)
        previous = np.zeros(rows.shape[1], dtype=np.uint8)
        block = max(1, (8 << 20) // max(rows.shape[1], 1))  # about 8 MB of rows at a time
        for y0 in range(0, h, block):
            chunk_rows = rows[y0:y0 + block]
            above = np.vstack([previous[None], chunk_rows[:-1]])
            filtered = np.empty((chunk_rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
            filtered[:, 0] = 2  # filter type Up
            filtered[:, 1:] = chunk_rows - above  # uint8 arithmetic wraps modulo 256, as PNG wants
            previous = chunk_rows[-1]
            data = compressor.compress(filtered.tobytes())
            if data:
                f.write(_chunk(b"IDAT", data))
        f.write(_chunk(b"IDAT", compressor.flush()))
        f.write(_chunk(b"IEND", b""))
