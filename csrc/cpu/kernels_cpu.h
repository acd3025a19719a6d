// CPU kernels of durn's fused operators (see durn/ops/reference.py for the contract).
#pragma once

#include <ATen/core/Tensor.h>

#include "../binding/op_args.h"

namespace durn::cpu {

// fused_conv2d and pixel_shuffle_conv2d (call.upscale > 1). float and double run the
// tiled im2col + BLAS kernel; other dtypes run the ATen composition.
at::Tensor fused_conv(const ConvCall& call);

// squeeze_excitation: one pass for the pool, one fused pass for gate * x (+ identity, relu).
at::Tensor squeeze_excitation(const SECall& call);

}  // namespace durn::cpu
