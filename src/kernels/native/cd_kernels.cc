// cd_kernels: the gradient of a CD step with its momentum update in one call, and the scan that
// checks training data. See cd_kernels.h; like dbn_native.cc's, each kernel checks every array's
// length before touching memory.
#include "cd_kernels.h"

#include <cblas.h>

#include <cstddef>
#include <string>

#include "napi_args.h"
#include "parallel.h"
#include "simd.h"

namespace dbn {

namespace {

// What a block of the fused gradient needs: the weight gradient gW (nv×nh) = pos·v0ᵀh0 + neg·vnᵀhn as
// two products, and, with `update`, the momentum step of W and its velocity from it; with `biases`,
// the biases' gradients (column sums of v0, vn and h0, hn) and their momentum steps too.
struct GradientArgs {
  Product positive, negative;
  size_t nv, nh;
  bool update;
  float *W, *velW;
  float lr, mu, wd, gs;
  bool byColumns;
  bool biases;
  float *gbv, *gbh, *bv, *velBv, *bh, *velBh;
  double posD, negD;
};

// The bias gradient gb[lo, hi) = pos·Σ rows of a (n rows) + neg·Σ rows of b (m rows) over those columns
// (width: the rows' length), then with `update` its momentum step.
void BiasColumns(const GradientArgs& x, float* gb, const float* a, const float* b, size_t width, float* bias, float* vel, size_t lo,
                 size_t hi) {
  if (hi <= lo) return;
  ColSumLoop(gb + lo, a + lo, x.positive.k, hi - lo, width, x.posD, 0);
  ColSumLoop(gb + lo, b + lo, x.negative.k, hi - lo, width, x.negD, 1);
  if (x.update) MomentumLoop(bias + lo, vel + lo, gb + lo, hi - lo, x.lr, x.mu, 0.0f, x.gs);
}

// Rows (or columns) [lo, hi) of gW: the two products exactly as ParallelSgemm's block for the same
// range computes them, then the momentum step of that block while it is in cache.
void GradientBlock(const void* ctx, size_t lo, size_t hi) {
  const auto& x = *static_cast<const GradientArgs*>(ctx);
  ProductBlock(x.positive, x.byColumns, lo, hi);
  ProductBlock(x.negative, x.byColumns, lo, hi);
  if (x.biases) {
    // this block's share of both biases: its own range on the side it is cut along, the same
    // fraction of the other (consecutive blocks' shares meet, the first starts at 0, the last ends at the end)
    const size_t extent = x.byColumns ? x.nh : x.nv, other = x.byColumns ? x.nv : x.nh;
    const size_t olo = other * lo / extent, ohi = other * hi / extent;
    const size_t vlo = x.byColumns ? olo : lo, vhi = x.byColumns ? ohi : hi;
    const size_t hlo = x.byColumns ? lo : olo, hhi = x.byColumns ? hi : ohi;
    BiasColumns(x, x.gbv, x.positive.a, x.negative.a, x.nv, x.bv, x.velBv, vlo, vhi);
    BiasColumns(x, x.gbh, x.positive.b, x.negative.b, x.nh, x.bh, x.velBh, hlo, hhi);
  }
  if (!x.update) return;
  float* gW = x.negative.c;
  if (x.byColumns) {
    for (size_t r = 0; r < x.nv; ++r) {
      const size_t at = r * x.nh + lo;
      MomentumLoop(x.W + at, x.velW + at, gW + at, hi - lo, x.lr, x.mu, x.wd, x.gs);
    }
  } else {
    const size_t at = lo * x.nh;
    MomentumLoop(x.W + at, x.velW + at, gW + at, (hi - lo) * x.nh, x.lr, x.mu, x.wd, x.gs);
  }
}

bool Divides(const Napi::CallbackInfo& info, const char* name, const F32& a, size_t cols, size_t& rows) {
  if (cols > 0 && a.n % cols == 0 && a.n > 0) {
    rows = a.n / cols;
    return true;
  }
  Napi::RangeError::New(info.Env(), std::string("dbn_native.cdGradient: '") + name + "' has " + std::to_string(a.n) +
                                        " elements, not a positive whole number of rows of " + std::to_string(cols))
      .ThrowAsJavaScriptException();
  return false;
}

}  // namespace

// cdGradient(gW, gbv, gbh, v0, h0, vn, hn, W, velW, bv, velBv, bh, velBh, pos, neg, update, lr, mu, wd, gs):
// the values of the calls
//   gemm(gW, v0, h0, {transA, alpha: pos}); gemm(gW, vn, hn, {transA, alpha: neg, beta: 1});
//   colSum(gbv, v0, pos, 0); colSum(gbv, vn, neg, 1); colSum(gbh, h0, pos, 0); colSum(gbh, hn, neg, 1);
// and with `update` then momentumStep(W, velW, gW, lr, mu, wd, gs), momentumStep(bv, velBv, gbv, lr, mu, 0, gs),
// momentumStep(bh, velBh, gbh, lr, mu, 0, gs) — bit for bit (the products' blocks are ParallelSgemm's, the
// rest elementwise). v0, h0 have n rows, vn, hn m rows (n, m ≥ 1); nv = gbv's length, nh = gbh's. Without
// `update` the last six arrays may be empty. Each block's momentum step runs right after its products; the
// biases' column sums and steps are shared out among the same blocks (each column is summed on its own).
Napi::Value CdGradient(const Napi::CallbackInfo& info) {
  F32 gW, gbv, gbh, v0, h0, vn, hn, W, velW, bv, velBv, bh, velBh;
  if (!GetF32s(info, {&gW, &gbv, &gbh, &v0, &h0, &vn, &hn, &W, &velW, &bv, &velBv, &bh, &velBh})) return info.Env().Undefined();
  const size_t nv = gbv.n, nh = gbh.n;
  size_t n = 0, m = 0;
  if (!ExpectLength(info, "cdGradient", "gW", gW, nv * nh) || !Divides(info, "v0", v0, nv, n) || !Divides(info, "vn", vn, nv, m) ||
      !ExpectLength(info, "cdGradient", "h0", h0, n * nh) || !ExpectLength(info, "cdGradient", "hn", hn, m * nh)) {
    return info.Env().Undefined();
  }
  const bool update = GetBool(info, 15);
  const size_t pw = update ? nv * nh : 0, pv = update ? nv : 0, ph = update ? nh : 0;
  if (!ExpectLength(info, "cdGradient", "W", W, pw) || !ExpectLength(info, "cdGradient", "velW", velW, pw) ||
      !ExpectLength(info, "cdGradient", "bv", bv, pv) || !ExpectLength(info, "cdGradient", "velBv", velBv, pv) ||
      !ExpectLength(info, "cdGradient", "bh", bh, ph) || !ExpectLength(info, "cdGradient", "velBh", velBh, ph)) {
    return info.Env().Undefined();
  }
  const auto pos = static_cast<float>(GetNumber(info, 13)), neg = static_cast<float>(GetNumber(info, 14));
  GradientArgs args{{true, false, nv, nh, n, pos, 0.0f, v0.p, h0.p, gW.p, nullptr, nullptr},
                    {true, false, nv, nh, m, neg, 1.0f, vn.p, hn.p, gW.p, nullptr, nullptr},
                    nv, nh, update, W.p, velW.p,
                    static_cast<float>(GetNumber(info, 16)), static_cast<float>(GetNumber(info, 17)),
                    static_cast<float>(GetNumber(info, 18)), static_cast<float>(GetNumber(info, 19)), false,
                    false, gbv.p, gbh.p, bv.p, velBv.p, bh.p, velBh.p,
                    // colSum takes its factors as doubles (as the separate kernel receives them from JavaScript)
                    GetNumber(info, 13), GetNumber(info, 14)};
  const ProductSplit first = SplitOf(nv, nh, n, true), second = SplitOf(nv, nh, m, true);
  if (first.count == second.count && first.byColumns == second.byColumns && nv > 0 && nh > 0) {
    // each product's 0/1 pattern, as ParallelSgemm would find it
    thread_local BinaryRowsBuffer positiveBuffer, negativeBuffer;
    BinaryRows positiveRows, negativeRows;
    args.positive.binary = BinaryPattern(args.positive, positiveBuffer, positiveRows);
    args.negative.binary = BinaryPattern(args.negative, negativeBuffer, negativeRows);
    args.byColumns = first.byColumns;
    args.biases = true;
    RunBlocks(first, GradientBlock, &args);
    return info.Env().Undefined();
  }
  // The two products are cut differently (n ≠ m rows on either side of the split threshold): each as gemm cuts it.
  ParallelSgemm(true, false, nv, nh, n, pos, v0.p, h0.p, 0.0f, gW.p);
  ParallelSgemm(true, false, nv, nh, m, neg, vn.p, hn.p, 1.0f, gW.p);
  if (update) {
    ParallelFor(nv * nh, kParallelGrain, [](const void* ctx, size_t lo, size_t hi) {
      const auto& x = *static_cast<const GradientArgs*>(ctx);
      MomentumLoop(x.W + lo, x.velW + lo, x.negative.c + lo, hi - lo, x.lr, x.mu, x.wd, x.gs);
    }, &args);
  }
  BiasColumns(args, gbv.p, v0.p, vn.p, nv, bv.p, velBv.p, 0, nv);
  BiasColumns(args, gbh.p, h0.p, hn.p, nh, bh.p, velBh.p, 0, nh);
  return info.Env().Undefined();
}

// firstInvalid(x, unitInterval): the index of the first element of x that is not finite (or, with
// unitInterval, not in [0, 1]), or -1.
Napi::Value FirstInvalid(const Napi::CallbackInfo& info) {
  F32 x;
  if (!GetF32(info, 0, x)) return info.Env().Undefined();
  const bool unit = GetBool(info, 1);
  const size_t at = FirstOutsideLoop(x.p, x.n, unit ? 0.0f : -3.40282347e38f, unit ? 1.0f : 3.40282347e38f);
  return Napi::Number::New(info.Env(), at == x.n ? -1.0 : static_cast<double>(at));
}

}  // namespace dbn
