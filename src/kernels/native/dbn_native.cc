// dbn_native: the native backend's kernels. Matrix products go to CBLAS sgemm (OpenBLAS);
// everything else is a fused loop over Float32Array memory, read and written in place.
//
// Every function takes Float32Arrays (zero-copy; N-API hands back data already offset by
// byteOffset) and checks each array's length against the sizes it is told before touching
// memory, so a wrong call from JavaScript raises a RangeError/TypeError instead of corrupting
// the heap. Elementwise kernels may be called with `out` equal to an input.
#include <napi.h>

#include "cd_kernels.h"
#include "host_kernels.h"
#include "napi_args.h"
#include "parallel.h"
#include "simd.h"
#include "vecmath.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>


extern "C" {
char* openblas_get_config(void);
char* openblas_get_corename(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);
}

namespace {

using namespace dbn;  // NOLINT: the addon's own helpers

// gemm(out, a, b, m, n, k, transA, transB, alpha, beta): out[m×n] = alpha·op(a)·op(b) + beta·out,
// op(a) m×k, op(b) k×n, all row-major.
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  F32 c, a, b;
  if (!GetF32s(info, {&c, &a, &b})) return info.Env().Undefined();
  const double md = GetNumber(info, 3), nd = GetNumber(info, 4), kd = GetNumber(info, 5);
  if (!(md >= 0 && nd >= 0 && kd >= 0 && md <= 2147483647.0 && nd <= 2147483647.0 && kd <= 2147483647.0)) {
    Napi::RangeError::New(info.Env(), "dbn_native.gemm: sizes must be non-negative 32-bit integers")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const auto m = static_cast<size_t>(md), n = static_cast<size_t>(nd), k = static_cast<size_t>(kd);
  const bool transA = GetBool(info, 6), transB = GetBool(info, 7);
  const auto alpha = static_cast<float>(GetNumber(info, 8));
  const auto beta = static_cast<float>(GetNumber(info, 9));
  if (!ExpectLength(info, "gemm", "out", c, m * n) || !ExpectLength(info, "gemm", "a", a, m * k) ||
      !ExpectLength(info, "gemm", "b", b, k * n)) {
    return info.Env().Undefined();
  }
  if (m == 0 || n == 0) return info.Env().Undefined();
  if (k == 0 || alpha == 0.0f) {
    // BLAS would be asked for a degenerate product; the result is beta·out.
    if (beta == 0.0f) {
      std::fill(c.p, c.p + m * n, 0.0f);
    } else if (beta != 1.0f) {
      for (size_t i = 0; i < m * n; ++i) c.p[i] *= beta;
    }
    return info.Env().Undefined();
  }
  // With beta = 0 OpenBLAS overwrites C without reading it (NaN included); a test pins this down.
  dbn::ParallelSgemm(transA, transB, m, n, k, alpha, a.p, b.p, beta, c.p);
  return info.Env().Undefined();
}

// What linearSigmoid's epilogue does to each block besides the sigmoid: a Bernoulli sample against
// uniforms, and the squared distance to a target, summed per block (slot: the block's first row
// or column over 16, one of which is 0) so the total is summed in block order whoever ran them.
struct SigmoidEpilogue {
  const float* bias;
  float* sample;
  const float* uniforms;
  const float* target;
  double* partials;
};

void SigmoidBlock(const void* ctx, float* c, size_t ldc, size_t row0, size_t rows, size_t col0, size_t cols) {
  const auto& e = *static_cast<const SigmoidEpilogue*>(ctx);
  SigmoidBiasInPlace(c + row0 * ldc + col0, ldc, e.bias + col0, rows, cols);
  double squares = 0;
  for (size_t i = row0; i < row0 + rows; ++i) {
    const size_t at = i * ldc + col0;
    if (e.sample != nullptr) BernoulliLoop(e.sample + at, c + at, e.uniforms + at, cols);
    if (e.target != nullptr) squares += SumSquaredDiffLoop(c + at, e.target + at, cols);
  }
  if (e.target != nullptr) e.partials[row0 / 16 + col0 / 16] = squares;
}

// linearSigmoid(out, x, w, bias, m, n, k, transW[, sample, uniforms, target]): out[m×n] = σ(x·op(w) + bias),
// x m×k, op(w) k×n (w n×k when transW). The sigmoid runs on each block of the product as soon as it
// is computed (in cache, on the thread that computed it); the values are those of gemm followed by
// addRowSigmoid. With `sample` and `uniforms` (m×n, else empty) it also writes sample = uniforms < out
// (bernoulli's values); with `target` (m×n, else empty) it returns Σ (out − target)² in double.
Napi::Value LinearSigmoid(const Napi::CallbackInfo& info) {
  F32 out, x, w, bias, sample{nullptr, 0}, uniforms{nullptr, 0}, target{nullptr, 0};
  if (!GetF32s(info, {&out, &x, &w, &bias})) return info.Env().Undefined();
  if (info.Length() > 8 && (!GetF32(info, 8, sample) || !GetF32(info, 9, uniforms) || !GetF32(info, 10, target))) {
    return info.Env().Undefined();
  }
  const double md = GetNumber(info, 4), nd = GetNumber(info, 5), kd = GetNumber(info, 6);
  if (!(md >= 0 && nd >= 0 && kd >= 0 && md <= 2147483647.0 && nd <= 2147483647.0 && kd <= 2147483647.0)) {
    Napi::RangeError::New(info.Env(), "dbn_native.linearSigmoid: sizes must be non-negative 32-bit integers")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const auto m = static_cast<size_t>(md), n = static_cast<size_t>(nd), k = static_cast<size_t>(kd);
  const bool transW = GetBool(info, 7);
  const bool sampling = sample.n > 0 || uniforms.n > 0;
  if (!ExpectLength(info, "linearSigmoid", "out", out, m * n) || !ExpectLength(info, "linearSigmoid", "x", x, m * k) ||
      !ExpectLength(info, "linearSigmoid", "w", w, k * n) || !ExpectLength(info, "linearSigmoid", "bias", bias, n) ||
      (sampling && (!ExpectLength(info, "linearSigmoid", "sample", sample, m * n) ||
                    !ExpectLength(info, "linearSigmoid", "uniforms", uniforms, m * n))) ||
      (target.n > 0 && !ExpectLength(info, "linearSigmoid", "target", target, m * n))) {
    return info.Env().Undefined();
  }
  if (m == 0 || n == 0) return target.n > 0 ? Napi::Number::New(info.Env(), 0.0) : info.Env().Undefined();
  std::vector<double> partials(target.n > 0 ? (m + 15) / 16 + (n + 15) / 16 + 1 : 0, 0.0);
  SigmoidEpilogue ctx{bias.p, sampling ? sample.p : nullptr, uniforms.p, target.n > 0 ? target.p : nullptr, partials.data()};
  Epilogue epilogue{SigmoidBlock, &ctx};
  if (k == 0) {
    std::fill(out.p, out.p + m * n, 0.0f);
    SigmoidBlock(&ctx, out.p, n, 0, m, 0, n);
  } else {
    ParallelSgemm(false, transW, m, n, k, 1.0f, x.p, w.p, 0.0f, out.p, &epilogue);
  }
  if (target.n == 0) return info.Env().Undefined();
  double total = 0;
  for (const double part : partials) total += part;
  return Napi::Number::New(info.Env(), total);
}

// addRowSigmoid(out, x, bias): out = σ(x + bias), bias broadcast over rows.
Napi::Value AddRowSigmoid(const Napi::CallbackInfo& info) {
  F32 out, x, bias;
  size_t rows = 0;
  if (!GetF32s(info, {&out, &x, &bias}) || !ExpectLength(info, "addRowSigmoid", "x", x, out.n) ||
      !RowsOf(info, "addRowSigmoid", out.n, bias.n, rows)) {
    return info.Env().Undefined();
  }
  AddRowSigmoidLoop(out.p, x.p, bias.p, rows, bias.n);
  return info.Env().Undefined();
}

// addRow(out, x, bias): out = x + bias, bias broadcast over rows.
Napi::Value AddRow(const Napi::CallbackInfo& info) {
  F32 out, x, bias;
  size_t rows = 0;
  if (!GetF32s(info, {&out, &x, &bias}) || !ExpectLength(info, "addRow", "x", x, out.n) ||
      !RowsOf(info, "addRow", out.n, bias.n, rows)) {
    return info.Env().Undefined();
  }
  AddRowLoop(out.p, x.p, bias.p, rows, bias.n);
  return info.Env().Undefined();
}

// Binary elementwise kernels: f(out, a, b) with all three the same length.
template <typename Op>
Napi::Value Binary(const Napi::CallbackInfo& info, const char* kernel, Op op) {
  F32 out, a, b;
  if (!GetF32s(info, {&out, &a, &b}) || !ExpectLength(info, kernel, "a", a, out.n) ||
      !ExpectLength(info, kernel, "b", b, out.n)) {
    return info.Env().Undefined();
  }
  const size_t n = out.n;
  for (size_t i = 0; i < n; ++i) out.p[i] = op(a.p[i], b.p[i]);
  return info.Env().Undefined();
}

Napi::Value Bernoulli(const Napi::CallbackInfo& info) {
  F32 out, p, u;
  if (!GetF32s(info, {&out, &p, &u}) || !ExpectLength(info, "bernoulli", "p", p, out.n) ||
      !ExpectLength(info, "bernoulli", "u", u, out.n)) {
    return info.Env().Undefined();
  }
  BernoulliLoop(out.p, p.p, u.p, out.n);
  return info.Env().Undefined();
}
Napi::Value NoisyRelu(const Napi::CallbackInfo& info) {
  return Binary(info, "noisyRelu", [](float x, float noise) { return Relu(x + std::sqrt(Sigmoid(x)) * noise); });
}
Napi::Value Add(const Napi::CallbackInfo& info) {
  return Binary(info, "add", [](float a, float b) { return a + b; });
}
Napi::Value Sub(const Napi::CallbackInfo& info) {
  return Binary(info, "sub", [](float a, float b) { return a - b; });
}
Napi::Value Mul(const Napi::CallbackInfo& info) {
  return Binary(info, "mul", [](float a, float b) { return a * b; });
}
Napi::Value SigmoidBackward(const Napi::CallbackInfo& info) {
  return Binary(info, "sigmoidBackward", [](float delta, float act) { return delta * act * (1.0f - act); });
}
Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  return Binary(info, "reluBackward", [](float delta, float act) { return act > 0.0f ? delta : 0.0f; });
}

// relu(out, x)
Napi::Value ReluK(const Napi::CallbackInfo& info) {
  F32 out, x;
  if (!GetF32s(info, {&out, &x}) || !ExpectLength(info, "relu", "x", x, out.n)) return info.Env().Undefined();
  for (size_t i = 0; i < out.n; ++i) out.p[i] = Relu(x.p[i]);
  return info.Env().Undefined();
}

// scale(out, x, alpha): out = alpha·x
Napi::Value Scale(const Napi::CallbackInfo& info) {
  F32 out, x;
  if (!GetF32s(info, {&out, &x}) || !ExpectLength(info, "scale", "x", x, out.n)) return info.Env().Undefined();
  const auto alpha = static_cast<float>(GetNumber(info, 2));
  for (size_t i = 0; i < out.n; ++i) out.p[i] = alpha * x.p[i];
  return info.Env().Undefined();
}

// axpy(out, x, alpha): out += alpha·x
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  F32 out, x;
  if (!GetF32s(info, {&out, &x}) || !ExpectLength(info, "axpy", "x", x, out.n)) return info.Env().Undefined();
  const auto alpha = static_cast<float>(GetNumber(info, 2));
  for (size_t i = 0; i < out.n; ++i) out.p[i] += alpha * x.p[i];
  return info.Env().Undefined();
}

// colSum(out, x, alpha, beta): out[j] = alpha·Σ_i x[i, j] + beta·out[j]; beta = 0 ignores out.
Napi::Value ColSum(const Napi::CallbackInfo& info) {
  F32 out, x;
  size_t rows = 0;
  if (!GetF32s(info, {&out, &x}) || !RowsOf(info, "colSum", x.n, out.n, rows)) return info.Env().Undefined();
  // each column on its own: the bits do not depend on how the pool cuts the columns
  struct Args {
    float* out;
    const float* x;
    size_t rows, cols;
    double alpha, beta;
  } args{out.p, x.p, rows, out.n, GetNumber(info, 2), GetNumber(info, 3)};
  ParallelFor(out.n, kParallelGrain / std::max<size_t>(rows, 1), [](const void* ctx, size_t lo, size_t hi) {
    const auto& a = *static_cast<const Args*>(ctx);
    ColSumLoop(a.out + lo, a.x + lo, a.rows, hi - lo, a.cols, a.alpha, a.beta);
  }, &args);
  return info.Env().Undefined();
}

// momentumStep(param, velocity, grad, learningRate, momentum, weightDecay, gradScale):
// velocity = μ·velocity + ε·(gradScale·grad − λ·param); param += velocity.
Napi::Value MomentumStep(const Napi::CallbackInfo& info) {
  F32 param, vel, grad;
  if (!GetF32s(info, {&param, &vel, &grad}) || !ExpectLength(info, "momentumStep", "velocity", vel, param.n) ||
      !ExpectLength(info, "momentumStep", "grad", grad, param.n)) {
    return info.Env().Undefined();
  }
  const auto lr = static_cast<float>(GetNumber(info, 3));
  const auto mu = static_cast<float>(GetNumber(info, 4));
  const auto wd = static_cast<float>(GetNumber(info, 5));
  const auto gs = static_cast<float>(GetNumber(info, 6));
  // Elementwise, so the bits do not depend on how the pool cuts it.
  struct Args {
    float *param, *vel;
    const float* grad;
    float lr, mu, wd, gs;
  } args{param.p, vel.p, grad.p, lr, mu, wd, gs};
  ParallelFor(param.n, kParallelGrain, [](const void* ctx, size_t lo, size_t hi) {
    const auto* a = static_cast<const Args*>(ctx);
    MomentumLoop(a->param + lo, a->vel + lo, a->grad + lo, hi - lo, a->lr, a->mu, a->wd, a->gs);
  }, &args);
  return info.Env().Undefined();
}

// softplusRowSum(out, x): out[i] = Σ_j softplus(x[i, j]); out has one element per row.
Napi::Value SoftplusRowSum(const Napi::CallbackInfo& info) {
  F32 out, x;
  size_t cols = 0;
  if (!GetF32s(info, {&out, &x}) || !RowsOf(info, "softplusRowSum", x.n, out.n, cols)) {
    return info.Env().Undefined();
  }
  const size_t rows = out.n;
  for (size_t i = 0; i < rows; ++i) {
    const float* xi = x.p + i * cols;
    double s = 0;
    for (size_t j = 0; j < cols; ++j) s += Softplus(xi[j]);
    out.p[i] = static_cast<float>(s);
  }
  return info.Env().Undefined();
}

// rowSquaredDistance(out, x, bias): out[i] = Σ_j (x[i, j] − bias[j])².
Napi::Value RowSquaredDistance(const Napi::CallbackInfo& info) {
  F32 out, x, bias;
  if (!GetF32s(info, {&out, &x, &bias}) ||
      !ExpectLength(info, "rowSquaredDistance", "x", x, out.n * bias.n)) {
    return info.Env().Undefined();
  }
  const size_t rows = out.n, cols = bias.n;
  for (size_t i = 0; i < rows; ++i) {
    const float* xi = x.p + i * cols;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t j = 0; j < cols; ++j) {
      const double d = static_cast<double>(xi[j]) - bias.p[j];
      s += d * d;
    }
    out.p[i] = static_cast<float>(s);
  }
  return info.Env().Undefined();
}

// softmaxRows(out, x, cols): each row of x mapped to exp(x − max) / Σ exp(x − max).
Napi::Value SoftmaxRows(const Napi::CallbackInfo& info) {
  F32 out, x;
  size_t rows = 0;
  if (!GetF32s(info, {&out, &x}) || !ExpectLength(info, "softmaxRows", "x", x, out.n)) return info.Env().Undefined();
  const double colsd = GetNumber(info, 2);
  const size_t cols = colsd > 0 ? static_cast<size_t>(colsd) : 0;
  if (!RowsOf(info, "softmaxRows", out.n, cols, rows)) return info.Env().Undefined();
  for (size_t i = 0; i < rows; ++i) {
    const float* xi = x.p + i * cols;
    float* oi = out.p + i * cols;
    float mx = -INFINITY;
    for (size_t j = 0; j < cols; ++j) mx = std::max(mx, xi[j]);
    double s = 0;
    for (size_t j = 0; j < cols; ++j) {
      const float e = std::exp(xi[j] - mx);
      oi[j] = e;
      s += e;
    }
    const auto inv = static_cast<float>(1.0 / s);
    for (size_t j = 0; j < cols; ++j) oi[j] *= inv;
  }
  return info.Env().Undefined();
}

// sumSquaredDiff(a, b): Σ (a − b)² in double.
Napi::Value SumSquaredDiff(const Napi::CallbackInfo& info) {
  F32 a, b;
  if (!GetF32s(info, {&a, &b}) || !ExpectLength(info, "sumSquaredDiff", "b", b, a.n)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), SumSquaredDiffLoop(a.p, b.p, a.n));
}

// sumSquares(x): Σ x² in double.
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  F32 x;
  if (!GetF32(info, 0, x)) return info.Env().Undefined();
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (size_t i = 0; i < x.n; ++i) s += static_cast<double>(x.p[i]) * x.p[i];
  return Napi::Number::New(info.Env(), s);
}

// blasInfo(): { config, corename } of the OpenBLAS this addon is linked to, the threads its products run on,
// and the SIMD clone its loops run (simd.h).
Napi::Value BlasInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  const char* config = openblas_get_config();
  const char* core = openblas_get_corename();
  o.Set("config", Napi::String::New(info.Env(), config != nullptr ? config : ""));
  o.Set("corename", Napi::String::New(info.Env(), core != nullptr ? core : ""));
  o.Set("threads", Napi::Number::New(info.Env(), dbn::PoolThreads()));
  o.Set("simd", Napi::String::New(info.Env(), SimdLevel()));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("linearSigmoid", Napi::Function::New(env, LinearSigmoid, "linearSigmoid"));
  exports.Set("addRowSigmoid", Napi::Function::New(env, AddRowSigmoid, "addRowSigmoid"));
  exports.Set("addRow", Napi::Function::New(env, AddRow, "addRow"));
  exports.Set("bernoulli", Napi::Function::New(env, Bernoulli, "bernoulli"));
  exports.Set("relu", Napi::Function::New(env, ReluK, "relu"));
  exports.Set("noisyRelu", Napi::Function::New(env, NoisyRelu, "noisyRelu"));
  exports.Set("add", Napi::Function::New(env, Add, "add"));
  exports.Set("sub", Napi::Function::New(env, Sub, "sub"));
  exports.Set("mul", Napi::Function::New(env, Mul, "mul"));
  exports.Set("scale", Napi::Function::New(env, Scale, "scale"));
  exports.Set("axpy", Napi::Function::New(env, Axpy, "axpy"));
  exports.Set("colSum", Napi::Function::New(env, ColSum, "colSum"));
  exports.Set("momentumStep", Napi::Function::New(env, MomentumStep, "momentumStep"));
  exports.Set("softplusRowSum", Napi::Function::New(env, SoftplusRowSum, "softplusRowSum"));
  exports.Set("rowSquaredDistance", Napi::Function::New(env, RowSquaredDistance, "rowSquaredDistance"));
  exports.Set("softmaxRows", Napi::Function::New(env, SoftmaxRows, "softmaxRows"));
  exports.Set("sigmoidBackward", Napi::Function::New(env, SigmoidBackward, "sigmoidBackward"));
  exports.Set("reluBackward", Napi::Function::New(env, ReluBackward, "reluBackward"));
  exports.Set("sumSquaredDiff", Napi::Function::New(env, SumSquaredDiff, "sumSquaredDiff"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
  exports.Set("deltaStep", Napi::Function::New(env, DeltaStep, "deltaStep"));
  exports.Set("fillUniform", Napi::Function::New(env, FillUniform, "fillUniform"));
  exports.Set("sparseSelect", Napi::Function::New(env, SparseSelect, "sparseSelect"));
  exports.Set("hostFrame", Napi::Function::New(env, HostFrame, "hostFrame"));
  exports.Set("cdGradient", Napi::Function::New(env, CdGradient, "cdGradient"));
  exports.Set("firstInvalid", Napi::Function::New(env, FirstInvalid, "firstInvalid"));
  exports.Set("blasInfo", Napi::Function::New(env, BlasInfo, "blasInfo"));
  return exports;
}

}  // namespace

NODE_API_MODULE(dbn_native, Init)
