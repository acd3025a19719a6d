"""Squeeze-excitation with the SE-ResNet block's residual add and ReLU, in three launches:

1. ``_se_pool_kernel``: per (image, slice of pixels), float32 channel sums of the slice
   (a (N, SPLITS, C) buffer: the pool of a large image is spread over many programs
   without atomics, so it is deterministic);
2. ``_se_gate_kernel``: per image, the mean, FC -> ReLU -> FC -> sigmoid, once
   (a (N, C) float32 gate);
3. ``_se_scale_kernel``: per (image, pixel tile), ``y = x * gate`` and, with an identity,
   ``y = relu(y + identity)``, rounded once to the output dtype.

The gate is computed once per image rather than in every tile of step 3, which would
re-read both FC weight matrices for each tile.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import check_dtypes, finish, interpreted, kernel_output, next_pow2


@triton.jit
def _se_pool_kernel(
    x_ptr, part_ptr, C, W, HW, splits, pixels_per_split, sxn, sxc, sxh, sxw,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    n = tl.program_id(0)
    split = tl.program_id(1)
    offs_c = tl.arange(0, BLOCK_C)
    c_ok = offs_c < C
    x_img = x_ptr + n.to(tl.int64) * sxn
    start = split * pixels_per_split
    acc = tl.zeros((BLOCK_C,), dtype=tl.float32)
    for p0 in range(start, start + pixels_per_split, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        p_ok = (p < start + pixels_per_split) & (p < HW)
        off = ((p // W).to(tl.int64) * sxh + (p % W).to(tl.int64) * sxw)[:, None] \
            + offs_c.to(tl.int64)[None, :] * sxc
        tile = tl.load(x_img + off, mask=p_ok[:, None] & c_ok[None, :], other=0.0).to(tl.float32)
        acc += tl.sum(tile, axis=0)
    tl.store(part_ptr + (n * splits + split) * C + offs_c, acc, mask=c_ok)


@triton.jit
def _se_gate_kernel(
    part_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, gate_ptr, C, HIDDEN, splits, inv_hw,
    sw1h, sw1c, sw2c, sw2h,
    BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr,
):
    n = tl.program_id(0)
    offs_c = tl.arange(0, BLOCK_C)
    offs_h = tl.arange(0, BLOCK_H)
    c_ok = offs_c < C
    h_ok = offs_h < HIDDEN
    total = tl.zeros((BLOCK_C,), dtype=tl.float32)
    for s in range(splits):
        total += tl.load(part_ptr + (n * splits + s) * C + offs_c, mask=c_ok, other=0.0)
    mean = total * inv_hw
    # hidden = relu(W1 @ mean + b1), W1 is (HIDDEN, C)
    w1 = tl.load(w1_ptr + offs_h[:, None] * sw1h + offs_c[None, :] * sw1c,
                 mask=h_ok[:, None] & c_ok[None, :], other=0.0).to(tl.float32)
    hidden = tl.sum(w1 * mean[None, :], axis=1)
    hidden += tl.load(b1_ptr + offs_h, mask=h_ok, other=0.0).to(tl.float32)
    hidden = tl.maximum(hidden, 0.0)
    # gate = sigmoid(W2 @ hidden + b2), W2 is (C, HIDDEN)
    w2 = tl.load(w2_ptr + offs_c[:, None] * sw2c + offs_h[None, :] * sw2h,
                 mask=c_ok[:, None] & h_ok[None, :], other=0.0).to(tl.float32)
    z = tl.sum(w2 * hidden[None, :], axis=1)
    z += tl.load(b2_ptr + offs_c, mask=c_ok, other=0.0).to(tl.float32)
    gate = 1.0 / (1.0 + tl.exp(-z))
    tl.store(gate_ptr + n * C + offs_c, gate, mask=c_ok)


@triton.jit
def _se_scale_kernel(
    x_ptr, gate_ptr, id_ptr, y_ptr, C, W, HW,
    sxn, sxc, sxh, sxw, sin, sic, sih, siw, syn, syc, syh, syw,
    HAS_IDENTITY: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    # Pixel tiles on grid axis 0, the only axis a GPU lets exceed 65535 programs.
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    n = tl.program_id(1)
    c = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)
    p_ok = p < HW
    c_ok = c < C
    ok = p_ok[:, None] & c_ok[None, :]
    h = (p // W).to(tl.int64)
    w = (p % W).to(tl.int64)
    c64 = c.to(tl.int64)
    n64 = n.to(tl.int64)
    gate = tl.load(gate_ptr + n * C + c, mask=c_ok, other=0.0)
    x = tl.load(x_ptr + (n64 * sxn + h * sxh + w * sxw)[:, None] + c64[None, :] * sxc,
                mask=ok, other=0.0).to(tl.float32)
    y = x * gate[None, :]
    if HAS_IDENTITY:
        identity = tl.load(id_ptr + (n64 * sin + h * sih + w * siw)[:, None] + c64[None, :] * sic,
                           mask=ok, other=0.0).to(tl.float32)
        y = tl.maximum(y + identity, 0.0)
    tl.store(y_ptr + (n64 * syn + h * syh + w * syw)[:, None] + c64[None, :] * syc,
             y.to(y_ptr.dtype.element_ty), mask=ok)


def _check(x, w1, b1, w2, b2, identity):
    if x.dim() != 4:
        raise ValueError(f"x must be a 4-D (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    check_dtypes(x, w1=w1, b1=b1, w2=w2, b2=b2, identity=identity)
    c = x.shape[1]
    if w1.dim() != 2 or w1.shape[1] != c:
        raise ValueError(f"w1 must have shape (hidden, {c}), got {tuple(w1.shape)}")
    hidden = w1.shape[0]
    expected = {"b1": (b1, (hidden,)), "w2": (w2, (c, hidden)), "b2": (b2, (c,))}
    for name, (t, shape) in expected.items():
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if identity is not None and identity.shape != x.shape:
        raise ValueError(f"identity must have x's shape {tuple(x.shape)}, got {tuple(identity.shape)}")
    return hidden


def se_config(c: int, hw: int, *, native: bool) -> dict:
    """Tile sizes: ``pool_p`` pixels per pool tile, ``splits`` pool programs per image,
    ``scale_p`` x ``scale_c`` the scale kernel's tile (channels: a power of 2 >= C for the
    pool and gate kernels, which hold a whole channel vector)."""
    block_c = next_pow2(c)
    if native:
        # Tiles of about 4096 values; up to 64 pool programs per image keep the SMs busy.
        pool_p = max(16, 4096 // block_c)
        scale_c = min(block_c, 64)
        return dict(pool_p=pool_p, splits=min(triton.cdiv(hw, pool_p), 64), scale_p=max(16, 4096 // scale_c),
                    scale_c=scale_c)
    # The interpreter pays per operation: one program per image, big tiles.
    big_p = max(16, min(next_pow2(hw), 16384 // block_c))
    return dict(pool_p=big_p, splits=1, scale_p=big_p, scale_c=block_c)


def squeeze_excitation(x, w1, b1, w2, b2, identity=None, *, config: dict | None = None):
    """Same arguments and result as ``durn.ops.reference.squeeze_excitation``.

    ``config`` overrides the tile sizes of ``se_config`` (tests use it to run GPU tiles on
    the interpreter)."""
    hidden = _check(x, w1, b1, w2, b2, identity)
    n, c, h, w = x.shape
    hw = h * w
    y = kernel_output(x.shape, x)
    if y.numel() == 0:
        return finish(y, x)
    cfg = dict(se_config(c, hw, native=not interpreted()), **(config or {}))
    block_c = next_pow2(c)
    splits = max(1, min(cfg["splits"], hw))
    per_split = triton.cdiv(hw, splits)
    partial = torch.empty((n, splits, c), dtype=torch.float32, device=x.device)
    gate = torch.empty((n, c), dtype=torch.float32, device=x.device)
    torch.library.wrap_triton(_se_pool_kernel)[(n, splits)](
        x, partial, c, w, hw, splits, per_split, *x.stride(), BLOCK_P=cfg["pool_p"], BLOCK_C=block_c,
    )
    torch.library.wrap_triton(_se_gate_kernel)[(n,)](
        partial, w1, b1, w2, b2, gate, c, hidden, splits, 1.0 / hw, *w1.stride(), *w2.stride(),
        BLOCK_C=block_c, BLOCK_H=next_pow2(hidden),
    )
    ident = identity if identity is not None else x  # never read without an identity
    grid = (triton.cdiv(hw, cfg["scale_p"]), n, triton.cdiv(c, cfg["scale_c"]))
    torch.library.wrap_triton(_se_scale_kernel)[grid](
        x, gate, ident, y, c, w, hw, *x.stride(), *ident.stride(), *y.stride(),
        HAS_IDENTITY=identity is not None, BLOCK_P=cfg["scale_p"], BLOCK_C=cfg["scale_c"],
    )
    return finish(y, x)
