// Products a·wᵀ whose left factor is a 0/1 matrix at any density — CD's reconstruction from the
// sampled hidden states, hs·Wᵀ — by the "four Russians" method: a's columns are taken four at a
// time, each group's 16 possible sums of four of w's columns are tabulated once per block, and
// every row of the product adds one table entry per group instead of four products: about half
// a dense product's time at every density (see binary_tables.cc). The zeros contribute nothing:
// an infinite or NaN entry of w that no 1 picks does not reach c (the dense product would give NaN).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dbn {

// A 0/1 matrix (m×k) as one byte per row and group of four columns: bit t of byte [i·groups + g]
// is entry (i, 4g + t); the last group's missing columns are 0.
struct NibbleRows {
  const uint8_t* nibbles = nullptr;
  size_t groups = 0;
};

// Storage for one NibbleRows (reused from call to call).
struct NibbleBuffer {
  std::vector<uint8_t> bytes;
};

// True, with `rows` pointing into `buffer`, when every entry of a (m×k, row-major) is exactly 0 or
// 1 (−0 counts as 0); false (having stopped at the first row that holds another value, NaN
// included) otherwise.
bool FindNibbleRows(size_t m, size_t k, const float* a, NibbleBuffer& buffer, NibbleRows& rows);

// c[i, j] = alpha·Σ_r a[i, r]·w[j·ldw + r] (+ beta·c[i, j] unless beta is 0: c is then not read)
// for i in [r0, r1), j in [c0, c1), a given by `rows` (k columns), w's rows j holding k entries.
// Each element is the sum, over the groups in increasing order, of its group's table entry (the
// entry itself summed in a fixed order of its columns), so its value does not depend on the block
// it is computed in.
void BinaryTablesProduct(const NibbleRows& rows, const float* w, size_t ldw, size_t k, float alpha, float beta, float* c,
                         size_t ldc, size_t r0, size_t r1, size_t c0, size_t c1);

// Fewer rows than this: building the tables costs more than the dense product (bench/RESULTS.md).
constexpr size_t kTableMinRows = 16;

}  // namespace dbn
