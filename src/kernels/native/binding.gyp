# The native backend's addon: N-API (node-addon-api) + CBLAS sgemm from OpenBLAS.
# Built by scripts/build-native.mjs into build/Release/dbn_native.node.
{
  "targets": [
    {
      "target_name": "dbn_native",
      "sources": ["dbn_native.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "/usr/include/openblas",
        "/usr/local/include/openblas"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-O2", "-O1", "-O0"],
      "cflags_cc!": ["-O2", "-O1", "-O0", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd", "-ffp-contract=fast"],
      "libraries": ["-lopenblas"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd", "-ffp-contract=fast"],
        "OTHER_LDFLAGS": ["-lopenblas"]
      }
    }
  ]
}
