// Plain C++ description of one fused-operator call, shared by the CPU kernels, the
// CUDA kernels (.cu files include no torch header) and the torch bindings.
// The contract each kernel implements is durn/ops/reference.py.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DURN_HD __host__ __device__ __forceinline__
#else
#define DURN_HD inline
#endif

namespace durn {

enum class ResidualAt : int { None = 0, PreAffine = 1, PostAffine = 2, PostActivation = 3 };
enum class Activation : int { None = 0, Relu = 1, Tanh = 2 };

// One conv of fused_conv2d / pixel_shuffle_conv2d. The "logical" input is x after the
// optional pixel shuffle: logical[n, c, h, w] = x[n, c*u*u + (h%u)*u + (w%u), h/u, w/u].
struct ConvGeometry {
  int64_t N, C, H, W;        // logical input
  int64_t O, Ho, Wo;         // output channels and size
  int64_t kh, kw;            // kernel
  int64_t stride, pad, dilation;
  int64_t upscale;           // u >= 1 (1: no shuffle)
  bool reflect;              // padding mode: reflect (no edge repeat) or zeros
  int64_t xs[4];             // strides of the physical x (N, C, H, W), in elements
};

struct EpilogueSpec {
  ResidualAt residual_at;
  Activation activation;
  double residual_alpha;
};

// Strides (in elements) of a 4-D tensor (N, C, H, W).
struct Strides4 {
  int64_t n, c, h, w;
};

// Reflection without edge repeat for i in [-(n-1), 2n-2] (F.pad(mode="reflect")).
DURN_HD int64_t reflect_index(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// Offset of logical row iy (already inside [0, H)): the part of the address that
// depends on the row, including the shuffle's sub-channel (iy % u) * u.
DURN_HD int64_t logical_row_offset(int64_t iy, const ConvGeometry& g) {
  return (iy / g.upscale) * g.xs[2] + (iy % g.upscale) * g.upscale * g.xs[1];
}

DURN_HD int64_t logical_col_offset(int64_t ix, const ConvGeometry& g) {
  return (ix / g.upscale) * g.xs[3] + (ix % g.upscale) * g.xs[1];
}

// Stride between consecutive logical channels.
DURN_HD int64_t logical_channel_stride(const ConvGeometry& g) {
  return g.upscale * g.upscale * g.xs[1];
}

}  // namespace durn
