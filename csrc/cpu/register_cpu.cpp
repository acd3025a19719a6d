// Registers the CPU kernels for durn's operators. The schemas are defined in Python
// (durn/ops/library.py); the dispatcher accepts these kernels whether this library is
// loaded before or after the schemas are defined, and the autograd kernel registered
// in Python wraps them.
#include <Python.h>
#include <torch/library.h>

#include "../binding/op_args.h"
#include "kernels_cpu.h"

#ifndef DURN_SOURCE_HASH
#define DURN_SOURCE_HASH unknown
#endif
#define DURN_STRINGIFY_(x) #x
#define DURN_STRINGIFY(x) DURN_STRINGIFY_(x)

namespace durn::cpu {
namespace {

at::Tensor fused_conv2d(const at::Tensor& x, const at::Tensor& weight, const OptTensor& bias,
                        const OptTensor& scale, const OptTensor& shift, const OptTensor& residual, int64_t stride,
                        int64_t padding, int64_t dilation, c10::string_view padding_mode,
                        c10::string_view residual_at, c10::string_view activation, double residual_alpha) {
  return fused_conv(parse_conv_call("durn::fused_conv2d", x, 1, weight, bias, scale, shift, residual, stride,
                                    padding, dilation, padding_mode, residual_at, activation, residual_alpha));
}

at::Tensor pixel_shuffle_conv2d(const at::Tensor& x, int64_t upscale, const at::Tensor& weight,
                                const OptTensor& bias, const OptTensor& scale, const OptTensor& shift,
                                const OptTensor& residual, int64_t stride, int64_t padding, int64_t dilation,
                                c10::string_view padding_mode, c10::string_view residual_at,
                                c10::string_view activation, double residual_alpha) {
  return fused_conv(parse_conv_call("durn::pixel_shuffle_conv2d", x, upscale, weight, bias, scale, shift,
                                    residual, stride, padding, dilation, padding_mode, residual_at, activation,
                                    residual_alpha));
}

at::Tensor squeeze_excitation_op(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& b1,
                                 const at::Tensor& w2, const at::Tensor& b2, const OptTensor& identity) {
  return squeeze_excitation(parse_se_call(x, w1, b1, w2, b2, identity));
}

}  // namespace
}  // namespace durn::cpu

TORCH_LIBRARY_IMPL(durn, CPU, m) {
  m.impl("fused_conv2d", &durn::cpu::fused_conv2d);
  m.impl("pixel_shuffle_conv2d", &durn::cpu::pixel_shuffle_conv2d);
  m.impl("squeeze_excitation", &durn::cpu::squeeze_excitation_op);
}

// Marker that durn/ops/extension.py reads from the file (without loading it) to tell
// whether a built library matches the sources of this checkout.
extern "C" __attribute__((used)) const char durn_source_marker[] = "DURN_SOURCE_HASH=" DURN_STRINGIFY(DURN_SOURCE_HASH) ";";

// Lets the library be imported as the Python module durn._C (installed builds); the
// JIT build loads it with torch.ops.load_library instead.
static PyModuleDef durn_cpu_module = {PyModuleDef_HEAD_INIT, "_C", "durn's CPU kernels (registered on import)", -1,
                                      nullptr};
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&durn_cpu_module); }
