#include "paro/validation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "paro/dump_fits_pattern.hpp"
#include "paro/error.hpp"
#include "paro/memory_budget.hpp"

namespace paro {

namespace {
template <typename T>
bool selected(const std::vector<T>& list, T x) {
    return list.empty() || std::find(list.begin(), list.end(), x) != list.end();
}
}  // namespace

void CpuValidationBackend::run(const Pattern& pat, const LayerInputs& in, LayerOutputs& out) {
    const int64_t n = in.tokens, d = in.head_dim;
    out.dense.resize(in.q.size());
    out.masked.resize(in.q.size());
    out.kernel.clear();
    for (int64_t h = 0; h < in.heads; ++h) {
        const HeadPattern& hp = pat.layers[in.layer].heads[h];
        const Permutation perm = make_permutation(pat.layout, hp.order);
        const size_t off = static_cast<size_t>(h * n * d);
        attention_dense(in.q.data() + off, in.k.data() + off, in.v.data() + off, n, d, d, in.scale,
                        out.dense.data() + off);
        attention_masked(in.q.data() + off, in.k.data() + off, in.v.data() + off, n, d, d, in.scale, perm,
                         hp.masks[in.slot], pat.block_q, out.masked.data() + off);
    }
}

void check_validation_inputs(const Pattern& pat, const DumpInfo& info, const ValidationScope& scope,
                             const std::string& pattern_file) {
    check_dump_fits_pattern(info, pat, pattern_file);
    if (!info.has_v()) throw InputError(info.path, "/layers/*/v", "validation needs v in every layer of the dump");
    const int slots = pat.slots.count();
    if (scope.slot >= slots)
        throw ParameterError("slot", fmt::format("is {}, the pattern has {} slots", scope.slot, slots));
    if (slots > 1 && scope.slot < 0 && !info.has_steps())
        throw ParameterError("slot",
                             "the pattern has several timestep slots but the dump records no step indices "
                             "(/samples/step); choose one slot for every sample",
                             info.path);
    // A sample or layer the dump does not have would leave nothing checked, and a check that passes.
    const auto outside = [&](const std::vector<int>& picked, size_t count, const char* what) {
        for (int i : picked)
            if (i < 0 || size_t(i) >= count)
                throw ParameterError(what, fmt::format("{} is outside the dump's {} 0..{}", i, what, count - 1), info.path);
    };
    outside(scope.samples, info.samples.size(), "samples");
    outside(scope.layers, info.layers.size(), "layers");
    for (size_t l = 0; l < info.layers.size(); ++l) {
        const DumpLayer& L = info.layers[l];
        const std::string where = fmt::format("/layers/{}", l);
        if (L.kind != DumpKind::qk) throw InputError(info.path, where, "validation needs q/k dumps, not attention maps");
        if (L.head_dim != L.value_dim)
            throw InputError(info.path, where + "/v", "the runtime needs the value dim equal to the head dim");
    }
}

std::vector<HeadValidation> validate_pattern(const Pattern& pat, DumpReader& reader, const ValidationScope& scope,
                                             ValidationBackend& backend,
                                             const std::function<void(int64_t, int64_t)>& progress) {
    const DumpInfo& info = reader.info();
    check_validation_inputs(pat, info, scope);
    const int64_t n = info.tokens();
    // The peak: one layer's q, k, v and the dense, masked and kernel outputs in fp32, plus one head
    // as read (fp32 q, k, v).
    for (int l = 0; l < static_cast<int>(info.layers.size()); ++l) {
        if (!selected(scope.layers, l)) continue;
        const DumpLayer& L = info.layers[l];
        const double per_head = static_cast<double>(n) * static_cast<double>(L.head_dim) * sizeof(float);
        require_memory(per_head * (6.0 * static_cast<double>(L.heads) + 3.0),
                       fmt::format("the q, k, v and outputs of layer {} ({} heads)", l, L.heads), info.path,
                       fmt::format("/layers/{}", l));
    }
    int64_t total = 0, done = 0;
    for (int s = 0; s < static_cast<int>(info.samples.size()); ++s)
        for (int l = 0; l < static_cast<int>(info.layers.size()); ++l)
            total += selected(scope.samples, s) && selected(scope.layers, l);
    std::vector<HeadValidation> results;
    for (int s = 0; s < static_cast<int>(info.samples.size()); ++s) {
        if (!selected(scope.samples, s)) continue;
        const int slot = scope.slot >= 0 ? scope.slot : sample_slot(info, pat.slots, s);
        PARO_ASSERT(slot != kUnknownSlot);  // check_validation_inputs asked for steps or a slot
        for (int l = 0; l < static_cast<int>(info.layers.size()); ++l) {
            if (!selected(scope.layers, l)) continue;
            const DumpLayer& L = info.layers[l];
            LayerInputs in;
            in.layer = l;
            in.heads = L.heads;
            in.tokens = n;
            in.head_dim = L.head_dim;
            in.slot = slot;
            in.scale = L.scale;
            const size_t per_head = static_cast<size_t>(n * L.head_dim);
            for (auto* t : {&in.q, &in.k, &in.v}) t->resize(per_head * static_cast<size_t>(L.heads));
            for (int64_t h = 0; h < L.heads; ++h) {
                const HeadSlice hs = reader.read(s, l, h, true);
                std::copy(hs.q.begin(), hs.q.end(), in.q.begin() + h * per_head);
                std::copy(hs.k.begin(), hs.k.end(), in.k.begin() + h * per_head);
                std::copy(hs.v.begin(), hs.v.end(), in.v.begin() + h * per_head);
            }
            LayerOutputs out;
            backend.run(pat, in, out);
            for (int64_t h = 0; h < L.heads; ++h) {
                const HeadPattern& hp = pat.layers[l].heads[h];
                const size_t off = h * per_head;
                HeadValidation r;
                r.sample = s;
                r.layer = l;
                r.head = static_cast<int>(h);
                r.slot = slot;
                r.order = hp.order;
                r.density = hp.masks[slot].density();
                r.mask = compare_outputs(out.masked.data() + off, out.dense.data() + off, per_head);
                r.quant = r.total = r.mask;
                if (!out.kernel.empty()) {
                    r.has_quant = true;
                    r.quant = compare_outputs(out.kernel.data() + off, out.masked.data() + off, per_head);
                    r.total = compare_outputs(out.kernel.data() + off, out.dense.data() + off, per_head);
                }
                results.push_back(r);
            }
            if (progress) progress(++done, total);
        }
    }
    return results;
}

ErrorStats worst_of(const ErrorStats& a, const ErrorStats& b) {
    const auto lower = [](double x, double y) { return std::isnan(x) || std::isnan(y) ? NAN : std::min(x, y); };
    const auto higher = [](double x, double y) { return std::isnan(x) || std::isnan(y) ? NAN : std::max(x, y); };
    ErrorStats w;
    w.cosine = lower(a.cosine, b.cosine);
    w.rel_l1 = higher(a.rel_l1, b.rel_l1);
    w.rel_l2 = higher(a.rel_l2, b.rel_l2);
    w.max_abs = higher(a.max_abs, b.max_abs);
    w.psnr = lower(a.psnr, b.psnr);
    w.finite = a.finite && b.finite;
    return w;
}

std::vector<HeadWorst> worst_over_samples(const std::vector<HeadValidation>& results) {
    std::map<std::pair<int, int>, HeadWorst> by_head;
    for (const HeadValidation& r : results) {
        auto [it, first] = by_head.try_emplace({r.layer, r.head});
        HeadWorst& w = it->second;
        if (first) {
            w.layer = r.layer;
            w.head = r.head;
            w.order = r.order;
            w.mask = r.mask;
            w.quant = r.quant;
            w.total = r.total;
            w.has_quant = r.has_quant;
        } else {
            w.mask = worst_of(w.mask, r.mask);
            w.quant = worst_of(w.quant, r.quant);
            w.total = worst_of(w.total, r.total);
        }
        w.mean_density += r.density;
        ++w.samples;
    }
    std::vector<HeadWorst> out;
    out.reserve(by_head.size());
    for (auto& [key, w] : by_head) {
        w.mean_density /= w.samples;
        out.push_back(w);
    }
    return out;
}

}  // namespace paro
