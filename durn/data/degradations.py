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

__all__ = [
    "DEGRADATIONS", "Degradation", "GaussianNoise", "Haze", "MotionBlur", "RainStreaks",
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


# ----------------------------------------------------------------------------- haze
@dataclass(frozen=True)
class Haze(Degradation):
    """Atmospheric scattering ``I = J t + A (1 - t)``, ``t = exp(-beta d)``.

    No depth is known, so ``d`` is a proxy: a vertical ramp (scenes recede towards the top)
    with a random tilt, mixed with a smooth random field, normalised to [0, 1] and mapped to
    [near, far] (drawn per image from ``near`` and ``far``). ``beta`` and the airlight ``A``
    are drawn per image from RESIDE's ranges (beta 0.6-1.8, A 0.7-1.0); A gets a slight
    random tint per channel. Applied to the sRGB values, as RESIDE does.
    """
    beta: Range = Range(0.6, 1.8)
    airlight: Range = Range(0.7, 1.0)
    near: Range = Range(0.05, 0.3)
    far: Range = Range(0.9, 1.5)
    tint: float = 0.03
    name = "haze"

    def depth(self, h: int, w: int, g: torch.Generator) -> torch.Tensor:
        ys = torch.linspace(1, 0, h, dtype=torch.float64).view(h, 1)   # 1 at the top (far)
        xs = torch.linspace(-0.5, 0.5, w, dtype=torch.float64).view(1, w)
        tilt = math.tan(math.radians(_uniform(g, -20, 20)))
        ramp = ys + tilt * xs * (w / max(h, 1))
        cells = torch.randn(1, 1, 4, 4, generator=g, dtype=torch.float64)
        field = F.interpolate(cells, size=(h, w), mode="bicubic", align_corners=True)[0, 0]
        d = 0.7 * ramp + 0.3 * field
        d = (d - d.min()) / (d.max() - d.min()).clamp(min=1e-9)
        return d.float()

    def apply(self, clean, g):
        c, h, w = clean.shape
        near, far = self.near.draw(g), self.far.draw(g)
        d = (near + (far - near) * self.depth(h, w, g)).to(clean)
        beta = self.beta.draw(g)
        a = self.airlight.draw(g)
        tint = _uniform(g, -self.tint, self.tint, 3) if c == 3 else torch.zeros(1, dtype=torch.float64)
        airlight = (a + tint).clamp(0, 1).to(clean).view(c, 1, 1)
        t = torch.exp(-beta * d)[None]
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


@dataclass(frozen=True)
class RainStreaks(Degradation):
    """Rain streaks: per layer, sparse random drops (``density``: fraction of pixels) of
    random brightness, widened by a small blur and motion-blurred along one direction
    (``angle`` degrees from vertical, shared by all layers up to +-5 degrees) over
    ``length`` pixels; 1 to ``layers`` layers (near and far rain) are summed and
    screen-blended, ``I = 1 - (1 - J)(1 - S)``, so streaks brighten without saturating."""
    density: Range = Range(0.0005, 0.004)
    length: Range = Range(8.0, 30.0)
    angle: Range = Range(-30.0, 30.0)
    brightness: Range = Range(0.25, 0.7)
    layers: int = 3
    name = "rain"

    @property
    def margin(self) -> int:
        return int(math.ceil(self.length.hi / 2)) + 2

    def layer(self, h: int, w: int, angle: float, g: torch.Generator) -> torch.Tensor:
        density = self.density.draw(g)
        length = self.length.draw(g)
        seeds = (torch.rand(h, w, generator=g) < density).float()
        seeds = seeds * (0.5 + 0.5 * torch.rand(h, w, generator=g))
        seeds = _gaussian_blur(seeds[None], _uniform(g, 0.3, 0.7))
        seeds = seeds / seeds.max().clamp(min=1e-6)
        streaks = _convolve(seeds, line_kernel(length, angle))
        return (streaks * self.brightness.draw(g)).clamp(0, 1)

    def apply(self, clean, g):
        _, h, w = clean.shape
        base = self.angle.draw(g)
        n = int(torch.randint(1, self.layers + 1, (1,), generator=g))
        s = torch.zeros(1, h, w)
        for _ in range(n):
            s = s + self.layer(h, w, base + _uniform(g, -5, 5), g)
        s = s.clamp(0, 1).to(clean)
        return 1 - (1 - clean) * (1 - s)


# ----------------------------------------------------------------------------- raindrops
@dataclass(frozen=True)
class Raindrops(Degradation):
    """Raindrops on a glass pane in front of the lens. Each drop (an ellipse of radius
    ``radius`` pixels, scaled with the image) is a small plano-convex lens: it shows an
    inverted, demagnified view (factor ``magnification``) of the scene around it, out of
    focus (Gaussian blur ``defocus``), slightly brighter, with a darker rim where light is
    reflected away, blended in by a soft mask. ``count`` drops per 256 x 256 pixels."""
    count: Range = Range(8.0, 30.0)
    radius: Range = Range(4.0, 16.0)
    magnification: Range = Range(1.5, 3.0)
    defocus: Range = Range(1.0, 2.5)
    name = "raindrop"

    def apply(self, clean, g):
        c, h, w = clean.shape
        scale = max(min(h, w) / 256.0, 0.25)
        n = max(1, int(round(self.count.draw(g) * h * w / 256.0**2)))
        yy = torch.arange(h, dtype=torch.float64).view(h, 1)
        xx = torch.arange(w, dtype=torch.float64).view(1, w)
        src_x = xx.expand(h, w).clone()
        src_y = yy.expand(h, w).clone()
        mask = torch.zeros(h, w, dtype=torch.float64)
        rim = torch.zeros(h, w, dtype=torch.float64)
        for _ in range(n):
            cx, cy = _uniform(g, 0, w - 1), _uniform(g, 0, h - 1)
            r = self.radius.draw(g) * scale
            rx, ry = r * _uniform(g, 0.8, 1.2), r * _uniform(g, 0.8, 1.25)
            k = self.magnification.draw(g)
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
            mask[y0:y1, x0:x1] = torch.maximum(sub, alpha)
        grid = torch.stack([src_x / max(w - 1, 1) * 2 - 1, src_y / max(h - 1, 1) * 2 - 1], -1)
        refracted = F.grid_sample(clean[None].double(), grid[None], mode="bilinear",
                                  padding_mode="reflection", align_corners=True)[0]
        drops = _gaussian_blur(refracted.float(), self.defocus.draw(g) * scale ** 0.5)
        drops = (drops * (1 - 0.35 * rim.float()) + 0.04).clamp(0, 1)
        m = mask.float()[None].to(clean)
        return clean * (1 - m) + drops.to(clean) * m


# ----------------------------------------------------------------------------- specs
DEGRADATIONS = {
    "gaussian": GaussianNoise, "blur": MotionBlur, "haze": Haze, "rain": RainStreaks, "raindrop": Raindrops,
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
    return cls(**kwargs)
