// The four-Russians product for 0/1 left factors; see binary_tables.h.
//
// c = a·wᵀ with a 0/1 and w n×k: for a block of 32 columns of c (32 rows of w) and 8 groups of four
// of a's columns, a table holds, per group and per 4-bit pattern, the sum of w's entries the
// pattern picks (16 entries of 32 floats: 16 KB for the 8 groups, in L1). Each row of c then adds
// one entry per group — 4 vector additions per 32 columns and 4 of a's entries, where the dense
// product makes 16 vector multiply-adds. The table costs 11 additions and 16 stores per group and 8
// columns whatever the number of rows, so it pays from about 16 rows on (kTableMinRows). w's
// entries are read 8 rows × 8 columns at a time and transposed in registers.
#include "binary_tables.h"

#include <algorithm>
#include <cstring>

#include "clones.h"

// Two 8-lane vectors shuffled into one (indices ≥ 8 pick from the second): GCC's and Clang's builtins.
#if defined(__clang__)
#define DBN_TSHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define DBN_TSHUFFLE(a, b, ...) __builtin_shuffle(a, b, (I8){__VA_ARGS__})
#endif

namespace dbn {

namespace {

typedef float V8 __attribute__((vector_size(32)));
typedef int I8 __attribute__((vector_size(32)));

__attribute__((always_inline)) inline V8 Load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

__attribute__((always_inline)) inline void Store8(float* p, const V8& v) { std::memcpy(p, &v, sizeof v); }

// Groups per table, vectors of 8 columns per block of c's columns, rows of c summed side by side.
constexpr size_t kGroups = 8, kVectors = 4, kWidth = 8 * kVectors, kSideBySide = 2;

// The bits of a row's entries [j, j + 4) (past `k`: 0); `bad` set when one is not 0 or 1.
inline uint8_t NibbleSerial(const float* row, size_t j, size_t k, uint32_t& bad) {
  uint32_t bits = 0;
  for (size_t t = 0; t < 4 && j + t < k; ++t) {
    const float v = row[j + t];
    bits |= static_cast<uint32_t>(v == 1.0f) << t;
    bad |= static_cast<uint32_t>((v != 0.0f) & (v != 1.0f));
  }
  return static_cast<uint8_t>(bits);
}

#if defined(DBN_X86_DISPATCH)
// A row's nibbles 8 entries (two groups) at a time (AVX2): two compares give the masks of ones and
// zeros; returns where the serial tail starts.
__attribute__((target("avx2"))) size_t NibbleRowAvx2(const float* row, size_t k, uint8_t* out, uint32_t& bad) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  uint32_t nonBinary = 0;
  size_t j = 0;
  for (; j + 8 <= k; j += 8) {
    const __m256 v = _mm256_loadu_ps(row + j);
    const auto ones = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, one, _CMP_EQ_OQ)));
    const auto zeros = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_EQ_OQ)));
    nonBinary |= (ones | zeros) ^ 0xffu;
    out[j / 4] = static_cast<uint8_t>(ones & 15u);
    out[j / 4 + 1] = static_cast<uint8_t>(ones >> 4);
  }
  bad |= nonBinary;
  return j;
}
#endif

// The 8×8 block w[q·ldw + t] (q rows from `row0`, t entries from `h0`) transposed: x[t][q]. Rows at or
// past `rowEnd` and entries at or past `k` read as 0.
__attribute__((always_inline)) inline void LoadTransposed(const float* w, size_t ldw, size_t k, size_t row0, size_t rowEnd, size_t h0,
                                                          V8 x[8]) {
  V8 r[8];
  for (size_t q = 0; q < 8; ++q) {
    const size_t i = row0 + q;
    if (i < rowEnd && h0 + 8 <= k) {
      r[q] = Load8(w + i * ldw + h0);
    } else {
      r[q] = V8{};
      if (i < rowEnd) {
        for (size_t t = 0; t < 8 && h0 + t < k; ++t) r[q][t] = w[i * ldw + h0 + t];
      }
    }
  }
  const V8 a0 = DBN_TSHUFFLE(r[0], r[1], 0, 8, 1, 9, 4, 12, 5, 13), a1 = DBN_TSHUFFLE(r[0], r[1], 2, 10, 3, 11, 6, 14, 7, 15);
  const V8 a2 = DBN_TSHUFFLE(r[2], r[3], 0, 8, 1, 9, 4, 12, 5, 13), a3 = DBN_TSHUFFLE(r[2], r[3], 2, 10, 3, 11, 6, 14, 7, 15);
  const V8 a4 = DBN_TSHUFFLE(r[4], r[5], 0, 8, 1, 9, 4, 12, 5, 13), a5 = DBN_TSHUFFLE(r[4], r[5], 2, 10, 3, 11, 6, 14, 7, 15);
  const V8 a6 = DBN_TSHUFFLE(r[6], r[7], 0, 8, 1, 9, 4, 12, 5, 13), a7 = DBN_TSHUFFLE(r[6], r[7], 2, 10, 3, 11, 6, 14, 7, 15);
  const V8 b0 = DBN_TSHUFFLE(a0, a2, 0, 1, 8, 9, 4, 5, 12, 13), b1 = DBN_TSHUFFLE(a0, a2, 2, 3, 10, 11, 6, 7, 14, 15);
  const V8 b2 = DBN_TSHUFFLE(a1, a3, 0, 1, 8, 9, 4, 5, 12, 13), b3 = DBN_TSHUFFLE(a1, a3, 2, 3, 10, 11, 6, 7, 14, 15);
  const V8 b4 = DBN_TSHUFFLE(a4, a6, 0, 1, 8, 9, 4, 5, 12, 13), b5 = DBN_TSHUFFLE(a4, a6, 2, 3, 10, 11, 6, 7, 14, 15);
  const V8 b6 = DBN_TSHUFFLE(a5, a7, 0, 1, 8, 9, 4, 5, 12, 13), b7 = DBN_TSHUFFLE(a5, a7, 2, 3, 10, 11, 6, 7, 14, 15);
  x[0] = DBN_TSHUFFLE(b0, b4, 0, 1, 2, 3, 8, 9, 10, 11);
  x[4] = DBN_TSHUFFLE(b0, b4, 4, 5, 6, 7, 12, 13, 14, 15);
  x[1] = DBN_TSHUFFLE(b1, b5, 0, 1, 2, 3, 8, 9, 10, 11);
  x[5] = DBN_TSHUFFLE(b1, b5, 4, 5, 6, 7, 12, 13, 14, 15);
  x[2] = DBN_TSHUFFLE(b2, b6, 0, 1, 2, 3, 8, 9, 10, 11);
  x[6] = DBN_TSHUFFLE(b2, b6, 4, 5, 6, 7, 12, 13, 14, 15);
  x[3] = DBN_TSHUFFLE(b3, b7, 0, 1, 2, 3, 8, 9, 10, 11);
  x[7] = DBN_TSHUFFLE(b3, b7, 4, 5, 6, 7, 12, 13, 14, 15);
}

// One group's 16 entries for vector v from its four columns x[0..3]: entry p sums the x[t] of p's set
// bits, each built from the entry without its lowest bit (the order is fixed: the same bits always).
__attribute__((always_inline)) inline void Tabulate(V8 (*t)[kVectors], size_t v, const V8* x) {
  t[0][v] = V8{};
  t[1][v] = x[0];
  t[2][v] = x[1];
  t[3][v] = x[1] + x[0];
  t[4][v] = x[2];
  t[5][v] = x[2] + x[0];
  t[6][v] = x[2] + x[1];
  t[7][v] = t[6][v] + x[0];
  t[8][v] = x[3];
  t[9][v] = x[3] + x[0];
  t[10][v] = x[3] + x[1];
  t[11][v] = t[10][v] + x[0];
  t[12][v] = x[3] + x[2];
  t[13][v] = t[12][v] + x[0];
  t[14][v] = t[12][v] + x[1];
  t[15][v] = t[14][v] + x[0];
}

}  // namespace

bool FindNibbleRows(size_t m, size_t k, const float* a, NibbleBuffer& buffer, NibbleRows& rows) {
  if (m == 0 || k == 0) return false;
  const size_t groups = (k + 3) / 4;
  if (buffer.bytes.size() < m * groups) buffer.bytes.resize(m * groups);
  uint8_t* out = buffer.bytes.data();
  for (size_t i = 0; i < m; ++i) {
    const float* row = a + i * k;
    uint8_t* o = out + i * groups;
    uint32_t bad = 0;
    size_t j = 0;
#if defined(DBN_X86_DISPATCH)
    if (HasAvx2()) j = NibbleRowAvx2(row, k, o, bad);
#endif
    for (; j < k; j += 4) o[j / 4] = NibbleSerial(row, j, k, bad);
    if (bad != 0) return false;
  }
  rows.nibbles = out;
  rows.groups = groups;
  return true;
}

DBN_CLONES void BinaryTablesProduct(const NibbleRows& rows, const float* w, size_t ldw, size_t k, float alpha, float beta, float* c,
                                    size_t ldc, size_t r0, size_t r1, size_t c0, size_t c1) {
  if (r1 <= r0 || c1 <= c0) return;
  const size_t groups = rows.groups, count = r1 - r0;
  thread_local std::vector<float> scratch;
  if (scratch.size() < count * kWidth) scratch.resize(count * kWidth);
  float* acc = scratch.data();
  alignas(64) V8 table[kGroups][16][kVectors];
  for (size_t j0 = c0; j0 < c1; j0 += kWidth) {
    const size_t vectors = std::min(kVectors, (c1 - j0 + 7) / 8);
    for (size_t g0 = 0; g0 < groups; g0 += kGroups) {
      const size_t gc = std::min(kGroups, groups - g0);
      for (size_t v = 0; v < vectors; ++v) {
        for (size_t g = 0; g < gc; g += 2) {
          V8 x[8];
          LoadTransposed(w, ldw, k, j0 + 8 * v, c1, 4 * (g0 + g), x);
          Tabulate(table[g], v, x);
          if (g + 1 < gc) Tabulate(table[g + 1], v, x + 4);
        }
      }
      const uint8_t* nib = rows.nibbles + g0;
      size_t i = r0;
      if (vectors == kVectors) {
        // two rows side by side: eight independent sums in registers
        for (; i + kSideBySide <= r1; i += kSideBySide) {
          V8 s[kSideBySide][kVectors];
          float* at = acc + (i - r0) * kWidth;
          for (size_t u = 0; u < kSideBySide; ++u) {
            for (size_t v = 0; v < kVectors; ++v) s[u][v] = g0 == 0 ? V8{} : Load8(at + u * kWidth + 8 * v);
          }
          for (size_t g = 0; g < gc; ++g) {
            for (size_t u = 0; u < kSideBySide; ++u) {
              const V8* entry = table[g][nib[(i + u) * groups + g]];
              for (size_t v = 0; v < kVectors; ++v) s[u][v] += entry[v];
            }
          }
          for (size_t u = 0; u < kSideBySide; ++u) {
            for (size_t v = 0; v < kVectors; ++v) Store8(at + u * kWidth + 8 * v, s[u][v]);
          }
        }
      }
      for (; i < r1; ++i) {
        float* at = acc + (i - r0) * kWidth;
        const uint8_t* ni = nib + i * groups;
        for (size_t v = 0; v < vectors; ++v) {
          V8 s = g0 == 0 ? V8{} : Load8(at + 8 * v);
          for (size_t g = 0; g < gc; ++g) s += table[g][ni[g]][v];
          Store8(at + 8 * v, s);
        }
      }
    }
    const size_t width = std::min(kWidth, c1 - j0);
    for (size_t i = r0; i < r1; ++i) {
      const float* from = acc + (i - r0) * kWidth;
      float* ci = c + i * ldc + j0;
      for (size_t j = 0; j < width; ++j) ci[j] = beta != 0.0f ? from[j] * alpha + ci[j] * beta : from[j] * alpha;
    }
  }
}

}  // namespace dbn
