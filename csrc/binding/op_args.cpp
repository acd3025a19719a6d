#include "op_args.h"

#include <ATen/ops/conv2d.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/pad.h>
#include <ATen/ops/pixel_shuffle.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/tanh.h>
#include <c10/util/Exception.h>

#include <string>

namespace durn {
namespace {

ResidualAt parse_residual_at(const char* op, c10::string_view s) {
  if (s == "none") return ResidualAt::None;
  if (s == "pre_affine") return ResidualAt::PreAffine;
  if (s == "post_affine") return ResidualAt::PostAffine;
  if (s == "post_activation") return ResidualAt::PostActivation;
  TORCH_CHECK(false, op, ": residual_at must be one of none, pre_affine, post_affine, post_activation; got '",
              std::string(s), "'");
}

Activation parse_activation(const char* op, c10::string_view s) {
  if (s == "none") return Activation::None;
  if (s == "relu") return Activation::Relu;
  if (s == "tanh") return Activation::Tanh;
  TORCH_CHECK(false, op, ": activation must be one of none, relu, tanh; got '", std::string(s), "'");
}

void check_like(const char* op, const char* name, const at::Tensor& t, const at::Tensor& x) {
  TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": ", name, " has dtype ", t.scalar_type(),
              " but x has ", x.scalar_type(), " (every tensor argument must share x's dtype)");
  TORCH_CHECK(t.device() == x.device(), op, ": ", name, " is on ", t.device(), " but x is on ", x.device());
}

at::Tensor channel_vector(const char* op, const char* name, const OptTensor& t, const at::Tensor& x, int64_t O) {
  if (!t.has_value() || !t->defined()) return at::Tensor();
  check_like(op, name, *t, x);
  TORCH_CHECK(t->dim() == 1 && t->size(0) == O, op, ": ", name, " must have shape (", O, ",), got ", t->sizes());
  return t->contiguous();
}

}  // namespace

at::MemoryFormat output_format(const at::Tensor& x) {
  if (x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous()) {
    return at::MemoryFormat::ChannelsLast;
  }
  return at::MemoryFormat::Contiguous;
}

ConvCall parse_conv_call(const char* op, const at::Tensor& x, int64_t upscale, const at::Tensor& weight,
                         const OptTensor& bias, const OptTensor& scale, const OptTensor& shift,
                         const OptTensor& residual, int64_t stride, int64_t padding, int64_t dilation,
                         c10::string_view padding_mode, c10::string_view residual_at,
                         c10::string_view activation, double residual_alpha) {
  TORCH_CHECK(x.dim() == 4, op, ": expected x of shape (N, C, H, W), got ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": expected a floating-point x, got ", x.scalar_type());
  TORCH_CHECK(weight.dim() == 4, op, ": expected weight of shape (O, C, kh, kw), got ", weight.sizes());
  check_like(op, "weight", weight, x);
  TORCH_CHECK(upscale >= 1, op, ": upscale must be >= 1, got ", upscale);
  TORCH_CHECK(stride >= 1, op, ": stride must be >= 1, got ", stride);
  TORCH_CHECK(padding >= 0, op, ": padding must be >= 0, got ", padding);
  TORCH_CHECK(dilation >= 1, op, ": dilation must be >= 1, got ", dilation);
  TORCH_CHECK(padding_mode == "zeros" || padding_mode == "reflect", op,
              ": padding_mode must be 'zeros' or 'reflect', got '", std::string(padding_mode), "'");

  ConvCall call;
  ConvGeometry& g = call.geom;
  const int64_t uu = upscale * upscale;
  TORCH_CHECK(x.size(1) % uu == 0, op, ": pixel shuffle by ", upscale, " needs channels divisible by ", uu,
              ", got ", x.size(1));
  g.N = x.size(0);
  g.C = x.size(1) / uu;
  g.H = x.size(2) * upscale;
  g.W = x.size(3) * upscale;
  g.O = weight.size(0);
  g.kh = weight.size(2);
  g.kw = weight.size(3);
  TORCH_CHECK(weight.size(1) == g.C, op, ": weight expects ", weight.size(1), " input channels, the ",
              upscale > 1 ? "shuffled " : "", "input has ", g.C);
  g.stride = stride;
  g.pad = padding;
  g.dilation = dilation;
  g.upscale = upscale;
  g.reflect = padding_mode == "reflect" && padding > 0;
  if (g.reflect) {
    TORCH_CHECK(padding < g.H && padding < g.W, op, ": reflect padding of ", padding,
                " needs an input larger than that, got ", g.H, " x ", g.W);
  }
  const int64_t span_h = dilation * (g.kh - 1) + 1, span_w = dilation * (g.kw - 1) + 1;
  TORCH_CHECK(g.H + 2 * padding >= span_h && g.W + 2 * padding >= span_w, op, ": the padded input (",
              g.H + 2 * padding, " x ", g.W + 2 * padding, ") is smaller than the dilated kernel (", span_h,
              " x ", span_w, ")");
  g.Ho = (g.H + 2 * padding - span_h) / stride + 1;
  g.Wo = (g.W + 2 * padding - span_w) / stride + 1;
  for (int i = 0; i < 4; ++i) g.xs[i] = x.stride(i);

  call.epilogue.residual_at = parse_residual_at(op, residual_at);
  call.epilogue.activation = parse_activation(op, activation);
  call.epilogue.residual_alpha = residual_alpha;
  call.format = output_format(x);
  call.out_shape = {g.N, g.O, g.Ho, g.Wo};
  call.x = x;
  call.weight = weight;
  call.upscale = upscale;
  call.bias = channel_vector(op, "bias", bias, x, g.O);
  call.scale = channel_vector(op, "scale", scale, x, g.O);
  call.shift = channel_vector(op, "shift", shift, x, g.O);
  if (call.epilogue.residual_at != ResidualAt::None) {
    TORCH_CHECK(residual.has_value() && residual->defined(), op, ": residual_at='", std::string(residual_at),
                "' needs a residual tensor");
    check_like(op, "residual", *residual, x);
    const auto& r = *residual;
    bool expandable = r.dim() <= 4;
    for (int64_t i = 0; expandable && i < r.dim(); ++i) {
      const int64_t want = call.out_shape[4 - r.dim() + i];
      expandable = r.size(i) == want || r.size(i) == 1;
    }
    TORCH_CHECK(expandable, op, ": residual must have the output's shape ", call.out_shape, ", got ", r.sizes());
    call.residual = r.expand(call.out_shape);
  }
  return call;
}

SECall parse_se_call(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                     const at::Tensor& b2, const OptTensor& identity) {
  const char* op = "durn::squeeze_excitation";
  TORCH_CHECK(x.dim() == 4, op, ": expected x of shape (N, C, H, W), got ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": expected a floating-point x, got ", x.scalar_type());
  const int64_t C = x.size(1);
  TORCH_CHECK(w1.dim() == 2 && w1.size(1) == C, op, ": w1 must have shape (hidden, ", C, "), got ", w1.sizes());
  const int64_t hidden = w1.size(0);
  TORCH_CHECK(b1.dim() == 1 && b1.size(0) == hidden, op, ": b1 must have shape (", hidden, ",), got ", b1.sizes());
  TORCH_CHECK(w2.dim() == 2 && w2.size(0) == C && w2.size(1) == hidden, op, ": w2 must have shape (", C, ", ",
              hidden, "), got ", w2.sizes());
  TORCH_CHECK(b2.dim() == 1 && b2.size(0) == C, op, ": b2 must have shape (", C, ",), got ", b2.sizes());
  check_like(op, "w1", w1, x);
  check_like(op, "b1", b1, x);
  check_like(op, "w2", w2, x);
  check_like(op, "b2", b2, x);
  SECall call;
  call.x = x;
  call.w1 = w1;
  call.b1 = b1;
  call.w2 = w2;
  call.b2 = b2;
  call.hidden = hidden;
  call.format = output_format(x);
  if (identity.has_value() && identity->defined()) {
    check_like(op, "identity", *identity, x);
    TORCH_CHECK(identity->sizes() == x.sizes(), op, ": identity must have x's shape ", x.sizes(), ", got ",
                identity->sizes());
    call.identity = *identity;
  }
  return call;
}

at::Tensor conv_composite(const ConvCall& call) {
  const ConvGeometry& g = call.geom;
  at::Tensor x = call.upscale > 1 ? at::pixel_shuffle(call.x, call.upscale) : call.x;
  int64_t padding = g.pad;
  if (g.reflect) {
    x = at::pad(x, {padding, padding, padding, padding}, "reflect");
    padding = 0;
  }
  const std::optional<at::Tensor> bias =
      call.bias.defined() ? std::optional<at::Tensor>(call.bias) : std::nullopt;
  at::Tensor y = at::conv2d(x, call.weight, bias, {g.stride, g.stride}, {padding, padding}, {g.dilation, g.dilation});
  const ResidualAt at_ = call.epilogue.residual_at;
  if (at_ == ResidualAt::PreAffine) y = y.add(call.residual);
  if (call.scale.defined()) y = y.mul(call.scale.view({-1, 1, 1}));
  if (call.shift.defined()) y = y.add(call.shift.view({-1, 1, 1}));
  if (at_ == ResidualAt::PostAffine) y = y.add(call.residual);
  if (call.epilogue.activation == Activation::Relu) y = at::relu(y);
  if (call.epilogue.activation == Activation::Tanh) y = at::tanh(y);
  if (at_ == ResidualAt::PostActivation) y = call.residual.add(y.mul(call.epilogue.residual_alpha));
  return y.contiguous(call.format);
}

at::Tensor se_composite(const SECall& call) {
  at::Tensor squeezed = call.x.mean({2, 3});
  at::Tensor gate = at::sigmoid(at::linear(at::relu(at::linear(squeezed, call.w1, call.b1)), call.w2, call.b2));
  at::Tensor y = call.x.mul(gate.view({gate.size(0), gate.size(1), 1, 1}));
  if (call.identity.defined()) y = at::relu(y.add(call.identity));
  return y.contiguous(call.format);
}

}  // namespace durn
