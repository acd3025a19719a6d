// squeeze_excitation on CPU: one pass over x for the channel means, the tiny MLP in
// double, then one fused pass y = x * gate (+ identity, relu).
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels_cpu.h"

namespace durn::cpu {
namespace {

// Sum of n values, accumulated in double with independent lanes (vectorisable).
template <typename T>
double sum_plane(const T* p, int64_t n) {
  constexpr int kLanes = 16;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(p[i + j]);
  }
  double total = 0;
  for (; i < n; ++i) total += static_cast<double>(p[i]);
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  return total;
}

// Channel means (N * C values) of x, NCHW or channels_last contiguous.
template <typename T>
std::vector<double> channel_means(const T* x, int64_t N, int64_t C, int64_t HW, bool nhwc) {
  std::vector<double> mean(N * C, 0.0);
  if (!nhwc) {
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, HW));
    at::parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
      for (int64_t nc = b; nc < e; ++nc) mean[nc] = sum_plane(x + nc * HW, HW) / static_cast<double>(HW);
    });
    return mean;
  }
  // channels_last: pixel chunks accumulate private per-channel sums, reduced after.
  const int64_t chunk = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, C));
  const int64_t chunks = (HW + chunk - 1) / chunk;
  std::vector<double> partial(N * chunks * C, 0.0);
  at::parallel_for(0, N * chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t item = b; item < e; ++item) {
      const int64_t n = item / chunks, p0 = (item % chunks) * chunk, p1 = std::min(HW, p0 + chunk);
      double* acc = partial.data() + item * C;
      const T* xp = x + (n * HW + p0) * C;
      for (int64_t p = p0; p < p1; ++p, xp += C) {
        for (int64_t c = 0; c < C; ++c) acc[c] += static_cast<double>(xp[c]);
      }
    }
  });
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < chunks; ++k) {
      const double* acc = partial.data() + (n * chunks + k) * C;
      for (int64_t c = 0; c < C; ++c) mean[n * C + c] += acc[c];
    }
    for (int64_t c = 0; c < C; ++c) mean[n * C + c] /= static_cast<double>(HW);
  }
  return mean;
}

template <typename T>
at::Tensor se_kernel(const SECall& call) {
  const bool nhwc = call.format == at::MemoryFormat::ChannelsLast;
  const at::Tensor x = call.x.contiguous(call.format);
  const at::Tensor id = call.identity.defined() ? call.identity.contiguous(call.format) : at::Tensor();
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3), hidden = call.hidden;
  at::Tensor out = at::empty(x.sizes(), x.options().memory_format(call.format));
  if (out.numel() == 0) return out;
  const T* xp = x.const_data_ptr<T>();
  const std::vector<double> mean = channel_means(xp, N, C, HW, nhwc);

  const at::Tensor w1 = call.w1.contiguous(), b1 = call.b1.contiguous();
  const at::Tensor w2 = call.w2.contiguous(), b2 = call.b2.contiguous();
  const T *w1p = w1.const_data_ptr<T>(), *b1p = b1.const_data_ptr<T>();
  const T *w2p = w2.const_data_ptr<T>(), *b2p = b2.const_data_ptr<T>();
  std::vector<T> gate(N * C);
  std::vector<double> h(hidden);
  for (int64_t n = 0; n < N; ++n) {
    const double* m = mean.data() + n * C;
    for (int64_t j = 0; j < hidden; ++j) {
      double s = static_cast<double>(b1p[j]);
      for (int64_t c = 0; c < C; ++c) s += static_cast<double>(w1p[j * C + c]) * m[c];
      h[j] = s > 0 ? s : 0;
    }
    for (int64_t c = 0; c < C; ++c) {
      double s = static_cast<double>(b2p[c]);
      for (int64_t j = 0; j < hidden; ++j) s += static_cast<double>(w2p[c * hidden + j]) * h[j];
      gate[n * C + c] = static_cast<T>(1.0 / (1.0 + std::exp(-s)));
    }
  }

  const T* idp = id.defined() ? id.const_data_ptr<T>() : nullptr;
  T* yp = out.mutable_data_ptr<T>();
  // y = x * g, then relu(y + identity): the reference's two roundings, in its order.
  auto run = [&](const T* xs, const T* is, const T* g, int64_t len, T* ys, bool per_element_gate) {
    if (is) {
      if (per_element_gate) {
        for (int64_t i = 0; i < len; ++i) {
          const T y = xs[i] * g[i] + is[i];
          ys[i] = y < T(0) ? T(0) : y;
        }
      } else {
        const T gv = g[0];
        for (int64_t i = 0; i < len; ++i) {
          const T y = xs[i] * gv + is[i];
          ys[i] = y < T(0) ? T(0) : y;
        }
      }
    } else if (per_element_gate) {
      for (int64_t i = 0; i < len; ++i) ys[i] = xs[i] * g[i];
    } else {
      const T gv = g[0];
      for (int64_t i = 0; i < len; ++i) ys[i] = xs[i] * gv;
    }
  };
  if (!nhwc) {
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, HW));
    at::parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
      for (int64_t nc = b; nc < e; ++nc) {
        const int64_t off = nc * HW;
        run(xp + off, idp ? idp + off : nullptr, gate.data() + nc, HW, yp + off, false);
      }
    });
  } else {
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, C));
    at::parallel_for(0, N * HW, grain, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const int64_t off = p * C;
        run(xp + off, idp ? idp + off : nullptr, gate.data() + (p / HW) * C, C, yp + off, true);
      }
    });
  }
  return out;
}

}  // namespace

at::Tensor squeeze_excitation(const SECall& call) {
  const auto dtype = call.x.scalar_type();
  if (dtype == at::kFloat) return se_kernel<float>(call);
  if (dtype == at::kDouble) return se_kernel<double>(call);
  return se_composite(call);
}

}  // namespace durn::cpu
