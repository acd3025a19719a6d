// The fused epilogue of durn/ops/reference.py, in the reference's order, with the
// (residual_at, activation) pair as compile-time parameters so inner loops vectorise.
#pragma once

#include <cmath>
#include <type_traits>

#include "../common/fused_ops.h"

namespace durn::cpu {

template <ResidualAt RA>
using RAConst = std::integral_constant<ResidualAt, RA>;
template <Activation ACT>
using ActConst = std::integral_constant<Activation, ACT>;

// y = acc + bias; [+ r]; * scale; + shift; [+ r]; act; [r + alpha * y]. Absent bias,
// scale, shift are passed as 0, 1, 0 (exact no-ops).
template <ResidualAt RA, Activation ACT, typename T>
inline T apply_epilogue(T acc, T bias, T scale, T shift, T r, T alpha) {
  T y = acc + bias;
  if constexpr (RA == ResidualAt::PreAffine) y = y + r;
  y = y * scale;
  y = y + shift;
  if constexpr (RA == ResidualAt::PostAffine) y = y + r;
  if constexpr (ACT == Activation::Relu) y = y < T(0) ? T(0) : y;  // keeps NaN, as torch.relu
  if constexpr (ACT == Activation::Tanh) y = std::tanh(y);
  if constexpr (RA == ResidualAt::PostActivation) y = r + alpha * y;
  return y;
}

// Calls f(RAConst<...>{}, ActConst<...>{}) for the spec's runtime pair.
template <typename F>
void dispatch_epilogue(const EpilogueSpec& e, F&& f) {
  auto with_act = [&](auto ra) {
    switch (e.activation) {
      case Activation::None: return f(ra, ActConst<Activation::None>{});
      case Activation::Relu: return f(ra, ActConst<Activation::Relu>{});
      case Activation::Tanh: return f(ra, ActConst<Activation::Tanh>{});
    }
  };
  switch (e.residual_at) {
    case ResidualAt::None: return with_act(RAConst<ResidualAt::None>{});
    case ResidualAt::PreAffine: return with_act(RAConst<ResidualAt::PreAffine>{});
    case ResidualAt::PostAffine: return with_act(RAConst<ResidualAt::PostAffine>{});
    case ResidualAt::PostActivation: return with_act(RAConst<ResidualAt::PostActivation>{});
  }
}

}  // namespace durn::cpu
