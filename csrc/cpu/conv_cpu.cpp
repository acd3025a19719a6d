// fused_conv2d / pixel_shuffle_conv2d on CPU: tiles of output pixels, each computed by
// BLAS GEMMs (the BLAS that ATen uses, single-threaded inside the parallel region) on
// data that a loader gathers from x, resolving padding (reflect or zero), dilation,
// stride and the pixel shuffle while reading, so no padded or shuffled copy of x is
// ever made. The epilogue runs on each tile while it is in cache. Three strategies:
//
// shifted (stride 1): the loader copies the tile's rows plus halo, padded, into a
//   buffer; every kernel tap is then one GEMM (K = C) over a shifted window of that
//   buffer, accumulated into a "wide" tile whose rows are Wo + (kw-1)*d long (the
//   extra columns are computed and dropped). No im2col; wasted work (W+2p)/W.
// im2col (stride 2, or where the shifted waste would be large): the loader builds the
//   tile's column matrix, then one GEMM with K = C*kh*kw.
// direct (1x1, stride 1, no padding): x itself is the column matrix.
//
// Layouts follow x: NCHW computes out[O][pixels] = W[O][K] * cols[K][pixels];
// channels_last computes out[pixels][O] = cols[pixels][K] * W[K][O], where a tap reads
// C contiguous values (the shifted strategy with fewer than 16 output channels uses the
// NCHW form instead, whose GEMMs suit them, and transposes in the epilogue).
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "epilogue.h"
#include "kernels_cpu.h"

namespace durn::cpu {
namespace {

constexpr int64_t kZero = std::numeric_limits<int64_t>::min();  // the tap reads zero padding

// Working sets per thread, the largest (W + 2p) / Wo for which the shifted strategy
// beats im2col, and the fewest output channels for which pixel-major GEMMs beat
// channel-major ones on channels_last input: tuned on the DuRN layer shapes (Xeon with
// AVX-512, MKL).
constexpr int64_t kIm2colBytes = 512 * 1024;
constexpr int64_t kShiftedBytes = 2048 * 1024;
constexpr double kMaxShiftedWaste = 1.2;
constexpr int64_t kPixelMajorMinChannels = 16;

// Address parts per axis: rows[ky * Ho + oy] is the part of the address of tap ky for
// output row oy that depends on the row (kZero when it reads zero padding); cols
// likewise for kx and ox. With unit_cols, tap kx reads consecutive elements for ox in
// [unit_lo[kx], unit_hi[kx]), which the loader copies with memcpy.
struct Tables {
  std::vector<int64_t> rows, cols, unit_lo, unit_hi;
  bool unit_cols = false;
};

Tables make_tables(const ConvGeometry& g) {
  Tables t;
  auto axis = [&](int64_t taps, int64_t out, int64_t in, bool is_row) {
    std::vector<int64_t> table(taps * out);
    for (int64_t k = 0; k < taps; ++k) {
      for (int64_t o = 0; o < out; ++o) {
        int64_t i = o * g.stride + k * g.dilation - g.pad;
        int64_t& slot = table[k * out + o];
        if (i < 0 || i >= in) {
          if (!g.reflect) {
            slot = kZero;
            continue;
          }
          i = reflect_index(i, in);
        }
        slot = is_row ? logical_row_offset(i, g) : logical_col_offset(i, g);
      }
    }
    return table;
  };
  t.rows = axis(g.kh, g.Ho, g.H, true);
  t.cols = axis(g.kw, g.Wo, g.W, false);
  t.unit_cols = g.stride == 1 && g.upscale == 1 && g.xs[3] == 1;
  if (t.unit_cols) {
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t shift = kx * g.dilation - g.pad;  // ix = ox + shift
      const int64_t lo = std::clamp<int64_t>(-shift, 0, g.Wo);
      t.unit_lo.push_back(lo);
      t.unit_hi.push_back(std::clamp<int64_t>(g.W - shift, lo, g.Wo));
    }
  }
  return t;
}

template <typename T>
inline void gather(const T* src, const int64_t* offsets, int64_t n, T* dst) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t o = offsets[i];
    dst[i] = o == kZero ? T(0) : src[o];
  }
}

// Columns [K][np] of output pixels p0 .. p0+np of one image (xn: that image's x).
template <typename T>
void load_columns_kp(const T* xn, const ConvGeometry& g, const Tables& t, int64_t p0, int64_t np, T* cols) {
  const int64_t cs = logical_channel_stride(g);
  T* dst = cols;
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xc = xn + c * cs;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t* rows = t.rows.data() + ky * g.Ho;
      for (int64_t kx = 0; kx < g.kw; ++kx, dst += np) {
        const int64_t* cols_k = t.cols.data() + kx * g.Wo;
        T* d = dst;
        for (int64_t p = p0; p < p0 + np;) {
          const int64_t oy = p / g.Wo, ox = p - oy * g.Wo;
          const int64_t len = std::min(g.Wo - ox, p0 + np - p);
          const int64_t ro = rows[oy];
          if (ro == kZero) {
            std::fill(d, d + len, T(0));
          } else if (t.unit_cols) {
            const T* src = xc + ro;
            const int64_t end = ox + len;
            const int64_t m0 = std::clamp(t.unit_lo[kx], ox, end);
            const int64_t m1 = std::clamp(t.unit_hi[kx], m0, end);
            gather(src, cols_k + ox, m0 - ox, d);
            if (m1 > m0) std::memcpy(d + (m0 - ox), src + cols_k[m0], (m1 - m0) * sizeof(T));
            gather(src, cols_k + m1, end - m1, d + (m1 - ox));
          } else {
            gather(xc + ro, cols_k + ox, len, d);
          }
          d += len;
          p += len;
        }
      }
    }
  }
}

// Columns [np][K] (K = ky, kx, c) of output pixels p0 .. p0+np of one image.
template <typename T>
void load_columns_pk(const T* xn, const ConvGeometry& g, const Tables& t, int64_t p0, int64_t np, T* cols) {
  const int64_t cs = logical_channel_stride(g);
  const int64_t C = g.C;
  T* d = cols;
  for (int64_t p = p0; p < p0 + np; ++p) {
    const int64_t oy = p / g.Wo, ox = p - oy * g.Wo;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t ro = t.rows[ky * g.Ho + oy];
      for (int64_t kx = 0; kx < g.kw; ++kx, d += C) {
        const int64_t co = t.cols[kx * g.Wo + ox];
        if (ro == kZero || co == kZero) {
          std::fill(d, d + C, T(0));
        } else if (cs == 1) {
          std::memcpy(d, xn + ro + co, C * sizeof(T));
        } else {
          const T* s = xn + ro + co;
          for (int64_t c = 0; c < C; ++c) d[c] = s[c * cs];
        }
      }
    }
  }
}

// Row-major c[m][n] = a[m][k] * b[k][n] (+ c when accumulate), leading dimensions
// lda, ldb, ldc, through at::mm_out / at::addmm_out: the BLAS that ATen uses (MKL in
// the x86 wheels), single-threaded when called from a parallel region.
template <typename T>
inline void matmul(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                   int64_t ldc, bool accumulate = false) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor out = at::from_blob(c, {m, n}, {ldc, 1}, options);
  const at::Tensor am = at::from_blob(const_cast<T*>(a), {m, k}, {lda, 1}, options);
  const at::Tensor bm = at::from_blob(const_cast<T*>(b), {k, n}, {ldb, 1}, options);
  if (accumulate) {
    at::addmm_out(out, out, am, bm);
  } else {
    at::mm_out(out, am, bm);
  }
}

template <typename T>
struct ChannelParams {
  std::vector<T> bias, scale, shift;
};

template <typename T>
ChannelParams<T> channel_params(const ConvCall& call) {
  const int64_t O = call.geom.O;
  auto vec = [&](const at::Tensor& t, T fill) {
    std::vector<T> v(O, fill);
    if (t.defined()) std::copy(t.const_data_ptr<T>(), t.const_data_ptr<T>() + O, v.begin());
    return v;
  };
  return {vec(call.bias, T(0)), vec(call.scale, T(1)), vec(call.shift, T(0))};
}

// Epilogue over `len` pixels of one output channel (NCHW), src -> dst (may alias).
template <ResidualAt RA, Activation ACT, typename T>
inline void epilogue_channel_run(const T* src, T* dst, const T* res, int64_t len, T b, T s, T t, T alpha) {
  for (int64_t i = 0; i < len; ++i) {
    dst[i] = apply_epilogue<RA, ACT>(src[i], b, s, t, RA == ResidualAt::None ? T(0) : res[i], alpha);
  }
}

// Epilogue over the O channels of one pixel (channels_last), src -> dst (may alias).
template <ResidualAt RA, Activation ACT, typename T>
inline void epilogue_pixel(const T* src, T* dst, const T* res, int64_t O, const ChannelParams<T>& cp, T alpha) {
  const T *b = cp.bias.data(), *s = cp.scale.data(), *t = cp.shift.data();
  for (int64_t o = 0; o < O; ++o) {
    dst[o] = apply_epilogue<RA, ACT>(src[o], b[o], s[o], t[o], RA == ResidualAt::None ? T(0) : res[o], alpha);
  }
}

// What every strategy shares: geometry, prepared weights, epilogue data, pointers.
template <typename T>
struct ConvContext {
  const ConvCall& call;
  const ConvGeometry& g;
  bool nhwc;
  int64_t HWo;
  ChannelParams<T> cp;
  at::Tensor res;  // residual in the output's layout
  const T* xp;
  const T* rp;
  T* op;
  T alpha;

  ConvContext(const ConvCall& c, at::Tensor& out)
      : call(c), g(c.geom), nhwc(c.format == at::MemoryFormat::ChannelsLast), HWo(c.geom.Ho * c.geom.Wo),
        cp(channel_params<T>(c)),
        res(c.residual.defined() ? c.residual.contiguous(c.format) : at::Tensor()),
        xp(c.x.const_data_ptr<T>()), rp(res.defined() ? res.const_data_ptr<T>() : nullptr),
        op(out.mutable_data_ptr<T>()), alpha(static_cast<T>(c.epilogue.residual_alpha)) {}
};

int64_t thread_count() { return std::max<int64_t>(1, at::get_num_threads()); }

// Tiles per parallel_for chunk: tiny convolutions run on the calling thread (a parallel
// region costs more than a few microseconds of work).
int64_t grain_for(double flops_per_tile) {
  constexpr double kMinParallelFlops = 4e6;
  return std::max<int64_t>(1, static_cast<int64_t>(kMinParallelFlops / std::max(1.0, flops_per_tile)));
}

// DURN_CPU_TILE_BYTES overrides the working-set budgets: the tests set it tiny so that
// small images still span many tiles (tile borders, halos, partial tiles).
int64_t tile_budget(int64_t fallback) {
  const char* env = std::getenv("DURN_CPU_TILE_BYTES");
  if (env == nullptr) return fallback;
  const long long v = std::atoll(env);
  return v > 0 ? static_cast<int64_t>(v) : fallback;
}

// ---------------------------------------------------------------- im2col / direct

template <typename T>
void conv_im2col(ConvContext<T>& ctx, bool direct) {
  const ConvGeometry& g = ctx.g;
  const int64_t K = g.C * g.kh * g.kw, HWo = ctx.HWo, O = g.O;
  const bool nhwc = ctx.nhwc;
  // [O][K] (K = c, ky, kx) for NCHW; [K][O] (K = ky, kx, c) for channels_last.
  const at::Tensor wmat = nhwc ? ctx.call.weight.permute({2, 3, 1, 0}).contiguous() : ctx.call.weight.contiguous();
  const T* wp = wmat.const_data_ptr<T>();
  const Tables tables = make_tables(g);

  const int64_t budget = tile_budget(kIm2colBytes);
  int64_t np = std::max<int64_t>(budget < kIm2colBytes ? 1 : 32, budget / std::max<int64_t>(1, K * sizeof(T)));
  if (np >= g.Wo) np = np / g.Wo * g.Wo;  // whole output rows: fewer segments in the loader
  np = std::min(np, HWo);
  while (np > 64 && g.N * ((HWo + np - 1) / np) < 4 * thread_count()) np = (np + 1) / 2;
  const int64_t tiles_per_image = (HWo + np - 1) / np;
  const int64_t grain = grain_for(2.0 * O * K * np);

  at::parallel_for(0, g.N * tiles_per_image, grain, [&](int64_t begin, int64_t end) {
    // Worker threads wrap raw pointers as tensors: no autograd, no inference-mode clash.
    c10::InferenceMode inference;
    c10::DataPtr buffer;
    if (!direct) buffer = c10::GetCPUAllocator()->allocate(K * np * sizeof(T));
    T* cols = static_cast<T*>(buffer.get());
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t n = tile / tiles_per_image;
      const int64_t p0 = (tile % tiles_per_image) * np;
      const int64_t cnt = std::min(np, HWo - p0);
      const T* xn = ctx.xp + n * g.xs[0];
      const int64_t out_off = n * O * HWo + (nhwc ? p0 * O : p0);
      T* o = ctx.op + out_off;
      const T* r = ctx.rp ? ctx.rp + out_off : nullptr;
      if (nhwc) {
        const T* a = cols;
        int64_t lda = K;
        if (direct) {
          a = xn + p0 * g.xs[3];
          lda = g.xs[3];
        } else {
          load_columns_pk(xn, g, tables, p0, cnt, cols);
        }
        matmul<T>(cnt, O, K, a, lda, wp, O, o, O);
      } else {
        const T* b = cols;
        int64_t ldb = cnt;
        if (direct) {
          b = xn + p0;
          ldb = g.xs[1];
        } else {
          load_columns_kp(xn, g, tables, p0, cnt, cols);
        }
        matmul<T>(O, cnt, K, wp, K, b, ldb, o, HWo);
      }
      dispatch_epilogue(ctx.call.epilogue, [&](auto ra, auto act) {
        constexpr ResidualAt RA = decltype(ra)::value;
        constexpr Activation ACT = decltype(act)::value;
        if (nhwc) {
          for (int64_t i = 0; i < cnt; ++i) {
            epilogue_pixel<RA, ACT>(o + i * O, o + i * O, r ? r + i * O : nullptr, O, ctx.cp, ctx.alpha);
          }
        } else {
          for (int64_t c = 0; c < O; ++c) {
            epilogue_channel_run<RA, ACT>(o + c * HWo, o + c * HWo, r ? r + c * HWo : nullptr, cnt, ctx.cp.bias[c],
                                          ctx.cp.scale[c], ctx.cp.shift[c], ctx.alpha);
          }
        }
      });
    }
  });
}

// ---------------------------------------------------------------- shifted (stride 1)

// Offsets of the padded input's rows (ip in [0, H + 2p)) and columns (jp in [0, W + 2p)),
// kZero where they read zero padding; [lo, hi) of jp reading consecutive elements.
struct PaddedAxes {
  std::vector<int64_t> rows, cols;
  int64_t lo = 0, hi = 0;
  bool unit = false;
};

PaddedAxes make_padded_axes(const ConvGeometry& g) {
  PaddedAxes a;
  auto axis = [&](int64_t in, bool is_row) {
    std::vector<int64_t> table(in + 2 * g.pad);
    for (int64_t j = 0; j < in + 2 * g.pad; ++j) {
      int64_t i = j - g.pad;
      if (i < 0 || i >= in) {
        if (!g.reflect) {
          table[j] = kZero;
          continue;
        }
        i = reflect_index(i, in);
      }
      table[j] = is_row ? logical_row_offset(i, g) : logical_col_offset(i, g);
    }
    return table;
  };
  a.rows = axis(g.H, true);
  a.cols = axis(g.W, false);
  a.unit = g.upscale == 1;
  a.lo = g.pad;
  a.hi = g.pad + g.W;
  return a;
}

// Rows [ip0, ip0 + rows) of the padded logical input, all channels, into buf:
// [C][rows][Wp] for NCHW, [rows][Wp][C] for channels_last.
template <typename T>
void load_padded_rows(const T* xn, const ConvGeometry& g, const PaddedAxes& a, int64_t ip0, int64_t rows, bool nhwc,
                      T* buf) {
  const int64_t Wp = g.W + 2 * g.pad, C = g.C, cs = logical_channel_stride(g);
  if (!nhwc) {
    const bool unit = a.unit && g.xs[3] == 1;
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = xn + c * cs;
      for (int64_t r = 0; r < rows; ++r) {
        T* d = buf + (c * rows + r) * Wp;
        const int64_t ro = a.rows[ip0 + r];
        if (ro == kZero) {
          std::fill(d, d + Wp, T(0));
        } else if (unit) {
          gather(xc + ro, a.cols.data(), a.lo, d);
          std::memcpy(d + a.lo, xc + ro, (a.hi - a.lo) * sizeof(T));
          gather(xc + ro, a.cols.data() + a.hi, Wp - a.hi, d + a.hi);
        } else {
          gather(xc + ro, a.cols.data(), Wp, d);
        }
      }
    }
    return;
  }
  const bool rows_contiguous = a.unit && cs == 1 && g.xs[3] == C;
  for (int64_t r = 0; r < rows; ++r) {
    T* d = buf + r * Wp * C;
    const int64_t ro = a.rows[ip0 + r];
    if (ro == kZero) {
      std::fill(d, d + Wp * C, T(0));
      continue;
    }
    const T* xr = xn + ro;
    for (int64_t jp = 0; jp < Wp; ++jp) {
      if (rows_contiguous && jp == a.lo) {
        std::memcpy(d + jp * C, xr, (a.hi - a.lo) * C * sizeof(T));
        jp = a.hi - 1;
        continue;
      }
      const int64_t co = a.cols[jp];
      T* dp = d + jp * C;
      if (co == kZero) {
        std::fill(dp, dp + C, T(0));
      } else if (cs == 1) {
        std::memcpy(dp, xr + co, C * sizeof(T));
      } else {
        for (int64_t c = 0; c < C; ++c) dp[c] = xr[co + c * cs];
      }
    }
  }
}

template <typename T>
void conv_shifted(ConvContext<T>& ctx) {
  const ConvGeometry& g = ctx.g;
  const int64_t C = g.C, O = g.O, HWo = ctx.HWo, d = g.dilation;
  const int64_t Wp = g.W + 2 * g.pad, halo = (g.kh - 1) * d;
  const bool nhwc = ctx.nhwc;
  // Pixel-major GEMMs (wide[pixels][O]) suit channels_last, unless O is so small that
  // the GEMM's N dimension starves; then channel-major, and the epilogue transposes.
  const bool pixel_major = nhwc && O >= kPixelMajorMinChannels;
  // Per tap: [C][O] pixel-major, [O][C] channel-major.
  const at::Tensor wtaps = pixel_major ? ctx.call.weight.permute({2, 3, 1, 0}).contiguous()
                                       : ctx.call.weight.permute({2, 3, 0, 1}).contiguous();
  const T* wp = wtaps.const_data_ptr<T>();
  const PaddedAxes axes = make_padded_axes(g);

  // Tile height: input rows (with halo) and the wide output within the budget.
  auto tile_bytes = [&](int64_t R) {
    return static_cast<int64_t>(sizeof(T)) * (C * (R + halo) * Wp + O * ((R - 1) * Wp + g.Wo));
  };
  const int64_t budget = tile_budget(kShiftedBytes);
  int64_t R = 1;
  while (R < g.Ho && tile_bytes(R + 1) <= budget) ++R;
  while (R > 1 && g.N * ((g.Ho + R - 1) / R) < 2 * thread_count()) R = (R + 1) / 2;
  const int64_t tiles_per_image = (g.Ho + R - 1) / R;
  const int64_t grain = grain_for(2.0 * O * C * g.kh * g.kw * R * Wp);

  at::parallel_for(0, g.N * tiles_per_image, grain, [&](int64_t begin, int64_t end) {
    c10::InferenceMode inference;
    const int64_t in_elems = C * (R + halo) * Wp;
    c10::DataPtr in_buf = c10::GetCPUAllocator()->allocate(in_elems * sizeof(T));
    c10::DataPtr out_buf = c10::GetCPUAllocator()->allocate(O * ((R - 1) * Wp + g.Wo) * sizeof(T));
    T* xin = static_cast<T*>(in_buf.get());
    T* wide = static_cast<T*>(out_buf.get());
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t n = tile / tiles_per_image;
      const int64_t oy0 = (tile % tiles_per_image) * R;
      const int64_t rows = std::min(R, g.Ho - oy0);
      const int64_t rows_in = rows + halo;
      const int64_t nw = (rows - 1) * Wp + g.Wo;  // wide pixels: last row stops at Wo
      load_padded_rows(ctx.xp + n * g.xs[0], g, axes, oy0, rows_in, pixel_major, xin);
      for (int64_t ky = 0; ky < g.kh; ++ky) {
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const int64_t t = ky * g.kw + kx, shift = ky * d * Wp + kx * d;
          if (pixel_major) {  // wide[nw][O] (+)= in[nw][C] (ld C) * w[C][O]
            matmul<T>(nw, O, C, xin + shift * C, C, wp + t * C * O, O, wide, O, t > 0);
          } else {  // wide[O][nw] (+)= w[O][C] * in[C][nw] (ld rows_in * Wp)
            matmul<T>(O, nw, C, wp + t * O * C, C, xin + shift, rows_in * Wp, wide, nw, t > 0);
          }
        }
      }
      const int64_t out_img = n * O * HWo;
      dispatch_epilogue(ctx.call.epilogue, [&](auto ra, auto act) {
        constexpr ResidualAt RA = decltype(ra)::value;
        constexpr Activation ACT = decltype(act)::value;
        if (pixel_major) {
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t j = 0; j < g.Wo; ++j) {
              const int64_t off = out_img + ((oy0 + r) * g.Wo + j) * O;
              epilogue_pixel<RA, ACT>(wide + (r * Wp + j) * O, ctx.op + off, ctx.rp ? ctx.rp + off : nullptr, O,
                                      ctx.cp, ctx.alpha);
            }
          }
        } else if (!nhwc) {
          for (int64_t c = 0; c < O; ++c) {
            const T b = ctx.cp.bias[c], s = ctx.cp.scale[c], sh = ctx.cp.shift[c];
            for (int64_t r = 0; r < rows; ++r) {
              const int64_t off = out_img + c * HWo + (oy0 + r) * g.Wo;
              epilogue_channel_run<RA, ACT>(wide + c * nw + r * Wp, ctx.op + off, ctx.rp ? ctx.rp + off : nullptr,
                                            g.Wo, b, s, sh, ctx.alpha);
            }
          }
        } else {  // channel-major tile, channels_last output: few channels, transposed
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t j = 0; j < g.Wo; ++j) {
              const int64_t off = out_img + ((oy0 + r) * g.Wo + j) * O;
              const T* src = wide + r * Wp + j;
              for (int64_t c = 0; c < O; ++c) {
                ctx.op[off + c] = apply_epilogue<RA, ACT>(src[c * nw], ctx.cp.bias[c], ctx.cp.scale[c],
                                                          ctx.cp.shift[c], RA == ResidualAt::None ? T(0)
                                                                                                  : ctx.rp[off + c],
                                                          ctx.alpha);
              }
            }
          }
        }
      });
    }
  });
}

// DURN_CPU_CONV_STRATEGY=shifted|im2col forces a strategy (where it applies), so the
// tests can check each on every shape; unset or "auto": chosen by shape.
enum class Strategy { Auto, Shifted, Im2col };

Strategy forced_strategy() {
  const char* env = std::getenv("DURN_CPU_CONV_STRATEGY");
  if (env == nullptr) return Strategy::Auto;
  if (std::strcmp(env, "shifted") == 0) return Strategy::Shifted;
  if (std::strcmp(env, "im2col") == 0) return Strategy::Im2col;
  return Strategy::Auto;
}

template <typename T>
void conv_kernel(const ConvCall& call, at::Tensor& out) {
  ConvContext<T> ctx(call, out);
  const ConvGeometry& g = ctx.g;
  const Strategy forced = forced_strategy();
  if (forced == Strategy::Im2col) return conv_im2col(ctx, false);
  if (forced == Strategy::Shifted && g.stride == 1) return conv_shifted(ctx);
  const bool pointwise = g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0 && g.upscale == 1;
  const bool direct = pointwise && (ctx.nhwc ? (g.xs[1] == 1 && g.xs[2] == g.W * g.xs[3] && g.xs[3] >= g.C)
                                             : (g.xs[3] == 1 && g.xs[2] == g.W && g.xs[1] >= ctx.HWo));
  if (direct) return conv_im2col(ctx, true);
  // The shifted strategy computes (W + 2p) / Wo times the useful work.
  const double waste = static_cast<double>(g.W + 2 * g.pad) / static_cast<double>(g.Wo);
  if (g.stride == 1 && waste <= kMaxShiftedWaste) return conv_shifted(ctx);
  conv_im2col(ctx, false);
}

}  // namespace

at::Tensor fused_conv(const ConvCall& call) {
  const auto dtype = call.x.scalar_type();
  if (dtype != at::kFloat && dtype != at::kDouble) return conv_composite(call);
  at::Tensor out = at::empty(call.out_shape, call.x.options().memory_format(call.format));
  if (out.numel() == 0) return out;
  if (dtype == at::kFloat) {
    conv_kernel<float>(call, out);
  } else {
    conv_kernel<double>(call, out);
  }
  return out;
}

}  // namespace durn::cpu
