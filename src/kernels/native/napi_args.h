// Reading the arguments of the addon's functions: typed arrays without copying (N-API hands back
// data already offset by byteOffset), numbers, and length checks that throw a TypeError or
// RangeError naming the kernel and the argument instead of touching memory they do not own.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace dbn {

// Elementwise kernels over at least this many elements are cut into blocks over the pool.
constexpr size_t kParallelGrain = size_t{1} << 15;

struct F32 {
  float* p;
  size_t n;
};

// Reads argument `i` as a typed array of `want` (named `what` in the error); throws a TypeError
// and returns false otherwise.
template <typename T>
inline bool GetTyped(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type want, const char* what, T*& p, size_t& n) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  size_t offset = 0;
  if (i >= info.Length() ||
      napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, &buffer, &offset) != napi_ok ||
      type != want) {
    Napi::TypeError::New(info.Env(), "dbn_native: argument " + std::to_string(i) + " must be a " + what)
        .ThrowAsJavaScriptException();
    return false;
  }
  p = static_cast<T*>(data);
  n = length;
  return true;
}

// Reads argument `i` as a Float32Array; throws a TypeError and returns false otherwise.
inline bool GetF32(const Napi::CallbackInfo& info, size_t i, F32& out) {
  return GetTyped(info, i, napi_float32_array, "Float32Array", out.p, out.n);
}

inline bool GetF32s(const Napi::CallbackInfo& info, std::initializer_list<F32*> arrays) {
  size_t i = 0;
  for (F32* a : arrays) {
    if (!GetF32(info, i++, *a)) return false;
  }
  return true;
}

inline double GetNumber(const Napi::CallbackInfo& info, size_t i) {
  double v = 0;
  if (i < info.Length()) napi_get_value_double(info.Env(), info[i], &v);
  return v;
}

inline bool GetBool(const Napi::CallbackInfo& info, size_t i) {
  bool v = false;
  if (i < info.Length()) napi_get_value_bool(info.Env(), info[i], &v);
  return v;
}

// Throws a RangeError unless `a.n == expected`.
inline bool ExpectLength(const Napi::CallbackInfo& info, const char* kernel, const char* name, const F32& a, size_t expected) {
  if (a.n == expected) return true;
  Napi::RangeError::New(info.Env(), std::string("dbn_native.") + kernel + ": '" + name + "' has " + std::to_string(a.n) +
                                        " elements, expected " + std::to_string(expected))
      .ThrowAsJavaScriptException();
  return false;
}

// Length of a row-broadcast operand: rows = total / cols, exact.
inline bool RowsOf(const Napi::CallbackInfo& info, const char* kernel, size_t total, size_t cols, size_t& rows) {
  if (cols == 0 ? total == 0 : total % cols == 0) {
    rows = cols == 0 ? 0 : total / cols;
    return true;
  }
  Napi::RangeError::New(info.Env(), std::string("dbn_native.") + kernel + ": " + std::to_string(total) +
                                        " elements are not a whole number of rows of " + std::to_string(cols))
      .ThrowAsJavaScriptException();
  return false;
}

struct U16 {
  uint16_t* p;
  size_t n;
};

// Reads argument `i` as a Uint16Array; throws a TypeError and returns false otherwise.
inline bool GetU16(const Napi::CallbackInfo& info, size_t i, U16& out) {
  return GetTyped(info, i, napi_uint16_array, "Uint16Array", out.p, out.n);
}

}  // namespace dbn
