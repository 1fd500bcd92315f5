// ablate's native training kernels: convolutions (forward, backward data, backward weights)
// and row-major SGEMM on oneDNN, called from TensorFlow.js kernels with zero copies.
//
// Every function takes Float32Array views (of the wasm heap or of plain JS memory) and an
// Int32Array of shape parameters, and writes its result into a preallocated output view.
// Layouts are TensorFlow.js's: activations NHWC, filters HWIO. oneDNN picks its own
// (blocked) weight layout where that is faster; weights are small, so reordering them on
// every call costs little next to the convolution.
//
// Threads: oneDNN runs on OpenMP here; setThreads() bounds it per process, so that two
// training stages in parallel on two cores use one thread each.
#include <node_api.h>
#include <dnnl.hpp>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>
#include <cmath>
#include <algorithm>
#include <cstdint>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

engine& cpuEngine() {
  static engine instance(engine::kind::cpu, 0);
  return instance;
}

stream& cpuStream() {
  static stream instance(cpuEngine());
  return instance;
}

// Shape of one 2-D convolution, in TensorFlow.js terms (x: [n,ih,iw,ic], filter: [kh,kw,ic,oc],
// y: [n,oh,ow,oc]); pads are top, left, bottom, right; dilations are TF's (1 = none).
struct ConvShape {
  int n, ih, iw, ic, kh, kw, oc, oh, ow, sh, sw, dh, dw, pt, pl, pb, pr;
  static constexpr int kFields = 17;

  memory::desc src() const { return {{n, ic, ih, iw}, dt::f32, tag::nhwc}; }
  memory::desc dst() const { return {{n, oc, oh, ow}, dt::f32, tag::nhwc}; }
  memory::desc userWeights() const { return {{oc, ic, kh, kw}, dt::f32, tag::hwio}; }
  memory::desc anyWeights() const { return {{oc, ic, kh, kw}, dt::f32, tag::any}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims dilations() const { return {dh - 1, dw - 1}; }  // oneDNN counts inserted zeros
  memory::dims padLeft() const { return {pt, pl}; }
  memory::dims padRight() const { return {pb, pr}; }

  std::string key() const {
    std::ostringstream out;
    for (int v : {n, ih, iw, ic, kh, kw, oc, oh, ow, sh, sw, dh, dw, pt, pl, pb, pr}) out << v << ',';
    return out.str();
  }
};

// Activations fused after a forward convolution; the codes match native.ts.
enum Activation { kLinear = 0, kRelu = 1, kSigmoid = 2, kElu = 3, kRelu6 = 4, kLeakyRelu = 5 };

convolution_forward::primitive_desc forwardDesc(const ConvShape& s, bool bias, int activation, float alpha) {
  primitive_attr attr;
  if (activation != kLinear) {
    post_ops ops;
    switch (activation) {
      case kRelu: ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f); break;
      case kSigmoid: ops.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f); break;
      case kElu: ops.append_eltwise(1.f, algorithm::eltwise_elu, 1.f, 0.f); break;
      case kRelu6: ops.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 6.f); break;
      case kLeakyRelu: ops.append_eltwise(1.f, algorithm::eltwise_relu, alpha, 0.f); break;
      default: throw std::invalid_argument("unknown activation code");
    }
    attr.set_post_ops(ops);
  }
  memory::desc biasMd = bias ? memory::desc({s.oc}, dt::f32, tag::x) : memory::desc();
  convolution_forward::desc desc(prop_kind::forward_training, algorithm::convolution_direct, s.src(), s.anyWeights(), biasMd,
                                 s.dst(), s.strides(), s.dilations(), s.padLeft(), s.padRight());
  return {desc, attr, cpuEngine()};
}

// Primitives are built once per shape: building one costs far more than a small convolution.
struct Forward {
  convolution_forward::primitive_desc pd;
  convolution_forward prim;
};
struct BackwardData {
  convolution_backward_data::primitive_desc pd;
  convolution_backward_data prim;
};
struct BackwardWeights {
  convolution_backward_weights::primitive_desc pd;
  convolution_backward_weights prim;
};

// One cache per call site (each lambda is its own type), keyed by shape.
template <typename T, typename Make>
T& cached(const std::string& key, Make make) {
  static std::unordered_map<std::string, std::unique_ptr<T>> cache;
  auto& slot = cache[key];
  if (!slot) slot.reset(new T(make()));
  return *slot;
}

Forward& forward(const ConvShape& s, bool bias, int activation, float alpha) {
  std::string key = s.key() + std::to_string(bias) + ',' + std::to_string(activation) + ',' + std::to_string(alpha);
  return cached<Forward>(key, [&] {
    auto pd = forwardDesc(s, bias, activation, alpha);
    return Forward{pd, convolution_forward(pd)};
  });
}

BackwardData& backwardData(const ConvShape& s) {
  return cached<BackwardData>(s.key(), [&] {
    convolution_backward_data::desc desc(algorithm::convolution_direct, s.src(), s.anyWeights(), s.dst(), s.strides(),
                                         s.dilations(), s.padLeft(), s.padRight());
    convolution_backward_data::primitive_desc pd(desc, cpuEngine(), forwardDesc(s, false, kLinear, 0.f));
    return BackwardData{pd, convolution_backward_data(pd)};
  });
}

BackwardWeights& backwardWeights(const ConvShape& s) {
  return cached<BackwardWeights>(s.key(), [&] {
    convolution_backward_weights::desc desc(algorithm::convolution_direct, s.src(), s.anyWeights(), s.dst(), s.strides(),
                                            s.dilations(), s.padLeft(), s.padRight());
    convolution_backward_weights::primitive_desc pd(desc, cpuEngine(), forwardDesc(s, false, kLinear, 0.f));
    return BackwardWeights{pd, convolution_backward_weights(pd)};
  });
}

// Weights in oneDNN's chosen layout: the user's buffer itself when the layouts agree, else a
// reordered copy (into or out of `user`, by `toUser`).
struct WeightsView {
  memory user;
  memory internal;
  bool reordered;
};

WeightsView weightsView(const ConvShape& s, const memory::desc& chosen, float* data) {
  memory user(s.userWeights(), cpuEngine(), data);
  if (chosen == s.userWeights()) return {user, user, false};
  return {user, memory(chosen, cpuEngine()), true};
}

// ---- N-API plumbing --------------------------------------------------------------------

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

float* floats(napi_env env, napi_value value, size_t* length = nullptr) {
  napi_typedarray_type type;
  size_t count;
  void* data;
  if (napi_get_typedarray_info(env, value, &type, &count, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array)
    throw Failure("expected a Float32Array");
  if (length) *length = count;
  return static_cast<float*>(data);
}

const int32_t* ints(napi_env env, napi_value value, size_t expected) {
  napi_typedarray_type type;
  size_t count;
  void* data;
  if (napi_get_typedarray_info(env, value, &type, &count, &data, nullptr, nullptr) != napi_ok || type != napi_int32_array ||
      count < expected)
    throw Failure("expected an Int32Array of shape parameters");
  return static_cast<const int32_t*>(data);
}

ConvShape convShape(napi_env env, napi_value value) {
  const int32_t* p = ints(env, value, ConvShape::kFields);
  return {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15], p[16]};
}

template <size_t N>
void args(napi_env env, napi_callback_info info, napi_value (&out)[N]) {
  size_t count = N;
  napi_get_cb_info(env, info, &count, out, nullptr, nullptr);
  if (count < N) throw Failure("too few arguments");
}

// oneDNN 2.x's JIT GEMM kernels (dnnl_sgemm, and primitives built on them) point rsp into a
// heap workspace while they run (uxlfoundation/oneDNN#4845, fixed in 3.11.2): a signal
// handled on that thread pushes its frame over malloc's chunks. `node --cpu-prof`'s SIGPROF
// aborted a process within its first two products here; SIGCHLD, SIGINT or SIGUSR1 (Node's
// inspector) would do the same, or corrupt a buffer silently. So each call holds every
// signal on its thread until it returns (at most one kernel's time, two syscalls a call), and
// OpenMP's threads, which start inside a call and inherit its mask, never take one at all.
class SignalsHeld {
 public:
  SignalsHeld() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved_);
  }
  ~SignalsHeld() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

 private:
  sigset_t saved_;
};

template <typename F>
napi_value guarded(napi_env env, F&& body) {
  SignalsHeld held;
  try {
    return body();
  } catch (const dnnl::error& e) {
    napi_throw_error(env, nullptr, (std::string("oneDNN: ") + e.what()).c_str());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
  }
  return nullptr;
}

// conv2d(x, filter, bias | null, y, shape, activation, alpha)
napi_value Conv2d(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[7];
    args(env, info, a);
    ConvShape s = convShape(env, a[4]);
    napi_valuetype biasType;
    napi_typeof(env, a[2], &biasType);
    bool hasBias = biasType != napi_null && biasType != napi_undefined;
    int32_t activation;
    double alpha;
    napi_get_value_int32(env, a[5], &activation);
    napi_get_value_double(env, a[6], &alpha);
    Forward& f = forward(s, hasBias, activation, static_cast<float>(alpha));
    WeightsView w = weightsView(s, f.pd.weights_desc(), floats(env, a[1]));
    if (w.reordered) reorder(w.user, w.internal).execute(cpuStream(), w.user, w.internal);
    std::unordered_map<int, memory> io{{DNNL_ARG_SRC, memory(s.src(), cpuEngine(), floats(env, a[0]))},
                                       {DNNL_ARG_WEIGHTS, w.internal},
                                       {DNNL_ARG_DST, memory(s.dst(), cpuEngine(), floats(env, a[3]))}};
    if (hasBias) io.emplace(DNNL_ARG_BIAS, memory(memory::desc({s.oc}, dt::f32, tag::x), cpuEngine(), floats(env, a[2])));
    f.prim.execute(cpuStream(), io);
    cpuStream().wait();
    return nullptr;
  });
}

// Half of a pixel's 16 filter taps: 8 floats (GCC's vector extension: each operation lane by
// lane, so the same bits on any clone). 32 bytes, one AVX register: a 64-byte vector is one
// register only on AVX-512, and GCC's AVX2 clone kept it on the stack (the seed decoder's
// last layer took 20 ms on a Zen 3, 2.7 ms in halves).
typedef float TapHalf __attribute__((vector_size(32)));
constexpr int kHalfLanes = 8;
constexpr int kTapLanes = 2 * kHalfLanes;

// dx of a convolution whose x has one channel: the forward pass of a transposed convolution
// with one output channel (a decoder's grey logits). oneDNN's kernels vectorize over x's
// channels and take as long for 1 as for 16 (4.5 ms for the seed decoder's last layer, 0.8
// for the same products forward). Here each dy pixel's kh·kw contributions are one product
// of its channels with the filter, vectorized over the taps, then added into dx. Images are
// independent and each is summed in one fixed order: the same bits on any thread count.
__attribute__((target_clones("avx512f", "avx2", "default"))) void singleChannelBackwardData(const ConvShape& s, const float* dy,
                                                                                            const float* filter, float* dx) {
  // The filter (HWIO, I = 1) as one row of taps per dy channel, zero past kh·kw; each half
  // read with one unaligned load (memcpy), as this allocation is only 16-byte aligned.
  std::vector<float> rows(size_t(s.oc) * kTapLanes, 0.f);
  for (int c = 0; c < s.oc; c++)
    for (int t = 0; t < s.kh * s.kw; t++) rows[size_t(c) * kTapLanes + t] = filter[size_t(t) * s.oc + c];
  // Each pixel's taps are one sum over c in order; four pixels at a time, for independent chains.
  constexpr int kPixels = 4;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < s.n; n++) {
    float* image = dx + size_t(n) * s.ih * s.iw;
    std::fill(image, image + size_t(s.ih) * s.iw, 0.f);
    for (int oh = 0; oh < s.oh; oh++)
      for (int ow0 = 0; ow0 < s.ow; ow0 += kPixels) {
        const int count = std::min(kPixels, s.ow - ow0);
        const float* g = dy + ((size_t(n) * s.oh + oh) * s.ow + ow0) * s.oc;
        // Accumulators indexed only by constants, so they stay in registers; a short last
        // group repeats its last pixel rather than branch inside the loop (the copies are dropped).
        const float* pixel[kPixels];
        for (int p = 0; p < kPixels; p++) pixel[p] = g + size_t(std::min(p, count - 1)) * s.oc;
        TapHalf acc[kPixels][2] = {};
        for (int c = 0; c < s.oc; c++) {
          TapHalf row[2];
          std::memcpy(&row[0], rows.data() + size_t(c) * kTapLanes, sizeof row[0]);
          std::memcpy(&row[1], rows.data() + size_t(c) * kTapLanes + kHalfLanes, sizeof row[1]);
          for (int p = 0; p < kPixels; p++) {
            const float v = pixel[p][c];
            acc[p][0] += v * row[0];
            acc[p][1] += v * row[1];
          }
        }
        float z[kPixels][kTapLanes];
        std::memcpy(z, acc, sizeof z);
        for (int p = 0; p < count; p++)
          for (int i = 0; i < s.kh; i++) {
            const int y = oh * s.sh - s.pt + i;
            if (y < 0 || y >= s.ih) continue;
            for (int j = 0; j < s.kw; j++) {
              const int x = (ow0 + p) * s.sw - s.pl + j;
              const int t = i * s.kw + j;
              if (x >= 0 && x < s.iw) image[size_t(y) * s.iw + x] += z[p][t];
            }
          }
      }
  }
}

// conv2dBackwardData(dy, filter, dx, shape): dx = ∂L/∂x of y = conv2d(x, filter)
napi_value Conv2dBackwardData(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[4];
    args(env, info, a);
    ConvShape s = convShape(env, a[3]);
    if (s.ic == 1 && s.dh == 1 && s.dw == 1 && s.kh * s.kw <= kTapLanes) {
      singleChannelBackwardData(s, floats(env, a[0]), floats(env, a[1]), floats(env, a[2]));
      return nullptr;
    }
    BackwardData& b = backwardData(s);
    WeightsView w = weightsView(s, b.pd.weights_desc(), floats(env, a[1]));
    if (w.reordered) reorder(w.user, w.internal).execute(cpuStream(), w.user, w.internal);
    b.prim.execute(cpuStream(), {{DNNL_ARG_DIFF_DST, memory(s.dst(), cpuEngine(), floats(env, a[0]))},
                                 {DNNL_ARG_WEIGHTS, w.internal},
                                 {DNNL_ARG_DIFF_SRC, memory(s.src(), cpuEngine(), floats(env, a[2]))}});
    cpuStream().wait();
    return nullptr;
  });
}

// conv2dBackwardWeights(x, dy, dFilter, shape): dFilter = ∂L/∂filter of y = conv2d(x, filter)
napi_value Conv2dBackwardWeights(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[4];
    args(env, info, a);
    ConvShape s = convShape(env, a[3]);
    BackwardWeights& b = backwardWeights(s);
    WeightsView w = weightsView(s, b.pd.diff_weights_desc(), floats(env, a[2]));
    b.prim.execute(cpuStream(), {{DNNL_ARG_SRC, memory(s.src(), cpuEngine(), floats(env, a[0]))},
                                 {DNNL_ARG_DIFF_DST, memory(s.dst(), cpuEngine(), floats(env, a[1]))},
                                 {DNNL_ARG_DIFF_WEIGHTS, w.internal}});
    if (w.reordered) reorder(w.internal, w.user).execute(cpuStream(), w.internal, w.user);
    cpuStream().wait();
    return nullptr;
  });
}

float activate(float v, int activation, float alpha) {
  switch (activation) {
    case kRelu: return v > 0.f ? v : 0.f;
    case kSigmoid: return 1.f / (1.f + std::exp(-v));
    case kElu: return v > 0.f ? v : std::expm1(v);
    case kRelu6: return std::min(std::max(v, 0.f), 6.f);
    case kLeakyRelu: return v > 0.f ? v : alpha * v;
    default: return v;
  }
}

// matmul(a, b, c, [batch, m, n, k, transposeA, transposeB, broadcastA, broadcastB],
//        bias | null, activation, alpha):
// c[i] = act(op(a[i]) · op(b[i]) + bias), row-major; a broadcast operand has batch 1; the
// bias (n values) is added to every row, as a Dense layer's.
napi_value Matmul(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[7];
    args(env, info, a);
    const int32_t* p = ints(env, a[3], 8);
    const int batch = p[0], m = p[1], n = p[2], k = p[3];
    const bool ta = p[4], tb = p[5], oneA = p[6], oneB = p[7];
    const float* A = floats(env, a[0]);
    const float* B = floats(env, a[1]);
    float* C = floats(env, a[2]);
    for (int i = 0; i < batch; i++) {
      dnnl_status_t status = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.f, A + (oneA ? 0 : size_t(i) * m * k), ta ? m : k,
                                        B + (oneB ? 0 : size_t(i) * k * n), tb ? k : n, 0.f, C + size_t(i) * m * n, n);
      if (status != dnnl_success) throw Failure("oneDNN sgemm failed");
    }
    napi_valuetype biasType;
    napi_typeof(env, a[4], &biasType);
    const float* bias = biasType == napi_null || biasType == napi_undefined ? nullptr : floats(env, a[4]);
    int32_t activation;
    double alpha;
    napi_get_value_int32(env, a[5], &activation);
    napi_get_value_double(env, a[6], &alpha);
    if (bias || activation != kLinear) {
      const long rows = long(batch) * m;
#pragma omp parallel for schedule(static)
      for (long r = 0; r < rows; r++) {
        float* row = C + r * n;
        for (int j = 0; j < n; j++) row[j] = activate(row[j] + (bias ? bias[j] : 0.f), activation, float(alpha));
      }
    }
    return nullptr;
  });
}

// sumLeading(x, out, [outer, inner]): out[j] = Σ_i x[i·inner + j], the reduction of the
// leading axes that every bias gradient is (wasm's Sum transposes the whole tensor first).
// The rows are cut into blocks of a fixed size, whatever the thread count, and the blocks'
// partial sums are added in block order: the result is the same on 1 thread or 16, so the
// thread count never changes a bias gradient's bits.
constexpr long kSumBlockRows = 256;

// Σ over rows of what addRow(i, sum) adds into `sum` for row i, blocked as above; out has inner values.
template <typename AddRow>
void sumRowsInBlocks(long outer, long inner, float* out, AddRow addRow) {
  const long blocks = (outer + kSumBlockRows - 1) / kSumBlockRows;
  std::vector<float> partial(size_t(blocks) * size_t(inner), 0.f);
#pragma omp parallel for schedule(static)
  for (long b = 0; b < blocks; b++) {
    float* sum = partial.data() + b * inner;
    const long end = std::min(outer, (b + 1) * kSumBlockRows);
    for (long i = b * kSumBlockRows; i < end; i++) addRow(i, sum);
  }
  std::fill(out, out + inner, 0.f);
  for (long b = 0; b < blocks; b++) {
    const float* sum = partial.data() + b * inner;
    for (long j = 0; j < inner; j++) out[j] += sum[j];
  }
}

napi_value SumLeading(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[3];
    args(env, info, a);
    const int32_t* p = ints(env, a[2], 2);
    const long outer = p[0], inner = p[1];
    const float* x = floats(env, a[0]);
    sumRowsInBlocks(outer, inner, floats(env, a[1]), [&](long i, float* sum) {
      const float* row = x + i * inner;
      for (long j = 0; j < inner; j++) sum[j] += row[j];
    });
    return nullptr;
  });
}

// ---- Element-wise ops -------------------------------------------------------------------
//
// The float32 element-wise ops of a training step (bias adds, activations and their
// gradients, Adam's update), on the addon's threads instead of wasm's single one. Each output
// element is one IEEE operation on its inputs, which rounds the same way in wasm SIMD and in
// AVX2, so these kernels write the same bits as wasm's own whatever the thread count (tested
// against them, denormals, infinities and signed zeros included). Nothing here may be fused
// into a multiply-add: binding.gyp builds with -ffp-contract=off (and with -fno-math-errno and
// -fno-trapping-math, which only let sqrt and selects vectorize: neither errno nor the
// floating-point exception flags are ever read, and no value changes).

// Codes match native-kernels.ts.
enum BinaryOp { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };
enum UnaryOp { kUnaryRelu = 0, kUnaryStep = 1, kSqrt = 2, kSquare = 3, kNeg = 4, kAbs = 5 };

// Below this many elements a parallel region costs more than it saves.
constexpr long kParallelElements = 1 << 16;

template <typename Op>
void binaryLoop(const float* a, const float* b, float* out, long n, long periodA, long periodB, Op op) {
  // period 0: the operand has as many elements as the output; otherwise it repeats with that period.
  if (periodA == 0 && periodB == 0) {
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (long i = 0; i < n; i++) out[i] = op(a[i], b[i]);
  } else if (periodB == 1) {
    const float v = b[0];
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (long i = 0; i < n; i++) out[i] = op(a[i], v);
  } else if (periodA == 1) {
    const float v = a[0];
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (long i = 0; i < n; i++) out[i] = op(v, b[i]);
  } else {
    // One operand repeats along the leading axes (a bias over channels): rows of `period`.
    const long period = periodA ? periodA : periodB;
    const long rows = n / period;
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (long r = 0; r < rows; r++) {
      const long base = r * period;
      if (periodB)
        for (long j = 0; j < period; j++) out[base + j] = op(a[base + j], b[j]);
      else
        for (long j = 0; j < period; j++) out[base + j] = op(a[j], b[base + j]);
    }
  }
}

// binary(a, b, out, [op, n, periodA, periodB]): out = a op b, elementwise, with one side
// possibly repeating (period 1: a scalar; period p: its p values over every row of p).
napi_value Binary(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[4];
    args(env, info, a);
    const int32_t* p = ints(env, a[3], 4);
    const float* x = floats(env, a[0]);
    const float* y = floats(env, a[1]);
    float* out = floats(env, a[2]);
    const long n = p[1], periodA = p[2], periodB = p[3];
    switch (p[0]) {
      case kAdd: binaryLoop(x, y, out, n, periodA, periodB, [](float u, float v) { return u + v; }); break;
      case kSub: binaryLoop(x, y, out, n, periodA, periodB, [](float u, float v) { return u - v; }); break;
      case kMul: binaryLoop(x, y, out, n, periodA, periodB, [](float u, float v) { return u * v; }); break;
      case kDiv: binaryLoop(x, y, out, n, periodA, periodB, [](float u, float v) { return u / v; }); break;
      default: throw Failure("unknown binary op code");
    }
    return nullptr;
  });
}

// relu as tfjs defines it: −0 becomes +0, NaN stays NaN.
inline float reluAsTfjs(float v) {
  const float r = v > 0.f ? v : 0.f;
  return v == v ? r : v;
}

// relu's derivative as tfjs composes it (step(v)): 1 above 0, 0 at or below, NaN for NaN.
// The same for relu's input and for its output, which is positive exactly where the input is.
inline float reluSlope(float v) {
  const float step = v > 0.f ? 1.f : 0.f;
  return v == v ? step : v;
}

template <typename Op>
void unaryLoop(const float* x, float* out, long n, float alpha, Op op) {
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (long i = 0; i < n; i++) out[i] = op(x[i], alpha);
}

// unary(x, out, [op, n], alpha): the activations and their pieces as tfjs defines them.
// relu maps −0 to +0 and keeps NaN; step is 1 above 0, NaN for NaN, alpha elsewhere.
napi_value Unary(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[4];
    args(env, info, a);
    const int32_t* p = ints(env, a[2], 2);
    const float* x = floats(env, a[0]);
    float* out = floats(env, a[1]);
    double alphaValue;
    napi_get_value_double(env, a[3], &alphaValue);
    const float alpha = static_cast<float>(alphaValue);
    const long n = p[1];
    switch (p[0]) {
      case kUnaryRelu: unaryLoop(x, out, n, alpha, [](float v, float) { return reluAsTfjs(v); }); break;
      case kUnaryStep: unaryLoop(x, out, n, alpha, [](float v, float below) {
        const float r = v > 0.f ? 1.f : below;
        return v == v ? r : v;
      }); break;
      case kSqrt: unaryLoop(x, out, n, alpha, [](float v, float) { return std::sqrt(v); }); break;
      case kSquare: unaryLoop(x, out, n, alpha, [](float v, float) { return v * v; }); break;
      case kNeg: unaryLoop(x, out, n, alpha, [](float v, float) { return -v; }); break;
      case kAbs: unaryLoop(x, out, n, alpha, [](float v, float) { return std::fabs(v); }); break;
      default: throw Failure("unknown unary op code");
    }
    return nullptr;
  });
}

// reluGrad(dy, x, dx, [n]): dx = dy · step(x), relu's gradient as tfjs composes it
// (mul(dy, cast(step(x)))) in one pass instead of three: the product with 1 or 0 is the same
// IEEE multiply, so −0 for a negative dy and NaN for an infinite one are kept.
napi_value ReluGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[4];
    args(env, info, a);
    const float* dy = floats(env, a[0]);
    const float* x = floats(env, a[1]);
    float* dx = floats(env, a[2]);
    const long n = ints(env, a[3], 1)[0];
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (long i = 0; i < n; i++) dx[i] = dy[i] * reluSlope(x[i]);
    return nullptr;
  });
}

// reluGradSum(dy, y, dz, dBias, [outer, inner]): the backward pass of y = relu(z + bias) over
// rows of `inner` channels: dz = dy · step(y) and dBias = Σ_rows dz, in one pass over dy and
// y. The same bits as reluGrad followed by sumLeading: the same multiply per element, and
// dz's rows summed in the same blocks and order.
napi_value ReluGradSum(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[5];
    args(env, info, a);
    const float* dy = floats(env, a[0]);
    const float* y = floats(env, a[1]);
    float* dz = floats(env, a[2]);
    const int32_t* p = ints(env, a[4], 2);
    const long outer = p[0], inner = p[1];
    sumRowsInBlocks(outer, inner, floats(env, a[3]), [&](long i, float* sum) {
      const long base = i * inner;
      for (long j = 0; j < inner; j++) {
        const float d = dy[base + j] * reluSlope(y[base + j]);
        dz[base + j] = d;
        sum[j] += d;
      }
    });
    return nullptr;
  });
}

// biasRelu(y, bias | null, [rows, channels, activation]): y = act(y + bias) in place, bias
// over the last axis, act linear or relu: the epilogue of a convolution whose bias and
// activation tfjs would run as two more ops (an Add and a Relu, each a pass over y), with
// the same IEEE operations, so the same bits.
napi_value BiasRelu(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[3];
    args(env, info, a);
    float* y = floats(env, a[0]);
    napi_valuetype biasType;
    napi_typeof(env, a[1], &biasType);
    const float* bias = biasType == napi_null || biasType == napi_undefined ? nullptr : floats(env, a[1]);
    const int32_t* p = ints(env, a[2], 3);
    const long rows = p[0], channels = p[1];
    const int activation = p[2];
    if (activation != kLinear && activation != kRelu) throw Failure("biasRelu: activation must be linear or relu");
#pragma omp parallel for schedule(static) if (rows * channels >= kParallelElements)
    for (long r = 0; r < rows; r++) {
      float* row = y + r * channels;
      for (long j = 0; j < channels; j++) {
        const float v = bias ? row[j] + bias[j] : row[j];
        row[j] = activation == kRelu ? reluAsTfjs(v) : v;
      }
    }
    return nullptr;
  });
}

// adam(value, m, v, g, newValue, newM, newV, [n], [β1, 1−β1, β2, 1−β2, 1−β1^t, 1−β2^t, ε, −lr]):
// one Adam step for one variable, the same float32 operations in the same order as
// tfjs-core's AdamOptimizer (each line below is one of its tensor ops), so the same bits:
//   m' = m·β1 + g·(1−β1)          v' = v·β2 + g²·(1−β2)
//   m̂ = m'/(1−β1^t)               v̂ = v'/(1−β2^t)
//   value' = (m̂ / (√v̂ + ε))·(−lr) + value
// One pass over each array instead of thirteen tensor ops, each a pass and a kernel call.
napi_value Adam(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[9];
    args(env, info, a);
    const float* value = floats(env, a[0]);
    const float* m = floats(env, a[1]);
    const float* v = floats(env, a[2]);
    const float* g = floats(env, a[3]);
    float* newValue = floats(env, a[4]);
    float* newM = floats(env, a[5]);
    float* newV = floats(env, a[6]);
    const long n = ints(env, a[7], 1)[0];
    size_t scalarCount;
    const float* k = floats(env, a[8], &scalarCount);
    if (scalarCount < 8) throw Failure("adam needs 8 scalars");
    const float beta1 = k[0], oneMinusBeta1 = k[1], beta2 = k[2], oneMinusBeta2 = k[3];
    const float correction1 = k[4], correction2 = k[5], epsilon = k[6], negLr = k[7];
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (long i = 0; i < n; i++) {
      const float gi = g[i];
      const float m1 = m[i] * beta1 + gi * oneMinusBeta1;
      const float g2 = gi * gi;
      const float v1 = v[i] * beta2 + g2 * oneMinusBeta2;
      const float mHat = m1 / correction1;
      const float vHat = v1 / correction2;
      const float step = mHat / (std::sqrt(vHat) + epsilon);
      newValue[i] = step * negLr + value[i];
      newM[i] = m1;
      newV[i] = v1;
    }
    return nullptr;
  });
}

// ---- The Bernoulli pixel likelihood ------------------------------------------------------
//
// −log p(x|z) of a batch of images under Bernoulli pixels with logits l, summed per image,
// and its gradient: the loss of every Bernoulli VAE's step, which tfjs composes from ten
// element-wise ops forward and about as many backward (two of them, exp and log1p, on wasm's
// one thread). Here it is one pass each way, parallel over images.
//
// Unlike the kernels above, these do not reproduce tfjs's bits: that would take wasm's own
// expf and log1pf. They compute in double with the exp and log1p below, which use only IEEE
// additions, multiplications and one division (no libm, no fused multiply-add: binding.gyp
// builds with -ffp-contract=off), so their results depend on this source alone, not on the
// C library, the CPU or the thread count; each image's sum runs in pixel order on one thread.
// Both functions are accurate to about 1e-13 relative, far below float32's 6e-8 resolution.

constexpr double kLn2Hi = 0x1.62e42fefa3800p-1;  // ln 2 to 42 significant bits: k·kLn2Hi is exact for |k| < 2^11
constexpr double kLn2Lo = 0x1.ef35793c7673p-45;  // ln 2 − kLn2Hi
constexpr double kInvLn2 = 0x1.71547652b82fep0;
constexpr double kRoundShift = 0x1.8p52;  // adding it rounds a double of magnitude < 2^51 to an integer

// e^x for x ≤ 0: x = k·ln 2 + r with |r| ≤ ln2/2, e^r by its Taylor series to degree 11
// (truncation < 7e-15), times 2^k built from k's bits. Below −708 the result would be
// subnormal in double and is 0 in float32 (and next to 1 in log1p): 0.
inline double expNonPositive(double x) {
  const double clamped = x < -708.0 ? -708.0 : x;
  const double shifted = clamped * kInvLn2 + kRoundShift;
  const double k = shifted - kRoundShift;
  const double r = (clamped - k * kLn2Hi) - k * kLn2Lo;
  double p = 1.0 / 39916800.0;  // 1/11!
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  uint64_t shiftedBits, shiftBits;
  std::memcpy(&shiftedBits, &shifted, sizeof shifted);
  std::memcpy(&shiftBits, &kRoundShift, sizeof kRoundShift);
  // shifted and kRoundShift share an exponent, so their bit patterns differ by k exactly.
  const uint64_t scaleBits = (shiftedBits - shiftBits + 1023) << 52;
  double scale;
  std::memcpy(&scale, &scaleBits, sizeof scale);
  // Computed before the choice, so that the choice is a select, not a branch, and vectorizes.
  const double value = p * scale;
  return x < -708.0 ? 0.0 : value;
}

// log(1 + t) for 0 ≤ t ≤ 1 as 2·atanh(s), s = t / (2 + t) ≤ 1/3: the odd series
// 2·(s + s³/3 + … + s²³/23), whose next term is below 1.4e-13 of the sum.
inline double log1pUnit(double t) {
  const double s = t / (2.0 + t);
  const double w = s * s;
  double p = 1.0 / 23;
  p = p * w + 1.0 / 21;
  p = p * w + 1.0 / 19;
  p = p * w + 1.0 / 17;
  p = p * w + 1.0 / 15;
  p = p * w + 1.0 / 13;
  p = p * w + 1.0 / 11;
  p = p * w + 1.0 / 9;
  p = p * w + 1.0 / 7;
  p = p * w + 1.0 / 5;
  p = p * w + 1.0 / 3;
  p = p * w + 1.0;
  return 2.0 * s * p;
}

// Pixels per chunk of an image: the per-pixel terms are computed into a buffer (a loop the
// compiler vectorizes) and then added in order (a sum it may not reorder).
constexpr long kNllChunk = 256;

// bernoulliNll(logits, x, out, [images, pixels]): out[n] = Σ_p max(l, 0) − l·x + log(1 + e^−|l|),
// the binary cross-entropy −[x·log σ(l) + (1−x)·log(1−σ(l))] in its overflow-free form.
// l·x of two floats is exact in double; max(l, 0) keeps tfjs's relu semantics (NaN stays NaN).
napi_value BernoulliNll(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[4];
    args(env, info, a);
    const float* logits = floats(env, a[0]);
    const float* x = floats(env, a[1]);
    float* out = floats(env, a[2]);
    const int32_t* p = ints(env, a[3], 2);
    const long images = p[0], pixels = p[1];
#pragma omp parallel for schedule(static) if (images * pixels >= kParallelElements)
    for (long n = 0; n < images; n++) {
      const float* l = logits + n * pixels;
      const float* xn = x + n * pixels;
      double terms[kNllChunk];
      double sum = 0.0;
      for (long start = 0; start < pixels; start += kNllChunk) {
        const long count = std::min(kNllChunk, pixels - start);
        for (long j = 0; j < count; j++) {
          const float lj = l[start + j];
          const double t = expNonPositive(-std::fabs(double(lj)));
          terms[j] = (double(reluAsTfjs(lj)) - double(lj) * xn[start + j]) + log1pUnit(t);
        }
        for (long j = 0; j < count; j++) sum += terms[j];
      }
      out[n] = static_cast<float>(sum);
    }
    return nullptr;
  });
}

// bernoulliNllGrad(dy, logits, x, dLogits, [images, pixels]): ∂/∂l of dy[n]·bernoulliNll,
// dy[n]·(σ(l) − x), with σ(l) = 1/(1 + e^−l) for l ≥ 0 and e^l/(1 + e^l) below, so that
// e^−|l| never overflows.
napi_value BernoulliNllGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[5];
    args(env, info, a);
    const float* dy = floats(env, a[0]);
    const float* logits = floats(env, a[1]);
    const float* x = floats(env, a[2]);
    float* dLogits = floats(env, a[3]);
    const int32_t* p = ints(env, a[4], 2);
    const long images = p[0], pixels = p[1];
#pragma omp parallel for schedule(static) if (images * pixels >= kParallelElements)
    for (long n = 0; n < images; n++) {
      const double g = dy[n];
      const long base = n * pixels;
      for (long j = 0; j < pixels; j++) {
        const double lj = logits[base + j];
        const double t = expNonPositive(-std::fabs(lj));
        const double sigmoid = (lj >= 0.0 ? 1.0 : t) / (1.0 + t);
        dLogits[base + j] = static_cast<float>(g * (sigmoid - double(x[base + j])));
      }
    }
    return nullptr;
  });
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[1];
    args(env, info, a);
    int32_t threads;
    napi_get_value_int32(env, a[0], &threads);
    if (threads < 1) throw Failure("threads must be at least 1");
    omp_set_num_threads(threads);
    return nullptr;
  });
}

napi_value Info(napi_env env, napi_callback_info) {
  return guarded(env, [&]() -> napi_value {
    const dnnl_version_t* v = dnnl_version();
    std::ostringstream text;
    text << "oneDNN " << v->major << '.' << v->minor << '.' << v->patch << ", " << omp_get_max_threads() << " thread(s)";
    napi_value out;
    napi_create_string_utf8(env, text.str().c_str(), NAPI_AUTO_LENGTH, &out);
    return out;
  });
}

// The instruction set oneDNN dispatches to here (after DNNL_MAX_CPU_ISA), e.g. "avx2": the
// numeric class of every convolution and product, since kernels for different ISAs block
// and order their sums differently.
napi_value CpuIsa(napi_env env, napi_callback_info) {
  return guarded(env, [&]() -> napi_value {
    std::string name = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
    const std::string prefix = "cpu_isa_";
    if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
    napi_value out;
    napi_create_string_utf8(env, name.c_str(), NAPI_AUTO_LENGTH, &out);
    return out;
  });
}

// Implementation names oneDNN chose for a convolution shape (for `ablate doctor`).
napi_value Implementations(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value a[1];
    args(env, info, a);
    ConvShape s = convShape(env, a[0]);
    std::string text = std::string("fwd ") + forward(s, false, kLinear, 0.f).pd.impl_info_str() + ", bwd_d " +
                       backwardData(s).pd.impl_info_str() + ", bwd_w " + backwardWeights(s).pd.impl_info_str();
    napi_value out;
    napi_create_string_utf8(env, text.c_str(), NAPI_AUTO_LENGTH, &out);
    return out;
  });
}

napi_value Init(napi_env env, napi_value exports) {
  // A training step allocates and frees the same large scratch buffers every time; by default
  // glibc hands them back to the OS each time (page faults dominate). Keep them.
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  napi_property_descriptor props[] = {
      {"conv2d", nullptr, Conv2d, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackwardData", nullptr, Conv2dBackwardData, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackwardWeights", nullptr, Conv2dBackwardWeights, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"matmul", nullptr, Matmul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumLeading", nullptr, SumLeading, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, Unary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adam", nullptr, Adam, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reluGrad", nullptr, ReluGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reluGradSum", nullptr, ReluGradSum, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"biasRelu", nullptr, BiasRelu, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bernoulliNll", nullptr, BernoulliNll, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bernoulliNllGrad", nullptr, BernoulliNllGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"cpuIsa", nullptr, CpuIsa, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"implementations", nullptr, Implementations, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
