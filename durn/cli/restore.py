"""Restore image files, folders or globs with a DuRN and write the results to a folder.

Outputs that already exist are skipped (an interrupted run resumes where it stopped)
unless --overwrite; input files are never written; every output is written to a
temporary file and renamed into place, and temporary files that a killed run left are
removed. A file that cannot be read is reported on one line and the others go on; the
exit code is then 1.

With -o inside an input folder, images there that are this command's results for other
inputs (NAME + --suffix, NAME_degraded) are earlier results, not inputs; with --overwrite
they are refused instead, since durn cannot tell such a file from a photo of yours.

Results are deterministic: the same files, weights, options, device, precision and number
of threads give the same bytes, with --no-optimize always, and on the default fast path
once its per-layer choices are recorded (the first run on a machine measures them; two
processes measuring at once may choose differently, which can move an 8-bit value by one). Only --tile auto depends on the moment: it tiles an image
that does not fit in the free memory, so on a machine whose memory use changes pass a
tile size (or 'none') for results that must match run for run.

Many processes: ``torchrun --nproc-per-node N -m durn restore ...`` (and ``--nnodes`` for
several machines, which must see the inputs and -o at the same paths) shares the images
among the processes, each on its own device: cuda:LOCAL_RANK with CUDA (--device auto,
cuda or cuda:N alike, as in durn train), else the CPU. Every process plans the job list,
so each finds the same mistakes in the command (rank 0 reports them). Rank 0 alone then
removes the temporary files of killed runs, finds the outputs that already exist and reads
the image sizes, all before any process writes (so no process's in-flight temporary file
can be taken for a leftover), and sends the others the images to restore, which
:func:`split_jobs` shares out (balanced on pixel count, deterministic). Lines about one
image come from the process restoring it, prefixed ``durn restore [rank R]:``; lines about
the whole command and the summary (totals of all processes), from rank 0 only. No process
exits before all are done (torchrun stops the others when one exits with an error); the
processes that failed on a file exit with 1, and torchrun then exits with 1 too.
"""
from __future__ import annotations

import argparse
import glob
import heapq
import os
import sys
import warnings
from dataclasses import dataclass
from datetime import timedelta

from . import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models import list_models

    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("--network", choices=list_models(),
                        help="which network (default: recognised from the --weights file)")
    parser.add_argument("--weights", default="default",
                        help="'default' (the network's released weights; the default), a released entry "
                             "(durn.weights.list_weights()), 'authors' (after durn import-authors), a durn weights "
                             "file, one of the authors' checkpoint files (DuRN-US_model.pt, ...), or 'untrained' "
                             "(random weights, to check the pipeline)")
    parser.add_argument("-o", "--output", default="restored", metavar="OUTDIR",
                        help="folder for the results (default: ./restored)")
    parser.add_argument("--suffix", default="", help="added to each output file name before the extension")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("-r", "--recursive", action="store_true",
                        help="also restore images in sub-folders of folder inputs (the tree is mirrored)")
    parser.add_argument("--tile", default="auto",
                        help="tile size in pixels, 'auto' (tiles only when an image does not fit in memory; "
                             "default) or 'none'")
    parser.add_argument("--tile-overlap", type=int, metavar="PX",
                        help="pixels shared by neighbouring tiles (default: the receptive field)")
    parser.add_argument("--exact-tiles", action="store_true",
                        help="tile only the convolutions, keeping activations in host memory: exact for every "
                             "network (slower)")
    parser.add_argument("--device", default="auto", help="'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...")
    parser.add_argument("--precision", default="float32", choices=("float32", "bf16", "fp16"),
                        help="float32 (default); bf16 / fp16 are faster on GPUs (a result with NaN/Inf is "
                             "recomputed in float32)")
    parser.add_argument("--degrade", metavar="SPEC",
                        help="try a network on clean photos: degrade each input first (gaussian:50, blur, haze, "
                             "rain, raindrop), write it beside the result as NAME_degraded, and print the PSNR of "
                             "both against the input file")
    parser.add_argument("--seed", type=int, default=0, help="random seed of --degrade (default 0)")
    parser.add_argument("--no-optimize", action="store_true",
                        help="run the eager network instead of durn's fused fast path (default: fast path; "
                             "results agree within float32 rounding)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


@dataclass
class Job:
    source: str
    output: str
    degraded: str | None = None  # the NAME_degraded file of --degrade
    found: bool = False  # found in a folder or by a glob (not named on the command line)

    @property
    def targets(self) -> list[str]:
        """Every path this job writes."""
        return [self.output] + ([self.degraded] if self.degraded else [])


def image_files(folder: str, recursive: bool, exclude: str) -> tuple[list[str], int]:
    """Image files in ``folder`` (sorted; hidden files and ``exclude`` skipped) and the
    number of other files passed over."""
    from ..restoration.image_io import is_image_path

    found, others = [], 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.abspath(os.path.join(root, d)) != exclude) if recursive else []
        for name in sorted(files):
            if name.startswith("."):
                continue
            if is_image_path(name):
                found.append(os.path.join(root, name))
            else:
                others += 1
    return found, others


def plan_jobs(inputs: list[str], outdir: str, suffix: str, recursive: bool,
              degrade: bool = False) -> tuple[list[Job], list[str], list[str]]:
    """(jobs, notes, errors): one job per input image with the paths it writes; notes on
    files passed over; errors for inputs that matched nothing (one line each)."""
    from ..restoration.image_io import is_image_path, shown

    outdir_abs = os.path.abspath(outdir)
    jobs, notes, problems = [], [], []

    def job(source: str, relative: str, found: bool) -> Job:
        output = _output_path(outdir, relative, suffix)
        stem, ext = os.path.splitext(output)
        return Job(source, output, f"{stem}_degraded{ext}" if degrade else None, found)

    for item in inputs:
        if os.path.isdir(item):
            files, others = image_files(item, recursive, outdir_abs)
            if others:
                notes.append(f"{shown(item)}: {others} non-image file{'s' if others > 1 else ''} ignored")
            if not files:
                problems.append(f"{shown(item)}: no image files in this folder")
            jobs += [job(f, os.path.relpath(f, item), True) for f in files]
        elif os.path.lexists(item):  # a file, or a link that read_image explains
            jobs.append(job(item, os.path.basename(item), False))
        else:
            matches = sorted(glob.glob(item, recursive=True)) if glob.has_magic(item) else []
            images = [m for m in matches if not os.path.isdir(m) and is_image_path(m)]
            # as for folders: a results folder below where the pattern looks is not searched
            below = _inside(outdir_abs, os.path.abspath(_glob_base(item)))
            files = [m for m in images if not (below and _inside(os.path.abspath(m), outdir_abs))]
            if not matches:
                problems.append(f"{shown(item)}: no such file or folder")
            elif not files:
                problems.append(f"{shown(item)}: matches no image files" if not images else
                                f"{shown(item)}: matches only files in the output folder {shown(outdir)}")
            jobs += [job(f, os.path.basename(f), True) for f in files]
    return jobs, notes, problems


def _glob_base(pattern: str) -> str:
    """The folder a glob pattern starts from: its leading part without wildcards."""
    base = os.path.dirname(pattern)
    while glob.has_magic(base):
        base = os.path.dirname(base)
    return base or "."


def _inside(path: str, folder: str) -> bool:
    """Whether absolute ``path`` lies strictly inside absolute ``folder``."""
    try:
        return path != folder and os.path.commonpath([path, folder]) == folder
    except ValueError:  # on different drives
        return False


def _output_path(outdir: str, relative: str, suffix: str) -> str:
    stem, ext = os.path.splitext(relative)
    return os.path.join(outdir, stem + suffix + ext)


def check_jobs(jobs: list[Job], overwrite: bool = False) -> tuple[list[Job], list[Job]]:
    """(jobs, earlier results): drop repeated inputs and, without ``overwrite``, images found
    in the input folders that are another input's result (from an earlier run); refuse any
    written path (result or NAME_degraded file) that is an input or another job's."""
    from ..restoration.image_io import shown

    unique, seen = [], {}
    for job in jobs:
        key = os.path.realpath(job.source)
        if key not in seen:
            seen[key] = job
            unique.append(job)
        elif not job.found:  # also named on the command line: an input, whatever its name
            seen[key].found = False
    earlier = []
    if not overwrite:
        written = {os.path.realpath(t): job for job in unique for t in job.targets}
        earlier = [j for j in unique if j.found and written.get(os.path.realpath(j.source), j) is not j]
        dropped = {id(j) for j in earlier}
        unique = [j for j in unique if id(j) not in dropped]
    sources = {os.path.realpath(j.source): j for j in unique}
    targets: dict[str, Job] = {}
    for job in unique:
        for path in job.targets:
            what = "the output" if path == job.output else "the NAME_degraded file"
            real = os.path.realpath(path)
            if real in sources:
                other = sources[real]
                hint = (" (if it is a result of an earlier run, delete it to redo it: --overwrite never writes "
                        "over an input)") if other.found and overwrite else ""
                raise UserError(f"{what} for {shown(job.source)} would be {shown(other.source)}, an input; "
                                f"choose another -o or --suffix{hint}")
            if real in targets:
                raise UserError(
                    f"{shown(targets[real].source)} and {shown(job.source)} would both be written to {shown(path)}; "
                    "restore them into different -o folders"
                )
            targets[real] = job
    return unique, earlier


def load_model(network: str | None, weights: str, warn: bool = True):
    """The network for ``--network`` / ``--weights``; user errors as :class:`UserError`.
    ``warn=False``: no warning on stderr for random weights (ranks other than 0)."""
    import durn
    from ..models import list_models
    from ..restoration import UntrainedWeightsWarning, load_network
    from ..weights import WEIGHTS, WeightsHashError, form_of

    form = form_of(weights)
    if form in ("default", "authors", "untrained") and network is None:
        raise UserError(f"--weights {weights} needs --network ({', '.join(list_models())})")
    if form == "entry":
        entry_network = WEIGHTS[weights].network
        if network not in (None, entry_network):
            raise UserError(f"--weights {weights} is for {entry_network}, not --network {network}")
        network = entry_network
    if form == "untrained":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UntrainedWeightsWarning)
            model = load_network(network, "untrained")
        if warn:
                print(f"WARNING: --weights untrained: {network} has RANDOM weights; the outputs are NOT restorations "
                  "(use this only to check the pipeline)", file=sys.stderr)
        return model
    if form == "path" and not os.path.exists(weights):
        raise UserError(f"weights file not found: {weights} (expected a file, 'default', 'authors', 'untrained' "
                        f"or a released entry: {', '.join(WEIGHTS) or 'none'})")
    try:
        if network is None:
            network = identify_network(weights)
        return load_network(network, weights)
    except (durn.CheckpointError, FileNotFoundError, ValueError, WeightsHashError) as err:
        raise UserError(str(err).replace("\n", " ")) from None


def identify_network(path: str) -> str:
    from ..checkpoints import canonical_state_dict, identify, read_checkpoint

    ranking = identify(canonical_state_dict(read_checkpoint(path)))
    exact = sorted({name for score, name, _ in ranking if score == 1.0})
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise UserError(f"{path} fits several networks ({', '.join(exact)}); pass --network")
    raise UserError(f"{path} is not a checkpoint of any DuRN network; pass --network to see what does not match")


def degrade_pixels(pixels, spec: str, seed: int):
    """The image as float32 (H, W[, C]) in [0, 1] with ``spec`` applied (not clipped) to its
    colour channels; alpha is kept."""
    import numpy as np
    import torch

    from ..data.degradations import make_degradation
    from ..restoration import array_to_chw, chw_to_array

    try:
        degradation = make_degradation(spec)
    except ValueError as err:
        raise UserError(f"--degrade: {err}") from None
    x = array_to_chw(pixels)[0]
    colour = 1 if x.shape[0] <= 2 else 3
    out = degradation(x[:colour], torch.Generator().manual_seed(seed))
    return chw_to_array(torch.cat([out, x[colour:]]), np.float32, None, pixels.ndim == 2)


def to_like(values, original):
    """Float pixels in [0, 1] as the original's integer type (rounded, clamped)."""
    import numpy as np

    from ..restoration import array_to_chw, chw_to_array

    if values.dtype == original.dtype:
        return values
    return chw_to_array(array_to_chw(values)[0], original.dtype, np.iinfo(original.dtype).max, values.ndim == 2)


def psnr_line(source: str, spec: str, clean, degraded, restored) -> str:
    """PSNR of the degraded input and of the result against the file, over all channels,
    after rounding to 8 bits (what a viewer of the written files compares)."""
    from ..metrics import psnr, quantize
    from ..restoration import array_to_chw

    target = quantize(array_to_chw(clean)[0], "round").double()
    before, after = (psnr(quantize(array_to_chw(x)[0], "round").double(), target, 255.0) for x in (degraded, restored))
    return f"{source} with {spec}: degraded {before:.2f} dB, restored {after:.2f} dB (PSNR against the file)"


COLLECTIVE_TIMEOUT = timedelta(hours=24)


class RankError(UserError):
    """A user error found by one process of a torchrun job only (not by every process alike)."""


def pick_device(name: str, d=None):
    """The device for ``--device``; under torchrun (``d`` enabled) a CUDA device is this
    process's cuda:LOCAL_RANK, whatever index was asked for (as in ``durn train``)."""
    import torch

    enabled = d is not None and d.enabled
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError):
            raise UserError(f"unknown device {name!r}; expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda, but this machine has no CUDA GPU (or torch is a CPU build)")
    if device.type == "cuda" and enabled:
        count = torch.cuda.device_count()
        if d.local_rank >= count:
            raise RankError(f"rank {d.rank} has LOCAL_RANK {d.local_rank}, but this machine has {count} CUDA "
                            f"GPU{'s' if count != 1 else ''}: start at most {count} processes per machine "
                            "(--nproc-per-node) or pass --device cpu")
        device = torch.device("cuda", d.local_rank)
    return device


def parse_tile(text: str):
    text = text.strip().lower()
    if text in ("auto", "none", "off", "0"):
        return None if text in ("none", "off", "0") else "auto"
    if text.isdigit():
        return int(text)
    raise UserError(f"--tile must be a number of pixels, 'auto' or 'none', got {text!r}")


def header_pixels(path: str) -> int:
    """Pixel count from the file header (for the progress bar); 0 when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[0] * im.size[1]
    except Exception:
        return 0


def split_jobs(pixels: list[int], world_size: int) -> list[list[int]]:
    """Which images each of ``world_size`` processes restores: for each rank, indices into
    ``pixels`` (the images' pixel counts), in their original order.

    A deterministic balanced split on pixel count: the images, largest first (ties: the
    earlier first), each go to the rank with the fewest pixels so far (ties: the fewest
    images, then the lowest rank). Every index goes to exactly one rank, and the same
    arguments give the same split on every machine."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    shares: list[list[int]] = [[] for _ in range(world_size)]
    loads = [(0, 0, rank) for rank in range(world_size)]  # (pixels, images, rank): a heap
    for i in sorted(range(len(pixels)), key=lambda i: (-pixels[i], i)):
        total, count, rank = heapq.heappop(loads)
        shares[rank].append(i)
        heapq.heappush(loads, (total + max(0, pixels[i]), count + 1, rank))
    return [sorted(share) for share in shares]


def run(args: argparse.Namespace) -> int:
    import torch.distributed as torch_dist

    from .. import distributed as D

    d = D.from_env()
    if not d.enabled:
        return _run(args, d)
    own_group = not torch_dist.is_initialized()
    try:
        return _run(args, d)
    except RankError:
        raise
    except UserError:
        if d.is_main:
            raise
        return 2  # every process found the same mistake; rank 0 says it
    finally:
        if own_group:
            D.shutdown(d)


def _run(args: argparse.Namespace, d) -> int:
    import torch

    from .. import distributed as D
    from ..atomic import remove_stale_temp_files
    from ..restoration.image_io import shown

    def note(line: str) -> None:  # about the whole command: said once, by rank 0
        if d.is_main:
            print(f"durn restore: {line}", file=sys.stderr)

    # Every process plans alike (same inputs, same sorted folder listings), so the user
    # errors below are found by all of them at once.
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UserError(f"-o {shown(args.output)} is a file; -o takes a folder for the results")
    jobs, notes, problems = plan_jobs(args.inputs, args.output, args.suffix, args.recursive, bool(args.degrade))
    for line in notes + problems:
        note(line)
    missing = len(problems)
    if not jobs:
        raise UserError("nothing to restore: no image files among the inputs")
    jobs, earlier = check_jobs(jobs, args.overwrite)
    if earlier:
        note(f"{len(earlier)} image{'s' if len(earlier) > 1 else ''} in the input folders "
             f"{'are' if len(earlier) > 1 else 'is'} this command's result for another input "
             f"(e.g. {shown(earlier[0].source)}), not restored as an input")
    tile = parse_tile(args.tile)
    if args.tile_overlap is not None and args.tile_overlap < 0:
        raise UserError("--tile-overlap must be >= 0")
    device = pick_device(args.device, d)
    if d.enabled:
        # For the few collectives below: NCCL on CUDA (as durn train), gloo otherwise. They
        # wait for rank 0's survey and weights download, and at the end for the slowest
        # process, which can take longer than torch's default 10 (NCCL) or 30 (gloo) minutes;
        # a process that dies makes torchrun stop the others anyway.
        D.init("cuda" if device.type == "cuda" else "cpu", timeout=COLLECTIVE_TIMEOUT)
    talk = device if device.type == "cuda" else torch.device("cpu")

    def survey():
        # Rank 0, while no process writes yet: no temporary file of this run can be in
        # flight, so every leftover is a killed run's (removed if its writer is gone). Its
        # jobs are the ones every process follows (not indices into each one's own plan:
        # a file copied into an input folder while the processes start changes a listing).
        removed = remove_stale_temp_files(t for j in jobs for t in j.targets)
        todo = [j for j in jobs if args.overwrite or not all(os.path.exists(t) for t in j.targets)]
        return len(removed), len(jobs) - len(todo), todo, [header_pixels(j.source) for j in todo]

    removed, skipped, todo, pixels = D.run_on_main(d, survey)
    if removed:
        note(f"removed {removed} temporary file{'s' if removed > 1 else ''} left by an interrupted run")
    if skipped:
        note(f"{skipped} output{'s' if skipped > 1 else ''} already exist{'s' if skipped == 1 else ''} "
             f"in {shown(args.output)} (skipped; --overwrite to redo)")
    model = None
    if todo:  # rank 0 first: a download, a weights error or the untrained warning happens once
        first_error = None
        if d.is_main:
            try:
                model = load_model(args.network, args.weights)
            except UserError as err:
                first_error = err
        first_error = D.broadcast_object(d, first_error)
        if first_error is not None:
            raise first_error
        if model is None:
            try:
                model = load_model(args.network, args.weights, warn=False)
            except UserError as err:  # where rank 0 succeeded: this process's own trouble
                raise RankError(f"rank {d.rank}: {err}") from None
        model = model.to(device)
    share = split_jobs(pixels, d.world_size)[d.rank]
    mine = [todo[k] for k in share]
    failed = process(model, mine, args, tile, [pixels[k] for k in share], d) if mine else 0
    own_failed = failed
    counts = D.all_sum(d, torch.tensor([len(mine) - failed, failed], dtype=torch.int64, device=talk))
    done, failed = (int(n) for n in counts.tolist())
    processes = f" ({d.world_size} processes)" if d.enabled else ""
    note(f"{done} restored, {skipped} skipped, {failed + missing} failed -> {shown(args.output)}{processes}")
    D.barrier(d)  # none exits before all are done: torchrun stops the others when one exits with 1
    # Under torchrun, the processes whose images failed exit with 1 (and rank 0 for inputs
    # that matched nothing), so torchrun's report names them; torchrun itself then exits with 1.
    return 1 if own_failed or (missing and d.is_main) else 0


def process(model, jobs: list[Job], args, tile, pixels: list[int] | None = None, d=None) -> int:
    """Restore and write each job; returns the number of failures (each reported on one line).
    ``pixels``: the jobs' pixel counts, if known; ``d``: this process's place under torchrun
    (its lines are prefixed with its rank; only rank 0 shows a progress bar, of its share)."""
    from tqdm import tqdm

    from ..restoration.image_io import shown

    failed = 0
    said: set[str] = set()  # warnings that apply to every file are printed once
    if pixels is None:
        pixels = [header_pixels(j.source) for j in jobs]
    enabled = d is not None and d.enabled
    prefix = f"durn restore [rank {d.rank}]" if enabled else "durn restore"
    bar = tqdm(total=sum(pixels), unit="px", unit_scale=True, disable=True if enabled and not d.is_main
               else args.quiet or None, file=sys.stderr, dynamic_ncols=True,
               desc=f"rank 0 of {d.world_size}" if enabled else None,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]")
    say = lambda text: tqdm.write(f"{prefix}: {text}", file=sys.stderr)  # noqa: E731
    try:
        for job, px in zip(jobs, pixels):
            bar.set_postfix_str(shown(os.path.basename(job.source)), refresh=False)
            done_before = bar.n
            progress = lambda f, base=done_before, px=px: bar.update(max(0, int(base + f * px) - bar.n))  # noqa: E731
            error = restore_one(model, job, args, tile, progress, say, said)
            if error:
                say(error)
                failed += 1
            bar.update(max(0, done_before + px - bar.n))
    finally:
        bar.close()
    return failed


def restore_one(model, job: Job, args, tile, progress, say, said: set[str]) -> str | None:
    """Read, restore and write one image; returns a one-line error, or None."""
    import torch

    from ..restoration.image_io import ImageReadError, read_image, shown, write_image
    from ..restoration.api import restore

    try:
        image = read_image(job.source)
    except ImageReadError as err:
        return f"cannot read {shown(job.source)}: {err}"
    pixels = image.pixels
    if args.degrade:
        pixels = degrade_pixels(image.pixels, args.degrade, args.seed)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = restore(model, pixels, tile=tile, tile_overlap=args.tile_overlap,
                             tile_mode="exact" if args.exact_tiles else "blend",
                             precision=args.precision, progress=progress, optimize=not args.no_optimize)
    except RuntimeError as err:  # CUDA: torch.OutOfMemoryError; CPU: "not enough memory"
        if isinstance(err, torch.OutOfMemoryError) or "not enough memory" in str(err):
            return f"out of memory restoring {shown(job.source)}; try a smaller --tile (e.g. --tile 512)"
        raise
    except ValueError as err:
        return f"cannot restore {shown(job.source)}: {err}"
    if args.degrade:
        say(psnr_line(shown(job.source), args.degrade, image.pixels, pixels, result))
        pixels, result = to_like(pixels, image.pixels), to_like(result, image.pixels)
    notes = list(image.notes)
    for path, values in zip(job.targets, (result, pixels)):
        if os.path.exists(path) and not args.overwrite:  # an earlier run's (perhaps killed before the other file)
            notes.append(f"kept the existing {shown(path)} (--overwrite to replace it)")
            continue
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            notes += write_image(path, values, like=image)
        except OSError as err:
            return f"cannot write {shown(path)}: {err}"
    for note in dict.fromkeys(notes):
        say(f"{shown(job.source)}: {note}")
    for message in dict.fromkeys(str(w.message) for w in caught):
        if message not in said:
            said.add(message)
            say(message)
    return None
