// Sums of rows for products with a sparse 0/1 left factor; see binary_rows.h.
//
// CD-1's data are often binary (and sparse: 13 % ones in bench/cd1.ts's rows, ~19 % in binarized
// MNIST), so v·W and the gradient's vᵀ·h are a few hundred row additions instead of a dense
// product: a row of b is loaded and added once per 1 of op(a), 64 columns at a time in eight
// 8-lane accumulators (in registers), and nothing is done for the zeros. The scan that finds the
// pattern is branch-free (an index written for every entry, the count advanced only for ones) and
// stops at the end of the first row that passes the density bound.
#include "binary_rows.h"

#include <algorithm>
#include <cstring>

#include "clones.h"

namespace dbn {

namespace {

// Row `row` (cols entries) of a 0/1 matrix: the columns of its ones written from out[count] on (out has
// room for `cols` more), the new count returned; `bad` set when an entry is not 0 or 1.
size_t ScanRowSerial(const float* row, size_t j, size_t cols, uint32_t* out, size_t count, uint32_t& bad) {
  for (; j < cols; ++j) {
    const float v = row[j];
    out[count] = static_cast<uint32_t>(j);
    count += v == 1.0f ? 1 : 0;
    bad |= (v != 0.0f) & (v != 1.0f);
  }
  return count;
}

#if defined(DBN_X86_DISPATCH)
// The columns of the set bits of each byte value, for writing a group of eight's ones in one store.
struct BitColumns {
  uint8_t at[256][8];
  constexpr BitColumns() : at() {
    for (int mask = 0; mask < 256; ++mask) {
      int n = 0;
      for (int bit = 0; bit < 8; ++bit) {
        if ((mask >> bit) & 1) at[mask][n++] = static_cast<uint8_t>(bit);
      }
    }
  }
};
constexpr BitColumns kBitColumns;

// ScanRowSerial eight entries at a time (AVX2): two compares give the masks of ones and zeros, the
// ones' columns are stored as eight indices at once and the count advanced by their number. Returns
// the count after the whole groups of eight; `done` gets where the serial tail starts.
__attribute__((target("avx2,popcnt"))) size_t ScanRowAvx2(const float* row, size_t cols, uint32_t* out, size_t count,
                                                          uint32_t& bad, size_t& done) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  uint32_t nonBinary = 0;
  size_t j = 0;
  for (; j + 8 <= cols; j += 8) {
    const __m256 v = _mm256_loadu_ps(row + j);
    const auto ones = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, one, _CMP_EQ_OQ)));
    const auto zeros = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_EQ_OQ)));
    nonBinary |= (ones | zeros) ^ 0xffu;
    uint64_t bytes;
    std::memcpy(&bytes, kBitColumns.at[ones], 8);
    const __m256i columns = _mm256_add_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes))),
                                             _mm256_set1_epi32(static_cast<int>(j)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + count), columns);
    count += static_cast<size_t>(__builtin_popcount(ones));
  }
  bad |= nonBinary;
  done = j;
  return count;
}
#endif

// Rows r < rows of a (rows×cols, row-major): their ones' columns into `index`, offsets into `start`
// (rows + 1). False when an entry is not 0 or 1, or the ones pass `limit`.
bool ScanRows(const float* a, size_t rows, size_t cols, size_t limit, std::vector<size_t>& start, std::vector<uint32_t>& index) {
  start.resize(rows + 1);
  // room for a whole row (+ a group of eight's store) past the limit
  if (index.size() < limit + cols + 8) index.resize(limit + cols + 8);
  uint32_t* out = index.data();
  size_t count = 0;
  start[0] = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float* row = a + r * cols;
    uint32_t bad = 0;
    size_t j = 0;
#if defined(DBN_X86_DISPATCH)
    if (HasAvx2()) count = ScanRowAvx2(row, cols, out, count, bad, j);
#endif
    count = ScanRowSerial(row, j, cols, out, count, bad);
    if (bad != 0 || count > limit) return false;
    start[r + 1] = count;
  }
  return true;
}

typedef float V8 __attribute__((vector_size(32)));

inline V8 Load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void Store8(float* p, const V8& v) { std::memcpy(p, &v, sizeof v); }

// *c = alpha·sum (+ beta·*c unless beta is 0), as the vector loops do it lane by lane.
inline void Finish(float* c, float sum, float alpha, float beta) {
  float out = sum * alpha;
  if (beta != 0.0f) out += *c * beta;
  *c = out;
}

}  // namespace

bool FindBinaryRows(bool transA, size_t m, size_t k, const float* a, BinaryRowsBuffer& buffer, BinaryRows& rows) {
  const size_t entries = m * k;
  if (entries == 0 || entries > kBinaryMaxEntries) return false;  // (so m and k fit the 32-bit indices)
  const auto limit = static_cast<size_t>(kBinaryDensity * static_cast<double>(entries));
  if (!transA) {
    if (!ScanRows(a, m, k, limit, buffer.start, buffer.index)) return false;
  } else {
    // a is k×m: its rows' ones first, then regrouped by column (the rows of op(a)), in increasing r.
    if (!ScanRows(a, k, m, limit, buffer.scanStart, buffer.scanIndex)) return false;
    const size_t ones = buffer.scanStart[k];
    buffer.start.assign(m + 1, 0);
    for (size_t q = 0; q < ones; ++q) ++buffer.start[buffer.scanIndex[q] + 1];
    for (size_t i = 0; i < m; ++i) buffer.start[i + 1] += buffer.start[i];
    if (buffer.index.size() < ones + 1) buffer.index.resize(ones + 1);
    buffer.cursor.assign(buffer.start.begin(), buffer.start.end() - 1);
    for (size_t r = 0; r < k; ++r) {
      for (size_t q = buffer.scanStart[r]; q < buffer.scanStart[r + 1]; ++q) {
        buffer.index[buffer.cursor[buffer.scanIndex[q]]++] = static_cast<uint32_t>(r);
      }
    }
  }
  rows.start = buffer.start.data();
  rows.index = buffer.index.data();
  return true;
}

// acc[v] += b's row r, columns [j0 + 8v, j0 + 8v + 8), for each r of row i's ones in [from, to).
template <size_t V>
__attribute__((always_inline)) inline void AddRows(V8* acc, const BinaryRows& rows, size_t from, size_t to, const float* b, size_t ldb,
                                                   size_t j0) {
  for (size_t q = from; q < to; ++q) {
    const float* br = b + rows.index[q] * ldb + j0;
    for (size_t v = 0; v < V; ++v) acc[v] += Load8(br + 8 * v);
  }
}

// c's row i, columns [j0, j0 + 8·V), from its sums.
template <size_t V>
__attribute__((always_inline)) inline void Write(const V8* acc, float alpha, float beta, float* cr) {
  for (size_t v = 0; v < V; ++v) {
    V8 out = acc[v] * alpha;
    if (beta != 0.0f) out += Load8(cr + 8 * v) * beta;
    Store8(cr + 8 * v, out);
  }
}

// Columns [j0, j0 + 8·V) of rows [r0, r1), V accumulators per row.
template <size_t V>
__attribute__((always_inline)) inline void SumColumns(const BinaryRows& rows, const float* b, size_t ldb, float alpha, float beta,
                                                      float* c, size_t ldc, size_t r0, size_t r1, size_t j0) {
  for (size_t i = r0; i < r1; ++i) {
    V8 acc[V] = {};
    AddRows<V>(acc, rows, rows.start[i], rows.start[i + 1], b, ldb, j0);
    Write<V>(acc, alpha, beta, c + i * ldc + j0);
  }
}

DBN_CLONES void BinaryRowsProduct(const BinaryRows& rows, const float* b, size_t ldb, float alpha, float beta, float* c,
                                  size_t ldc, size_t r0, size_t r1, size_t c0, size_t c1) {
  size_t j0 = c0;
  // 64 columns at a time (eight accumulators in registers), then 32, 16 and 8: the same sums in the
  // same order (each element's value does not depend on the path). (Two or four rows side by side on
  // narrower slices, to keep the slice in L1 while c's rows stream past, measured slower.)
  for (; j0 + 64 <= c1; j0 += 64) SumColumns<8>(rows, b, ldb, alpha, beta, c, ldc, r0, r1, j0);
  if (j0 + 32 <= c1) {
    SumColumns<4>(rows, b, ldb, alpha, beta, c, ldc, r0, r1, j0);
    j0 += 32;
  }
  if (j0 + 16 <= c1) {
    SumColumns<2>(rows, b, ldb, alpha, beta, c, ldc, r0, r1, j0);
    j0 += 16;
  }
  if (j0 + 8 <= c1) {
    SumColumns<1>(rows, b, ldb, alpha, beta, c, ldc, r0, r1, j0);
    j0 += 8;
  }
  if (j0 == c1) return;
  if (c1 >= 8) {
    // the last few columns: the eight ending at c1 summed as above (b's row has them all), the new
    // ones kept — a serial sum per column would wait on each load in turn
    const size_t from = c1 - 8;
    for (size_t i = r0; i < r1; ++i) {
      V8 acc = {};
      AddRows<1>(&acc, rows, rows.start[i], rows.start[i + 1], b, ldb, from);
      float sums[8];
      Store8(sums, acc);
      for (size_t j = j0; j < c1; ++j) Finish(c + i * ldc + j, sums[j - from], alpha, beta);
    }
    return;
  }
  for (; j0 < c1; ++j0) {
    for (size_t i = r0; i < r1; ++i) {
      float acc = 0.0f;
      for (size_t q = rows.start[i]; q < rows.start[i + 1]; ++q) acc += b[rows.index[q] * ldb + j0];
      Finish(c + i * ldc + j0, acc, alpha, beta);
    }
  }
}

}  // namespace dbn
