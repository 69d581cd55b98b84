// The native backend's hot elementwise loops; see simd.h. Every function marked DBN_CLONES is
// compiled three times (baseline x86-64, x86-64-v3, x86-64-v4) and chosen at load time by the
// CPU; the baseline build flags (binding.gyp) let no AVX instruction outside those clones.
#include "simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "clones.h"
#include "vecmath.h"
#include "xoshiro.h"

// Two 8-lane vectors shuffled into one (indices ≥ 8 pick from the second): GCC's and Clang's builtins.
#if defined(__clang__)
#define DBN_SHUFFLE8(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define DBN_SHUFFLE8(a, b, ...) __builtin_shuffle(a, b, (U8){__VA_ARGS__})
#endif

namespace dbn {

DBN_CLONES void SigmoidBiasInPlace(float* c, size_t ldc, const float* bias, size_t rows, size_t cols) {
  for (size_t i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    for (size_t j = 0; j < cols; ++j) ci[j] = Sigmoid(ci[j] + bias[j]);
  }
}

DBN_CLONES void AddRowSigmoidLoop(float* out, const float* x, const float* bias, size_t rows, size_t cols) {
  for (size_t i = 0; i < rows; ++i) {
    const float* xi = x + i * cols;
    float* oi = out + i * cols;
    for (size_t j = 0; j < cols; ++j) oi[j] = Sigmoid(xi[j] + bias[j]);
  }
}

DBN_CLONES void AddRowLoop(float* out, const float* x, const float* bias, size_t rows, size_t cols) {
  for (size_t i = 0; i < rows; ++i) {
    const float* xi = x + i * cols;
    float* oi = out + i * cols;
    for (size_t j = 0; j < cols; ++j) oi[j] = xi[j] + bias[j];
  }
}

DBN_CLONES void BernoulliLoop(float* out, const float* p, const float* u, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = u[i] < p[i] ? 1.0f : 0.0f;
}

DBN_CLONES void MomentumLoop(float* param, float* velocity, const float* grad, size_t n, float lr, float mu, float wd, float gs) {
  for (size_t i = 0; i < n; ++i) {
    const float v = mu * velocity[i] + lr * (gs * grad[i] - wd * param[i]);
    velocity[i] = v;
    param[i] += v;
  }
}

DBN_CLONES void XoshiroLanes(uint32_t s[4][kXoshiroLanes], float* out, size_t len) {
  // GCC/Clang vector types: one 8-lane vector per state word (two SSE registers in the baseline
  // clone, one AVX register in the others)
  typedef uint32_t U8 __attribute__((vector_size(4 * kXoshiroLanes)));
  typedef int32_t I8 __attribute__((vector_size(4 * kXoshiroLanes)));
  typedef float F8 __attribute__((vector_size(4 * kXoshiroLanes)));
  constexpr size_t L = kXoshiroLanes, kBlock = 16;
  U8 s0, s1, s2, s3;
  std::memcpy(&s0, s[0], sizeof s0);
  std::memcpy(&s1, s[1], sizeof s1);
  std::memcpy(&s2, s[2], sizeof s2);
  std::memcpy(&s3, s[3], sizeof s3);
  F8 block[kBlock];
  for (size_t k0 = 0; k0 < len; k0 += kBlock) {
    const size_t m = std::min(kBlock, len - k0);
    for (size_t k = 0; k < m; ++k) {
      U8 r;
      XoshiroNext(s0, s1, s2, s3, r);
      // r >> 8 < 2^24: the signed conversion is exact (and one instruction, unlike the unsigned one)
      block[k] = __builtin_convertvector((I8)(r >> 8), F8) * 5.9604644775390625e-8f;
    }
    if (m == kBlock) {
      // an 8×8 transpose per half block (swap the off-diagonal d×d blocks for d = 4, 2, 1): lane l's
      // eight consecutive outputs in one vector, stored at once
      for (size_t h = 0; h < kBlock; h += L) {
        F8* b = block + h;
        for (size_t d : {size_t{4}, size_t{2}, size_t{1}}) {
          for (size_t i = 0; i < L; ++i) {
            if ((i & d) != 0) continue;
            const F8 lo = b[i], hi = b[i + d];
            if (d == 4) {
              b[i] = DBN_SHUFFLE8(lo, hi, 0, 1, 2, 3, 8, 9, 10, 11);
              b[i + d] = DBN_SHUFFLE8(lo, hi, 4, 5, 6, 7, 12, 13, 14, 15);
            } else if (d == 2) {
              b[i] = DBN_SHUFFLE8(lo, hi, 0, 1, 8, 9, 4, 5, 12, 13);
              b[i + d] = DBN_SHUFFLE8(lo, hi, 2, 3, 10, 11, 6, 7, 14, 15);
            } else {
              b[i] = DBN_SHUFFLE8(lo, hi, 0, 8, 2, 10, 4, 12, 6, 14);
              b[i + d] = DBN_SHUFFLE8(lo, hi, 1, 9, 3, 11, 5, 13, 7, 15);
            }
          }
        }
        for (size_t l = 0; l < L; ++l) std::memcpy(out + l * len + k0 + h, &b[l], sizeof(F8));
      }
    } else {
      for (size_t l = 0; l < L; ++l) {
        float* o = out + l * len + k0;
        for (size_t k = 0; k < m; ++k) o[k] = block[k][l];
      }
    }
  }
  std::memcpy(s[0], &s0, sizeof s0);
  std::memcpy(s[1], &s1, sizeof s1);
  std::memcpy(s[2], &s2, sizeof s2);
  std::memcpy(s[3], &s3, sizeof s3);
}

DBN_CLONES double SumSquaredDiffLoop(const float* a, const float* b, size_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return s;
}

DBN_CLONES void ColSumLoop(float* out, const float* x, size_t rows, size_t cols, size_t stride, double alpha, double beta) {
  constexpr size_t kBlock = 512;
  double acc[kBlock];
  for (size_t j0 = 0; j0 < cols; j0 += kBlock) {
    const size_t w = std::min(kBlock, cols - j0);
    std::fill(acc, acc + w, 0.0);
    for (size_t i = 0; i < rows; ++i) {
      const float* xi = x + i * stride + j0;
      for (size_t j = 0; j < w; ++j) acc[j] += xi[j];
    }
    float* o = out + j0;
    if (beta == 0) {
      for (size_t j = 0; j < w; ++j) o[j] = static_cast<float>(alpha * acc[j]);
    } else {
      for (size_t j = 0; j < w; ++j) o[j] = static_cast<float>(alpha * acc[j] + beta * o[j]);
    }
  }
}

DBN_CLONES size_t FirstOutsideLoop(const float* x, size_t n, float lo, float hi) {
  // Blocks without an early exit inside (so they vectorize); the first bad block is searched again.
  constexpr size_t kBlock = 1024;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t end = std::min(n, b + kBlock);
    int bad = 0;
    for (size_t i = b; i < end; ++i) bad |= static_cast<int>(!(x[i] >= lo && x[i] <= hi));
    if (bad != 0) {
      for (size_t i = b; i < end; ++i) {
        if (!(x[i] >= lo && x[i] <= hi)) return i;
      }
    }
  }
  return n;
}

namespace {

// The binary16 bit pattern nearest to x (ties to even; ±Infinity beyond ±65504; NaN quiet).
inline uint16_t HalfOf(float x) {
  const uint32_t u = BitsOf(x);
  const uint32_t a = u & 0x7fffffffu;
  const uint32_t sign = (u >> 16) & 0x8000u;
  if (a >= 0x477ff000u) return static_cast<uint16_t>(a > 0x7f800000u ? sign | 0x7e00u | ((a >> 13) & 0x3ffu) : sign | 0x7c00u);
  if (a < 0x38800000u) return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(static_cast<double>(FloatOf(a)) * 16777216.0)));
  return static_cast<uint16_t>(sign | ((a - 0x37fff001u + ((a >> 13) & 1u)) >> 13));
}

inline float FloatOfHalf(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  if (e == 0) return FloatOf(sign | BitsOf(static_cast<float>(m) * 5.9604644775390625e-8f));
  if (e == 0x1f) return FloatOf(sign | 0x7f800000u | (m << 13));
  return FloatOf(sign | ((e + 112) << 23) | (m << 13));
}


#if defined(DBN_X86_DISPATCH)
__attribute__((target("avx,f16c"))) size_t ToHalvesF16c(const float* x, uint16_t* h, size_t n) {
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m128i v = _mm256_cvtps_ph(_mm256_loadu_ps(x + k), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + k), v);
  }
  return k;
}

__attribute__((target("avx,f16c"))) size_t FromHalvesF16c(const uint16_t* h, float* x, size_t n) {
  size_t k = 0;
  for (; k + 8 <= n; k += 8) _mm256_storeu_ps(x + k, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + k))));
  return k;
}

bool HasF16c() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  }();
  return has;
}
#endif

}  // namespace

void ToHalves(const float* x, uint16_t* h, size_t n) {
  size_t k = 0;
#if defined(DBN_X86_DISPATCH)
  if (HasF16c()) k = ToHalvesF16c(x, h, n);
#endif
  for (; k < n; ++k) h[k] = HalfOf(x[k]);
}

void FromHalves(const uint16_t* h, float* x, size_t n) {
  size_t k = 0;
#if defined(DBN_X86_DISPATCH)
  if (HasF16c()) k = FromHalvesF16c(h, x, n);
#endif
  for (; k < n; ++k) x[k] = FloatOfHalf(h[k]);
}

const char* SimdLevel() {
#if defined(DBN_X86_DISPATCH)
  __builtin_cpu_init();
#if !defined(DBN_SIMD_MAX_AVX2)
  if (__builtin_cpu_supports("x86-64-v4")) return "avx512";
#endif
  if (__builtin_cpu_supports("x86-64-v3")) return "avx2";
  return "baseline";
#else
  return "compiler target";
#endif
}

}  // namespace dbn
