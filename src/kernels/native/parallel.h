// Matrix products and elementwise loops on several threads: the addon's own fork-join pool over
// single-threaded OpenBLAS calls (see parallel.cc for why).
#pragma once

#include <cstddef>

#include "binary_rows.h"
#include "binary_tables.h"

namespace dbn {

// Called on each block of a product right after the block is computed, while it is in cache:
// the block is rows [row0, row0 + rows) × columns [col0, col0 + cols) of c (row stride ldc).
struct Epilogue {
  void (*apply)(const void* ctx, float* c, size_t ldc, size_t row0, size_t rows, size_t col0, size_t cols);
  const void* ctx;
};

// c = alpha·op(a)·op(b) + beta·c (row-major; op(a) m×k, op(b) k×n), then `epilogue` (if given)
// on every element of c. Big products are cut into column (or row) blocks over the pool; the
// blocks depend only on the sizes and the thread count, so the bits do too. A sparse 0/1 op(a)
// (BinaryPattern) makes each block sums of b's rows instead of an sgemm call; a 0/1 a times bᵀ at
// any density (NibblePattern), table lookups (BinaryTablesProduct).
void ParallelSgemm(bool transA, bool transB, size_t m, size_t n, size_t k, float alpha, const float* a, const float* b,
                   float beta, float* c, const Epilogue* epilogue = nullptr);

// One product c = alpha·op(a)·op(b) + beta·c (row-major; op(a) m×k, op(b) k×n); `binary`, when set,
// is op(a)'s 0/1 pattern (BinaryPattern), and the product is computed as sums of b's rows; else
// `nibbles`, when set, is a's (NibblePattern), and the product is computed from tables of bᵀ.
struct Product {
  bool transA, transB;
  size_t m, n, k;
  float alpha, beta;
  const float* a;
  const float* b;
  float* c;
  const BinaryRows* binary;
  const NibbleRows* nibbles;
};

// op(a)'s pattern when the product can use it (op(b) = b, alpha ≠ 0, op(a) a sparse 0/1 matrix: see
// FindBinaryRows), stored in `buffer` and `rows`; else nullptr. ParallelSgemm asks this of every product.
const BinaryRows* BinaryPattern(const Product& x, BinaryRowsBuffer& buffer, BinaryRows& rows);

// a's 0/1 pattern when the product can use it (a·bᵀ, alpha ≠ 0, at least kTableMinRows rows, a all 0
// and 1: see FindNibbleRows), stored in `buffer` and `rows`; else nullptr. ParallelSgemm asks this of
// every product BinaryPattern declines.
const NibbleRows* NibblePattern(const Product& x, NibbleBuffer& buffer, NibbleRows& rows);

// Rows (byColumns false) or columns [lo, hi) of the product: ParallelSgemm's block, the same bits
// wherever it is called.
void ProductBlock(const Product& x, bool byColumns, size_t lo, size_t hi);

// How ParallelSgemm cuts a product with m×n outputs, k deep (transA: op(a) = aᵀ): `count` blocks of
// whole 16-wide panels of rows (byColumns false) or columns of c; count 1 means the whole product in
// one call. Depends only on the sizes, transA and the pool's thread count.
struct ProductSplit {
  bool byColumns;
  size_t extent;
  size_t panels;
  size_t count;
  // Block i's rows (or columns) [lo, hi); empty blocks have hi <= lo.
  void Bounds(size_t i, size_t& lo, size_t& hi) const;
};
ProductSplit SplitOf(size_t m, size_t n, size_t k, bool transA);

// Runs body(ctx, lo, hi) for every block of `split` (lo, hi: its row or column range), on the
// pool; on this thread, block after block, when the pool is busy or count is 1. Bits never
// depend on which thread ran a block.
void RunBlocks(const ProductSplit& split, void (*body)(const void* ctx, size_t lo, size_t hi), const void* ctx);

// Runs body(ctx, lo, hi) over [0, n) cut into blocks of at least `grain` elements, on the pool
// when n is big enough. Each element is in exactly one block; blocks may run in any order.
void ParallelFor(size_t n, size_t grain, void (*body)(const void* ctx, size_t lo, size_t hi), const void* ctx);

// Runs body(ctx, i) for every i in [0, count) on the pool, one task per thread at most at a time;
// on this thread, in order, when the pool is busy or has one thread.
void ParallelTasks(int count, void (*body)(const void* ctx, int i), const void* ctx);

// The threads products run on (OpenBLAS's count at first use: OPENBLAS_NUM_THREADS or the CPUs).
int PoolThreads();

}  // namespace dbn
