// oneDNN convolutions and transposed convolutions as XLA FFI handlers (ahup_jax/native/onednn.py): NHWC
// activations, HWIO kernels, float32, no dilation or groups.
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

memory::desc Act(const memory::dims& d) { return memory::desc(d, memory::data_type::f32, tag::nhwc); }
memory::desc Hwio(const memory::dims& d) { return memory::desc(d, memory::data_type::f32, tag::hwio); }
memory::desc Any(const memory::dims& d) { return memory::desc(d, memory::data_type::f32, tag::any); }

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
template <typename FwdT, typename BwdDataT, typename BwdWeightsT, dnnl::algorithm kAlgorithm>
struct Family {
  static typename FwdT::primitive_desc FwdPd(const Geometry& g) {
    return typename FwdT::primitive_desc(Engine(), dnnl::prop_kind::forward_training, kAlgorithm, Act(g.src),
                                         Any(g.wei), Act(g.dst), g.strides, g.pad_l, g.pad_r);
  }

  // The user's HWIO kernel in the layout `want` (reordered into a scratch buffer when the primitive prefers another).
  static memory Weights(dnnl::stream& s, const memory::desc& want, const memory::dims& dims, void* data) {
    memory user(Hwio(dims), Engine(), data);
    if (want == user.get_desc()) return user;
    memory blocked(want, Engine());
    dnnl::reorder(user, blocked).execute(s, user, blocked);
    return blocked;
  }

  static ffi::Error Fwd(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w, ffi::ResultBuffer<ffi::F32> y,
                        int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
    return Guarded([&] {
      Geometry g = MakeGeometry(x.dimensions(), w.dimensions(), y->dimensions(), sh, sw, pt, pb, pl, pr);
      auto pd = FwdPd(g);
      dnnl::stream s(Engine());
      memory wei = Weights(s, pd.weights_desc(), g.wei, w.typed_data());
      FwdT(pd).execute(s, {{DNNL_ARG_SRC, memory(Act(g.src), Engine(), x.typed_data())},
                           {DNNL_ARG_WEIGHTS, wei},
                           {DNNL_ARG_DST, memory(Act(g.dst), Engine(), y->typed_data())}});
      s.wait();
    });
  }

  static ffi::Error BwdData(ffi::Buffer<ffi::F32> gy, ffi::Buffer<ffi::F32> w, ffi::ResultBuffer<ffi::F32> gx,
                            int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
    return Guarded([&] {
      Geometry g = MakeGeometry(gx->dimensions(), w.dimensions(), gy.dimensions(), sh, sw, pt, pb, pl, pr);
      typename BwdDataT::primitive_desc pd(Engine(), kAlgorithm, Act(g.src), Any(g.wei), Act(g.dst), g.strides,
                                           g.pad_l, g.pad_r, FwdPd(g));
      dnnl::stream s(Engine());
      memory wei = Weights(s, pd.weights_desc(), g.wei, w.typed_data());
      BwdDataT(pd).execute(s, {{DNNL_ARG_DIFF_DST, memory(Act(g.dst), Engine(), gy.typed_data())},
                               {DNNL_ARG_WEIGHTS, wei},
                               {DNNL_ARG_DIFF_SRC, memory(Act(g.src), Engine(), gx->typed_data())}});
      s.wait();
    });
  }

  static ffi::Error BwdWeights(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> gy, ffi::ResultBuffer<ffi::F32> gw,
                               int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
    return Guarded([&] {
      Geometry g = MakeGeometry(x.dimensions(), gw->dimensions(), gy.dimensions(), sh, sw, pt, pb, pl, pr);
      typename BwdWeightsT::primitive_desc pd(Engine(), kAlgorithm, Act(g.src), Any(g.wei), Act(g.dst),
                                              g.strides, g.pad_l, g.pad_r, FwdPd(g));
      dnnl::stream s(Engine());
      memory user(Hwio(g.wei), Engine(), gw->typed_data());
      memory diff_wei = pd.diff_weights_desc() == user.get_desc() ? user : memory(pd.diff_weights_desc(), Engine());
      BwdWeightsT(pd).execute(s, {{DNNL_ARG_SRC, memory(Act(g.src), Engine(), x.typed_data())},
                                  {DNNL_ARG_DIFF_DST, memory(Act(g.dst), Engine(), gy.typed_data())},
                                  {DNNL_ARG_DIFF_WEIGHTS, diff_wei}});
      if (diff_wei != user) dnnl::reorder(diff_wei, user).execute(s, diff_wei, user);
      s.wait();
    });
  }
};

using Conv = Family<dnnl::convolution_forward, dnnl::convolution_backward_data,
                    dnnl::convolution_backward_weights, dnnl::algorithm::convolution_direct>;
using Deconv = Family<dnnl::deconvolution_forward, dnnl::deconvolution_backward_data,
                      dnnl::deconvolution_backward_weights, dnnl::algorithm::deconvolution_direct>;

}  // namespace

#define AHUP_ATTRS                                                                                             \
  .Attr<int64_t>("sh").Attr<int64_t>("sw").Attr<int64_t>("pt").Attr<int64_t>("pb").Attr<int64_t>("pl")        \
      .Attr<int64_t>("pr")
#define AHUP_HANDLER(name, fn)                                                                                 \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, fn,                                                                      \
                                ffi::Ffi::Bind()                                                               \
                                    .Arg<ffi::Buffer<ffi::F32>>()                                              \
                                    .Arg<ffi::Buffer<ffi::F32>>()                                              \
                                    .Ret<ffi::Buffer<ffi::F32>>() AHUP_ATTRS)

AHUP_HANDLER(AhupConvFwd, Conv::Fwd);
AHUP_HANDLER(AhupConvBwdData, Conv::BwdData);
AHUP_HANDLER(AhupConvBwdWeights, Conv::BwdWeights);
AHUP_HANDLER(AhupDeconvFwd, Deconv::Fwd);
AHUP_HANDLER(AhupDeconvBwdData, Deconv::BwdData);
AHUP_HANDLER(AhupDeconvBwdWeights, Deconv::BwdWeights);
