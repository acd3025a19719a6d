"""`durn restore`: files, folders and globs; resume; damaged files; formats; exit codes."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import durn
from durn.restoration import image_io
from durn.checkpoints import AUTHORS_NAMES, _rename
from durn.cli import main
from durn.restoration.image_io import read_image, write_image


pytestmark = pytest.mark.usefixtures("one_thread")


def crop(name, top, left, height, width):
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)()[top:top + height, left:left + width])


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A seeded durn_p_real checkpoint in the project's layout and in the authors'."""
    torch.manual_seed(3)
    sd = durn.durn_p_real().state_dict()
    folder = tmp_path_factory.mktemp("weights")
    torch.save(sd, folder / "project.pt")
    inverse = [(dst, src) for src, dst in AUTHORS_NAMES["durn_p_real"]]
    torch.save({"state_dict": {"module." + _rename(k, inverse): v for k, v in sd.items()}},
               folder / "DuRN_P_real_model.pt")
    return folder


@pytest.fixture(scope="module")
def model(weights):
    return durn.load_reference("durn_p_real", weights / "project.pt")


@pytest.fixture
def photos(tmp_path):
    """A folder of real photos in the usual kinds, plus files that are not images."""
    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(crop("astronaut", 30, 40, 37, 45)).save(d / "astronaut.png")
    Image.fromarray(crop("camera", 100, 100, 33, 29)).save(d / "camera.png")  # gray
    rgba = np.dstack([crop("coffee", 50, 50, 26, 31), np.linspace(0, 255, 26 * 31).reshape(26, 31).astype(np.uint8)])
    Image.fromarray(rgba).save(d / "coffee_alpha.png")
    rng = np.random.default_rng(0)
    rocket16 = (crop("rocket", 200, 300, 21, 34).astype(np.uint16) * 257 + rng.integers(0, 200, (21, 34, 3)))
    write_image(d / "rocket16.png", rocket16.astype(np.uint16))
    exif = Image.Exif()
    exif[image_io.ORIENTATION] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    Image.fromarray(crop("chelsea", 0, 100, 24, 40)).save(d / "chelsea.jpg", exif=exif, quality=90)
    (d / "notes.txt").write_text("not an image\n")
    (d / ".DS_Store").write_bytes(b"\0\1")
    return d


def add_damaged(d):
    (d / "broken.png").write_bytes((d / "astronaut.png").read_bytes()[:200])
    (d / "text.jpg").write_text("not a jpeg")


def run_cli(*args):
    return main(["restore", *map(str, args)])


def test_folder_restores_every_kind_like_the_api(photos, weights, model, tmp_path, capsys):
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    assert run_cli(photos, "--weights", weights / "project.pt", "-o", out) == 0
    err = capsys.readouterr().err
    assert "notes.txt" not in err and "1 non-image file ignored" in err and "5 restored" in err
    assert sorted(os.listdir(out)) == ["astronaut.png", "camera.png", "chelsea.jpg", "coffee_alpha.png", "rocket16.png"]
    for name in ["astronaut.png", "camera.png", "coffee_alpha.png", "rocket16.png"]:
        src, dst = read_image(photos / name), read_image(out / name)
        assert dst.pixels.dtype == src.pixels.dtype and dst.pixels.shape == src.pixels.shape, name
        np.testing.assert_array_equal(dst.pixels, durn.restore(model, src.pixels), err_msg=name)
    assert read_image(out / "rocket16.png").pixels.dtype == np.uint16
    np.testing.assert_array_equal(read_image(out / "coffee_alpha.png").pixels[:, :, 3],
                                  read_image(photos / "coffee_alpha.png").pixels[:, :, 3])
    with Image.open(out / "chelsea.jpg") as im:  # upright, no orientation tag left to apply twice
        assert im.size == (24, 40) and image_io.ORIENTATION not in im.getexif()
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before  # inputs untouched


def test_authors_checkpoint_and_network_recognised_from_it(photos, weights, model, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(photos / "astronaut.png", "--weights", weights / "DuRN_P_real_model.pt", "-o", out) == 0
    np.testing.assert_array_equal(read_image(out / "astronaut.png").pixels,
                                  durn.restore(model, read_image(photos / "astronaut.png").pixels))


def test_damaged_files_are_reported_and_the_rest_goes_on(photos, weights, tmp_path, capsys):
    add_damaged(photos)
    out = tmp_path / "out"
    assert run_cli(photos, "--weights", weights / "project.pt", "-o", out, "--suffix", "_clean") == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "cannot read" in line]
    assert len(lines) == 2 and any("broken.png" in line for line in lines) and any("text.jpg" in line for line in lines)
    assert "Traceback" not in err and "5 restored, 0 skipped, 2 failed" in err
    assert len(os.listdir(out)) == 5 and (out / "astronaut_clean.png").exists()


def test_interrupted_run_resumes_without_partial_files(photos, weights, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    original = image_io._pil_save
    calls = []

    def interrupted_save(tmp, *args, **kwargs):
        calls.append(tmp)
        if len(calls) == 2:  # Ctrl-C in the middle of writing the second output
            with open(tmp, "wb") as f:
                f.write(b"half a file")
            raise KeyboardInterrupt
        return original(tmp, *args, **kwargs)

    monkeypatch.setattr(image_io, "_pil_save", interrupted_save)
    assert run_cli(photos, "--weights", weights / "project.pt", "-o", out) == 130
    assert os.listdir(out) == ["astronaut.png"]  # the first output; no partial or temporary file
    first = (out / "astronaut.png").stat().st_mtime_ns
    (out / ".camera.png.leftover.part").write_bytes(b"from a killed run")  # what a SIGKILL can leave
    monkeypatch.setattr(image_io, "_pil_save", original)
    capsys.readouterr()
    assert run_cli(photos, "--weights", weights / "project.pt", "-o", out) == 0
    err = capsys.readouterr().err
    assert "1 output already exists" in err and "4 restored, 1 skipped" in err
    assert (out / "astronaut.png").stat().st_mtime_ns == first
    assert len([n for n in os.listdir(out) if not n.startswith(".")]) == 5
    # --overwrite redoes everything
    assert run_cli(photos, "--weights", weights / "project.pt", "-o", out, "--overwrite") == 0
    assert (out / "astronaut.png").stat().st_mtime_ns != first


@pytest.mark.filterwarnings("ignore:tile_overlap")
def test_globs_and_tiles(photos, weights, model, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(str(photos / "*.png"), "--weights", weights / "project.pt", "-o", out,
                   "--tile", "24", "--tile-overlap", "8", "-q") == 0
    assert sorted(os.listdir(out)) == ["astronaut.png", "camera.png", "coffee_alpha.png", "rocket16.png"]
    src = read_image(photos / "astronaut.png").pixels
    np.testing.assert_array_equal(read_image(out / "astronaut.png").pixels,
                                  durn.restore(model, src, tile=24, tile_overlap=8))
    assert capsys.readouterr().err.count("below this network's receptive field") == 1  # said once, not per file


def test_recursive_folders_mirror_the_tree(photos, weights, tmp_path, capsys):
    nested = photos / "trip" / "day1"
    nested.mkdir(parents=True)
    (photos / "astronaut.png").rename(nested / "astronaut.png")
    out = photos / "restored"  # inside the input folder: not read back as input
    assert run_cli(photos, "-r", "--weights", weights / "project.pt", "-o", out, "-q") == 0
    assert (out / "trip" / "day1" / "astronaut.png").exists() and (out / "camera.png").exists()
    assert run_cli(photos, "-r", "--weights", weights / "project.pt", "-o", out, "-q") == 0
    assert "5 skipped" in capsys.readouterr().err


def test_an_input_is_never_written(photos, weights, capsys):
    before = (photos / "astronaut.png").read_bytes()
    assert run_cli(photos / "astronaut.png", "--weights", weights / "project.pt", "-o", photos) == 2
    err = capsys.readouterr().err
    assert "an input" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert run_cli(photos / "astronaut.png", "--weights", weights / "project.pt", "-o", photos,
                   "--suffix", "_restored", "--overwrite") == 0
    assert (photos / "astronaut.png").read_bytes() == before and (photos / "astronaut_restored.png").exists()


def test_user_errors_are_one_line_with_exit_code_2(photos, weights, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    cases = [
        ([photos], "--weights default needs --network"),
        ([photos, "--network", "durn_u"], "released no pretrained weights for durn_u"),
        ([photos, "--network", "durn_p", "--weights", "untrained", "--degrade", "fog"], "--degrade: unknown degradation"),
        ([photos, "--weights", tmp_path / "nope.pt"], "weights file not found"),
        ([photos, "--weights", bad], "bad.pt"),
        ([photos, "--weights", "untrained"], "needs --network"),
        ([tmp_path / "nothing_here.png", "--weights", "untrained", "--network", "durn_p"], "nothing to restore"),
        ([photos, "--weights", "untrained", "--network", "durn_p", "--tile", "big"], "--tile"),
        ([photos, "--weights", weights / "project.pt", "--network", "durn_u"], "not of durn_u"),
    ]
    for args, message in cases:
        assert run_cli(*args, "-o", tmp_path / "o") == 2, message
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("durn restore: error:"), err
    assert run_cli(photos, "--weights", "untrained", "--network", "durn_p", "-o", photos / "camera.png") == 2
    assert "is a file" in capsys.readouterr().err


def test_degrade_writes_both_and_reports_psnr(photos, weights, model, tmp_path, capsys):
    out = tmp_path / "o"
    args = [photos / "astronaut.png", "--weights", weights / "project.pt", "--degrade", "gaussian:25", "-o", out]
    assert run_cli(*args) == 0
    err = capsys.readouterr().err
    src = read_image(photos / "astronaut.png").pixels
    degraded = read_image(out / "astronaut_degraded.png").pixels
    noise = degraded.astype(float) - src
    assert degraded.dtype == np.uint8 and 20 < noise.std() < 27  # sigma 25, a little clipped
    from durn.cli.restore import degrade_pixels

    expected = durn.restore(model, degrade_pixels(src, "gaussian:25", 0))  # the unquantised noisy input
    np.testing.assert_array_equal(read_image(out / "astronaut.png").pixels,
                                  np.clip(np.round(expected * 255), 0, 255).astype(np.uint8))
    psnr_noisy = 10 * np.log10(255**2 / np.mean((src.astype(float) - np.clip(np.round(
        degrade_pixels(src, "gaussian:25", 0) * 255), 0, 255)) ** 2))
    assert f"degraded {psnr_noisy:.2f} dB" in err, err
    # a second run keeps the existing degraded file and result
    (out / "astronaut_degraded.png").write_bytes(b"mine")
    assert run_cli(*args, "--overwrite", "--seed", "1") == 0
    assert (out / "astronaut_degraded.png").read_bytes() != b"mine"  # --overwrite: replaced
    (out / "astronaut.png").unlink()
    (out / "astronaut_degraded.png").write_bytes(b"mine")
    assert run_cli(*args) == 0
    assert (out / "astronaut_degraded.png").read_bytes() == b"mine"
    assert "kept the existing" in capsys.readouterr().err


def test_untrained_weights_warn_loudly(photos, tmp_path, capsys):
    assert run_cli(photos / "camera.png", "--network", "durn_p", "--weights", "untrained", "-o", tmp_path / "o") == 0
    assert "RANDOM weights" in capsys.readouterr().err
    assert read_image(tmp_path / "o" / "camera.png").pixels.shape == (33, 29)


def test_python_m_and_console_script(photos, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "o"
    args = ["restore", str(photos / "camera.png"), "--network", "durn_p_real", "--weights", "untrained", "-o", str(out)]
    done = subprocess.run([sys.executable, "-m", "durn", *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "camera.png").exists() and "1 restored" in done.stderr
    script = shutil.which("durn")
    if script is None:
        pytest.skip("the durn console script is not on PATH (install with pip install -e .)")
    again = subprocess.run([script, *args], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "0 restored, 1 skipped" in again.stderr, again.stderr


def test_a_degraded_side_file_is_never_written_over_an_input(photos, weights, tmp_path, capsys):
    """Issue 12.1: NAME_degraded is a path the command writes, checked like the outputs."""
    folder = tmp_path / "dg"
    folder.mkdir()
    shutil.copy(photos / "astronaut.png", folder / "a.png")
    shutil.copy(photos / "camera.png", folder / "a_r_degraded.png")  # a photo of the user's, by its name
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    args = [folder, "-o", folder, "--suffix", "_r", "--degrade", "gaussian:50", "--weights", weights / "project.pt"]
    assert run_cli(*args, "--overwrite") == 2
    err = capsys.readouterr().err
    assert "the NAME_degraded file for" in err and "a_r_degraded.png, an input" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert run_cli(folder / "a.png", folder / "a_r_degraded.png", *args[1:]) == 2  # named: an input too
    assert "a_r_degraded.png, an input" in capsys.readouterr().err
    # without --overwrite it is taken for an earlier result: kept, never written
    assert run_cli(*args) == 0
    err = capsys.readouterr().err
    assert "kept the existing" in err and "a_r_degraded.png" in err
    assert (folder / "a_r_degraded.png").read_bytes() == before["a_r_degraded.png"]
    assert (folder / "a_r.png").exists()


def test_degrade_keeps_alpha(photos, weights, tmp_path):
    """--degrade on an image with alpha degrades its colours only (it raised a traceback)."""
    out = tmp_path / "o"
    assert run_cli(photos / "coffee_alpha.png", "--weights", weights / "project.pt", "--degrade", "gaussian:25",
                   "-o", out) == 0
    alpha = read_image(photos / "coffee_alpha.png").pixels[:, :, 3]
    for name in ("coffee_alpha.png", "coffee_alpha_degraded.png"):
        np.testing.assert_array_equal(read_image(out / name).pixels[:, :, 3], alpha)
    assert (read_image(out / "coffee_alpha_degraded.png").pixels[:, :, :3] != read_image(
        photos / "coffee_alpha.png").pixels[:, :, :3]).mean() > 0.5


def test_rerun_into_the_input_folder_with_a_suffix_resumes(photos, weights, capsys):
    """Issue 12.7: a second run takes the first one's results for results, not inputs."""
    args = ["-o", photos, "--suffix", "_clean", "--weights", weights / "project.pt", "-q"]
    assert run_cli(photos, *args) == 0
    results = {p.name: p.read_bytes() for p in photos.glob("*_clean.*")}
    assert len(results) == 5
    capsys.readouterr()
    assert run_cli(photos, *args) == 0
    err = capsys.readouterr().err
    assert "5 images in the input folders are this command's result" in err and "0 restored, 5 skipped" in err
    assert run_cli(str(photos / "*.png"), *args) == 0  # a glob alike
    assert "0 restored, 4 skipped" in capsys.readouterr().err
    assert run_cli(photos, *args, "--overwrite") == 2  # cannot tell them from photos: refused
    assert "delete it to redo it" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in photos.glob("*_clean.*")} == results
    assert not list(photos.glob("*_clean_clean.*"))


def test_a_glob_into_its_own_folder_names_the_real_problem(photos, weights, capsys):
    """Issue 12.8: 'same/*.png' -o same is an output landing on an input, not 'no image files'."""
    assert run_cli(str(photos / "*.png"), "-o", photos, "--weights", weights / "project.pt") == 2
    err = capsys.readouterr().err
    assert "matches no image files" not in err and "an input; choose another -o or --suffix" in err


def test_a_run_killed_between_its_two_files_finishes_the_second(photos, weights, tmp_path, capsys):
    out = tmp_path / "o"
    args = [photos / "astronaut.png", "--weights", weights / "project.pt", "--degrade", "gaussian:25", "-o", out]
    assert run_cli(*args) == 0
    degraded = (out / "astronaut_degraded.png").read_bytes()
    (out / "astronaut_degraded.png").unlink()
    first = (out / "astronaut.png").stat().st_mtime_ns
    assert run_cli(*args) == 0
    assert "1 restored, 0 skipped" in capsys.readouterr().err
    assert (out / "astronaut_degraded.png").read_bytes() == degraded
    assert (out / "astronaut.png").stat().st_mtime_ns == first  # kept, not rewritten


def test_leftovers_of_a_killed_write_are_removed_by_the_next_run(photos, weights, tmp_path, capsys):
    """Issue 12.5: what a SIGKILL during a write leaves (.NAME.PID.XXXXXXXX.part) is cleaned up
    by a rerun that skips the file, and by --overwrite; other hidden files stay."""
    from durn.atomic import atomic_output

    out = tmp_path / "o"
    args = [photos, "--weights", weights / "project.pt", "-o", out, "-q"]
    assert run_cli(*args) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with atomic_output(out / "camera.png") as tmp:  # the name a write really uses, then "killed"
        leftover = os.path.basename(tmp).replace(f".{os.getpid()}.", f".{dead.pid}.")
    (out / leftover).write_bytes(os.urandom(1 << 20))
    (out / ".camera.png.oldstyle.part").write_bytes(b"from an earlier durn")
    (out / ".notes.part").write_text("mine")
    (out / ".camera.png.tmp").write_text("mine")
    capsys.readouterr()
    assert run_cli(*args) == 0
    err = capsys.readouterr().err
    assert "removed 2 temporary files left by an interrupted run" in err and "5 skipped" in err
    assert sorted(n for n in os.listdir(out) if n.startswith(".")) == [".camera.png.tmp", ".notes.part"]
    (out / leftover).write_bytes(b"half")
    assert run_cli(*args, "--overwrite") == 0
    assert not (out / leftover).exists()


def test_16_bit_gray_alpha_keeps_its_depth_and_alpha(tmp_path, weights, model):
    """Issue 12.6: a 16-bit gray + alpha PNG comes out 16-bit, its alpha exact."""
    rng = np.random.default_rng(1)
    gray = crop("camera", 60, 60, 18, 23).astype(np.uint16) * 257 + rng.integers(0, 250, (18, 23)).astype(np.uint16)
    alpha = rng.integers(0, 65536, (18, 23)).astype(np.uint16)
    src = tmp_path / "in" / "ga16.png"
    src.parent.mkdir()
    write_image(src, np.dstack([gray, alpha]))
    assert run_cli(src, "--weights", weights / "project.pt", "-o", tmp_path / "out") == 0
    out = read_image(tmp_path / "out" / "ga16.png").pixels
    assert out.dtype == np.uint16 and out.shape == (18, 23, 2)
    np.testing.assert_array_equal(out[:, :, 1], alpha)
    np.testing.assert_array_equal(out, durn.restore(model, np.dstack([gray, alpha])))


def test_unreadable_files_say_why_on_one_line_each(photos, weights, tmp_path, capsys, monkeypatch):
    """Issue 12.8: a link loop, a broken link, a file this user may not read and a name with
    a newline are each reported for what they are, one line each."""
    odd = tmp_path / "odd"
    odd.mkdir()
    os.symlink("loop.png", odd / "loop.png")
    os.symlink(odd / "gone.png", odd / "broken.png")
    shutil.copy(photos / "camera.png", odd / "locked.png")
    (odd / "two\nlines.png").write_bytes(b"not a png")
    shutil.copy(photos / "camera.png", odd / "fine.png")
    real_open = open

    def no_permission(path, *args, **kwargs):  # as chmod 000 would (the tests may run as root)
        if os.fspath(path).endswith("locked.png"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(image_io, "open", no_permission, raising=False)
    assert run_cli(odd, "--weights", weights / "project.pt", "-o", tmp_path / "out", "-q") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("durn restore: ") for line in lines), lines
    reasons = {line.split(": ")[1].removeprefix("cannot read "): line.split(": ", 2)[2] for line in lines
               if "cannot read" in line}
    assert reasons[str(odd / "loop.png")] == "symbolic link loop"
    assert reasons[str(odd / "broken.png")].startswith("broken symbolic link")
    assert reasons[str(odd / "locked.png")].startswith("permission denied")
    assert reasons[repr(str(odd / "two\nlines.png"))].startswith("not an image file")
    assert "1 restored, 0 skipped, 4 failed" in lines[-1]
    assert run_cli(odd / "loop.png", "--weights", weights / "project.pt", "-o", tmp_path / "out") == 1
    assert "symbolic link loop" in capsys.readouterr().err  # named alone: not "no such file"


def test_no_optimize_runs_the_eager_network(photos, weights, model, tmp_path, monkeypatch):
    """--no-optimize reaches durn.restore as optimize=False; by default the fast path runs."""
    import argparse

    from durn.cli.restore import add_arguments
    from durn.restoration import api

    real, seen = api.restore, []

    def recording(*args, **kwargs):
        seen.append(kwargs.get("optimize", "missing"))
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "restore", recording)
    common = [photos / "camera.png", "--weights", weights / "project.pt", "-q"]
    assert run_cli(*common, "-o", tmp_path / "fast") == 0
    assert run_cli(*common, "-o", tmp_path / "eager", "--no-optimize") == 0
    assert seen == [True, False]
    src = read_image(photos / "camera.png").pixels
    eager = read_image(tmp_path / "eager" / "camera.png").pixels
    np.testing.assert_array_equal(eager, real(model, src, optimize=False))
    fast = read_image(tmp_path / "fast" / "camera.png").pixels
    assert np.abs(fast.astype(int) - eager).max() <= 1  # float32 rounding, then 8 bits
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    restore_help = " ".join(parser.format_help().split())
    assert "--no-optimize run the eager network instead of durn's fused fast path" in restore_help
