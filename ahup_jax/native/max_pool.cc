// Max pool over NHWC windows as XLA FFI handlers (ahup_jax/native/max_pool.py), float32 or bfloat16: the forward
// gives each window's maximum and the index of its first maximum in row-major (tap-major) window order, padding
// counting as -inf; the backward routes ∂L/∂out to those indices, each input element summing what reaches it in tap
// order in float32. Both are exactly `layers.max_pool_xla`'s arithmetic, done in one pass each: inside XLA:CPU's
// fusions the bfloat16 stem pool's backward recomputed the indices per tap (docs/SPEED.md, 2026-12-06 (5)).
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// An element of type T read as float32 and a float32 known to be representable in T written back (a maximum of T's
// values rounds nothing).
struct F32 {
  float v;
  float get() const { return v; }
  static F32 from(float f) { return F32{f}; }
};
struct Bf16 {
  uint16_t v;
  float get() const {
    uint32_t u = static_cast<uint32_t>(v) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static Bf16 from(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return Bf16{static_cast<uint16_t>(u >> 16)};
  }
};
template <ffi::DataType T>
using Element = std::conditional_t<T == ffi::DataType::BF16, Bf16, F32>;

struct Window {
  int64_t kh, kw, sh, sw, pt, pl;
};

// x [B, H, W, C] → out [B, HO, WO, C] and first [B, HO, WO, C] (int8 tap index i·kw + j).
template <typename E>
void Forward(const E* x, E* out, int8_t* first, int64_t B, int64_t H, int64_t W, int64_t C, int64_t HO, int64_t WO,
             const Window& k) {
  const int8_t last = static_cast<int8_t>(k.kh * k.kw - 1);
#pragma omp parallel
  {
    std::vector<float> best(C);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t oy = 0; oy < HO; ++oy) {
        for (int64_t ox = 0; ox < WO; ++ox) {
          const int64_t at = ((b * HO + oy) * WO + ox) * C;
          int8_t* f = first + at;
          for (int64_t i = 0; i < k.kh; ++i) {
            const int64_t y = oy * k.sh + i - k.pt;
            for (int64_t j = 0; j < k.kw; ++j) {
              const int64_t xx = ox * k.sw + j - k.pl;
              const int8_t t = static_cast<int8_t>(i * k.kw + j);
              const bool inside = y >= 0 && y < H && xx >= 0 && xx < W;
              const E* v = inside ? x + ((b * H + y) * W + xx) * C : x;
              if (t == 0) {
                for (int64_t c = 0; c < C; ++c) {
                  best[c] = inside ? v[c].get() : -__builtin_inff();
                  f[c] = 0;
                }
              } else if (inside) {
                for (int64_t c = 0; c < C; ++c) {
                  const float value = v[c].get();
                  const bool more = value > best[c];
                  f[c] = more ? t : f[c];
                  best[c] = (more || value != value) ? value : best[c];  // a NaN stays, as in jnp.maximum
                }
              }
            }
          }
          E* o = out + at;
          for (int64_t c = 0; c < C; ++c) {
            o[c] = E::from(best[c]);
            f[c] = best[c] != best[c] ? last : f[c];  // a NaN maximum equals no tap
          }
        }
      }
    }
  }
}

// first, dy [B, HO, WO, C] → dx [B, H, W, C] float32: each input element gathers, in tap order, ∂L/∂out of the windows
// whose first maximum it is (at most ceil(kh/sh)·ceil(kw/sw) windows cover it).
template <typename E>
void Backward(const int8_t* first, const E* dy, float* dx, int64_t B, int64_t H, int64_t W, int64_t C, int64_t HO,
              int64_t WO, const Window& k) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        float* out = dx + ((b * H + y) * W + x) * C;
        for (int64_t c = 0; c < C; ++c) out[c] = 0.0f;
        for (int64_t i = 0; i < k.kh; ++i) {
          const int64_t ny = y + k.pt - i;
          if (ny < 0 || ny % k.sh != 0 || ny / k.sh >= HO) continue;
          for (int64_t j = 0; j < k.kw; ++j) {
            const int64_t nx = x + k.pl - j;
            if (nx < 0 || nx % k.sw != 0 || nx / k.sw >= WO) continue;
            const int64_t at = ((b * HO + ny / k.sh) * WO + nx / k.sw) * C;
            const int8_t t = static_cast<int8_t>(i * k.kw + j);
            const int8_t* f = first + at;
            const E* g = dy + at;
            for (int64_t c = 0; c < C; ++c) out[c] += f[c] == t ? g[c].get() : 0.0f;
          }
        }
      }
    }
  }
}

template <ffi::DataType T>
ffi::Error Fwd(ffi::Buffer<T> x, ffi::ResultBuffer<T> out, ffi::ResultBuffer<ffi::S8> first, int64_t kh, int64_t kw,
               int64_t sh, int64_t sw, int64_t pt, int64_t pl) {
  auto in = x.dimensions();
  auto o = out->dimensions();
  using E = Element<T>;
  Forward(reinterpret_cast<const E*>(x.untyped_data()), reinterpret_cast<E*>(out->untyped_data()),
          first->typed_data(), in[0], in[1], in[2], in[3], o[1], o[2], Window{kh, kw, sh, sw, pt, pl});
  return ffi::Error::Success();
}

template <ffi::DataType T>
ffi::Error Bwd(ffi::Buffer<ffi::S8> first, ffi::Buffer<T> dy, ffi::ResultBuffer<ffi::F32> dx, int64_t kh,
               int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pl) {
  auto o = dy.dimensions();
  auto in = dx->dimensions();
  using E = Element<T>;
  Backward(first.typed_data(), reinterpret_cast<const E*>(dy.untyped_data()), dx->typed_data(), in[0], in[1], in[2],
           in[3], o[1], o[2], Window{kh, kw, sh, sw, pt, pl});
  return ffi::Error::Success();
}

}  // namespace

#define AHUP_POOL_ATTRS                                                                                        \
  .Attr<int64_t>("kh").Attr<int64_t>("kw").Attr<int64_t>("sh").Attr<int64_t>("sw").Attr<int64_t>("pt")        \
      .Attr<int64_t>("pl")
// AhupMaxPoolFwd[Bf16]: x → (out, first); AhupMaxPoolBwd[Bf16]: (first, ∂L/∂out) → ∂L/∂x in float32.
#define AHUP_POOL_HANDLERS(suffix, T)                                                                          \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(AhupMaxPoolFwd##suffix, Fwd<T>,                                                \
                                ffi::Ffi::Bind()                                                               \
                                    .Arg<ffi::Buffer<T>>()                                                     \
                                    .Ret<ffi::Buffer<T>>()                                                     \
                                    .Ret<ffi::Buffer<ffi::S8>>() AHUP_POOL_ATTRS);                            \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(AhupMaxPoolBwd##suffix, Bwd<T>,                                                \
                                ffi::Ffi::Bind()                                                               \
                                    .Arg<ffi::Buffer<ffi::S8>>()                                               \
                                    .Arg<ffi::Buffer<T>>()                                                     \
                                    .Ret<ffi::Buffer<ffi::F32>>() AHUP_POOL_ATTRS);

AHUP_POOL_HANDLERS(, ffi::DataType::F32)
AHUP_POOL_HANDLERS(Bf16, ffi::DataType::BF16)
