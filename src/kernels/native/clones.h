// DBN_CLONES: the attribute that compiles a hot loop three times (baseline x86-64, x86-64-v3,
// x86-64-v4) for the loader to pick by the CPU (GCC on x86-64; elsewhere nothing).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(DBN_NO_CLONES)
#if defined(DBN_SIMD_MAX_AVX2)
// Built with DBN_NODE_SIMD_MAX=avx2 (binding.gyp): no AVX-512 clone, so an AVX-512 CPU runs the
// AVX2 loops — for measuring the AVX2 code paths on such a CPU (bench/RESULTS.md).
#define DBN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DBN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#define DBN_X86_DISPATCH 1
#include <immintrin.h>

namespace dbn {
// True when this CPU has AVX2 and POPCNT (asked once): the hand-written AVX2 helpers outside the
// clones (binary_rows.cc, binary_tables.cc) run only then.
inline bool HasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
  }();
  return has;
}
}  // namespace dbn
#else
#define DBN_CLONES
#endif
