// The addon's fused kernels of a contrastive-divergence step (cdGradient) and the data check of
// fit (firstInvalid): defined in cd_kernels.cc, registered by dbn_native.cc.
#pragma once

#include <napi.h>

namespace dbn {

Napi::Value CdGradient(const Napi::CallbackInfo& info);
Napi::Value FirstInvalid(const Napi::CallbackInfo& info);

}  // namespace dbn
