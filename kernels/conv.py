"""Fused padded convolution as an implicit GEMM, with an optional pixel-shuffled input.

One program computes a BLOCK_M x BLOCK_N tile of the output: BLOCK_M output pixels
(batch, row and column flattened) by BLOCK_N output channels. The reduction runs over
(kernel tap, channel block) pairs; for each pair the loader gathers a BLOCK_M x BLOCK_K
tile of input values straight from ``x``, mapping the padded coordinate of every output
pixel back into the image (mirrored for "reflect", masked to zero for "zeros"), so no
padded copy of ``x`` is ever made. With ``UPSCALE > 1`` the loader also undoes the pixel
shuffle: it reads ``pixel_shuffle(x, r)[n, c, h, w]`` from
``x[n, c*r*r + (h % r)*r + w % r, h // r, w // r]``.

Accumulation is float32 (``tl.dot`` with a float32 accumulator); the epilogue (bias,
residual, per-channel affine, activation) runs in float32 in exactly the order of
``durn/ops/reference.py`` and the result is rounded once to the output dtype.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import check_dtypes, dot_precision, finish, interpreted, kernel_output, next_pow2

RESIDUAL_CODES = {"none": 0, "pre_affine": 1, "post_affine": 2, "post_activation": 3}
ACTIVATION_CODES = {"none": 0, "relu": 1, "tanh": 2}


@triton.jit
def _tanh(y):
    # No libdevice under the interpreter, so tanh comes from exp: an odd Taylor polynomial
    # near 0 (where 1 - exp(-2|y|) would cancel), (1 - t) / (1 + t) with t = exp(-2|y|)
    # elsewhere; both are within a few float32 ulps, and t never overflows.
    a = tl.abs(y)
    t = tl.exp(-2.0 * a)
    big = (1.0 - t) / (1.0 + t)
    y2 = y * y
    small = a * (1.0 + y2 * (-1.0 / 3.0 + y2 * (2.0 / 15.0 + y2 * (-17.0 / 315.0))))
    r = tl.where(a < 0.125, small, big)
    return tl.where(y < 0, -r, r)


@triton.jit
def _source_index(p, size, REFLECT: tl.constexpr):
    """Padded coordinate -> image coordinate; ``ok`` is False where zero padding is read."""
    if REFLECT:
        p = tl.where(p < 0, -p, p)
        p = tl.where(p >= size, 2 * size - 2 - p, p)
        ok = p == p
    else:
        ok = (p >= 0) & (p < size)
    return p, ok


@triton.jit
def fused_conv2d_kernel(
    x_ptr, w_ptr, b_ptr, scale_ptr, shift_ptr, res_ptr, y_ptr,
    C, H, W,                      # the conv's input: channels, height, width (after the shuffle)
    O, OH, OW, M,                 # output channels, height, width; M = N * OH * OW
    sxn, sxc, sxh, sxw,           # strides of x as stored (before the shuffle)
    swo, swc, swh, sww,
    srn, src, srh, srw,
    syn, syc, syh, syw,
    pad, dil, num_cblocks, residual_alpha,
    KH: tl.constexpr, KW: tl.constexpr, STRIDE: tl.constexpr, UPSCALE: tl.constexpr,
    REFLECT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr,
    RESIDUAL_AT: tl.constexpr, ACTIVATION: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    UPCAST_DOT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_ok = offs_m < M
    n_ok = offs_n < O

    ow = offs_m % OW
    oh = (offs_m // OW) % OH
    nb = (offs_m // OW) // OH
    x_batch = nb.to(tl.int64) * sxn
    ih0 = oh * STRIDE - pad
    iw0 = ow * STRIDE - pad
    # Channel c of the conv input sits UPSCALE**2 stored channels after channel c - 1.
    c_step = sxc * (UPSCALE * UPSCALE)

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    # One flat loop over (tap, channel block) so a GPU can pipeline it.
    for step in range(0, KH * KW * num_cblocks):
        tap = step // num_cblocks
        c0 = (step - tap * num_cblocks) * BLOCK_K
        kh = tap // KW
        kw = tap - kh * KW
        ih, h_ok = _source_index(ih0 + kh * dil, H, REFLECT)
        iw, w_ok = _source_index(iw0 + kw * dil, W, REFLECT)
        if UPSCALE == 1:
            row = x_batch + ih.to(tl.int64) * sxh + iw.to(tl.int64) * sxw
        else:
            sub = (ih % UPSCALE) * UPSCALE + iw % UPSCALE
            row = (x_batch + sub.to(tl.int64) * sxc + (ih // UPSCALE).to(tl.int64) * sxh
                   + (iw // UPSCALE).to(tl.int64) * sxw)
        cs = c0 + offs_k
        c_ok = cs < C
        a = tl.load(
            x_ptr + row[:, None] + cs.to(tl.int64)[None, :] * c_step,
            mask=(m_ok & h_ok & w_ok)[:, None] & c_ok[None, :], other=0.0,
        )
        b = tl.load(
            w_ptr + kh * swh + kw * sww + cs[:, None] * swc + offs_n[None, :] * swo,
            mask=c_ok[:, None] & n_ok[None, :], other=0.0,
        )
        if UPCAST_DOT:
            # Triton 3.7's interpreter multiplies bfloat16 bit patterns as integers in tl.dot;
            # bf16 x bf16 products are exact in float32, so this changes nothing numerically.
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)

    # Epilogue, in the reference's order.
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    out_ok = m_ok[:, None] & n_ok[None, :]
    nb64 = nb.to(tl.int64)
    if RESIDUAL_AT != 0:
        r_off = (nb64 * srn + oh.to(tl.int64) * srh + ow.to(tl.int64) * srw)[:, None] \
            + offs_n.to(tl.int64)[None, :] * src
        res = tl.load(res_ptr + r_off, mask=out_ok, other=0.0).to(tl.float32)
    if RESIDUAL_AT == 1:
        acc += res
    if HAS_SCALE:
        acc *= tl.load(scale_ptr + offs_n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    if HAS_SHIFT:
        acc += tl.load(shift_ptr + offs_n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    if RESIDUAL_AT == 2:
        acc += res
    if ACTIVATION == 1:
        acc = tl.maximum(acc, 0.0)
    elif ACTIVATION == 2:
        acc = _tanh(acc)
    if RESIDUAL_AT == 3:
        acc = res + residual_alpha * acc
    y_off = (nb64 * syn + oh.to(tl.int64) * syh + ow.to(tl.int64) * syw)[:, None] \
        + offs_n.to(tl.int64)[None, :] * syc
    tl.store(y_ptr + y_off, acc.to(y_ptr.dtype.element_ty), mask=out_ok)


def conv_blocks(m: int, c: int, o: int, dtype: torch.dtype, *, native: bool) -> dict:
    """Tile sizes and launch options. Every dot dimension is >= 16 (a GPU's minimum)."""
    if native:
        block_k = min(max(next_pow2(c), 16), 32 if dtype == torch.float32 else 64)
        return dict(BLOCK_M=128 if m >= 8192 else 64, BLOCK_N=min(max(next_pow2(o), 16), 64),
                    BLOCK_K=block_k, num_warps=4, num_stages=3)
    # The interpreter pays per operation, not per element: few, large tiles.
    return dict(BLOCK_M=min(max(next_pow2(m), 16), 1024), BLOCK_N=min(max(next_pow2(o), 16), 128),
                BLOCK_K=min(max(next_pow2(c), 16), 128))


def _check_conv(x, upscale, weight, bias, scale, shift, residual, stride, padding, dilation, padding_mode,
                residual_at, activation):
    if x.dim() != 4:
        raise ValueError(f"x must be a 4-D (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"weight must be a 4-D (O, C, kH, kW) tensor, got shape {tuple(weight.shape)}")
    check_dtypes(x, weight=weight, bias=bias, scale=scale, shift=shift, residual=residual)
    if upscale < 1:
        raise ValueError(f"upscale must be >= 1, got {upscale}")
    n, stored_c, h, w = x.shape
    if stored_c % (upscale * upscale):
        raise ValueError(f"pixel shuffle by {upscale} needs channels divisible by {upscale * upscale}, "
                         f"got {stored_c}")
    c, h, w = stored_c // (upscale * upscale), h * upscale, w * upscale
    o, wc, kh, kw = weight.shape
    if wc != c:
        raise ValueError(f"weight expects {wc} input channels, the conv input has {c}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    if padding < 0 or dilation < 1:
        raise ValueError(f"need padding >= 0 and dilation >= 1, got padding={padding}, dilation={dilation}")
    if padding_mode not in ("zeros", "reflect"):
        raise ValueError(f"padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}")
    if padding_mode == "reflect" and padding >= min(h, w):
        raise ValueError(f"reflect padding {padding} must be smaller than the image ({h} x {w})")
    if residual_at not in RESIDUAL_CODES:
        raise ValueError(f"residual_at must be one of {tuple(RESIDUAL_CODES)}, got {residual_at!r}")
    if activation not in ACTIVATION_CODES:
        raise ValueError(f"activation must be one of {tuple(ACTIVATION_CODES)}, got {activation!r}")
    if (residual is None) != (residual_at == "none"):
        raise ValueError("residual and residual_at must be given together")
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"the {kh}x{kw} kernel (dilation {dilation}, padding {padding}) does not fit the "
                         f"{h} x {w} input")
    for label, vec in (("bias", bias), ("scale", scale), ("shift", shift)):
        if vec is not None and tuple(vec.shape) != (o,):
            raise ValueError(f"{label} must have shape ({o},), got {tuple(vec.shape)}")
    if residual is not None and tuple(residual.shape) != (n, o, oh, ow):
        raise ValueError(f"residual must have the output's shape {(n, o, oh, ow)}, got {tuple(residual.shape)}")
    return n, c, h, w, o, kh, kw, oh, ow


def conv2d(x, upscale, weight, bias, scale, shift, residual, stride, padding, dilation, padding_mode,
           residual_at, activation, residual_alpha, *, blocks: dict | None = None):
    """``reference.pixel_shuffle_conv2d`` (``upscale == 1``: ``fused_conv2d``) by the Triton kernel.

    ``blocks`` overrides the tile sizes (tests use it to run GPU-sized tiles on the interpreter).
    """
    n, c, h, w, o, kh, kw, oh, ow = _check_conv(
        x, upscale, weight, bias, scale, shift, residual, stride, padding, dilation, padding_mode,
        residual_at, activation)
    native = not interpreted()
    y = kernel_output((n, o, oh, ow), x)
    m = n * oh * ow
    if m == 0 or o == 0:
        return finish(y, x)
    config = dict(conv_blocks(m, c, o, x.dtype, native=native), **(blocks or {}))
    dummy = weight  # stands in for absent tensors; never read (HAS_* / RESIDUAL_AT flags are off)
    res = residual if residual is not None else dummy
    grid = (triton.cdiv(m, config["BLOCK_M"]), triton.cdiv(o, config["BLOCK_N"]))
    torch.library.wrap_triton(fused_conv2d_kernel)[grid](
        x, weight, bias if bias is not None else dummy, scale if scale is not None else dummy,
        shift if shift is not None else dummy, res, y,
        c, h, w, o, oh, ow, m,
        *x.stride(), *weight.stride(), *res.stride(), *y.stride(),
        padding, dilation, triton.cdiv(c, config["BLOCK_K"]), float(residual_alpha),
        KH=kh, KW=kw, STRIDE=stride, UPSCALE=upscale, REFLECT=padding_mode == "reflect" and padding > 0,
        HAS_BIAS=bias is not None, HAS_SCALE=scale is not None, HAS_SHIFT=shift is not None,
        RESIDUAL_AT=RESIDUAL_CODES[residual_at], ACTIVATION=ACTIVATION_CODES[activation],
        INPUT_PRECISION=dot_precision(x), UPCAST_DOT=not native and x.dtype == torch.bfloat16, **config,
    )
    return finish(y, x)


def fused_conv2d(x, weight, bias=None, scale=None, shift=None, residual=None, stride=1, padding=0, dilation=1,
                 padding_mode="zeros", residual_at="none", activation="none", residual_alpha=1.0, *,
                 blocks: dict | None = None):
    """Same arguments and result as ``durn.ops.reference.fused_conv2d``."""
    return conv2d(x, 1, weight, bias, scale, shift, residual, stride, padding, dilation, padding_mode,
                  residual_at, activation, residual_alpha, blocks=blocks)


def pixel_shuffle_conv2d(x, upscale, weight, bias=None, scale=None, shift=None, residual=None, stride=1,
                         padding=0, dilation=1, padding_mode="zeros", residual_at="none", activation="none",
                         residual_alpha=1.0, *, blocks: dict | None = None):
    """Same arguments and result as ``durn.ops.reference.pixel_shuffle_conv2d``."""
    return conv2d(x, int(upscale), weight, bias, scale, shift, residual, stride, padding, dilation,
                  padding_mode, residual_at, activation, residual_alpha, blocks=blocks)
