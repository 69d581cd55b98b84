# The native backend's addon: N-API (node-addon-api) + CBLAS sgemm from OpenBLAS.
# Built by scripts/build-native.mjs into build/Release/dbn_native.node, and by
# scripts/prebuild.mjs into prebuilds/<platform>-<arch>/.
# Portable: compiled for the architecture's baseline (x86-64: SSE2 only, -mtune=generic); the hot
# loops in simd.cc carry their own AVX2 and AVX-512 clones, chosen at load time by the CPU, so a
# binary built anywhere runs on any x86-64 CPU. Links libopenblas.so.0 (the system's OpenBLAS).
{
  "variables": {
    # DBN_NODE_SIMD_MAX=avx2 at build time drops the AVX-512 clones (simd.cc), to measure the AVX2 paths on an AVX-512 CPU.
    "dbn_simd_max%": "<!(node -p \"process.env.DBN_NODE_SIMD_MAX || 'avx512'\")"
  },
  "targets": [
    {
      "target_name": "dbn_native",
      "sources": ["dbn_native.cc", "cd_kernels.cc", "host_kernels.cc", "parallel.cc", "simd.cc", "xoshiro.cc", "binary_rows.cc", "binary_tables.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "/usr/include/openblas",
        "/usr/local/include/openblas"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-O2", "-O1", "-O0"],
      "cflags_cc!": ["-O2", "-O1", "-O0", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-ffp-contract=fast"],
      "libraries": ["-lopenblas"],
      "conditions": [
        ["target_arch=='x64'", { "cflags_cc": ["-march=x86-64", "-mtune=generic"] }],
        ["dbn_simd_max=='avx2'", { "defines": ["DBN_SIMD_MAX_AVX2"] }]
      ],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-ffp-contract=fast"],
        "OTHER_LDFLAGS": ["-lopenblas"]
      }
    }
  ]
}
