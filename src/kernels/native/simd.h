// The native backend's hot elementwise loops, compiled for a baseline x86-64 and, on x86-64 with
// GCC, cloned for x86-64-v3 (AVX2 + FMA) and x86-64-v4 (AVX-512): the loader picks the clone for
// the CPU it runs on (function multiversioning), so one binary runs on every x86-64 CPU and uses
// the widest vectors each has. Elsewhere they are plain loops for the compiler's target.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dbn {

// c[i·ldc + j] = σ(c[i·ldc + j] + bias[j]) for i < rows, j < cols (in place, strided).
void SigmoidBiasInPlace(float* c, size_t ldc, const float* bias, size_t rows, size_t cols);
// out = σ(x + bias), bias broadcast over `rows` rows of `cols`; out may equal x.
void AddRowSigmoidLoop(float* out, const float* x, const float* bias, size_t rows, size_t cols);
// out = x + bias, bias broadcast over rows; out may equal x.
void AddRowLoop(float* out, const float* x, const float* bias, size_t rows, size_t cols);
// out = u < p ? 1 : 0.
void BernoulliLoop(float* out, const float* p, const float* u, size_t n);
// velocity = μ·velocity + ε·(gradScale·grad − λ·param); param += velocity.
void MomentumLoop(float* param, float* velocity, const float* grad, size_t n, float lr, float mu, float wd, float gs);
// Σ (a − b)² in double.
double SumSquaredDiffLoop(const float* a, const float* b, size_t n);
// out[j] = alpha·Σ_i x[i, j] (+ beta·out[j] unless beta is 0) for j < cols, x's rows `stride` apart;
// sums in double, each column on its own (the same bits for any range of columns).
void ColSumLoop(float* out, const float* x, size_t rows, size_t cols, size_t stride, double alpha, double beta);
// The index of the first x[i] not in [lo, hi] (NaN included), or n.
size_t FirstOutsideLoop(const float* x, size_t n, float lo, float hi);
// n floats to binary16 bit patterns (nearest, ties to even) and back; F16C where the CPU has it.
void ToHalves(const float* x, uint16_t* h, size_t n);
void FromHalves(const uint16_t* h, float* x, size_t n);

// Eight xoshiro128** streams side by side (xoshiro.cc): lane l's state is s[0..3][l]; lane l writes
// its next `len` outputs (top 24 bits · 2^-24) to out[l·len, (l+1)·len) and ends advanced by len.
constexpr size_t kXoshiroLanes = 8;
void XoshiroLanes(uint32_t s[4][kXoshiroLanes], float* out, size_t len);

// The widest clone the loops run here: "avx512" (x86-64-v4), "avx2" (x86-64-v3) or "baseline".
const char* SimdLevel();

}  // namespace dbn
