"""Stride-1 convolution in a transform domain, tile by tile (overlap-save), in pure PyTorch.

An alternative *implementation* of the ``fused_conv2d`` contract (reference.py) for a layer
whose weights are fixed, chosen per layer by ``durn.optimize_for_inference`` where it
measures faster than the direct convolution. The transforms are the discrete Fourier
transform (``fft_conv.py``, any tile size, for large and dilated kernels) and Winograd's
minimal filtering (``winograd_conv.py``, small tiles, for 3x3 kernels).

How it computes ``y = conv(pad(x), w)`` (a correlation, as ``F.conv2d``):

1. ``pad(x)`` is written once into a channels-last buffer (mirror or zero border, plus
   zeros to a whole number of tiles). A dilated conv is ``d*d`` undilated convs on the
   polyphase sub-images ``buf[a::d, b::d]`` (no zeros are inserted into the kernel), so
   dilation only changes the strides of the next step.
2. Overlapping ``T x T`` tiles (stride ``S = T - k + 1``) are gathered, a few tile rows
   (a chunk) at a time, into a ``(T, T, tiles * C)`` tensor; steps 3-5 run per chunk on
   scratch tensors that are reused between calls (fresh large allocations page-fault
   on every call, which would cost more than some of the steps).
3. The 2-D transform is two GEMMs with small matrices, one per axis (no FFT library:
   the transforms of all tiles and channels are single large matrix products, and every
   intermediate already has the layout the next product needs, so nothing is transposed).
4. Per frequency, one GEMM ``(tiles x C) @ (C x O)`` with the precomputed transformed
   weights (complex products as four real GEMMs on planar real/imaginary parts).
5. The inverse transform keeps only the ``S x S`` valid outputs of each tile (two GEMMs),
   and the tiles are written to the output together with the epilogue's affine part.

Cost per output pixel: about ``2 F C O / S^2`` multiply-adds in step 4 (``F`` transformed
coefficients per tile) against ``C O k^2`` for the direct conv, plus transforms that
grow with ``C + O`` but not with ``C O``. The result equals the direct conv up to the
transform's float rounding (tests/test_fft_conv.py states and checks the bounds).
"""
from __future__ import annotations

import functools

import threading
from dataclasses import dataclass

import torch
from torch import nn

from .reference import ACTIVATIONS, PADDING_MODES, RESIDUAL_AT

DTYPES = (torch.float32, torch.float64)
# Tiles per chunk: their gathered pixels take about this many bytes (the intermediates of
# a chunk are about as large), so a chunk's working set stays near the L2/L3 caches.
CHUNK_BYTES = 4 << 20

_workspace = threading.local()


def real_constants(build):
    """Decorator for cached builders of constant tensors: they are built as real tensors
    even when first asked for under ``FakeTensorMode`` (a shape-only pass, or tracing by
    torch.compile), which would otherwise cache fake tensors that later real calls use."""
    @functools.wraps(build)
    def wrapper(*args):
        from torch._subclasses.fake_tensor import unset_fake_temporarily

        with unset_fake_temporarily():
            return build(*args)
    return wrapper


def _scratch(role: str, numel: int, like: torch.Tensor) -> torch.Tensor:
    """A reusable 1-D scratch tensor for ``role`` (per thread, dtype and device): large
    fresh allocations cost page faults on every call, which would dominate here."""
    pool = getattr(_workspace, "pool", None)
    if pool is None:
        pool = _workspace.pool = {}
    key = (role, like.dtype, like.device)
    buf = pool.get(key)
    if buf is None or buf.numel() < numel:
        buf = pool[key] = torch.empty(numel, dtype=like.dtype, device=like.device)
    return buf[:numel]


def workspace_bytes() -> int:
    """Bytes of scratch this thread holds."""
    pool = getattr(_workspace, "pool", None) or {}
    return sum(t.numel() * t.element_size() for t in pool.values())


def release_workspace() -> None:
    """Free this thread's scratch tensors (they are kept between calls for speed)."""
    _workspace.pool = {}


@dataclass(frozen=True)
class TransformMatrices:
    """The 1-D matrices of a separable tile transform, in float64.

    ``planes`` is 1 for a real transform (Winograd) and 2 for a complex one (Fourier,
    stored as planar real and imaginary parts). ``kw``/``kh``: transformed coefficients
    per tile along w and h. Layouts (rows x columns):

    ``fwd_w`` (planes*kw, T): rows (part, fw)
    ``fwd_h`` (planes*kh, planes*T): columns (th, part), rows (part, fh)
    ``inv_h`` (S*planes, planes*kh): columns (part, fh), rows (th, part)
    ``inv_w`` (S, planes*kw): columns (part, fw)
    """

    name: str
    tile: int
    kernel: int
    planes: int
    kw: int
    kh: int
    fwd_w: torch.Tensor
    fwd_h: torch.Tensor
    inv_h: torch.Tensor
    inv_w: torch.Tensor

    @property
    def out(self) -> int:
        return self.tile - self.kernel + 1


def check_transform_args(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, dilation: int,
                         padding_mode: str, residual_at: str, activation: str) -> None:
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"expected 4-D x and weight, got shapes {tuple(x.shape)} and {tuple(weight.shape)}")
    if stride != 1:
        raise ValueError(f"transform-domain convolution needs stride 1, got {stride}")
    if weight.shape[-1] != weight.shape[-2]:
        raise ValueError(f"expected a square kernel, got {tuple(weight.shape[-2:])}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but the weight expects {weight.shape[1]}")
    if x.dtype not in DTYPES:
        raise ValueError(f"transform-domain convolution supports {DTYPES}, got {x.dtype}")
    if dilation < 1 or padding < 0:
        raise ValueError(f"expected dilation >= 1 and padding >= 0, got {dilation} and {padding}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    if padding_mode == "reflect" and padding >= min(x.shape[-2:]):
        raise ValueError(f"reflect padding {padding} needs H and W > {padding}, got {tuple(x.shape[-2:])}")
    if residual_at not in RESIDUAL_AT or activation not in ACTIVATIONS:
        raise ValueError(f"bad epilogue: residual_at={residual_at!r}, activation={activation!r}")


class TransformConv2d(nn.Module):
    """One conv layer's weights in a transform domain: ``forward`` implements
    ``fused_conv2d`` (stride 1) for them. ``upscale`` > 1 reads the input pixel-shuffled
    (``pixel_shuffle_conv2d``) without materialising the shuffle."""

    def __init__(self, weight: torch.Tensor, dilation: int, matrices: TransformMatrices, spectrum: torch.Tensor):
        super().__init__()
        out_channels, in_channels, k, _ = weight.shape
        self.in_channels, self.out_channels, self.kernel, self.dilation = in_channels, out_channels, k, dilation
        self.transform, self.tile, self.planes = matrices.name, matrices.tile, matrices.planes
        self.kw, self.kh, self.out = matrices.kw, matrices.kh, matrices.out
        dtype = weight.dtype if weight.dtype in DTYPES else torch.float32
        device = weight.device
        # Contiguous planes, so each is a ready (freqs, C, O) batch of GEMM operands.
        planes = [p.to(dtype=dtype, device=device).contiguous() for p in spectrum]
        self.register_buffer("spec_re", planes[0], persistent=False)
        self.register_buffer("spec_im", planes[1] if len(planes) > 1 else None, persistent=False)
        for name in ("fwd_w", "fwd_h", "inv_h", "inv_w"):
            self.register_buffer(name, getattr(matrices, name).to(dtype=dtype, device=device).contiguous(),
                                 persistent=False)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel}, dilation={self.dilation}, "
                f"transform={self.transform}, tile={self.tile}")

    # -- geometry ------------------------------------------------------------------------
    def _grid(self, out_h: int, out_w: int) -> tuple[int, int]:
        """Tiles along h and w per polyphase sub-image."""
        d, s = self.dilation, self.out
        return -(-(-(-out_h // d)) // s), -(-(-(-out_w // d)) // s)

    def _buffer(self, x: torch.Tensor, upscale: int, padding: int, padding_mode: str,
                rows: int, cols: int) -> torch.Tensor:
        """``pad(pixel_shuffle(x))`` as a channels-last (N, rows, cols, C) buffer, zeros beyond."""
        n, c, h, w = x.shape
        if upscale > 1:
            c, h, w = c // (upscale * upscale), h * upscale, w * upscale
        p = padding
        ph, pw = h + 2 * p, w + 2 * p
        buf = _scratch("input", n * rows * cols * c, x).view(n, rows, cols, c)
        inner = buf[:, p:p + h, p:p + w]
        if upscale > 1:
            r = upscale
            inner.view(n, h // r, r, w // r, r, c).copy_(x.view(n, c, r, r, h // r, w // r).permute(0, 4, 2, 5, 3, 1))
        else:
            inner.copy_(x.permute(0, 2, 3, 1))
        if p > 0:
            if padding_mode == "reflect":
                buf[:, :p, p:p + w] = buf[:, p + 1:2 * p + 1, p:p + w].flip(1)
                buf[:, p + h:ph, p:p + w] = buf[:, h - 1:p + h - 1, p:p + w].flip(1)
                buf[:, :ph, :p] = buf[:, :ph, p + 1:2 * p + 1].flip(2)
                buf[:, :ph, p + w:pw] = buf[:, :ph, w - 1:p + w - 1].flip(2)
            else:
                buf[:, :p, :pw] = 0
                buf[:, p + h:ph, :pw] = 0
                buf[:, p:p + h, :p] = 0
                buf[:, p:p + h, p + w:pw] = 0
        if rows > ph:
            buf[:, ph:] = 0
        if cols > pw:
            buf[:, :ph, pw:] = 0
        return buf

    # -- the transform-domain conv --------------------------------------------------------
    def _tiles_chunk(self, tiles: torch.Tensor, p_tiles: int) -> torch.Tensor:
        """Valid conv of ``p_tiles`` gathered tiles (T, T, p_tiles * C): (S, S, p_tiles * O).
        The intermediates alternate between two scratch tensors ("ping", "pong"): each is
        dead once the next is computed."""
        t, s, planes, kw, kh = self.tile, self.out, self.planes, self.kw, self.kh
        cin, o = self.in_channels, self.out_channels
        like = tiles
        ping = _scratch("ping", max(t * planes * kw * p_tiles * cin, planes * kh * kw * p_tiles * o,
                                    s * s * p_tiles * o), like)
        pong = _scratch("pong", max(planes * kh * kw * p_tiles * cin, s * planes * kw * p_tiles * o), like)
        a = ping[:t * planes * kw * p_tiles * cin].view(t, planes * kw, p_tiles * cin)
        torch.bmm(self.fwd_w.expand(t, -1, -1), tiles, out=a)                # (th, (part, fw), M)
        z = pong[:planes * kh * kw * p_tiles * cin].view(planes * kh, kw * p_tiles * cin)
        torch.mm(self.fwd_h, a.view(t * planes, kw * p_tiles * cin), out=z)  # ((part, fh), (fw, M))
        z = z.view(planes, kh * kw, p_tiles, cin)
        y = ping[:planes * kh * kw * p_tiles * o].view(planes, kh * kw, p_tiles, o)
        if planes == 1:
            torch.bmm(z[0], self.spec_re, out=y[0])
        else:
            xr, xi = z[0], z[1]
            torch.bmm(xr, self.spec_re, out=y[0])
            y[0].baddbmm_(xi, self.spec_im, alpha=-1)
            torch.bmm(xr, self.spec_im, out=y[1])
            y[1].baddbmm_(xi, self.spec_re)
        u = pong[:s * planes * kw * p_tiles * o].view(s * planes, kw * p_tiles * o)
        torch.mm(self.inv_h, y.view(planes * kh, kw * p_tiles * o), out=u)  # ((th, part), (fw, P, O))
        v = ping[:s * s * p_tiles * o].view(s, s, p_tiles * o)
        torch.bmm(self.inv_w.expand(s, -1, -1), u.view(s, planes * kw, p_tiles * o), out=v)  # (th, tw, (P, O))
        return v

    def forward(self, x, bias=None, scale=None, shift=None, residual=None, padding=0, padding_mode="zeros",
                residual_at="none", activation="none", residual_alpha=1.0, upscale=1, channels_last=None):
        """``fused_conv2d`` (``pixel_shuffle_conv2d`` when ``upscale`` > 1) with this layer's
        weights. The output is channels-last unless ``channels_last=False`` (default: the
        memory format of ``x``, as the contract says)."""
        n, _, h, w = x.shape
        if upscale > 1:
            h, w = h * upscale, w * upscale
        d, k, t, s, o = self.dilation, self.kernel, self.tile, self.out, self.out_channels
        out_h, out_w = h + 2 * padding - d * (k - 1), w + 2 * padding - d * (k - 1)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"the input {h}x{w} padded by {padding} is smaller than the kernel's reach")
        nh, nw = self._grid(out_h, out_w)
        rows, cols = d * ((nh - 1) * s + t), d * ((nw - 1) * s + t)
        buf = self._buffer(x, upscale, padding, padding_mode, rows, cols)
        cin = self.in_channels
        big_h, big_w = nh * s * d, nw * s * d
        cropped = (big_h, big_w) != (out_h, out_w)
        if cropped:
            big = _scratch("output", n * big_h * big_w * o, x).view(n, big_h, big_w, o)
        else:
            big = x.new_empty(n, big_h, big_w, o)
        dst = big.view(n, nh, s, d, nw, s, d, o)
        # Pass 1 (tile assembly) applies the affine part of the epilogue that precedes
        # any residual: (conv + bias) * scale + shift = conv * scale + (bias * scale + shift).
        if residual_at == "pre_affine":
            mul, add = None, bias
        else:
            mul, add = scale, _combined_shift(bias, scale, shift)
        if mul is not None and add is None:
            add = torch.zeros_like(mul)
        # Tiles are processed a few tile rows at a time, so the intermediates stay small;
        # but each chunk reads all transformed weights, so a chunk holds at least as many
        # bytes of tiles as they take.
        per_row = n * d * d * nw
        spectrum_bytes = self.planes * self.spec_re.numel() * self.spec_re.element_size()
        chunk_bytes = max(CHUNK_BYTES, spectrum_bytes)
        rows_per_chunk = max(1, chunk_bytes // (t * t * cin * x.element_size() * per_row))
        strides = (d * cols * cin, d * cin, rows * cols * cin, cols * cin, cin, d * s * cols * cin, d * s * cin, 1)
        for i0 in range(0, nh, rows_per_chunk):
            i1 = min(nh, i0 + rows_per_chunk)
            p_tiles = per_row * (i1 - i0)
            view = buf.as_strided((t, t, n, d, d, i1 - i0, nw, cin), strides,
                                  buf.storage_offset() + i0 * d * s * cols * cin)
            tiles = _scratch("tiles", t * t * p_tiles * cin, x).view(t, t, n, d, d, i1 - i0, nw, cin)
            tiles.copy_(view)
            v = self._tiles_chunk(tiles.view(t, t, p_tiles * cin), p_tiles)
            # Tiles -> image rows (ih, th, a), columns (iw, tw, b), channels last.
            src = v.view(s, s, n, d, d, i1 - i0, nw, o).permute(2, 5, 0, 3, 6, 1, 4, 7)
            part = dst[:, i0:i1]
            if mul is not None:
                torch.addcmul(add, src, mul, out=part)
            elif add is not None:
                torch.add(src, add, out=part)
            else:
                part.copy_(src)
        out = big[:, :out_h, :out_w].permute(0, 3, 1, 2)  # NCHW view, channels-last strides
        if channels_last is None:
            channels_last = _is_channels_last(x)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        # ``big`` is ours to overwrite; the result must be a fresh dense tensor in ``fmt``
        # when the tiles overhang the output or the caller wants NCHW.
        fresh = cropped or not channels_last
        if residual_at in ("pre_affine", "post_affine"):
            target = torch.empty(out.shape, dtype=out.dtype, device=out.device, memory_format=fmt)
            if residual_at == "post_affine" and activation == "relu" and out.device.type == "cpu":
                return torch.ops.aten._add_relu.out(out, residual, out=target)
            torch.add(out, residual, out=target)
            if residual_at == "pre_affine" and scale is not None:
                if shift is not None:
                    torch.addcmul(shift[:, None, None], target, scale[:, None, None], out=target)
                else:
                    target.mul_(scale[:, None, None])
            elif residual_at == "pre_affine" and shift is not None:
                target.add_(shift[:, None, None])
            return _activate_(target, activation)
        out = _activate_into(out, activation, fmt) if fresh else _activate_(out, activation)
        if residual_at == "post_activation":
            torch.add(residual, out, alpha=residual_alpha, out=out)
        return out


def _combined_shift(bias, scale, shift):
    if bias is None:
        return shift
    if scale is None:
        return bias if shift is None else bias + shift
    combined = bias * scale
    return combined if shift is None else combined + shift


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _activate_(y: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return y.relu_()
    if activation == "tanh":
        return y.tanh_()
    return y


def _activate_into(y: torch.Tensor, activation: str, fmt) -> torch.Tensor:
    """``act(y)`` into a fresh tensor of memory format ``fmt`` (one pass)."""
    out = torch.empty(y.shape, dtype=y.dtype, device=y.device, memory_format=fmt)
    if activation == "relu":
        return torch.clamp_min(y, 0, out=out)
    if activation == "tanh":
        return torch.tanh(y, out=out)
    return out.copy_(y)


def flops_per_output(matrices: TransformMatrices, in_channels: int, out_channels: int) -> float:
    """Multiply-adds per output pixel (for choosing tiles before measuring)."""
    t, s, p, kw, kh = matrices.tile, matrices.out, matrices.planes, matrices.kw, matrices.kh
    fwd = p * kw * t * t + p * kh * p * t * kw  # both axes, per channel and tile
    inv = s * p * p * kh * kw + s * s * p * kw
    gemm = p * p * kh * kw * in_channels * out_channels
    return (fwd * in_channels + inv * out_channels + gemm) / (s * s)


__all__ = ["TransformConv2d", "TransformMatrices", "check_transform_args", "flops_per_output", "release_workspace",
           "workspace_bytes"]
