// The generator's uniforms for fillUniform: xoshiro128** (src/random.ts) in C++, on eight
// interleaved streams for long fills — the same numbers as the serial loop, bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dbn {

// out[i] = the top 24 bits of the (i+1)-th next xoshiro128** output · 2^-24 for i < n, and `state`
// (four words) advanced by n steps: exactly src/random.ts's Random.fillUniform. A long fill is cut
// into eight equal parts, each started from the state it would have reached (jump-ahead over
// GF(2)), generated side by side in vector lanes; the rest runs serially.
void FillUniformXoshiro(float* out, size_t n, uint32_t state[4]);

}  // namespace dbn
