// host_kernels: the addon's kernels over host arrays that peer-to-peer training uses (see
// host_kernels.h); like dbn_native.cc's, each checks every array's length before touching memory.
#include "host_kernels.h"

#include "napi_args.h"
#include "simd.h"
#include "xoshiro.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace dbn {

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
// Random.fillUniform, in the same order (xoshiro.cc: long fills on eight jump-ahead streams).
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
  FillUniformXoshiro(out.p, out.n, st);
  return info.Env().Undefined();
}

}  // namespace dbn
