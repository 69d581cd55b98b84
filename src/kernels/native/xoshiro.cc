// xoshiro128** fills with jump-ahead; see xoshiro.h. The generator's step is linear over GF(2) on
// its 128 state bits, so n steps are one 128×128 bit matrix, T^n: eight streams start from
// s, T^L·s, …, T^{7L}·s and each runs L steps, which is the serial sequence cut into eight parts.
#include "xoshiro.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "parallel.h"
#include "simd.h"

namespace dbn {

namespace {

using Bits = std::array<uint32_t, 4>;

// A 128×128 matrix over GF(2) by columns: col[j] = M·e_j (bit j of a state: word j / 32, bit j % 32).
struct Matrix {
  std::array<Bits, 128> col;
};

void Serial(float* out, size_t n, uint32_t st[4]) {
  uint32_t s0 = st[0], s1 = st[1], s2 = st[2], s3 = st[3];
  uint32_t r = 0;
  for (size_t i = 0; i < n; ++i) {
    XoshiroNext(s0, s1, s2, s3, r);
    out[i] = static_cast<float>(r >> 8) * 5.9604644775390625e-8f;
  }
  st[0] = s0;
  st[1] = s1;
  st[2] = s2;
  st[3] = s3;
}

Bits Apply(const Matrix& m, const Bits& x) {
  Bits y{0, 0, 0, 0};
  for (size_t j = 0; j < 128; ++j) {
    if ((x[j >> 5] >> (j & 31)) & 1u) {
      for (size_t w = 0; w < 4; ++w) y[w] ^= m.col[j][w];
    }
  }
  return y;
}

Matrix Multiply(const Matrix& a, const Matrix& b) {
  Matrix c;
  for (size_t j = 0; j < 128; ++j) c.col[j] = Apply(a, b.col[j]);
  return c;
}

Matrix OneStep() {
  Matrix m;
  for (size_t j = 0; j < 128; ++j) {
    Bits e{0, 0, 0, 0};
    e[j >> 5] = 1u << (j & 31);
    uint32_t unused = 0;
    XoshiroNext(e[0], e[1], e[2], e[3], unused);
    m.col[j] = e;
  }
  return m;
}

// T^L, built from T^(2^i) (kept per thread) and remembered for the last few L (the sizes a run
// fills repeat: one per layer and minibatch shape).
const Matrix& Jump(uint64_t len) {
  thread_local std::vector<Matrix> powers;
  struct Entry {
    uint64_t len = 0;
    Matrix m;
  };
  thread_local std::array<Entry, 4> cache;
  thread_local size_t next = 0;
  for (const auto& e : cache) {
    if (e.len == len) return e.m;
  }
  if (powers.empty()) powers.push_back(OneStep());
  Matrix result;
  bool any = false;
  for (size_t i = 0; (len >> i) != 0; ++i) {
    while (powers.size() <= i) powers.push_back(Multiply(powers.back(), powers.back()));
    if (((len >> i) & 1u) == 0) continue;
    result = any ? Multiply(result, powers[i]) : powers[i];
    any = true;
  }
  Entry& slot = cache[next];
  next = (next + 1) % cache.size();
  slot.len = len;
  slot.m = result;
  return slot.m;
}

}  // namespace

void FillUniformXoshiro(float* out, size_t n, uint32_t state[4]) {
  // Below this the serial loop is as fast as setting up eight streams.
  constexpr size_t kMinParallel = 8192;
  // From this on the eight streams become eight per thread of the pool, each thread's eight in one
  // call (the hand-off costs about what this many numbers take on one thread).
  constexpr size_t kMinThreads = 32768;
  constexpr size_t kMaxGroups = 8;
  // Only the AVX2 and AVX-512 clones run the eight lanes in one register; elsewhere (the baseline
  // x86-64 clone, other compilers and architectures) they are emulated, slower than the serial loop.
  static const bool lanes_in_registers = std::strcmp(SimdLevel(), "avx2") == 0 || std::strcmp(SimdLevel(), "avx512") == 0;
  if (n < kMinParallel || !lanes_in_registers) {
    Serial(out, n, state);
    return;
  }
  const size_t groups = n >= kMinThreads ? std::min(kMaxGroups, static_cast<size_t>(PoolThreads())) : 1;
  const size_t lanes = kXoshiroLanes * groups;
  const size_t len = n / lanes;
  const Matrix& jump = Jump(len);
  uint32_t streams[kMaxGroups][4][kXoshiroLanes];
  struct Groups {
    uint32_t (*lanes)[4][kXoshiroLanes];
    float* out;
    size_t len;
  } x{streams, out, len};
  Bits s{state[0], state[1], state[2], state[3]};
  for (size_t l = 0; l < lanes; ++l) {
    if (l > 0) s = Apply(jump, s);
    for (size_t w = 0; w < 4; ++w) streams[l / kXoshiroLanes][w][l % kXoshiroLanes] = s[w];
  }
  // stream l fills out[l·len, (l+1)·len): group g's eight streams start at g·8·len
  ParallelTasks(static_cast<int>(groups), [](const void* ctx, int g) {
    const auto& y = *static_cast<const Groups*>(ctx);
    XoshiroLanes(y.lanes[g], y.out + static_cast<size_t>(g) * kXoshiroLanes * y.len, y.len);
  }, &x);
  // the last stream ends where the serial loop would be after lanes·len steps
  uint32_t rest[4];
  for (size_t w = 0; w < 4; ++w) rest[w] = streams[groups - 1][w][kXoshiroLanes - 1];
  Serial(out + lanes * len, n - lanes * len, rest);
  for (size_t w = 0; w < 4; ++w) state[w] = rest[w];
}

}  // namespace dbn
