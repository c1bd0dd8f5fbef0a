#include "gpu_validation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <string>
#include <vector>

#include "paro/error.hpp"
#include "paro/runtime_limits.hpp"

namespace paro::gpu {

GpuValidationBackend::GpuValidationBackend(const Pattern& pattern, paro_dtype dtype) : dtype_(dtype) {
    int count = 0;
    if (paro_device_check(&count) != PARO_OK)
        throw NoDeviceError("GPU: " + std::string(paro_last_error()) + "; run with --cpu for the (slow) CPU reference");
    paro_plan* plan = nullptr;
    check(plan_from_pattern(pattern, &plan), "loading the pattern onto the GPU");
    plan_.reset(plan);
    device_ = device_name();
    // The runtime honours each head's QK and PV formats (and refuses layers with formats it has no
    // kernel for). Named as the docs name them, "/"-joined when the heads differ.
    auto names = [](const std::vector<std::string>& present) {
        return fmt::format("{}{}", fmt::join(present, "/"), present.size() > 1 ? " (per head)" : "");
    };
    auto any_head = [&](auto pred) {
        for (const auto& l : pattern.layers)
            if (std::any_of(l.heads.begin(), l.heads.end(), pred)) return true;
        return false;
    };
    std::vector<std::string> qk, pv;
    if (any_head([](const HeadPattern& h) { return h.qk_bits != 16; })) qk.push_back("INT8");
    if (any_head([](const HeadPattern& h) { return h.qk_bits == 16; })) qk.push_back("16-bit");
    for (const PvFormat f : kAllPvFormats)
        if (any_head([f](const HeadPattern& h) { return h.pv_format == f; }))
            pv.push_back(f == PvFormat::int8 ? "INT8" : to_string(f));
    qk_ = names(qk);
    pv_ = names(pv);
}

std::string GpuValidationBackend::describe() const {
    const char* dt = dtype_name(dtype_);
    return fmt::format("GPU runtime {} QK + {} PV on {} ({} kernel), input {}", qk_, pv_, device_,
                       paro_attention_kernel_name(), dt);
}

void GpuValidationBackend::run(const Pattern&, const LayerInputs& in, LayerOutputs& out) {
    const int64_t H = in.heads, n = in.tokens, D = in.head_dim;
    if (!runtime_supports_head_dim(D))
        throw InputError("", fmt::format("/layers/{}/q", in.layer),
                         fmt::format("head dim {} is not supported by the runtime ({})", D,
                                     fmt::join(kRuntimeHeadDims, ", ")));
    const size_t count = in.q.size(), fbytes = count * sizeof(float);
    DeviceBuffer dq(fbytes), dk(fbytes), dv(fbytes), dd(fbytes), dm(fbytes), dout(fbytes);
    dq.upload(in.q.data(), fbytes);
    dk.upload(in.k.data(), fbytes);
    dv.upload(in.v.data(), fbytes);
    const float scale = static_cast<float>(in.scale);
    check(paro_reference_attention(nullptr, 0, 0, 1, int(H), int(n), int(D), dq.as<float>(), dk.as<float>(),
                                   dv.as<float>(), dd.as<float>(), scale, nullptr),
          "dense reference");
    check(paro_reference_attention(plan_.get(), int(in.layer), in.slot, 1, int(H), int(n), int(D), dq.as<float>(),
                                   dk.as<float>(), dv.as<float>(), dm.as<float>(), scale, nullptr),
          "masked reference");
    const size_t eb = dtype_ == PARO_FLOAT32 ? 4 : 2;
    DeviceBuffer tq(count * eb), tk(count * eb), tv(count * eb), to(count * eb);
    convert_from_f32(dq.as<float>(), tq.get(), dtype_, count);
    convert_from_f32(dk.as<float>(), tk.get(), dtype_, count);
    convert_from_f32(dv.as<float>(), tv.get(), dtype_, count);
    to.fill_byte(0xff);  // poison: every element must be written
    paro_attention_args a{};
    a.batch = 1;
    a.heads = int(H);
    a.tokens = int(n);
    a.head_dim = int(D);
    a.dtype = dtype_;
    const int64_t sh = n * D, sb = H * n * D;
    a.q = {tq.get(), sb, sh, D};
    a.k = {tk.get(), sb, sh, D};
    a.v = {tv.get(), sb, sh, D};
    a.out = {to.get(), sb, sh, D};
    a.layer = int(in.layer);
    a.slot = in.slot;
    a.scale = scale;
    a.smooth_k = 1;
    size_t ws_bytes = 0;
    check(paro_workspace_size(&a, &ws_bytes), "workspace size");
    DeviceBuffer ws(ws_bytes);
    check(paro_attention(plan_.get(), &a, ws.get(), ws_bytes, nullptr), "paro_attention");
    convert_to_f32(to.get(), dtype_, dout.as<float>(), count);
    check(paro_stream_check(nullptr), "running the kernels");
    out.dense.resize(count);
    out.masked.resize(count);
    out.kernel.resize(count);
    dd.download(out.dense.data(), fbytes);
    dm.download(out.masked.data(), fbytes);
    dout.download(out.kernel.data(), fbytes);
}

}  // namespace paro::gpu
