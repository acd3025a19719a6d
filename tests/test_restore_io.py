"""Image files: 8/16 bits, formats, EXIF orientation, metadata, damaged files, atomic writes."""
import os
import stat

import numpy as np
import pytest
from PIL import Image, ImageOps

from durn.restoration import image_io
from durn.restoration.image_io import ImageReadError, read_image, write_image
from conftest import optional_import


def crop(name, top, left, height, width):
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)()[top:top + height, left:left + width])


def sixteen_bit(img: np.ndarray) -> np.ndarray:
    """A real photo spread over 16 bits, with the low byte carrying information too."""
    rng = np.random.default_rng(0)
    return (img.astype(np.uint16) * 257 + rng.integers(0, 200, img.shape)).astype(np.uint16)


def test_reads_scikit_image_photos_as_they_are():
    from skimage import data

    folder = data.data_dir
    np.testing.assert_array_equal(read_image(os.path.join(folder, "astronaut.png")).pixels, data.astronaut())
    camera = read_image(os.path.join(folder, "camera.png"))
    assert camera.pixels.dtype == np.uint8 and camera.pixels.shape == (512, 512)
    np.testing.assert_array_equal(camera.pixels, data.camera())


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_png_round_trip_is_exact(tmp_path, channels):
    rgb = crop("coffee", 10, 20, 23, 31)
    img = {1: rgb[:, :, 0], 3: rgb, 4: np.dstack([rgb, rgb[:, :, 1]])}[channels]
    img16 = sixteen_bit(img)
    path = tmp_path / "photo16.png"
    write_image(path, img16)
    back = read_image(path)
    assert back.pixels.dtype == np.uint16
    np.testing.assert_array_equal(back.pixels, img16)
    # Pillow decodes 16-bit gray PNGs fully by itself: an independent check of the encoder
    if channels == 1:
        np.testing.assert_array_equal(np.asarray(Image.open(path)), img16)


def test_8_bit_png_keeps_mode_icc_and_dpi(tmp_path):
    img = crop("astronaut", 0, 0, 20, 30)
    src = tmp_path / "in.png"
    Image.fromarray(img).save(src, icc_profile=b"not-a-real-profile", dpi=(300, 300))
    loaded = read_image(src)
    write_image(tmp_path / "out.png", loaded.pixels, like=loaded)
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "RGB" and out.info["icc_profile"] == b"not-a-real-profile"
        assert round(out.info["dpi"][0]) == 300


def test_jpeg_output_keeps_the_quantisation_tables(tmp_path):
    src = tmp_path / "in.jpg"
    Image.fromarray(crop("chelsea", 0, 0, 40, 48)).save(src, quality=61)
    loaded = read_image(src)
    write_image(tmp_path / "out.jpg", loaded.pixels, like=loaded)
    with Image.open(src) as a, Image.open(tmp_path / "out.jpg") as b:
        assert a.quantization == b.quantization
        # and not the encoder's default quality
        Image.fromarray(loaded.pixels).save(tmp_path / "default.jpg")
        with Image.open(tmp_path / "default.jpg") as c:
            assert c.quantization != a.quantization


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_dropped(tmp_path, orientation):
    img = crop("rocket", 0, 0, 12, 17)
    exif = Image.Exif()
    exif[image_io.ORIENTATION] = orientation
    exif[0x010F] = "durn test camera"  # Make: kept
    src = tmp_path / "in.png"
    Image.fromarray(img).save(src, exif=exif)
    loaded = read_image(src)
    with Image.open(src) as im:
        np.testing.assert_array_equal(loaded.pixels, np.asarray(ImageOps.exif_transpose(im)))
    write_image(tmp_path / "out.png", loaded.pixels, like=loaded)
    with Image.open(tmp_path / "out.png") as out:
        kept = out.getexif()
        assert image_io.ORIENTATION not in kept and kept[0x010F] == "durn test camera"


def test_16_bit_tiff_round_trip(tmp_path):
    optional_import("tifffile")
    img16 = sixteen_bit(crop("astronaut", 5, 5, 14, 19))
    write_image(tmp_path / "c.tif", img16)
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif").pixels, img16)
    write_image(tmp_path / "g.tiff", img16[:, :, 0])
    np.testing.assert_array_equal(read_image(tmp_path / "g.tiff").pixels, img16[:, :, 0])


def test_damaged_and_foreign_files_raise_one_clear_error(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(crop("camera", 0, 0, 64, 64)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:300])
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    cases = {truncated: "damaged or truncated PNG", text: "not an image file", empty: "not an image file",
             tmp_path / "missing.png": "no such file", tmp_path: "is a folder"}
    for path, message in cases.items():
        with pytest.raises(ImageReadError, match=message) as err:
            read_image(path)
        assert "\n" not in str(err.value)


def test_atomic_write_leaves_nothing_on_failure_and_usual_permissions_on_success(tmp_path, monkeypatch):
    img = crop("coffee", 0, 0, 10, 10)
    target = tmp_path / "out.png"

    def broken_save(tmp, *args, **kwargs):
        with open(tmp, "wb") as f:
            f.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(image_io, "_pil_save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, img)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    write_image(target, img)
    assert os.listdir(tmp_path) == ["out.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask
    np.testing.assert_array_equal(read_image(target).pixels, img)


def test_16_bit_into_an_8_bit_format_is_rounded_and_noted(tmp_path):
    img16 = sixteen_bit(crop("chelsea", 0, 0, 8, 9))
    notes = write_image(tmp_path / "o.bmp", img16)
    assert notes and "8-bit" in notes[0]
    np.testing.assert_array_equal(read_image(tmp_path / "o.bmp").pixels, np.round(img16 / 257).astype(np.uint8))


@pytest.mark.parametrize("ext,mode", [(".bmp", "RGB"), (".ppm", "RGB"), (".pgm", "L"), (".tif", "RGB"),
                                      (".webp", "RGB"), (".png", "LA")])
def test_other_formats_round_trip(tmp_path, ext, mode):
    img = crop("astronaut", 40, 40, 15, 18)
    img = {"L": img[:, :, 0], "LA": np.dstack([img[:, :, 0], img[:, :, 1]]), "RGB": img}[mode]
    path = tmp_path / f"x{ext}"
    write_image(path, img)
    back = read_image(path).pixels
    assert back.shape == img.shape and back.dtype == np.uint8
    if ext != ".webp":  # lossless formats
        np.testing.assert_array_equal(back, img)
    else:
        assert np.abs(back.astype(int) - img).mean() < 8


def _png_gray_alpha16_unfiltered(path, pixels):
    """A 16-bit gray + alpha PNG written independently of durn's encoder (no row filter)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_16_bit_gray_alpha_png_keeps_both_bytes(tmp_path):
    """Issue 12.6: Pillow reads these as 8 bits; durn keeps all 16 of gray and alpha."""
    rng = np.random.default_rng(2)
    img = rng.integers(0, 65536, (11, 13, 2)).astype(np.uint16)
    _png_gray_alpha16_unfiltered(tmp_path / "ga.png", img)
    loaded = read_image(tmp_path / "ga.png")
    assert loaded.pixels.dtype == np.uint16 and not loaded.notes
    np.testing.assert_array_equal(loaded.pixels, img)
    write_image(tmp_path / "back.png", loaded.pixels, like=loaded)
    np.testing.assert_array_equal(read_image(tmp_path / "back.png").pixels, img)


def test_files_that_cannot_be_opened_say_why(tmp_path, monkeypatch):
    """Issue 12.8: a link loop, a broken link and a permission error are not 'no such file'
    or 'not an image'."""
    os.symlink("loop.png", tmp_path / "loop.png")
    os.symlink(tmp_path / "nothing.png", tmp_path / "broken.png")
    locked = tmp_path / "locked.png"
    Image.fromarray(crop("camera", 0, 0, 8, 8)).save(locked)
    real_open = open

    def no_permission(p, *args, **kwargs):  # as chmod 000 would (the tests may run as root)
        if os.fspath(p) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(p))
        return real_open(p, *args, **kwargs)

    monkeypatch.setattr(image_io, "open", no_permission, raising=False)
    for path, message in {tmp_path / "loop.png": "^symbolic link loop$", tmp_path / "broken.png": "^broken symbolic link",
                          locked: "^permission denied"}.items():
        with pytest.raises(ImageReadError, match=message):
            read_image(path)


def test_names_with_newlines_are_shown_on_one_line():
    assert image_io.shown("a b/é.png") == "a b/é.png"
    assert image_io.shown("two\nlines.png") == "'two\\nlines.png'"


def test_temporary_files_name_their_writer_and_only_stale_ones_are_removed(tmp_path):
    """Issue 12.5: one naming of temporary files (.NAME.PID.XXXXXXXX.part), one cleanup that
    removes what dead writers left of the given files and nothing else."""
    import subprocess
    import sys

    from durn.atomic import atomic_output, remove_stale_temp_files, temp_target

    with atomic_output(tmp_path / "a.png") as tmp:
        name = os.path.basename(tmp)
        assert name.startswith(f".a.png.{os.getpid()}.") and name.endswith(".part") and temp_target(name) == "a.png"
        open(tmp, "wb").write(b"x")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [f".a.png.{dead.pid}.abcdefgh.part", ".a.png.oldstyle.part", f".b.jpg.{dead.pid}.k2_9zz0q.part"]
    kept = [f".a.png.{os.getppid()}.abcdefgh.part",  # its writer still runs
            f".c.png.{dead.pid}.abcdefgh.part",  # not one of the files asked about
            ".a.png.tmp", ".important.tmp", ".a.png.part", "a.png.1.abcdefgh.part"]
    for n in stale + kept:
        (tmp_path / n).write_bytes(b"left")
    removed = remove_stale_temp_files([tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "missing" / "x.png"])
    assert sorted(os.path.basename(p) for p in removed) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["a.png"])
