// Scalar math written so that loops calling it vectorize (inlined into every SIMD clone of a loop).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace dbn {

inline uint32_t BitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float FloatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// exp(x) written so that the compiler vectorizes loops that call it (glibc's expf is scalar here):
// x = n·ln2 + r with |r| ≤ ln2/2, exp(r) by the Cephes expf polynomial (about 1 ulp), 2^n put
// into the exponent bits. Overflow gives +inf, underflow below 2^-126 gives 0, NaN stays NaN.
inline float Exp(float x) {
  constexpr float kHi = 88.3762626647949f;   // log(FLT_MAX)
  constexpr float kLo = -87.3365447505531f;  // log(FLT_MIN)
  constexpr float kShift = 12582912.0f;      // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits
  const float xc = x > kHi ? kHi : (x < kLo ? kLo : x);
  const float t = xc * 1.44269504088896341f + kShift;
  const float n = t - kShift;
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const float y = er * FloatOf((BitsOf(t) << 23) + 0x3f800000u);
  return x > kHi ? INFINITY : (x < kLo ? 0.0f : y);
}

// 1 / (1 + e^-z): in [0, 1] for every z (e^-z ≥ 0), NaN for NaN.
inline float Sigmoid(float z) { return 1.0f / (1.0f + Exp(-z)); }

// max(0, v) returning +0 for ±0 and keeping NaN, like Math.max(0, v).
inline float Relu(float v) { return v > 0.0f ? v : (v != v ? v : 0.0f); }

inline double Softplus(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

}  // namespace dbn
