// Launchers of the CUDA kernels. Plain C++ and the CUDA runtime only: the .cu files
// include no torch header (they compile in seconds, and against the CUDA toolkit
// alone); register_cuda.cpp does all torch work and passes raw pointers here.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../common/fused_ops.h"

namespace durn::cuda {

enum class DType : int { Float32 = 0, Float64 = 1, Float16 = 2, BFloat16 = 3 };

struct ConvLaunch {
  ConvGeometry geom;
  EpilogueSpec epilogue;
  DType dtype;
  const void* x;         // strides in geom.xs
  const void* weight;    // (O, C, kh, kw) contiguous
  const void* bias;      // (O,) or null
  const void* scale;     // (O,) or null
  const void* shift;     // (O,) or null
  const void* residual;  // output-shaped (any strides, 0 for broadcast) or null
  Strides4 residual_strides;
  void* out;
  Strides4 out_strides;
};

// Accumulates in float (double for Float64).
cudaError_t launch_fused_conv(const ConvLaunch& p, cudaStream_t stream);

struct SELaunch {
  DType dtype;
  int64_t N, C, HW, hidden;
  bool channels_last;    // x, identity and out share this layout, contiguous
  const void* x;
  const void* w1;        // (hidden, C)
  const void* b1;        // (hidden,)
  const void* w2;        // (C, hidden)
  const void* b2;        // (C,)
  const void* identity;  // or null
  void* out;
  void* workspace;       // 2 * N * C accumulators (float; double for Float64)
};

cudaError_t launch_squeeze_excitation(const SELaunch& p, cudaStream_t stream);

}  // namespace durn::cuda
