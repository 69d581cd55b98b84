// dbn_native: the native backend's kernels. Matrix products go to CBLAS sgemm (OpenBLAS);
// everything else is a fused loop over Float32Array memory, read and written in place.
//
// Every function takes Float32Arrays (zero-copy; N-API hands back data already offset by
// byteOffset) and checks each array's length against the sizes it is told before touching
// memory, so a wrong call from JavaScript raises a RangeError/TypeError instead of corrupting
// the heap. Elementwise kernels may be called with `out` equal to an input.
#include <napi.h>

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

// Elementwise kernels over at least this many elements are cut into blocks over the pool.
constexpr size_t kParallelGrain = size_t{1} << 15;

struct F32 {
  float* p;
  size_t n;
};

// Reads argument `i` as a typed array of `want` (named `what` in the error); throws a TypeError
// and returns false otherwise.
template <typename T>
bool GetTyped(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type want, const char* what, T*& p, size_t& n) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  size_t offset = 0;
  if (i >= info.Length() ||
      napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, &buffer, &offset) != napi_ok ||
      type != want) {
    Napi::TypeError::New(info.Env(), "dbn_native: argument " + std::to_string(i) + " must be a " + what)
        .ThrowAsJavaScriptException();
    return false;
  }
  p = static_cast<T*>(data);
  n = length;
  return true;
}

// Reads argument `i` as a Float32Array; throws a TypeError and returns false otherwise.
bool GetF32(const Napi::CallbackInfo& info, size_t i, F32& out) {
  return GetTyped(info, i, napi_float32_array, "Float32Array", out.p, out.n);
}

bool GetF32s(const Napi::CallbackInfo& info, std::initializer_list<F32*> arrays) {
  size_t i = 0;
  for (F32* a : arrays) {
    if (!GetF32(info, i++, *a)) return false;
  }
  return true;
}

double GetNumber(const Napi::CallbackInfo& info, size_t i) {
  double v = 0;
  if (i < info.Length()) napi_get_value_double(info.Env(), info[i], &v);
  return v;
}

bool GetBool(const Napi::CallbackInfo& info, size_t i) {
  bool v = false;
  if (i < info.Length()) napi_get_value_bool(info.Env(), info[i], &v);
  return v;
}

// Throws a RangeError unless `a.n == expected`.
bool ExpectLength(const Napi::CallbackInfo& info, const char* kernel, const char* name, const F32& a, size_t expected) {
  if (a.n == expected) return true;
  Napi::RangeError::New(info.Env(), std::string("dbn_native.") + kernel + ": '" + name + "' has " + std::to_string(a.n) +
                                        " elements, expected " + std::to_string(expected))
      .ThrowAsJavaScriptException();
  return false;
}

// Length of a row-broadcast operand: rows = total / cols, exact.
bool RowsOf(const Napi::CallbackInfo& info, const char* kernel, size_t total, size_t cols, size_t& rows) {
  if (cols == 0 ? total == 0 : total % cols == 0) {
    rows = cols == 0 ? 0 : total / cols;
    return true;
  }
  Napi::RangeError::New(info.Env(), std::string("dbn_native.") + kernel + ": " + std::to_string(total) +
                                        " elements are not a whole number of rows of " + std::to_string(cols))
      .ThrowAsJavaScriptException();
  return false;
}


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

// linearSigmoid(out, x, w, bias, m, n, k, transW): out[m×n] = σ(x·op(w) + bias), x m×k, op(w)
// k×n (w n×k when transW). The sigmoid runs on each block of the product as soon as it is
// computed (in cache, on the thread that computed it); the values are those of gemm followed by
// addRowSigmoid.
Napi::Value LinearSigmoid(const Napi::CallbackInfo& info) {
  F32 out, x, w, bias;
  if (!GetF32s(info, {&out, &x, &w, &bias})) return info.Env().Undefined();
  const double md = GetNumber(info, 4), nd = GetNumber(info, 5), kd = GetNumber(info, 6);
  if (!(md >= 0 && nd >= 0 && kd >= 0 && md <= 2147483647.0 && nd <= 2147483647.0 && kd <= 2147483647.0)) {
    Napi::RangeError::New(info.Env(), "dbn_native.linearSigmoid: sizes must be non-negative 32-bit integers")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const auto m = static_cast<size_t>(md), n = static_cast<size_t>(nd), k = static_cast<size_t>(kd);
  const bool transW = GetBool(info, 7);
  if (!ExpectLength(info, "linearSigmoid", "out", out, m * n) || !ExpectLength(info, "linearSigmoid", "x", x, m * k) ||
      !ExpectLength(info, "linearSigmoid", "w", w, k * n) || !ExpectLength(info, "linearSigmoid", "bias", bias, n)) {
    return info.Env().Undefined();
  }
  if (m == 0 || n == 0) return info.Env().Undefined();
  const float* b = bias.p;
  Epilogue sigmoid{[](const void* ctx, float* c, size_t ldc, size_t row0, size_t rows, size_t col0, size_t cols) {
                     SigmoidBiasInPlace(c + row0 * ldc + col0, ldc, static_cast<const float*>(ctx) + col0, rows, cols);
                   },
                   b};
  if (k == 0) {
    std::fill(out.p, out.p + m * n, 0.0f);
    sigmoid.apply(b, out.p, n, 0, m, 0, n);
    return info.Env().Undefined();
  }
  ParallelSgemm(false, transW, m, n, k, 1.0f, x.p, w.p, 0.0f, out.p, &sigmoid);
  return info.Env().Undefined();
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
  ColSumLoop(out.p, x.p, rows, out.n, GetNumber(info, 2), GetNumber(info, 3));
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

struct U16 {
  uint16_t* p;
  size_t n;
};

// Reads argument `i` as a Uint16Array; throws a TypeError and returns false otherwise.
bool GetU16(const Napi::CallbackInfo& info, size_t i, U16& out) {
  return GetTyped(info, i, napi_uint16_array, "Uint16Array", out.p, out.n);
}


// deltaStep(cur, base, remotes, baseNext, curNext, delta, half, share, keep) → [Σ d², overflow]:
// one publication point of peer-to-peer training, in blocks that stay in cache. With
// d = float32((cur − base)·share) in double arithmetic (as JavaScript computes it):
// delta = d (float32 mode) or half = binary16(d), nearest, ties to even (half mode: delta is
// empty); baseNext = base + sent + r with sent = d or the value of half; curNext =
// (keep ? base + d : cur) + r; r = the Float32Arrays of the array `remotes` summed in order,
// each partial sum rounded to float32 (0 for none). Each output is computed in double and
// rounded once, like the TypeScript loop. overflow: some half is ±Inf or NaN.
Napi::Value DeltaStep(const Napi::CallbackInfo& info) {
  F32 cur, base, baseNext, curNext, delta;
  U16 half;
  if (!GetF32(info, 0, cur) || !GetF32(info, 1, base) || !GetF32(info, 3, baseNext) || !GetF32(info, 4, curNext) ||
      !GetF32(info, 5, delta) || !GetU16(info, 6, half)) {
    return info.Env().Undefined();
  }
  const size_t n = cur.n;
  if (info.Length() < 3 || !info[2].IsArray()) {
    Napi::TypeError::New(info.Env(), "dbn_native: argument 2 must be an array of Float32Arrays").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const Napi::Array list = info[2].As<Napi::Array>();
  std::vector<const float*> remotes;
  for (uint32_t j = 0; j < list.Length(); ++j) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    napi_value buffer;
    size_t offset = 0;
    if (napi_get_typedarray_info(info.Env(), list.Get(j), &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_float32_array) {
      Napi::TypeError::New(info.Env(), "dbn_native.deltaStep: remotes[" + std::to_string(j) + "] must be a Float32Array").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    if (!ExpectLength(info, "deltaStep", "remotes[j]", {nullptr, length}, n)) return info.Env().Undefined();
    remotes.push_back(static_cast<const float*>(data));
  }
  const bool f16 = delta.n == 0 && n > 0;
  if (!ExpectLength(info, "deltaStep", "base", base, n) || !ExpectLength(info, "deltaStep", "baseNext", baseNext, n) ||
      !ExpectLength(info, "deltaStep", "curNext", curNext, n) ||
      !ExpectLength(info, "deltaStep", f16 ? "half" : "delta", {nullptr, f16 ? half.n : delta.n}, n) ||
      (!f16 && !ExpectLength(info, "deltaStep", "half", {nullptr, half.n}, 0))) {
    return info.Env().Undefined();
  }
  const double share = GetNumber(info, 7);
  const bool keep = GetBool(info, 8);
  const size_t nr = remotes.size();
  constexpr size_t kBlock = 512;
  float dbuf[kBlock];
  float qbuf[kBlock];
  float rbuf[kBlock];
  double sq = 0;
  uint32_t bad = 0;
  for (size_t s = 0; s < n; s += kBlock) {
    const size_t m = std::min(kBlock, n - s);
    const float* c = cur.p + s;
    const float* b = base.p + s;
    float* d = f16 ? dbuf : delta.p + s;
    double ls = 0;
#pragma omp simd reduction(+ : ls)
    for (size_t k = 0; k < m; ++k) {
      const float x = static_cast<float>((static_cast<double>(c[k]) - static_cast<double>(b[k])) * share);
      d[k] = x;
      ls += static_cast<double>(x) * static_cast<double>(x);
    }
    sq += ls;
    const float* sent = d;
    if (f16) {
      uint16_t* h = half.p + s;
      ToHalves(d, h, m);
#pragma omp simd reduction(| : bad)
      for (size_t k = 0; k < m; ++k) bad |= (h[k] & 0x7c00u) == 0x7c00u ? 1u : 0u;
      FromHalves(h, qbuf, m);
      sent = qbuf;
    }
    const float* r = rbuf;
    if (nr == 0) {
      std::fill(rbuf, rbuf + m, 0.0f);
    } else if (nr == 1) {
      r = remotes[0] + s;
    } else {
      std::copy(remotes[0] + s, remotes[0] + s + m, rbuf);
      for (size_t j = 1; j < nr; ++j) {
        const float* rj = remotes[j] + s;
#pragma omp simd
        for (size_t k = 0; k < m; ++k) rbuf[k] = static_cast<float>(static_cast<double>(rbuf[k]) + static_cast<double>(rj[k]));
      }
    }
    float* bn = baseNext.p + s;
    float* cn = curNext.p + s;
#pragma omp simd
    for (size_t k = 0; k < m; ++k) {
      const double v = r[k];
      bn[k] = static_cast<float>(static_cast<double>(b[k]) + static_cast<double>(sent[k]) + v);
      cn[k] = static_cast<float>((keep ? static_cast<double>(b[k]) + static_cast<double>(d[k]) : static_cast<double>(c[k])) + v);
    }
  }
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), sq));
  out.Set(1u, Napi::Boolean::New(info.Env(), bad != 0));
  return out;
}

// sparseSelect(cur, base, share, fraction, indices, values, sample) → count: the entries of
// d = (cur − base)·share (float64 arithmetic, as JavaScript computes it) with |d| ≥ θ and d ≠ 0
// (a NaN counts as ≥ θ), their indices and float32 values written in order; θ is the
// ⌊(1 − fraction)·m⌋-th smallest (0-based) of the m = min(n, sample.length) values |d| at
// elements ⌊i·n/m⌋. The same entries and values as the TypeScript loop of peer-training.ts.
Napi::Value SparseSelect(const Napi::CallbackInfo& info) {
  F32 cur, base, values;
  uint32_t* idx = nullptr;
  size_t idxN = 0;
  double* sample = nullptr;
  size_t sampleN = 0;
  if (!GetF32(info, 0, cur) || !GetF32(info, 1, base) || !GetTyped(info, 4, napi_uint32_array, "Uint32Array", idx, idxN) ||
      !GetF32(info, 5, values) || !GetTyped(info, 6, napi_float64_array, "Float64Array", sample, sampleN)) {
    return info.Env().Undefined();
  }
  const size_t n = cur.n;
  if (!ExpectLength(info, "sparseSelect", "base", base, n)) return info.Env().Undefined();
  if (idxN < n || values.n < n || sampleN == 0) {
    Napi::RangeError::New(info.Env(), "dbn_native.sparseSelect: 'indices' and 'values' need room for " + std::to_string(n) +
                                          " entries and 'sample' at least 1")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const double share = GetNumber(info, 2);
  const double fraction = GetNumber(info, 3);
  if (n == 0) return Napi::Number::New(info.Env(), 0);
  const size_t m = std::min(n, sampleN);
  for (size_t i = 0; i < m; ++i) {
    const size_t k = static_cast<size_t>(std::floor(static_cast<double>(i) * static_cast<double>(n) / static_cast<double>(m)));
    sample[i] = std::fabs((static_cast<double>(cur.p[k]) - static_cast<double>(base.p[k])) * share);
  }
  const auto q = static_cast<size_t>(std::min(static_cast<double>(m - 1), std::floor((1.0 - fraction) * static_cast<double>(m))));
  std::nth_element(sample, sample + q, sample + m);
  const double theta = sample[q];
  // In blocks: a branch-free pass that flags the entries (vectorized), then a scan that skips
  // eight flags at a time (about 1 in 100 entries is taken).
  constexpr size_t kBlock = 512;
  alignas(64) uint8_t flag[kBlock];
  size_t count = 0;
  for (size_t k0 = 0; k0 < n; k0 += kBlock) {
    const size_t len = std::min(kBlock, n - k0);
    const float* c = cur.p + k0;
    const float* b = base.p + k0;
    for (size_t j = 0; j < len; ++j) {
      const double x = (static_cast<double>(c[j]) - static_cast<double>(b[j])) * share;
      flag[j] = static_cast<uint8_t>(!(std::fabs(x) < theta) & (x != 0.0));
    }
    for (size_t j = len; j < ((len + 7) & ~size_t{7}); ++j) flag[j] = 0;
    for (size_t j = 0; j < len; j += 8) {
      uint64_t word;
      std::memcpy(&word, flag + j, 8);
      if (word == 0) continue;
      for (size_t i = j; i < j + 8 && i < len; ++i) {
        if (flag[i] != 0) {
          idx[count] = static_cast<uint32_t>(k0 + i);
          values.p[count++] = static_cast<float>((static_cast<double>(c[i]) - static_cast<double>(b[i])) * share);
        }
      }
    }
  }
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

// ---------------------------------------------------------------------------------------------
// Frames for outgoing peer deltas whose memory is recycled.
//
// A publication writes a megabyte delta into a fresh frame, which ZeroMQ sends without copying
// and releases whenever it is done; fresh memory costs page faults on its first write (about
// 0.3–0.5 ms per 1.57 MB here) and glibc hands large blocks back to the kernel when they are
// freed. hostFrame(bytes) returns a Buffer over a 64-byte aligned block whose finalizer (run
// once nothing references the Buffer: ZeroMQ has let go and V8 collected it) returns the block
// to a pool keyed by size, so later frames reuse memory that is already mapped. The pool holds
// at most kFramePoolBytes; beyond that blocks are freed.
constexpr size_t kFramePoolBytes = size_t{64} << 20;

struct FramePool {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;
  size_t bytes = 0;
};

FramePool& Frames() {
  static FramePool* pool = new FramePool();  // never destroyed: finalizers may run at exit
  return *pool;
}

void ReleaseFrame(napi_env, void* data, void* hint) {
  const auto bytes = static_cast<size_t>(reinterpret_cast<uintptr_t>(hint));
  FramePool& pool = Frames();
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    if (pool.bytes + bytes <= kFramePoolBytes) {
      pool.free[bytes].push_back(data);
      pool.bytes += bytes;
      return;
    }
  }
  std::free(data);
}

// hostFrame(bytes): a Buffer of `bytes` (≥ 1) uninitialized bytes, 64-byte aligned, recycled
// when collected; undefined where this runtime forbids external buffers.
Napi::Value HostFrame(const Napi::CallbackInfo& info) {
  const double bd = GetNumber(info, 0);
  if (!(bd >= 1 && bd <= 4294967296.0 && std::floor(bd) == bd)) {
    Napi::RangeError::New(info.Env(), "dbn_native.hostFrame: 'bytes' must be an integer from 1 to 2^32")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const auto bytes = static_cast<size_t>(bd);
  void* data = nullptr;
  FramePool& pool = Frames();
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    auto it = pool.free.find(bytes);
    if (it != pool.free.end() && !it->second.empty()) {
      data = it->second.back();
      it->second.pop_back();
      pool.bytes -= bytes;
    }
  }
  if (data == nullptr) data = std::aligned_alloc(64, (bytes + 63) & ~size_t{63});
  if (data == nullptr) {
    Napi::Error::New(info.Env(), "dbn_native.hostFrame: out of memory").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  napi_value out;
  const napi_status status =
      napi_create_external_buffer(info.Env(), bytes, data, ReleaseFrame, reinterpret_cast<void*>(static_cast<uintptr_t>(bytes)), &out);
  if (status != napi_ok) {
    std::free(data);
    // A pending exception (e.g. no external buffers in this runtime) is cleared: the caller allocates instead.
    if (info.Env().IsExceptionPending()) info.Env().GetAndClearPendingException();
    return info.Env().Undefined();
  }
  return Napi::Value(info.Env(), out);
}

// fillUniform(out, state): out[i] = the next xoshiro128** output's top 24 bits · 2^-24, the
// four-word state (Uint32Array) advanced in place: the numbers of src/random.ts's
// Random.fillUniform, in the same order (its loop, in C++).
Napi::Value FillUniform(const Napi::CallbackInfo& info) {
  F32 out;
  uint32_t* st = nullptr;
  size_t sn = 0;
  if (!GetF32(info, 0, out) || !GetTyped(info, 1, napi_uint32_array, "Uint32Array", st, sn)) return info.Env().Undefined();
  if (sn != 4) {
    Napi::RangeError::New(info.Env(), "dbn_native.fillUniform: 'state' has " + std::to_string(sn) + " words, expected 4")
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  uint32_t s0 = st[0], s1 = st[1], s2 = st[2], s3 = st[3];
  for (size_t i = 0; i < out.n; ++i) {
    const uint32_t x = s1 * 5u;
    const uint32_t r = ((x << 7) | (x >> 25)) * 9u;
    const uint32_t t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >> 21);
    out.p[i] = static_cast<float>(r >> 8) * 5.9604644775390625e-8f;
  }
  st[0] = s0;
  st[1] = s1;
  st[2] = s2;
  st[3] = s3;
  return info.Env().Undefined();
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
  exports.Set("blasInfo", Napi::Function::New(env, BlasInfo, "blasInfo"));
  return exports;
}

}  // namespace

NODE_API_MODULE(dbn_native, Init)
