// Registers the CUDA kernels for durn's operators (schemas: durn/ops/library.py). All
// torch work happens here; the kernels (.cu) see raw pointers and strides only.
#include <Python.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../binding/op_args.h"
#include "kernels_cuda.h"

#ifndef DURN_SOURCE_HASH
#define DURN_SOURCE_HASH unknown
#endif
#define DURN_STRINGIFY_(x) #x
#define DURN_STRINGIFY(x) DURN_STRINGIFY_(x)

namespace durn::cuda {
namespace {

std::optional<DType> kernel_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::Float32;
    case at::kDouble: return DType::Float64;
    case at::kHalf: return DType::Float16;
    case at::kBFloat16: return DType::BFloat16;
    default: return std::nullopt;
  }
}

Strides4 strides_of(const at::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }

const void* ptr_or_null(const at::Tensor& t) { return t.defined() ? t.const_data_ptr() : nullptr; }

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

at::Tensor run_conv(const ConvCall& call, const char* op) {
  const auto dtype = kernel_dtype(call.x.scalar_type());
  if (!dtype) return conv_composite(call);
  TORCH_CHECK(call.x.is_cuda(), op, ": expected CUDA tensors");
  c10::cuda::CUDAGuard guard(call.x.device());
  at::Tensor out = at::empty(call.out_shape, call.x.options().memory_format(call.format));
  if (out.numel() == 0) return out;
  const at::Tensor weight = call.weight.contiguous();
  ConvLaunch p{};
  p.geom = call.geom;
  p.epilogue = call.epilogue;
  p.dtype = *dtype;
  p.x = call.x.const_data_ptr();
  p.weight = weight.const_data_ptr();
  p.bias = ptr_or_null(call.bias);
  p.scale = ptr_or_null(call.scale);
  p.shift = ptr_or_null(call.shift);
  p.residual = ptr_or_null(call.residual);
  if (call.residual.defined()) p.residual_strides = strides_of(call.residual);
  p.out = out.mutable_data_ptr();
  p.out_strides = strides_of(out);
  check_launch(launch_fused_conv(p, c10::cuda::getCurrentCUDAStream()), op);
  return out;
}

at::Tensor fused_conv2d(const at::Tensor& x, const at::Tensor& weight, const OptTensor& bias,
                        const OptTensor& scale, const OptTensor& shift, const OptTensor& residual, int64_t stride,
                        int64_t padding, int64_t dilation, c10::string_view padding_mode,
                        c10::string_view residual_at, c10::string_view activation, double residual_alpha) {
  const char* op = "durn::fused_conv2d";
  return run_conv(parse_conv_call(op, x, 1, weight, bias, scale, shift, residual, stride, padding, dilation,
                                  padding_mode, residual_at, activation, residual_alpha),
                  op);
}

at::Tensor pixel_shuffle_conv2d(const at::Tensor& x, int64_t upscale, const at::Tensor& weight,
                                const OptTensor& bias, const OptTensor& scale, const OptTensor& shift,
                                const OptTensor& residual, int64_t stride, int64_t padding, int64_t dilation,
                                c10::string_view padding_mode, c10::string_view residual_at,
                                c10::string_view activation, double residual_alpha) {
  const char* op = "durn::pixel_shuffle_conv2d";
  return run_conv(parse_conv_call(op, x, upscale, weight, bias, scale, shift, residual, stride, padding, dilation,
                                  padding_mode, residual_at, activation, residual_alpha),
                  op);
}

at::Tensor squeeze_excitation(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                              const at::Tensor& b2, const OptTensor& identity) {
  const char* op = "durn::squeeze_excitation";
  const SECall call = parse_se_call(x, w1, b1, w2, b2, identity);
  const auto dtype = kernel_dtype(x.scalar_type());
  if (!dtype) return se_composite(call);
  TORCH_CHECK(x.is_cuda(), op, ": expected CUDA tensors");
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous(call.format);
  const at::Tensor id = call.identity.defined() ? call.identity.contiguous(call.format) : at::Tensor();
  const at::Tensor w1c = w1.contiguous(), b1c = b1.contiguous(), w2c = w2.contiguous(), b2c = b2.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options().memory_format(call.format));
  if (out.numel() == 0) return out;
  const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor workspace = at::empty({2 * x.size(0) * x.size(1)}, x.options().dtype(acc));
  SELaunch p{};
  p.dtype = *dtype;
  p.N = x.size(0);
  p.C = x.size(1);
  p.HW = x.size(2) * x.size(3);
  p.hidden = call.hidden;
  p.channels_last = call.format == at::MemoryFormat::ChannelsLast;
  p.x = xc.const_data_ptr();
  p.w1 = w1c.const_data_ptr();
  p.b1 = b1c.const_data_ptr();
  p.w2 = w2c.const_data_ptr();
  p.b2 = b2c.const_data_ptr();
  p.identity = ptr_or_null(id);
  p.out = out.mutable_data_ptr();
  p.workspace = workspace.mutable_data_ptr();
  check_launch(launch_squeeze_excitation(p, c10::cuda::getCurrentCUDAStream()), op);
  return out;
}

}  // namespace
}  // namespace durn::cuda

TORCH_LIBRARY_IMPL(durn, CUDA, m) {
  m.impl("fused_conv2d", &durn::cuda::fused_conv2d);
  m.impl("pixel_shuffle_conv2d", &durn::cuda::pixel_shuffle_conv2d);
  m.impl("squeeze_excitation", &durn::cuda::squeeze_excitation);
}

extern "C" __attribute__((used)) const char durn_source_marker[] = "DURN_SOURCE_HASH=" DURN_STRINGIFY(DURN_SOURCE_HASH) ";";

static PyModuleDef durn_cuda_module = {PyModuleDef_HEAD_INIT, "_C_cuda", "durn's CUDA kernels (registered on import)",
                                       -1, nullptr};
PyMODINIT_FUNC PyInit__C_cuda(void) { return PyModule_Create(&durn_cuda_module); }
