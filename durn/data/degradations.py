"""Synthetic degradations of clean images, one per DuRN task.

Every degradation is a callable ``(clean, generator) -> degraded`` on float (C, H, W)
tensors in [0, 1] (C = 1 or 3), deterministic under the ``torch.Generator`` (a CPU
generator; every random number is drawn from it and nothing else). Build them from a
spec string with :func:`make_degradation`:

=====================  ==================================================================
``gaussian:30``        additive white Gaussian noise, sigma on the 0..255 scale, not
``gaussian:30,50,70``  clipped (the paper's DuRN-P setting); one sigma drawn per image
``blur``               motion blur: a kernel rasterised from a random camera trajectory,
                       applied in linear light (gamma 2.2)
``camera_blur``        blur as real photos carry it: camera shake, straight linear motion
                       or mild defocus, then small sensor noise, 8-bit rounding and
                       sometimes JPEG (durn_u's release run trains on it)
``camera_noise``       real camera noise: Poisson-Gaussian noise in linear raw light (levels
                       of phone to DSLR sensors, ISO 100-6400), per-channel gains, an
                       optional Bayer mosaic and demosaicing, the sRGB tone curve, 8-bit
                       rounding and sometimes JPEG
``haze``               atmospheric scattering I = J t + A (1 - t), t = exp(-beta d), with a
                       depth proxy d and a random airlight A (RESIDE's beta and A ranges)
``rain``               rain streaks: sparse drops motion-blurred along one slanted
                       direction per layer, 1-3 layers, screen-blended onto the image
``raindrop``           raindrops on glass: each drop a small inverted lens (refraction),
                       out of focus (blurred), with a dark rim and a soft mask
=====================  ==================================================================

Parameters can be set in the spec, e.g. ``blur:kernel_size=41`` or ``haze:beta=1.0..1.8``
(a range ``lo..hi`` is drawn uniformly per image).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..restoration.convert import LUMA

__all__ = [
    "DEGRADATIONS", "CameraBlur", "CameraNoise", "Degradation", "GaussianNoise", "Haze", "MotionBlur", "RainStreaks",
    "Raindrops", "add_gaussian_noise", "make_degradation",
]


# ----------------------------------------------------------------------------- helpers
def _uniform(g: torch.Generator, lo: float, hi: float, n: int | None = None):
    u = torch.rand(() if n is None else (n,), generator=g, dtype=torch.float64)
    v = lo + (hi - lo) * u
    return float(v) if n is None else v


def _check_image(clean: torch.Tensor, name: str) -> None:
    if not isinstance(clean, torch.Tensor) or clean.dim() != 3 or clean.shape[0] not in (1, 3):
        shape = tuple(clean.shape) if isinstance(clean, torch.Tensor) else type(clean).__name__
        raise ValueError(f"{name}: expected a float tensor (C, H, W) with C = 1 or 3, got {shape}")
    if not clean.is_floating_point():
        raise ValueError(f"{name}: expected a float tensor in [0, 1], got {clean.dtype} (convert with x.float() / 255)")


def _pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Mirror padding by p on all sides (edge-replicate where the image is too small to mirror)."""
    if p == 0:
        return x
    h, w = x.shape[-2:]
    mode = "reflect" if p < h and p < w else "replicate"
    return F.pad(x[None], (p, p, p, p), mode=mode)[0]


def _convolve(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """True 2D convolution (kernel flipped) of every channel of (C, H, W) with an odd square
    kernel, mirror-padded so the output keeps the size of ``x``."""
    k = kernel.shape[-1]
    w = kernel.flip(-1, -2).to(x.dtype).expand(x.shape[0], 1, k, k)
    return F.conv2d(_pad(x, k // 2)[None], w, groups=x.shape[0])[0]


def _gaussian_kernel1d(sigma: float, dtype=torch.float32) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    k = _gaussian_kernel1d(sigma, x.dtype)
    r = k.numel() // 2
    c = x.shape[0]
    y = _pad(x, r)[None]
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return y[0]


def rasterize_path(points: torch.Tensor, size: int) -> torch.Tensor:
    """Splat equally weighted points (N, 2) as (x, y) in pixel units onto a (size, size) grid
    with bilinear weights; the result sums to 1 (the fraction of time spent at each offset)."""
    pts = points.to(torch.float64).clamp(0, size - 1)
    x0 = pts[:, 0].floor().clamp(max=size - 2) if size > 1 else pts[:, 0].floor()
    y0 = pts[:, 1].floor().clamp(max=size - 2) if size > 1 else pts[:, 1].floor()
    fx, fy = pts[:, 0] - x0, pts[:, 1] - y0
    k = torch.zeros(size * size, dtype=torch.float64)
    x0, y0 = x0.long(), y0.long()
    for dy, dx, wgt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = (x0 + dx).clamp(max=size - 1), (y0 + dy).clamp(max=size - 1)
        k.index_add_(0, yi * size + xi, wgt)
    k = k.view(size, size)
    return (k / k.sum()).float()


@dataclass(frozen=True)
class Range:
    """A parameter drawn uniformly from [lo, hi] per image (lo == hi: fixed)."""
    lo: float
    hi: float

    def draw(self, g: torch.Generator) -> float:
        return self.lo if self.lo == self.hi else _uniform(g, self.lo, self.hi)

    def __str__(self) -> str:
        return f"{self.lo:g}" if self.lo == self.hi else f"{self.lo:g}..{self.hi:g}"


class Degradation:
    """Base class: ``__call__(clean, generator)``; ``spec`` gives the string that rebuilds it;
    ``margin`` is how far (pixels) the degradation reaches across an image (so crops can be
    degraded with context and cut afterwards)."""

    name = ""
    margin = 0

    @property
    def spec(self) -> str:
        fields = [f for f in dataclasses.fields(self) if getattr(self, f.name) != f.default]
        if not fields:
            return self.name
        return self.name + ":" + ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields)

    def __call__(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _check_image(clean, self.name)
        return self.apply(clean, generator)

    def apply(self, clean: torch.Tensor, g: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


# ----------------------------------------------------------------------------- noise
def add_gaussian_noise(clean_batch: torch.Tensor, sigmas_255, generator: torch.Generator | None = None) -> torch.Tensor:
    """``clean + n * sigma / 255`` with n standard normal and sigma drawn per sample (dim 0)
    from ``sigmas_255``; not clipped (the paper's DuRN-P training and test inputs).

    ``clean_batch`` is (N, C, H, W) (or (C, H, W), one sample). Random numbers come from
    ``generator`` on its own device (CPU or CUDA); ``None`` uses torch's global generator on
    the batch's device. Returns a new tensor; the input is not modified.
    """
    if not clean_batch.is_floating_point():
        raise ValueError(f"add_gaussian_noise expects a float batch in [0, 1], got {clean_batch.dtype}")
    sigmas = torch.as_tensor(sigmas_255 if not isinstance(sigmas_255, (int, float)) else [sigmas_255],
                             dtype=torch.float64).flatten()
    if sigmas.numel() == 0 or bool((sigmas < 0).any()):
        raise ValueError(f"sigmas_255 must be one or more non-negative numbers, got {sigmas_255!r}")
    single = clean_batch.dim() == 3
    batch = clean_batch[None] if single else clean_batch
    device = generator.device if generator is not None else batch.device
    pick = torch.randint(len(sigmas), (batch.shape[0],), generator=generator, device=device)
    sigma = sigmas.to(device)[pick].to(torch.float32) / 255.0
    noise = torch.randn(batch.shape, generator=generator, device=device, dtype=torch.float32)
    noise = noise * sigma.view(-1, *([1] * (batch.dim() - 1)))
    out = batch + noise.to(batch.device, batch.dtype)
    return out[0] if single else out


@dataclass(frozen=True)
class GaussianNoise(Degradation):
    """Additive white Gaussian noise of standard deviation sigma/255 (sigma drawn from
    ``sigmas``), not clipped."""
    sigmas: tuple = (30.0, 50.0, 70.0)
    name = "gaussian"

    @property
    def spec(self) -> str:
        return "gaussian:" + ",".join(f"{s:g}" for s in self.sigmas)

    def apply(self, clean, g):
        return add_gaussian_noise(clean, self.sigmas, g)


# ----------------------------------------------------------------------------- motion blur
@dataclass(frozen=True)
class MotionBlur(Degradation):
    """Motion blur from a random camera trajectory (the shake model of Boracchi and Foi:
    a random walk with inertia, small random accelerations, rare abrupt jerks and a pull
    back towards the start), rasterised into a ``kernel_size`` kernel whose extent is a
    fraction ``length`` of the kernel, and applied in linear light (sRGB ~ gamma 2.2),
    as a long exposure averages irradiance."""
    kernel_size: int = 31
    length: Range = Range(0.15, 0.8)
    steps: int = 128
    jerk_probability: float = 0.03
    gamma: float = 2.2
    name = "blur"

    @property
    def margin(self) -> int:
        return self.kernel_size // 2

    def kernel(self, g: torch.Generator) -> torch.Tensor:
        n = self.steps
        k = self.kernel_size
        if k < 3 or k % 2 == 0:
            raise ValueError(f"blur kernel_size must be odd and >= 3, got {k}")
        heading = _uniform(g, 0, 2 * math.pi)
        accel = torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.25
        jerks = torch.rand(n, generator=g, dtype=torch.float64) < self.jerk_probability
        jerk_dir = _uniform(g, 0, 2 * math.pi, n)
        jerk = torch.stack([jerk_dir.cos(), jerk_dir.sin()], 1) * 1.5 * jerks[:, None]
        pos = torch.zeros(n, 2, dtype=torch.float64)
        v = torch.tensor([math.cos(heading), math.sin(heading)], dtype=torch.float64)
        x = torch.zeros(2, dtype=torch.float64)
        for t in range(n):
            pos[t] = x
            v = v + accel[t] + jerk[t] - 0.01 * x
            v = v / v.norm().clamp(min=1e-12)  # unit speed: samples are equally spaced in time
            x = x + v
        extent = float((pos.max(0).values - pos.min(0).values).max())
        target = self.length.draw(g) * (k - 1)
        pos = pos * (target / max(extent, 1e-9))
        pos = pos - pos.mean(0) + (k - 1) / 2  # centroid at the centre: the image does not shift
        return rasterize_path(pos, k)

    def apply(self, clean, g):
        kernel = self.kernel(g)
        linear = clean.clamp(0, 1) ** self.gamma
        return _convolve(linear, kernel).clamp(0, 1) ** (1 / self.gamma)


def linear_motion_kernel(extent: float, angle_deg: float, size: int) -> torch.Tensor:
    """A straight motion of ``extent`` pixels at ``angle_deg`` (from the x axis), centred,
    rasterised into a (size, size) kernel that sums to 1 (constant speed)."""
    n = max(2, int(math.ceil(extent * 4)) + 1)
    t = torch.linspace(-extent / 2, extent / 2, n, dtype=torch.float64)
    a = math.radians(angle_deg)
    pts = torch.stack([t * math.cos(a), t * math.sin(a)], 1) + (size - 1) / 2
    return rasterize_path(pts, size)


def defocus_kernel(radius: float, size: int, supersample: int = 8) -> torch.Tensor:
    """A uniform disc of ``radius`` pixels (the out-of-focus point spread of a round
    aperture), anti-aliased by supersampling, in a (size, size) kernel that sums to 1."""
    s = supersample
    offsets = (torch.arange(s, dtype=torch.float64) + 0.5) / s - 0.5
    centre = (size - 1) / 2
    grid = torch.arange(size, dtype=torch.float64) - centre
    fine = (grid.view(-1, 1) + offsets.view(1, -1)).flatten()  # (size * s,)
    inside = (fine.view(-1, 1) ** 2 + fine.view(1, -1) ** 2) <= max(radius, 0.5) ** 2
    k = inside.double().view(size, s, size, s).mean((1, 3))
    return (k / k.sum()).float()


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """``x`` (C, H, W) in [0, 1] encoded as a baseline JPEG at ``quality`` and decoded."""
    import io

    import numpy as np
    from PIL import Image

    pixels = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    array = pixels[0].numpy() if x.shape[0] == 1 else pixels.permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as im:
        decoded = np.asarray(im.convert("L" if x.shape[0] == 1 else "RGB"))
    out = torch.from_numpy(decoded.copy()).float().div(255)
    return (out[None] if x.shape[0] == 1 else out.permute(2, 0, 1)).to(x.dtype).contiguous()


@dataclass(frozen=True)
class CameraBlur(Degradation):
    """Blur as a real photo carries it. Per image one kernel is drawn: camera shake
    (:class:`MotionBlur`'s trajectory), a straight linear motion, or mild defocus (a disc of
    radius ``defocus_radius``), chosen with the weights ``shake``, ``linear`` and
    ``defocus``; shake and linear motion span a fraction ``length`` of the kernel. The
    kernel is applied in linear light (gamma 2.2); then sensor noise of sigma ``noise``
    (0-255 scale, white, per pixel and channel) is added, the result is rounded to 8 bits
    and, with probability ``jpeg``, JPEG-compressed at a quality drawn from ``quality``. So
    the network does not learn that blurred images are noise-free and smooth."""
    kernel_size: int = 31
    length: Range = Range(0.15, 0.8)
    defocus_radius: Range = Range(1.0, 4.0)
    shake: float = 0.5
    linear: float = 0.3
    defocus: float = 0.2
    noise: Range = Range(0.0, 3.0)
    jpeg: float = 0.3
    quality: Range = Range(70.0, 95.0)
    gamma: float = 2.2
    name = "camera_blur"

    @property
    def margin(self) -> int:
        return self.kernel_size // 2

    def kernel(self, g: torch.Generator) -> torch.Tensor:
        k = self.kernel_size
        if k < 3 or k % 2 == 0:
            raise ValueError(f"camera_blur kernel_size must be odd and >= 3, got {k}")
        weights = (self.shake, self.linear, self.defocus)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"camera_blur needs non-negative weights shake, linear, defocus with a positive sum, got {weights}")
        u = _uniform(g, 0, sum(weights))
        if u < self.shake:
            return MotionBlur(kernel_size=k, length=self.length, gamma=self.gamma).kernel(g)
        if u < self.shake + self.linear:
            extent = self.length.draw(g) * (k - 1)
            return linear_motion_kernel(extent, _uniform(g, 0, 180), k)
        return defocus_kernel(min(self.defocus_radius.draw(g), (k - 1) / 2), k)

    def apply(self, clean, g):
        kernel = self.kernel(g)
        linear = clean.clamp(0, 1) ** self.gamma
        blurred = _convolve(linear, kernel).clamp(0, 1) ** (1 / self.gamma)
        sigma = self.noise.draw(g) / 255.0
        if sigma > 0:
            blurred = blurred + torch.randn(blurred.shape, generator=g, dtype=torch.float32).to(blurred) * sigma
        out = quantize_8bit(blurred)
        if self.jpeg > 0 and _uniform(g, 0, 1) < self.jpeg:
            out = jpeg_roundtrip(out, round(self.quality.draw(g)))
        return out


# ----------------------------------------------------------------------------- camera noise
def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """The inverse of the sRGB transfer curve (IEC 61966-2-1), on values in [0, 1]."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """The sRGB transfer curve, on linear values clipped to [0, 1]."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def bayer_masks(h: int, w: int) -> torch.Tensor:
    """(3, H, W) 0/1 masks of an RGGB Bayer colour filter array."""
    m = torch.zeros(3, h, w)
    m[0, 0::2, 0::2] = 1
    m[1, 0::2, 1::2] = 1
    m[1, 1::2, 0::2] = 1
    m[2, 1::2, 1::2] = 1
    return m


def demosaic_bilinear(mosaic: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaicing: each channel's missing samples are the mask-weighted mean of its
    samples in the 3 x 3 neighbourhood (so known samples are kept exactly)."""
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=mosaic.dtype)
    k = kernel.expand(3, 1, 3, 3)
    sampled = F.conv2d(_pad(masks * mosaic, 1)[None], k, groups=3)[0]
    weight = F.conv2d(_pad(masks.to(mosaic.dtype), 1)[None], k, groups=3)[0]
    filled = sampled / weight.clamp(min=1e-12)
    return torch.where(masks.bool(), mosaic.expand_as(filled), filled)


@dataclass(frozen=True)
class CameraNoise(Degradation):
    """Real camera noise, made as a camera makes it (after Foi et al. 2008, "Practical
    Poissonian-Gaussian noise modeling", and Brooks et al. 2019, "Unprocessing images for
    learned raw denoising"):

    1. the sRGB image is taken back to linear light (inverse sRGB curve) and its white
       balance undone, dividing red and blue by gains drawn from ``red_gain`` and
       ``blue_gain`` (``gains=False``: no gains);
    2. with probability ``bayer`` the noise is drawn on an RGGB colour filter array's samples
       and demosaiced (bilinear), so it is spatially correlated and shared across channels as
       in real photos (the clean image itself is not re-demosaiced: it already was, once);
    3. Poisson-Gaussian noise: ``y = x + n``, ``n ~ N(0, shot * x + read)``, the shot level
       drawn log-uniformly from ``shot`` (about 1e-4 at ISO 100 on a DSLR to 1.2e-2 at ISO
       6400 on a phone) and the read level from Brooks et al.'s fit to real sensors,
       ``log(read) = 2.18 log(shot) + 1.2 + N(0, 0.26^2)`` (or drawn from ``read`` when
       ``read_from_shot=False``);
    4. the white balance is re-applied and the sRGB curve (``srgb``) brings it back to
       display values;
    5. rounded to 8 bits (``quantize``) and, with probability ``jpeg``, JPEG-compressed at a
       quality drawn from ``quality``.

    So the noise is signal-dependent, differs per channel, is spatially correlated where
    demosaiced, and is shaped by the tone curve, as in real photos."""
    shot: Range = Range(1e-4, 1.2e-2)
    read_from_shot: bool = True
    read: Range = Range(0.0, 0.0)
    gains: bool = True
    red_gain: Range = Range(1.9, 2.4)
    blue_gain: Range = Range(1.5, 1.9)
    bayer: float = 0.5
    srgb: bool = True
    quantize: bool = True
    jpeg: float = 0.3
    quality: Range = Range(75.0, 95.0)
    name = "camera_noise"

    def levels(self, g: torch.Generator) -> tuple[float, float]:
        """(shot, read): the noise variance is ``shot * x + read`` in linear light."""
        lo, hi = self.shot.lo, self.shot.hi
        if lo <= 0:
            raise ValueError(f"camera_noise shot levels must be positive, got {self.shot}")
        shot = math.exp(_uniform(g, math.log(lo), math.log(hi))) if hi > lo else lo
        if self.read_from_shot:
            jitter = float(torch.randn((), generator=g, dtype=torch.float64)) * 0.26
            read = math.exp(2.18 * math.log(shot) + 1.2 + jitter)
        else:
            read = self.read.draw(g)
        return shot, read

    def apply(self, clean, g):
        c, h, w = clean.shape
        shot, read = self.levels(g)
        x = srgb_to_linear(clean) if self.srgb else clean.clamp(0, 1)
        gains = torch.ones(c, 1, 1, dtype=x.dtype)
        if self.gains and c == 3:
            gains = torch.tensor([self.red_gain.draw(g), 1.0, self.blue_gain.draw(g)], dtype=x.dtype).view(3, 1, 1)
        raw = x / gains
        if c == 3 and self.bayer > 0 and _uniform(g, 0, 1) < self.bayer:
            masks = bayer_masks(h, w).to(x.dtype)
            mosaic = (raw * masks).sum(0, keepdim=True)
            std = (shot * mosaic.clamp(min=0) + read).sqrt()
            noise = torch.randn(mosaic.shape, generator=g, dtype=torch.float32).to(raw) * std
            # Only the noise is demosaiced: the photo was demosaiced once already by its camera,
            # and bilinear demosaicing of the clean image would add colour fringes real photos lack.
            noisy = raw + demosaic_bilinear(noise, masks)
        else:
            std = (shot * raw.clamp(min=0) + read).sqrt()
            noisy = raw + torch.randn(raw.shape, generator=g, dtype=torch.float32).to(raw) * std
        out = (noisy * gains).clamp(0, 1)
        if self.srgb:
            out = linear_to_srgb(out)
        if self.quantize:
            out = quantize_8bit(out)
        if self.jpeg > 0 and _uniform(g, 0, 1) < self.jpeg:
            out = jpeg_roundtrip(out, round(self.quality.draw(g)))
        return out


# ----------------------------------------------------------------------------- haze
@dataclass(frozen=True)
class Haze(Degradation):
    """Atmospheric scattering ``I = J t + A (1 - t)``, ``t = exp(-beta d)``.

    No depth is known, so ``d`` is a proxy: a vertical ramp (scenes recede towards the top)
    with a random tilt, mixed with a smooth random field, normalised to [0, 1] and mapped to
    [near, far] (drawn per image from ``near`` and ``far``). A fraction ``scene`` (drawn per
    image) of the proxy follows the scene: the proxy smoothed by a guided filter with the
    photo's luma as guide, so depth changes at the photo's edges (an object stands in front
    of what is behind it) instead of across them. ``beta`` and the airlight ``A`` are drawn
    per image from RESIDE's ranges (beta 0.6-1.8, A 0.7-1.0); ``A`` gets a colour along the
    warm-cool axis (``hue``: + adds red and takes blue, the yellow-brown of smog and dust;
    - the blue of distant haze) and a slight random ``tint`` per channel. A fraction
    ``thick`` of the images is thick haze: near raised to 0.4-0.8 and beta drawn from the
    upper half of its range (at the default range, at least 1.2: even the nearest objects
    keep under 62% of their contrast). Applied to the sRGB
    values, as RESIDE does.
    """
    beta: Range = Range(0.6, 1.8)
    airlight: Range = Range(0.7, 1.0)
    near: Range = Range(0.05, 0.3)
    far: Range = Range(0.9, 1.5)
    tint: float = 0.03
    scene: Range = Range(0.0, 0.8)
    hue: Range = Range(-0.06, 0.08)
    thick: float = 0.25
    name = "haze"

    def __post_init__(self):
        if not 0.0 <= self.thick <= 1.0:
            raise ValueError(f"haze thick must be in [0, 1] (the fraction of images in thick haze), got {self.thick}")
        if not (0.0 <= self.scene.lo and self.scene.hi <= 1.0):
            raise ValueError(f"haze scene must be within [0, 1] (the share of depth that follows the photo), got {self.scene}")

    def depth(self, h: int, w: int, g: torch.Generator) -> torch.Tensor:
        """The scene-blind depth proxy in [0, 1] (1: far), float64."""
        ys = torch.linspace(1, 0, h, dtype=torch.float64).view(h, 1)   # 1 at the top (far)
        xs = torch.linspace(-0.5, 0.5, w, dtype=torch.float64).view(1, w)
        tilt = math.tan(math.radians(_uniform(g, -20, 20)))
        ramp = ys + tilt * xs * (w / max(h, 1))
        cells = torch.randn(1, 1, 4, 4, generator=g, dtype=torch.float64)
        field = F.interpolate(cells, size=(h, w), mode="bicubic", align_corners=True)[0, 0]
        d = 0.7 * ramp + 0.3 * field
        return (d - d.min()) / (d.max() - d.min()).clamp(min=1e-9)

    @staticmethod
    def follow_scene(d: torch.Tensor, clean: torch.Tensor, share: float) -> torch.Tensor:
        """``d`` with a ``share`` of it replaced by ``d`` guided-filtered by ``clean``'s luma."""
        if share <= 0:
            return d
        from ..classical import guided_filter

        c, h, w = clean.shape
        luma = clean.detach().double().cpu()
        luma = (luma * torch.tensor(LUMA, dtype=torch.float64).view(3, 1, 1)).sum(0) if c == 3 else luma[0]
        radius = max(2, min(h, w) // 16)
        follows = torch.from_numpy(guided_filter(luma.numpy(), d.numpy(), radius, 1e-3))
        return ((1 - share) * d + share * follows).clamp(0, 1)

    def scattering(self, clean: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The transmission ``t`` (1, H, W) and airlight ``A`` (C, 1, 1) drawn for ``clean``."""
        # The draws of the scene-blind model come first and in their old order, so a spec
        # with scene=0,hue=0,thick=0 makes exactly the haze it made before those existed.
        c, h, w = clean.shape
        near, far = self.near.draw(g), self.far.draw(g)
        d = self.depth(h, w, g)
        beta = self.beta.draw(g)
        a = self.airlight.draw(g)
        tint = _uniform(g, -self.tint, self.tint, 3) if c == 3 else torch.zeros(1, dtype=torch.float64)
        d = self.follow_scene(d, clean, self.scene.draw(g))
        hue = self.hue.draw(g)
        if c == 3:
            tint = tint + hue * torch.tensor([1.0, 0.2, -1.0], dtype=torch.float64)
        if self.thick > 0 and _uniform(g, 0, 1) < self.thick:
            near = _uniform(g, 0.4, 0.8)
            beta = max(beta, _uniform(g, (self.beta.lo + self.beta.hi) / 2, self.beta.hi))
            far = max(far, near + 0.4)
        d = (near + (far - near) * d.float()).to(clean)
        airlight = (a + tint).clamp(0, 1).to(clean).view(c, 1, 1)
        return torch.exp(-beta * d)[None], airlight

    def apply(self, clean, g):
        t, airlight = self.scattering(clean, g)
        return clean * t + airlight * (1 - t)


# ----------------------------------------------------------------------------- rain streaks
def line_kernel(length: float, angle_deg: float) -> torch.Tensor:
    """An anti-aliased straight segment of ``length`` pixels at ``angle_deg`` from vertical,
    peak value 1 (odd square kernel)."""
    size = 2 * int(math.ceil(length / 2)) + 3
    n = max(2, int(math.ceil(length * 4)))
    t = torch.linspace(-length / 2, length / 2, n, dtype=torch.float64)
    a = math.radians(angle_deg)
    pts = torch.stack([t * math.sin(a), t * math.cos(a)], 1) + (size - 1) / 2
    k = rasterize_path(pts, size)
    return k / k.max()


HEAVY_RAIN_DENSITY = 0.008  # summed streak density of the layers at which the veil is full


@dataclass(frozen=True)
class RainStreaks(Degradation):
    """Rain streaks in depth (after Garg and Nayar 2004, and the rain-accumulation model
    of Yang et al. 2017). 1 to ``layers`` layers are drawn, each at a random depth ``z``
    in [0, 1] (0: nearest): sparse random drops (``density``: fraction of pixels; far
    layers up to 2x denser) of random brightness, widened by a blur of ``width`` pixels
    (far layers thinner) and motion-blurred over ``length`` pixels (far layers down to 0.4x
    shorter and 0.6x dimmer) along the rain's direction (``angle`` degrees from vertical,
    each layer turned by up to ``spread`` degrees: gusts and perspective). The layers are
    summed and screen-blended, ``I = 1 - (1 - J)(1 - S)``, so streaks brighten without
    saturating; heavy rain adds a veil (scattered light from the rain too small or far to
    resolve), a uniform screen layer of strength ``veil`` scaled by the layers' summed density (full at
    :data:`HEAVY_RAIN_DENSITY`), in a fraction ``veil_chance`` of the images (the rest have
    none: rain photographed close, or light rain, shows no veil; a network trained only on
    veiled rain learns to subtract a veil that is not there and darkens them). With
    ``veil_follows_density`` the chance is ``veil_chance`` times the heaviness: the veil is
    rain accumulation, so dense rain nearly always carries one and sparse rain seldom does
    (a network that cannot yet measure the veil then learns to expect one where the rain is
    dense, instead of a coin flip it hedges by leaving every veil in place)."""
    density: Range = Range(0.0005, 0.004)
    length: Range = Range(8.0, 30.0)
    angle: Range = Range(-30.0, 30.0)
    brightness: Range = Range(0.25, 0.7)
    layers: int = 3
    spread: float = 8.0
    width: Range = Range(0.3, 1.2)
    veil: Range = Range(0.0, 0.3)
    veil_chance: float = 1.0
    veil_follows_density: bool = False
    name = "rain"

    def __post_init__(self):
        if not 0.0 <= self.veil_chance <= 1.0:
            raise ValueError(f"rain veil_chance must be in [0, 1] (the fraction of images with a veil), got {self.veil_chance}")

    @property
    def margin(self) -> int:
        return int(math.ceil(self.length.hi / 2)) + 2

    def layer(self, h: int, w: int, angle: float, g: torch.Generator) -> tuple[torch.Tensor, float]:
        """One layer of streaks and its density."""
        z = _uniform(g, 0, 1)
        density = min(1.0, self.density.draw(g) * (1 + z))
        length = max(1.0, self.length.draw(g) * (1 - 0.6 * z))
        width = max(0.3, self.width.draw(g) * (1 - 0.6 * z))
        seeds = (torch.rand(h, w, generator=g) < density).float()
        seeds = seeds * (0.5 + 0.5 * torch.rand(h, w, generator=g))
        seeds = _gaussian_blur(seeds[None], width)
        seeds = seeds / seeds.max().clamp(min=1e-6)
        streaks = _convolve(seeds, line_kernel(length, angle))
        return (streaks * self.brightness.draw(g) * (1 - 0.4 * z)).clamp(0, 1), density

    def apply(self, clean, g):
        _, h, w = clean.shape
        base = self.angle.draw(g)
        n = int(torch.randint(1, self.layers + 1, (1,), generator=g))
        s = torch.zeros(1, h, w)
        total = 0.0
        for _ in range(n):
            layer, density = self.layer(h, w, base + _uniform(g, -self.spread, self.spread), g)
            s, total = s + layer, total + density
        heaviness = min(1.0, total / HEAVY_RAIN_DENSITY)
        veil = self.veil.draw(g) * heaviness
        chance = self.veil_chance * (heaviness if self.veil_follows_density else 1.0)
        if (self.veil_chance < 1.0 or self.veil_follows_density) and _uniform(g, 0, 1) >= chance:
            veil = 0.0
        s = (1 - (1 - s.clamp(0, 1)) * (1 - veil)).to(clean)
        return 1 - (1 - clean) * (1 - s)


# ----------------------------------------------------------------------------- raindrops
@dataclass(frozen=True)
class Raindrops(Degradation):
    """Raindrops on a glass pane in front of the lens (what the RainDrop dataset of Qian et
    al. 2018 photographed). Each drop (an ellipse of radius ``radius`` pixels, scaled with
    the image; small drops more frequent than large ones, ``size_skew``) is a small
    plano-convex lens: it shows an inverted, demagnified view (factor ``magnification``)
    of the scene around it, out of focus by its own amount (a Gaussian blur between
    ``defocus.lo`` and ``defocus.hi``: drops lie at slightly different distances from the
    focal plane), slightly brighter, with a darker rim where light is reflected away,
    blended in by a soft mask. A fraction ``elongated`` of the drops run down the glass
    (stretched vertically) and a fraction ``cluster`` land touching the previous drop, the
    two merging. ``count`` drops per 256 x 256 pixels at scale 1.

    ``scale`` is the size of the drops, in units of the 256-pixel frame their radii are
    given for: 0 (the default) takes it from the image (its shorter side / 256), so a
    photo shows the same drops, covering the same fraction of it, at any resolution. A
    crop cut from a photo is smaller than the photo: give its photo's scale (or a range,
    drawn per image), otherwise the crop gets the small, sparse drops of a small image.
    The drop count follows the area in that frame: ``count * h * w / (256 * scale)**2``."""
    count: Range = Range(8.0, 30.0)
    radius: Range = Range(4.0, 16.0)
    magnification: Range = Range(1.5, 3.0)
    defocus: Range = Range(1.0, 2.5)
    size_skew: float = 1.6
    elongated: float = 0.15
    cluster: float = 0.25
    scale: Range = Range(0.0, 0.0)
    name = "raindrop"

    def __post_init__(self):
        if self.scale.lo < 0 or (self.scale.lo == 0 < self.scale.hi):
            raise ValueError(f"raindrop scale must be 0 (from the image) or a positive number or range, "
                             f"got {self.scale}")

    def _radius(self, g: torch.Generator) -> float:
        lo, hi = self.radius.lo, self.radius.hi
        return lo + (hi - lo) * _uniform(g, 0, 1) ** self.size_skew

    def apply(self, clean, g):
        c, h, w = clean.shape
        scale = self.scale.draw(g) if self.scale.hi > 0 else max(min(h, w) / 256.0, 0.25)
        n = max(1, int(round(self.count.draw(g) * h * w / (256.0 * scale) ** 2)))
        yy = torch.arange(h, dtype=torch.float64).view(h, 1)
        xx = torch.arange(w, dtype=torch.float64).view(1, w)
        src_x = xx.expand(h, w).clone()
        src_y = yy.expand(h, w).clone()
        mask = torch.zeros(h, w, dtype=torch.float64)
        rim = torch.zeros(h, w, dtype=torch.float64)
        soft = torch.zeros(h, w, dtype=torch.float64)   # 0: the sharpest drops, 1: the softest
        previous = None
        for _ in range(n):
            r = self._radius(g) * scale
            rx, ry = r * _uniform(g, 0.8, 1.2), r * _uniform(g, 0.8, 1.25)
            if _uniform(g, 0, 1) < self.elongated:
                ry *= _uniform(g, 1.3, 1.8)
            if previous is not None and _uniform(g, 0, 1) < self.cluster:
                px, py, pr = previous                          # touching: centres r + pr apart
                a = _uniform(g, 0, 2 * math.pi)
                cx = min(max(px + 0.9 * (pr + r) * math.cos(a), 0.0), w - 1.0)
                cy = min(max(py + 0.9 * (pr + r) * math.sin(a), 0.0), h - 1.0)
            else:
                cx, cy = _uniform(g, 0, w - 1), _uniform(g, 0, h - 1)
            previous = (cx, cy, min(rx, ry))
            k = self.magnification.draw(g)
            focus = _uniform(g, 0, 1)
            x0, x1 = max(0, int(cx - rx - 2)), min(w, int(cx + rx + 3))
            y0, y1 = max(0, int(cy - ry - 2)), min(h, int(cy + ry + 3))
            if x0 >= x1 or y0 >= y1:
                continue
            dx, dy = xx[:, x0:x1] - cx, yy[y0:y1] - cy
            rho = torch.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
            edge = (1 - rho) * min(rx, ry)                   # pixels inside the edge
            alpha = torch.sigmoid(edge / 0.6)                 # soft, ~1 px wide boundary
            sub = mask[y0:y1, x0:x1]
            take = alpha > sub                                # the nearest-to-centre drop wins
            sub_x, sub_y = src_x[y0:y1, x0:x1], src_y[y0:y1, x0:x1]
            sub_x[take] = (cx - k * dx).expand_as(rho)[take]  # inverted, demagnified view
            sub_y[take] = (cy - k * dy).expand_as(rho)[take]
            rim[y0:y1, x0:x1] = torch.where(take, torch.exp(-(edge.clamp(min=0) / (0.25 * min(rx, ry) + 0.5)) ** 2), rim[y0:y1, x0:x1])
            soft[y0:y1, x0:x1] = torch.where(take, torch.full_like(rho, focus), soft[y0:y1, x0:x1])
            mask[y0:y1, x0:x1] = torch.maximum(sub, alpha)
        grid = torch.stack([src_x / max(w - 1, 1) * 2 - 1, src_y / max(h - 1, 1) * 2 - 1], -1)
        refracted = F.grid_sample(clean[None].double(), grid[None], mode="bilinear",
                                  padding_mode="reflection", align_corners=True)[0]
        sharp = _gaussian_blur(refracted.float(), self.defocus.lo * scale ** 0.5)
        blurred = _gaussian_blur(refracted.float(), self.defocus.hi * scale ** 0.5)
        f = soft.float()[None]
        drops = sharp * (1 - f) + blurred * f
        drops = (drops * (1 - 0.35 * rim.float()) + 0.04).clamp(0, 1)
        m = mask.float()[None].to(clean)
        return clean * (1 - m) + drops.to(clean) * m


# ----------------------------------------------------------------------------- specs
DEGRADATIONS = {
    "gaussian": GaussianNoise, "blur": MotionBlur, "camera_blur": CameraBlur, "camera_noise": CameraNoise,
    "haze": Haze, "rain": RainStreaks, "raindrop": Raindrops,
}


def _parse_value(text: str, default):
    if isinstance(default, Range):
        lo, sep, hi = text.partition("..")
        if not sep:
            return Range(float(lo), float(lo))
        lo, hi = float(lo), float(hi)
        if hi < lo:
            raise ValueError(f"range {text!r} has hi < lo")
        return Range(lo, hi)
    if isinstance(default, bool):  # bool("0") would be True
        if text.lower() not in ("0", "1", "true", "false"):
            raise ValueError("expected 0, 1, true or false")
        return text.lower() in ("1", "true")
    return type(default)(text)


def make_degradation(spec) -> Degradation:
    """Build a degradation from ``"gaussian:30"``, ``"gaussian:30,50,70"``, ``"blur"``,
    ``"haze"``, ``"rain"``, ``"raindrop"``, optionally with parameters
    (``"blur:kernel_size=41,length=0.3..0.9"``). A :class:`Degradation` passes through."""
    if isinstance(spec, Degradation):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"degradation spec must be a non-empty string, got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r} in {spec!r}; expected one of {sorted(DEGRADATIONS)}")
    cls = DEGRADATIONS[name]
    items = [s.strip() for s in rest.split(",") if s.strip()] if rest else []
    if name == "gaussian":
        if not items:
            raise ValueError("gaussian needs one or more sigmas on the 0..255 scale, e.g. 'gaussian:30' or 'gaussian:30,50,70'")
        try:
            sigmas = tuple(float(s) for s in items)
        except ValueError:
            raise ValueError(f"gaussian sigmas must be numbers, got {rest!r}") from None
        if any(s < 0 or not math.isfinite(s) for s in sigmas):
            raise ValueError(f"gaussian sigmas must be finite and >= 0, got {rest!r}")
        return GaussianNoise(sigmas)
    return cls(**parse_params(cls, name, items))


def parse_params(cls, name: str, items: list[str]) -> dict:
    """``["key=value", ...]`` as keyword arguments of the dataclass ``cls``, each value
    parsed to its field's type (a :class:`Range` from ``lo..hi``)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            raise ValueError(f"bad parameter {item!r} for {name}; expected key=value with key one of {sorted(fields)}")
        try:
            kwargs[key] = _parse_value(value.strip(), fields[key].default)
        except ValueError as err:
            raise ValueError(f"bad value for {name} parameter {key}: {value!r} ({err})") from None
    return kwargs
