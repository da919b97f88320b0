// oneDNN convolutions and transposed convolutions as XLA FFI handlers (ahup_jax/native/onednn.py): NHWC
// activations, HWIO kernels, no dilation or groups; activations float32 or bfloat16 (oneDNN accumulates bfloat16 in
// float32 and uses AVX512-BF16 / AMX where the CPU has them), kernels and kernel gradients always float32: a bfloat16
// call rounds the float32 kernel to bfloat16 in the reorder into oneDNN's blocked layout that it makes anyway.
#include <cstdint>
#include <mutex>
#include <string>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;

namespace {

// Serialises the calls: each one already runs on every core (one OpenMP team); two at once (XLA runs independent
// ops concurrently, e.g. a conv's two gradients) would put two teams on the same cores.
std::mutex& CallLock() {
  static std::mutex lock;
  return lock;
}

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct Geometry {
  memory::dims src, wei, dst, strides, pad_l, pad_r;
};

// x [N, H, W, C], w [KH, KW, C, O], y [N, HO, WO, O]; oneDNN's logical dims are NCHW / OIHW with the layout in the tag.
Geometry MakeGeometry(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w, ffi::Span<const int64_t> y,
                      int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  return {{x[0], x[3], x[1], x[2]}, {w[3], w[2], w[0], w[1]}, {y[0], y[3], y[1], y[2]},
          {sh, sw}, {pt, pl}, {pb, pr}};
}

// oneDNN's data type for an FFI element type.
template <ffi::DataType T>
constexpr memory::data_type kDnnl = T == ffi::DataType::BF16 ? memory::data_type::bf16 : memory::data_type::f32;

// Runs `body` under the call lock, turning oneDNN's exceptions into FFI errors (XLA reports them to Python).
template <typename Body>
ffi::Error Guarded(Body body) {
  std::lock_guard<std::mutex> hold(CallLock());
  try {
    body();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + e.what());
  }
  return ffi::Error::Success();
}

// One op family of oneDNN (convolution or deconvolution = transposed convolution): forward, backward data
// (∂L/∂x from ∂L/∂y and the kernel), backward weights (∂L/∂kernel from x and ∂L/∂y). x is oneDNN's "src", y its "dst".
// Activations (x, y and their gradients) are of type T, the kernel float32 (the primitive computes with it in T).
template <typename FwdT, typename BwdDataT, typename BwdWeightsT, dnnl::algorithm kAlgorithm, ffi::DataType T>
struct Family {
  using Buffer = ffi::Buffer<T>;
  using Kernel = ffi::Buffer<ffi::F32>;
  using Result = ffi::ResultBuffer<T>;
  static memory::desc Act(const memory::dims& d) { return memory::desc(d, kDnnl<T>, tag::nhwc); }
  static memory::desc Any(const memory::dims& d) { return memory::desc(d, kDnnl<T>, tag::any); }

  static typename FwdT::primitive_desc FwdPd(const Geometry& g) {
    return typename FwdT::primitive_desc(Engine(), dnnl::prop_kind::forward_training, kAlgorithm, Act(g.src),
                                         Any(g.wei), Act(g.dst), g.strides, g.pad_l, g.pad_r);
  }

  // The user's float32 HWIO kernel in the layout and type `want` (reordered, and for bfloat16 rounded to nearest even,
  // into a scratch buffer unless the primitive takes it as it is).
  static memory Weights(dnnl::stream& s, const memory::desc& want, const memory::dims& dims, void* data) {
    memory user(memory::desc(dims, memory::data_type::f32, tag::hwio), Engine(), data);
    if (want == user.get_desc()) return user;
    memory blocked(want, Engine());
    dnnl::reorder(user, blocked).execute(s, user, blocked);
    return blocked;
  }

  static ffi::Error Fwd(Buffer x, Kernel w, Result y,
                        int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
    return Guarded([&] {
      Geometry g = MakeGeometry(x.dimensions(), w.dimensions(), y->dimensions(), sh, sw, pt, pb, pl, pr);
      auto pd = FwdPd(g);
      dnnl::stream s(Engine());
      memory wei = Weights(s, pd.weights_desc(), g.wei, w.untyped_data());
      FwdT(pd).execute(s, {{DNNL_ARG_SRC, memory(Act(g.src), Engine(), x.untyped_data())},
                           {DNNL_ARG_WEIGHTS, wei},
                           {DNNL_ARG_DST, memory(Act(g.dst), Engine(), y->untyped_data())}});
      s.wait();
    });
  }

  static ffi::Error BwdData(Buffer gy, Kernel w, Result gx,
                            int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
    return Guarded([&] {
      Geometry g = MakeGeometry(gx->dimensions(), w.dimensions(), gy.dimensions(), sh, sw, pt, pb, pl, pr);
      typename BwdDataT::primitive_desc pd(Engine(), kAlgorithm, Act(g.src), Any(g.wei), Act(g.dst), g.strides,
                                           g.pad_l, g.pad_r, FwdPd(g));
      dnnl::stream s(Engine());
      memory wei = Weights(s, pd.weights_desc(), g.wei, w.untyped_data());
      BwdDataT(pd).execute(s, {{DNNL_ARG_DIFF_DST, memory(Act(g.dst), Engine(), gy.untyped_data())},
                               {DNNL_ARG_WEIGHTS, wei},
                               {DNNL_ARG_DIFF_SRC, memory(Act(g.src), Engine(), gx->untyped_data())}});
      s.wait();
    });
  }

  // ∂L/∂kernel in float32 for either input type: oneDNN's AMX kernel-gradient convolution with a bfloat16 result ran
  // 10-50x slower than with a float32 one (ResNet-18 96²'s shapes, 2-core Sapphire Rapids Xeon).
  static ffi::Error BwdWeights(Buffer x, Buffer gy, ffi::ResultBuffer<ffi::F32> gw,
                               int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
    return Guarded([&] {
      Geometry g = MakeGeometry(x.dimensions(), gw->dimensions(), gy.dimensions(), sh, sw, pt, pb, pl, pr);
      memory::desc any_f32(g.wei, memory::data_type::f32, tag::any);
      typename BwdWeightsT::primitive_desc pd(Engine(), kAlgorithm, Act(g.src), any_f32, Act(g.dst),
                                              g.strides, g.pad_l, g.pad_r, FwdPd(g));
      dnnl::stream s(Engine());
      memory user(memory::desc(g.wei, memory::data_type::f32, tag::hwio), Engine(), gw->untyped_data());
      memory diff_wei = pd.diff_weights_desc() == user.get_desc() ? user : memory(pd.diff_weights_desc(), Engine());
      BwdWeightsT(pd).execute(s, {{DNNL_ARG_SRC, memory(Act(g.src), Engine(), x.untyped_data())},
                                  {DNNL_ARG_DIFF_DST, memory(Act(g.dst), Engine(), gy.untyped_data())},
                                  {DNNL_ARG_DIFF_WEIGHTS, diff_wei}});
      if (diff_wei != user) dnnl::reorder(diff_wei, user).execute(s, diff_wei, user);
      s.wait();
    });
  }
};

template <ffi::DataType T>
using Conv = Family<dnnl::convolution_forward, dnnl::convolution_backward_data,
                    dnnl::convolution_backward_weights, dnnl::algorithm::convolution_direct, T>;
template <ffi::DataType T>
using Deconv = Family<dnnl::deconvolution_forward, dnnl::deconvolution_backward_data,
                      dnnl::deconvolution_backward_weights, dnnl::algorithm::deconvolution_direct, T>;

}  // namespace

#define AHUP_ATTRS                                                                                             \
  .Attr<int64_t>("sh").Attr<int64_t>("sw").Attr<int64_t>("pt").Attr<int64_t>("pb").Attr<int64_t>("pl")        \
      .Attr<int64_t>("pr")
// One handler per (op, activation type): Ahup<Conv|Deconv><Fwd|BwdData|BwdWeights> for float32, ...Bf16 for
// bfloat16. Arguments (A, B) and result R: Fwd (x, w) → y, BwdData (∂L/∂y, w) → ∂L/∂x, BwdWeights (x, ∂L/∂y) →
// ∂L/∂w; the kernel and its gradient are float32 in both.
#define AHUP_HANDLER(name, fn, A, B, R)                                                                        \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, fn,                                                                      \
                                ffi::Ffi::Bind()                                                               \
                                    .Arg<ffi::Buffer<A>>()                                                     \
                                    .Arg<ffi::Buffer<B>>()                                                     \
                                    .Ret<ffi::Buffer<R>>() AHUP_ATTRS)
#define AHUP_HANDLERS(op)                                                                                      \
  AHUP_HANDLER(Ahup##op##Fwd, op<ffi::F32>::Fwd, ffi::F32, ffi::F32, ffi::F32);                                \
  AHUP_HANDLER(Ahup##op##BwdData, op<ffi::F32>::BwdData, ffi::F32, ffi::F32, ffi::F32);                        \
  AHUP_HANDLER(Ahup##op##BwdWeights, op<ffi::F32>::BwdWeights, ffi::F32, ffi::F32, ffi::F32);                  \
  AHUP_HANDLER(Ahup##op##FwdBf16, op<ffi::BF16>::Fwd, ffi::BF16, ffi::F32, ffi::BF16);                         \
  AHUP_HANDLER(Ahup##op##BwdDataBf16, op<ffi::BF16>::BwdData, ffi::BF16, ffi::F32, ffi::BF16);                 \
  AHUP_HANDLER(Ahup##op##BwdWeightsBf16, op<ffi::BF16>::BwdWeights, ffi::BF16, ffi::BF16, ffi::F32);

AHUP_HANDLERS(Conv)
AHUP_HANDLERS(Deconv)
