// fused_conv2d / pixel_shuffle_conv2d on CUDA: an implicit GEMM.
//
// GEMM view: rows = output pixels (N * Ho * Wo), columns = output channels O,
// reduction K = C * kh * kw. A block computes a 64 x 64 tile with 256 threads (4 x 4
// outputs each), staging 16-deep slices of the input patches and the weights in shared
// memory. The patch loader applies padding (reflect or zero), dilation, stride and the
// pixel shuffle while reading x, so no padded or shuffled copy of x exists; the
// epilogue is applied before the single store. Any strides for x, the residual (0 for
// broadcast dimensions) and the output (NCHW or channels_last).
//
// SIMT FMA only (no tensor cores); accumulates in float (double for float64).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dtype_cuda.cuh"
#include "kernels_cuda.h"

namespace durn::cuda {
namespace {

constexpr int kBM = 64;  // pixels per block
constexpr int kBN = 64;  // output channels per block
constexpr int kBK = 16;  // reduction slice
constexpr int kThreads = 256;

__device__ __forceinline__ float tanh_acc(float v) { return tanhf(v); }
__device__ __forceinline__ double tanh_acc(double v) { return tanh(v); }

// The reference's epilogue order (durn/ops/reference.py).
template <typename Acc>
__device__ __forceinline__ Acc epilogue(Acc y, Acc b, Acc s, Acc t, Acc r, Acc alpha, ResidualAt ra,
                                        Activation act) {
  y = y + b;
  if (ra == ResidualAt::PreAffine) y = y + r;
  y = y * s;
  y = y + t;
  if (ra == ResidualAt::PostAffine) y = y + r;
  if (act == Activation::Relu) y = y < Acc(0) ? Acc(0) : y;
  if (act == Activation::Tanh) y = tanh_acc(y);
  if (ra == ResidualAt::PostActivation) y = r + alpha * y;
  return y;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) fused_conv_kernel(const ConvLaunch p) {
  using Acc = typename AccOf<T>::type;
  const ConvGeometry& g = p.geom;
  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ w = static_cast<const T*>(p.weight);
  const int64_t taps = g.kh * g.kw;
  const int64_t K = g.C * taps;
  const int64_t HWo = g.Ho * g.Wo;
  const int64_t M = g.N * HWo;
  const int64_t cs = logical_channel_stride(g);

  __shared__ Acc As[kBK][kBM];
  __shared__ Acc Bs[kBK][kBN];

  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int64_t o0 = static_cast<int64_t>(blockIdx.y) * kBN;

  // This thread loads patch values for one pixel (consecutive threads: consecutive
  // pixels, coalesced for NCHW) and kBK / 4 reduction indices.
  const int a_m = tid % kBM;
  const int a_k = tid / kBM;  // 0..3
  const int64_t pix = m0 + a_m;
  const bool pix_ok = pix < M;
  int64_t n = 0, oy = 0, ox = 0;
  if (pix_ok) {
    n = pix / HWo;
    const int64_t rem = pix - n * HWo;
    oy = rem / g.Wo;
    ox = rem - oy * g.Wo;
  }
  const T* xn = x + n * g.xs[0];
  // Weights: consecutive threads read consecutive k of one output channel.
  const int b_k = tid % kBK;
  const int b_o = tid / kBK;  // 0..15

  // Compute mapping: pixels tx + 16 i, channels ty + 16 j.
  const int tx = tid % 16;
  const int ty = tid / 16;
  Acc acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = Acc(0);
  }

  for (int64_t k0 = 0; k0 < K; k0 += kBK) {
#pragma unroll
    for (int i = 0; i < kBK / 4; ++i) {
      const int kk = a_k + 4 * i;
      const int64_t k = k0 + kk;
      Acc v = Acc(0);
      if (pix_ok && k < K) {
        const int64_t c = k / taps;
        const int64_t tap = k - c * taps;
        const int64_t ky = tap / g.kw;
        const int64_t kx = tap - ky * g.kw;
        int64_t iy = oy * g.stride + ky * g.dilation - g.pad;
        int64_t ix = ox * g.stride + kx * g.dilation - g.pad;
        bool inside = iy >= 0 && iy < g.H && ix >= 0 && ix < g.W;
        if (!inside && g.reflect) {
          iy = reflect_index(iy, g.H);
          ix = reflect_index(ix, g.W);
          inside = true;
        }
        if (inside) v = to_acc(xn[c * cs + logical_row_offset(iy, g) + logical_col_offset(ix, g)]);
      }
      As[kk][a_m] = v;
    }
#pragma unroll
    for (int i = 0; i < kBN / 16; ++i) {
      const int oo = b_o + 16 * i;
      const int64_t o = o0 + oo;
      const int64_t k = k0 + b_k;
      Bs[b_k][oo] = (o < g.O && k < K) ? to_acc(w[o * K + k]) : Acc(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      Acc a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][tx + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][ty + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
      }
    }
    __syncthreads();
  }

  const T* bias = static_cast<const T*>(p.bias);
  const T* scale = static_cast<const T*>(p.scale);
  const T* shift = static_cast<const T*>(p.shift);
  const T* res = static_cast<const T*>(p.residual);
  T* out = static_cast<T*>(p.out);
  const Acc alpha = static_cast<Acc>(p.epilogue.residual_alpha);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + tx + 16 * i;
    if (m >= M) continue;
    const int64_t on = m / HWo;
    const int64_t rem = m - on * HWo;
    const int64_t y = rem / g.Wo;
    const int64_t xo = rem - y * g.Wo;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t o = o0 + ty + 16 * j;
      if (o >= g.O) continue;
      const Acc b = bias ? to_acc(bias[o]) : Acc(0);
      const Acc s = scale ? to_acc(scale[o]) : Acc(1);
      const Acc t = shift ? to_acc(shift[o]) : Acc(0);
      Acc r = Acc(0);
      if (res) {
        const Strides4& rs = p.residual_strides;
        r = to_acc(res[on * rs.n + o * rs.c + y * rs.h + xo * rs.w]);
      }
      const Strides4& os = p.out_strides;
      out[on * os.n + o * os.c + y * os.h + xo * os.w] =
          from_acc<T>(epilogue(acc[i][j], b, s, t, r, alpha, p.epilogue.residual_at, p.epilogue.activation));
    }
  }
}

template <typename T>
cudaError_t launch(const ConvLaunch& p, cudaStream_t stream) {
  const int64_t M = p.geom.N * p.geom.Ho * p.geom.Wo;
  const int64_t grid_m = (M + kBM - 1) / kBM;
  const int64_t grid_o = (p.geom.O + kBN - 1) / kBN;
  if (grid_m > 0x7fffffff || grid_o > 65535) return cudaErrorInvalidConfiguration;
  fused_conv_kernel<T><<<dim3(static_cast<unsigned>(grid_m), static_cast<unsigned>(grid_o)), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_fused_conv(const ConvLaunch& p, cudaStream_t stream) {
  switch (p.dtype) {
    case DType::Float32: return launch<float>(p, stream);
    case DType::Float64: return launch<double>(p, stream);
    case DType::Float16: return launch<__half>(p, stream);
    case DType::BFloat16: return launch<__nv_bfloat16>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace durn::cuda
