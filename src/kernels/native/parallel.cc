// The fork-join pool of the native backend and the products and loops that use it.
//
// On the products CD-1 makes (e.g. 100×784 · 784×500), OpenBLAS 0.3.21's own threading (Debian
// 12's) is slower with 2 threads than with 1, while the same product cut into column blocks,
// each a single-threaded sgemm, runs near twice one thread's speed (bench/RESULTS.md). So
// OpenBLAS is set to 1 thread and a product big enough is cut into blocks of whole 16-wide
// panels (2 per thread), which the caller's thread and the workers take from a shared counter:
// a worker that gets no CPU (a busy machine) costs at most the block it holds, the others take
// the rest. The blocks depend only on the sizes and the thread count, never on who computes
// them: same inputs, same thread count → same bits.
//
// Workers wait for the next task by spinning for up to kSpinMicros (CD-1 calls products back to
// back), yielding the CPU between short bursts so that other runnable processes on a shared
// machine get it, then sleep on a condition variable: a Node process idle for 5 ms burns no core.
// Tasks from several JavaScript threads at once are serialized on the pool (the one that finds
// it busy runs single-threaded).
#include "parallel.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>

extern "C" {
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);
}

namespace dbn {
namespace {

class ForkJoin {
 public:
  explicit ForkJoin(int threads) : threads_(threads) {
    for (int i = 1; i < threads_; ++i) std::thread([this, i] { Work(i); }).detach();
  }
  int threads() const { return threads_; }

  // Runs task(i) for every i in [0, count), on the calling thread and the workers; returns when
  // all are done. False (nothing run) when another thread holds the pool.
  template <typename F>
  bool Run(int count, const F& task) {
    if (count > kMaxTasks) return false;  // more blocks than flags: the caller runs them itself
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    task_ = [](const void* t, int i) { (*static_cast<const F*>(t))(i); };
    ctx_ = &task;
    count_ = count;
    for (int i = 0; i < count_; ++i) claimed_[i].store(0, std::memory_order_relaxed);
    pending_.store(threads_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(sleep_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    Take(0);
    // Workers still finishing a block: spin a little, then give the CPU away (it may be theirs).
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
      if (spins < 256) Pause();
      else std::this_thread::yield();
    }
    return true;
  }

 private:
  // 5 ms: longer than the gaps inside a training step (the serial generator, the JavaScript between
  // calls, a young-generation GC: 0.1–1 ms), so a worker does not sleep between a step's products.
  // A sleeping worker's vCPU goes idle, and on a shared VM waking it took long enough that 200 µs
  // here made 2-thread CD-1 epochs swing between 8k and 30k samples/s (bench/RESULTS.md).
  static constexpr int64_t kSpinMicros = 5000;

  static void Pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  // Thread `self` (0: the caller) runs its own share of the tasks first — the same blocks every
  // time for the same count, so a block of the weights stays in one core's cache from product to
  // product — then any task no one has claimed yet (a thread that gets no CPU holds up nothing).
  void Take(int self) {
    const int lo = count_ * self / threads_, hi = count_ * (self + 1) / threads_;
    for (int i = lo; i < hi; ++i) Claim(i);
    for (int i = 0; i < count_; ++i) Claim(i);
  }

  void Claim(int i) {
    if (claimed_[i].load(std::memory_order_relaxed) == 0 && claimed_[i].exchange(1, std::memory_order_acq_rel) == 0) task_(ctx_, i);
  }

  void Work(int self) {
    uint64_t seen = 0;
    for (;;) {
      const auto start = std::chrono::steady_clock::now();
      uint64_t g;
      for (int spins = 0;; ++spins) {
        g = generation_.load(std::memory_order_acquire);
        if (g != seen) break;
        if ((spins & 63) == 63) {
          if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(kSpinMicros)) {
            std::unique_lock<std::mutex> lock(sleep_);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            g = generation_.load(std::memory_order_acquire);
            break;
          }
          // Another runnable thread on this CPU (another process's) runs now; none: back at once.
          std::this_thread::yield();
        }
        Pause();
      }
      seen = g;
      Take(self);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  const int threads_;
  std::mutex busy_;
  std::mutex sleep_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  static constexpr int kMaxTasks = 256;
  std::atomic<uint8_t> claimed_[kMaxTasks] = {};
  std::atomic<int> pending_{0};
  int count_ = 0;
  void (*task_)(const void*, int) = nullptr;
  const void* ctx_ = nullptr;
};

// The process's pool, made on first use and never destroyed (its workers are detached and may
// still be asleep at exit). Takes OpenBLAS's thread count, then sets OpenBLAS itself to 1 thread.
ForkJoin& Pool() {
  static ForkJoin* pool = [] {
    const int n = std::max(1, std::min(openblas_get_num_threads(), 64));
    openblas_set_num_threads(1);
    return new ForkJoin(n);
  }();
  return *pool;
}

// Products smaller than this many multiply-adds run on one thread (the hand-off costs more).
constexpr double kSplitMacs = 4.0e6;
// Blocks per thread: more than one, so a thread without a CPU holds up only part of its share;
// few, because each sgemm call packs op(a) again.
constexpr size_t kBlocksPerThread = 2;

}  // namespace

int PoolThreads() { return Pool().threads(); }

ProductSplit SplitOf(size_t m, size_t n, size_t k, bool transA) {
  ForkJoin& pool = Pool();
  const size_t most = kBlocksPerThread * static_cast<size_t>(pool.threads());
  ProductSplit split{};
  // aᵀ·b (a weight gradient, k the minibatch): by rows whenever there are enough of them, so that
  // each block's rows of c are contiguous; OpenBLAS ran CD's gradients faster cut that way than by
  // columns, the square ones most (bench/RESULTS.md). Other products: along the longer side of c.
  split.byColumns = transA && (m + 15) / 16 >= most ? false : n >= m;
  split.extent = split.byColumns ? n : m;
  split.panels = (split.extent + 15) / 16;
  const size_t blocks = std::min(split.panels, most);
  const bool whole = pool.threads() < 2 || static_cast<double>(m) * n * k < kSplitMacs || blocks < 2;
  split.count = whole ? 1 : blocks;
  return split;
}

void ProductSplit::Bounds(size_t i, size_t& lo, size_t& hi) const {
  if (count == 1) {
    lo = 0;
    hi = extent;
    return;
  }
  lo = std::min(extent, 16 * (panels * i / count));
  hi = std::min(extent, 16 * (panels * (i + 1) / count));
}

void RunBlocks(const ProductSplit& split, void (*body)(const void* ctx, size_t lo, size_t hi), const void* ctx) {
  auto block = [&](int i) {
    size_t lo = 0, hi = 0;
    split.Bounds(static_cast<size_t>(i), lo, hi);
    if (hi > lo) body(ctx, lo, hi);
  };
  if (split.count > 1 && Pool().Run(static_cast<int>(split.count), block)) return;
  // One block, or the pool held by another thread: the same blocks here, in order (same bits).
  for (size_t i = 0; i < split.count; ++i) block(static_cast<int>(i));
}

namespace {

// The beta to pass to sgemm for a block of c (rows × cols, row stride ldc): with beta = 0 the
// block is set to +0 here and sgemm gets beta = 1. The same bits: OpenBLAS with beta = 0 first
// writes +0 over c (sgemm_beta) and then adds alpha·op(a)·op(b) to it, as it adds to any c with
// beta = 1 — but its zeroing loop (sgemm_beta) stores one float at a time, and memset stores whole
// vectors (bench/RESULTS.md).
float ZeroForBeta(float beta, float* c, size_t rows, size_t cols, size_t ldc) {
  if (beta != 0.0f) return beta;
  if (cols == ldc) {
    std::memset(c, 0, rows * cols * sizeof(float));
  } else {
    for (size_t i = 0; i < rows; ++i) std::memset(c + i * ldc, 0, cols * sizeof(float));
  }
  return 1.0f;
}

}  // namespace

void ProductBlock(const Product& x, bool byColumns, size_t lo, size_t hi) {
  const auto lda = static_cast<blasint>(x.transA ? x.m : x.k);
  const auto ldb = static_cast<blasint>(x.transB ? x.k : x.n);
  const auto ldc = static_cast<blasint>(x.n);
  const auto ta = x.transA ? CblasTrans : CblasNoTrans;
  const auto tb = x.transB ? CblasTrans : CblasNoTrans;
  const auto len = static_cast<blasint>(hi - lo);
  if (x.binary != nullptr) {
    // op(a) is a sparse 0/1 matrix: sums of b's rows (b is k×n here: FindBinaryRows is only asked then)
    if (byColumns) BinaryRowsProduct(*x.binary, x.b, x.n, x.alpha, x.beta, x.c, x.n, 0, x.m, lo, hi);
    else BinaryRowsProduct(*x.binary, x.b, x.n, x.alpha, x.beta, x.c, x.n, lo, hi, 0, x.n);
  } else if (x.nibbles != nullptr) {
    // a is 0/1 and op(b) = bᵀ (b n×k): tables of b's rows (FindNibbleRows is only asked then)
    if (byColumns) BinaryTablesProduct(*x.nibbles, x.b, x.k, x.k, x.alpha, x.beta, x.c, x.n, 0, x.m, lo, hi);
    else BinaryTablesProduct(*x.nibbles, x.b, x.k, x.k, x.alpha, x.beta, x.c, x.n, lo, hi, 0, x.n);
  } else if (byColumns) {
    // Columns lo…hi of op(b) and c: b's columns (k×n) or rows (n×k, transposed).
    const float* bp = x.transB ? x.b + lo * x.k : x.b + lo;
    const float beta = ZeroForBeta(x.beta, x.c + lo, x.m, hi - lo, x.n);
    cblas_sgemm(CblasRowMajor, ta, tb, static_cast<blasint>(x.m), len, static_cast<blasint>(x.k), x.alpha, x.a, lda, bp, ldb, beta,
                x.c + lo, ldc);
  } else {
    // Rows lo…hi of op(a) and c: a's rows (m×k) or columns (k×m, transposed).
    const float* ap = x.transA ? x.a + lo : x.a + lo * x.k;
    const float beta = ZeroForBeta(x.beta, x.c + lo * x.n, hi - lo, x.n, x.n);
    cblas_sgemm(CblasRowMajor, ta, tb, len, static_cast<blasint>(x.n), static_cast<blasint>(x.k), x.alpha, ap, lda, x.b, ldb, beta,
                x.c + lo * x.n, ldc);
  }
}

const BinaryRows* BinaryPattern(const Product& x, BinaryRowsBuffer& buffer, BinaryRows& rows) {
  if (x.transB || x.alpha == 0.0f) return nullptr;
  return FindBinaryRows(x.transA, x.m, x.k, x.a, buffer, rows) ? &rows : nullptr;
}

const NibbleRows* NibblePattern(const Product& x, NibbleBuffer& buffer, NibbleRows& rows) {
  if (x.transA || !x.transB || x.alpha == 0.0f || x.m < kTableMinRows || x.n == 0) return nullptr;
  return FindNibbleRows(x.m, x.k, x.a, buffer, rows) ? &rows : nullptr;
}

void ParallelSgemm(bool transA, bool transB, size_t m, size_t n, size_t k, float alpha, const float* a, const float* b,
                   float beta, float* c, const Epilogue* epilogue) {
  struct Args {
    Product product;
    bool byColumns;
    const Epilogue* epilogue;
  } args{{transA, transB, m, n, k, alpha, beta, a, b, c, nullptr, nullptr}, false, epilogue};
  thread_local BinaryRowsBuffer buffer;
  BinaryRows rows;
  args.product.binary = BinaryPattern(args.product, buffer, rows);
  thread_local NibbleBuffer nibbleBuffer;
  NibbleRows nibbles;
  if (args.product.binary == nullptr) args.product.nibbles = NibblePattern(args.product, nibbleBuffer, nibbles);
  const ProductSplit split = SplitOf(m, n, k, transA);
  args.byColumns = split.byColumns;
  RunBlocks(split, [](const void* ctx, size_t lo, size_t hi) {
    const auto& x = *static_cast<const Args*>(ctx);
    ProductBlock(x.product, x.byColumns, lo, hi);
    if (x.epilogue == nullptr) return;
    if (x.byColumns) x.epilogue->apply(x.epilogue->ctx, x.product.c, x.product.n, 0, x.product.m, lo, hi - lo);
    else x.epilogue->apply(x.epilogue->ctx, x.product.c, x.product.n, lo, hi - lo, 0, x.product.n);
  }, &args);
}

void ParallelFor(size_t n, size_t grain, void (*body)(const void* ctx, size_t lo, size_t hi), const void* ctx) {
  ForkJoin& pool = Pool();
  const size_t g = std::max<size_t>(grain, 1);
  const size_t blocks = std::min(n / g, kBlocksPerThread * static_cast<size_t>(pool.threads()));
  if (pool.threads() < 2 || blocks < 2) {
    if (n > 0) body(ctx, 0, n);
    return;
  }
  // Block edges on multiples of 16 elements (64 bytes), so blocks share no cache line.
  auto block = [&](int i) {
    const auto part = static_cast<size_t>(i);
    const size_t lo = part == 0 ? 0 : std::min(n, (n * part / blocks) & ~size_t{15});
    const size_t hi = part + 1 == blocks ? n : std::min(n, (n * (part + 1) / blocks) & ~size_t{15});
    if (hi > lo) body(ctx, lo, hi);
  };
  if (!pool.Run(static_cast<int>(blocks), block)) body(ctx, 0, n);
}

void ParallelTasks(int count, void (*body)(const void* ctx, int i), const void* ctx) {
  auto task = [&](int i) { body(ctx, i); };
  if (count > 1 && Pool().threads() > 1 && Pool().Run(count, task)) return;
  for (int i = 0; i < count; ++i) body(ctx, i);
}

}  // namespace dbn
