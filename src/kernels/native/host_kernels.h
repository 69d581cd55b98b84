// The host-array kernels of peer-to-peer training (deltaStep, sparseSelect), recycled frames for
// outgoing deltas (hostFrame) and the generator's uniforms (fillUniform): defined in host_kernels.cc,
// registered by dbn_native.cc.
#pragma once

#include <napi.h>

namespace dbn {

Napi::Value DeltaStep(const Napi::CallbackInfo& info);
Napi::Value SparseSelect(const Napi::CallbackInfo& info);
Napi::Value HostFrame(const Napi::CallbackInfo& info);
Napi::Value FillUniform(const Napi::CallbackInfo& info);

}  // namespace dbn
