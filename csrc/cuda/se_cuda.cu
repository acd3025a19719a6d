// squeeze_excitation on CUDA: pool (channel sums), gate (the two small FC layers and
// the sigmoid, one block per image), apply (y = x * gate, + identity, relu), each one
// kernel; x, identity and out are contiguous NCHW or channels_last.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dtype_cuda.cuh"
#include "kernels_cuda.h"

namespace durn::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kPixelsPerChunk = 256;  // channels_last pooling: pixels per block

__device__ __forceinline__ float exp_acc(float v) { return expf(v); }
__device__ __forceinline__ double exp_acc(double v) { return exp(v); }

template <typename Acc>
__device__ __forceinline__ Acc warp_sum(Acc v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// NCHW: one block per (n, c) plane; sums[nc] = sum of the plane.
template <typename T>
__global__ void __launch_bounds__(kThreads) pool_planes(const T* __restrict__ x, int64_t HW,
                                                        typename AccOf<T>::type* __restrict__ sums) {
  using Acc = typename AccOf<T>::type;
  __shared__ Acc partial[kThreads / 32];
  const T* plane = x + static_cast<int64_t>(blockIdx.x) * HW;
  Acc s = Acc(0);
  for (int64_t i = threadIdx.x; i < HW; i += kThreads) s += to_acc(plane[i]);
  s = warp_sum(s);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x < 32) {
    Acc v = threadIdx.x < kThreads / 32 ? partial[threadIdx.x] : Acc(0);
    v = warp_sum(v);
    if (threadIdx.x == 0) sums[blockIdx.x] = v;
  }
}

// channels_last: block (chunk, n) sums kPixelsPerChunk pixels per channel and adds its
// partial sums atomically (sums must start at zero).
template <typename T>
__global__ void __launch_bounds__(kThreads) pool_channels_last(const T* __restrict__ x, int64_t C, int64_t HW,
                                                               typename AccOf<T>::type* __restrict__ sums) {
  using Acc = typename AccOf<T>::type;
  const int64_t n = blockIdx.y;
  const int64_t p0 = static_cast<int64_t>(blockIdx.x) * kPixelsPerChunk;
  const int64_t p1 = p0 + kPixelsPerChunk < HW ? p0 + kPixelsPerChunk : HW;
  for (int64_t c = threadIdx.x; c < C; c += kThreads) {
    Acc s = Acc(0);
    for (int64_t p = p0; p < p1; ++p) s += to_acc(x[(n * HW + p) * C + c]);
    atomicAdd(sums + n * C + c, s);
  }
}

// One block per image: gate[n, c] = sigmoid(W2 relu(W1 mean + b1) + b2).
template <typename T>
__global__ void __launch_bounds__(kThreads) gate_kernel(const typename AccOf<T>::type* __restrict__ sums,
                                                        const T* __restrict__ w1, const T* __restrict__ b1,
                                                        const T* __restrict__ w2, const T* __restrict__ b2,
                                                        int64_t C, int64_t hidden, int64_t HW,
                                                        typename AccOf<T>::type* __restrict__ gate) {
  using Acc = typename AccOf<T>::type;
  extern __shared__ unsigned char smem_raw[];
  Acc* mean = reinterpret_cast<Acc*>(smem_raw);
  Acc* h = mean + C;
  const int64_t n = blockIdx.x;
  for (int64_t c = threadIdx.x; c < C; c += kThreads) mean[c] = sums[n * C + c] / static_cast<Acc>(HW);
  __syncthreads();
  for (int64_t j = threadIdx.x; j < hidden; j += kThreads) {
    Acc s = to_acc(b1[j]);
    for (int64_t c = 0; c < C; ++c) s += to_acc(w1[j * C + c]) * mean[c];
    h[j] = s > Acc(0) ? s : Acc(0);
  }
  __syncthreads();
  for (int64_t c = threadIdx.x; c < C; c += kThreads) {
    Acc s = to_acc(b2[c]);
    for (int64_t j = 0; j < hidden; ++j) s += to_acc(w2[c * hidden + j]) * h[j];
    gate[n * C + c] = Acc(1) / (Acc(1) + exp_acc(-s));
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) apply_kernel(const T* __restrict__ x, const T* __restrict__ identity,
                                                         const typename AccOf<T>::type* __restrict__ gate,
                                                         int64_t C, int64_t HW, int64_t total, bool channels_last,
                                                         T* __restrict__ out) {
  using Acc = typename AccOf<T>::type;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < total; i += step) {
    int64_t nc;
    if (channels_last) {
      nc = (i / (HW * C)) * C + i % C;
    } else {
      nc = i / HW;
    }
    // Rounded to T after the product, as the reference's y = x * gate.
    Acc y = to_acc(from_acc<T>(to_acc(x[i]) * gate[nc]));
    if (identity != nullptr) {
      y = y + to_acc(identity[i]);
      y = y < Acc(0) ? Acc(0) : y;
    }
    out[i] = from_acc<T>(y);
  }
}

template <typename T>
cudaError_t launch(const SELaunch& p, cudaStream_t stream) {
  using Acc = typename AccOf<T>::type;
  const T* x = static_cast<const T*>(p.x);
  Acc* sums = static_cast<Acc*>(p.workspace);
  Acc* gate = sums + p.N * p.C;
  if (p.channels_last) {
    cudaError_t err = cudaMemsetAsync(sums, 0, sizeof(Acc) * p.N * p.C, stream);
    if (err != cudaSuccess) return err;
    const int64_t chunks = (p.HW + kPixelsPerChunk - 1) / kPixelsPerChunk;
    if (chunks > 0x7fffffff || p.N > 65535) return cudaErrorInvalidConfiguration;
    pool_channels_last<T><<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(p.N)), kThreads, 0, stream>>>(
        x, p.C, p.HW, sums);
  } else {
    if (p.N * p.C > 0x7fffffff) return cudaErrorInvalidConfiguration;
    pool_planes<T><<<static_cast<unsigned>(p.N * p.C), kThreads, 0, stream>>>(x, p.HW, sums);
  }
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const size_t smem = sizeof(Acc) * static_cast<size_t>(p.C + p.hidden);
  if (smem > 48 * 1024) return cudaErrorInvalidConfiguration;
  gate_kernel<T><<<static_cast<unsigned>(p.N), kThreads, smem, stream>>>(
      sums, static_cast<const T*>(p.w1), static_cast<const T*>(p.b1), static_cast<const T*>(p.w2),
      static_cast<const T*>(p.b2), p.C, p.hidden, p.HW, gate);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const int64_t total = p.N * p.C * p.HW;
  int64_t blocks = (total + kThreads - 1) / kThreads;
  if (blocks > 65536) blocks = 65536;
  apply_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      x, static_cast<const T*>(p.identity), gate, p.C, p.HW, total, p.channels_last, static_cast<T*>(p.out));
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_squeeze_excitation(const SELaunch& p, cudaStream_t stream) {
  switch (p.dtype) {
    case DType::Float32: return launch<float>(p, stream);
    case DType::Float64: return launch<double>(p, stream);
    case DType::Float16: return launch<__half>(p, stream);
    case DType::BFloat16: return launch<__nv_bfloat16>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace durn::cuda
