// The generator's uniforms for fillUniform: xoshiro128** (src/random.ts) in C++, on eight
// interleaved streams for long fills — the same numbers as the serial loop, bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dbn {

// One xoshiro128** step on each lane of T (uint32_t, or a GCC/Clang vector of them): `out` gets the
// output of the state before the step, (s1·5 rotated left by 7)·9 mod 2^32, and the state advances.
// The products are shifts and adds (no 32-bit vector multiply before SSE4.1); the same value. (Vectors
// by reference only: passing one by value would change the ABI between the addon's clones.)
template <typename T>
inline void XoshiroNext(T& s0, T& s1, T& s2, T& s3, T& out) {
  const T x = (s1 << 2) + s1;
  const T y = (x << 7) | (x >> 25);
  out = (y << 3) + y;
  const T t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = (s3 << 11) | (s3 >> 21);
}

// out[i] = the top 24 bits of the (i+1)-th next xoshiro128** output · 2^-24 for i < n, and `state`
// (four words) advanced by n steps: exactly src/random.ts's Random.fillUniform. A long fill is cut
// into eight equal parts (eight per thread of the pool for the longest), each started from the state
// it would have reached (jump-ahead over GF(2)), generated side by side in vector lanes, each thread's
// eight in one call; the rest runs serially.
void FillUniformXoshiro(float* out, size_t n, uint32_t state[4]);

}  // namespace dbn
