// Torch-level argument checks shared by the CPU and CUDA registrations: they turn an
// operator call into validated tensors plus the plain description in fused_ops.h.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>
#include <vector>

#include "../common/fused_ops.h"

namespace durn {

using OptTensor = std::optional<at::Tensor>;

struct ConvCall {
  ConvGeometry geom;
  EpilogueSpec epilogue;
  at::MemoryFormat format;       // of the output: x's (channels_last or contiguous)
  std::vector<int64_t> out_shape;
  at::Tensor x, weight;          // weight: (O, C, kh, kw)
  at::Tensor bias, scale, shift; // 1-D of size O, contiguous, or undefined
  at::Tensor residual;           // expanded to the output shape, or undefined
  int64_t upscale = 1;
};

struct SECall {
  at::Tensor x, w1, b1, w2, b2, identity;  // identity: x's shape, or undefined
  at::MemoryFormat format;
  int64_t hidden = 0;
};

// The memory format durn's ops give their output: channels_last when x is
// channels_last-contiguous and not (also) NCHW-contiguous, else contiguous.
at::MemoryFormat output_format(const at::Tensor& x);

ConvCall parse_conv_call(const char* op, const at::Tensor& x, int64_t upscale, const at::Tensor& weight,
                         const OptTensor& bias, const OptTensor& scale, const OptTensor& shift,
                         const OptTensor& residual, int64_t stride, int64_t padding, int64_t dilation,
                         c10::string_view padding_mode, c10::string_view residual_at,
                         c10::string_view activation, double residual_alpha);

SECall parse_se_call(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                     const at::Tensor& b2, const OptTensor& identity);

// ATen compositions that compute exactly what durn/ops/reference.py computes; used for
// dtypes and devices that have no dedicated kernel.
at::Tensor conv_composite(const ConvCall& call);
at::Tensor se_composite(const SECall& call);

}  // namespace durn
