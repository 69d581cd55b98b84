// Products whose left factor is a 0/1 matrix with few ones — CD's binary data, the sampled states —
// as sums of rows: op(a)·b's row i is the sum of b's rows r where op(a)[i, r] = 1, about a
// density's share of a dense product's work (see binary_rows.cc). The zeros contribute nothing: an
// infinite or NaN entry of b in a row no 1 picks does not reach c (the dense product would give NaN).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dbn {

// The ones of a 0/1 matrix op(a) (m×k), row by row: row i's columns are index[start[i] … start[i+1]),
// increasing.
struct BinaryRows {
  const size_t* start = nullptr;
  const uint32_t* index = nullptr;
};

// Storage for one BinaryRows (reused from call to call; grows to the largest pattern found, which
// FindBinaryRows bounds).
struct BinaryRowsBuffer {
  std::vector<size_t> start;
  std::vector<uint32_t> index;
  // transA's scan of a's own rows, and the fill cursor per row of op(a)
  std::vector<size_t> scanStart;
  std::vector<uint32_t> scanIndex;
  std::vector<size_t> cursor;
};

// True, with `rows` pointing into `buffer`, when every entry of op(a) (m×k; a is k×m when transA) is
// exactly 0 or 1 (−0 counts as 0), at most kBinaryDensity of them are 1, and m·k ≤ kBinaryMaxEntries;
// false otherwise (NaN and any other value included), after reading at most the whole of a.
bool FindBinaryRows(bool transA, size_t m, size_t k, const float* a, BinaryRowsBuffer& buffer, BinaryRows& rows);

// c[i, j] = alpha·Σ_{r in row i of `rows`} b[r·ldb + j] (+ beta·c[i, j] unless beta is 0: c is then
// not read) for i in [r0, r1), j in [c0, c1). Each element sums its terms in increasing r, so its
// value does not depend on the block it is computed in.
void BinaryRowsProduct(const BinaryRows& rows, const float* b, size_t ldb, float alpha, float beta, float* c, size_t ldc,
                       size_t r0, size_t r1, size_t c0, size_t c1);

// The largest share of ones for which the sums beat the dense product (bench/RESULTS.md), and the
// largest a (m·k entries) whose pattern is kept.
constexpr double kBinaryDensity = 0.25;
constexpr size_t kBinaryMaxEntries = size_t{1} << 22;

}  // namespace dbn
