#include "paro/synth.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <utility>

#include "paro/atomic_output.hpp"
#include "paro/error.hpp"
#include "paro/half.hpp"
#include "paro/hdf5_io.hpp"
#include "paro/reference_stats.hpp"
#include "paro/runtime_limits.hpp"

namespace paro {

std::string to_string(HeadKind k) {
    switch (k) {
        case HeadKind::spatial: return "spatial";
        case HeadKind::temporal: return "temporal";
        case HeadKind::row: return "row";
        case HeadKind::column: return "column";
    }
    return "?";
}

HeadKind parse_head_kind(const std::string& name) {
    for (HeadKind k : {HeadKind::spatial, HeadKind::temporal, HeadKind::row, HeadKind::column})
        if (name == to_string(k)) return k;
    throw ParameterError("kinds",
                         fmt::format("unknown head kind '{}' (expected spatial, temporal, row, column)", name));
}

std::vector<AxisOrder> accepted_orders(HeadKind k) {
    switch (k) {
        case HeadKind::spatial: return {AxisOrder::FHW, AxisOrder::FWH};
        case HeadKind::temporal: return {AxisOrder::HWF, AxisOrder::WHF};
        case HeadKind::row: return {AxisOrder::FHW, AxisOrder::HFW};
        case HeadKind::column: return {AxisOrder::FWH, AxisOrder::WFH};
    }
    return {};
}

HeadKind planted_kind(const SynthOptions& opt, int layer, int head) {
    return opt.kinds[static_cast<size_t>(head + layer) % opt.kinds.size()];
}

namespace {

std::vector<int> tight_axes(HeadKind k) {
    switch (k) {
        case HeadKind::spatial: return {0};
        case HeadKind::temporal: return {1, 2};
        case HeadKind::row: return {0, 1};
        case HeadKind::column: return {0, 2};
    }
    return {};
}

// Features of one token for a head: for each tight axis, pairs (cos, sin)(w_m * c) with
// w_m = pi * m / n_axis, m = 1..K. Then q_i . k_j = sum_m cos(w_m (c_i - c_j)), a Dirichlet kernel
// that peaks at equal coordinates. Dims beyond the features stay zero (noise fills them).
void token_features(const TokenLayout& layout, HeadKind kind, int64_t token, int dim, std::vector<double>& out) {
    std::fill(out.begin(), out.end(), 0.0);
    if (layout.is_text(token)) return;
    const VideoCoord c = layout.coord(token);
    const int64_t coord[3] = {c.f, c.h, c.w};
    const auto axes = tight_axes(kind);
    const int per_axis = (dim / static_cast<int>(axes.size())) / 2;
    int d = 0;
    for (int a : axes) {
        const int64_t n = layout.grid[a];
        const int freqs = std::min<int>(per_axis, static_cast<int>(std::max<int64_t>(1, n)));
        for (int m = 1; m <= freqs; ++m) {
            const double w = M_PI * m / static_cast<double>(std::max<int64_t>(n, 2));
            out[d++] = std::cos(w * coord[a]) / std::sqrt(static_cast<double>(freqs * axes.size()));
            out[d++] = std::sin(w * coord[a]) / std::sqrt(static_cast<double>(freqs * axes.size()));
        }
    }
}

// token_features of every token, [n][dim], made once per head kind (cos/sin per token and head
// would cost more than the random numbers).
std::vector<double> feature_table(const TokenLayout& layout, HeadKind kind, int dim) {
    const int64_t n = layout.tokens();
    std::vector<double> table(static_cast<size_t>(n * dim)), feat(static_cast<size_t>(dim));
    for (int64_t t = 0; t < n; ++t) {
        token_features(layout, kind, t, dim, feat);
        std::copy(feat.begin(), feat.end(), table.begin() + t * dim);
    }
    return table;
}

// One head's q, k, v from its own random stream (seeded by seed, layer, sample, head), so heads can
// be made in parallel and the dump does not depend on the thread count.
struct HeadTensors {
    std::vector<float> q, k, v;
};

void make_head(const SynthOptions& opt, const std::vector<double>& features, uint64_t stream, double amp,
               HeadTensors& out) {
    const int64_t n = opt.layout.tokens();
    const int d = opt.head_dim;
    std::mt19937_64 rng(stream);
    std::normal_distribution<double> normal(0.0, 1.0);
    out.q.resize(static_cast<size_t>(n * d));
    out.k.resize(out.q.size());
    out.v.resize(out.q.size());
    for (int64_t t = 0; t < n; ++t) {
        const bool text = opt.layout.is_text(t);
        for (int e = 0; e < d; ++e) {
            // Text tokens: small random vectors, so text attention is diffuse.
            const double base = text ? 0.3 * normal(rng) / std::sqrt(d) : features[t * d + e];
            out.q[t * d + e] = static_cast<float>(amp * (base + opt.noise * normal(rng) / std::sqrt(d)));
            out.k[t * d + e] = static_cast<float>(amp * (base + opt.noise * normal(rng) / std::sqrt(d)));
            out.v[t * d + e] = static_cast<float>(normal(rng));
        }
    }
}

uint64_t head_stream(uint64_t seed, int layer, int sample, int head) {
    uint64_t x = seed;
    for (uint64_t part : {uint64_t(layer), uint64_t(sample), uint64_t(head)}) {  // splitmix64 steps
        x += 0x9e3779b97f4a7c15ull + part;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        x ^= x >> 31;
    }
    return x;
}

// Writes one [n, d] tensor into box (s, h) of dataset `ds`, converting to half ourselves when the
// dataset stores fp16.
void write_tensor(hid_t ds, int s, int h, int64_t n, int d, const std::vector<float>& x, bool half,
                  std::vector<uint16_t>& scratch) {
    if (!half) return h5::write_box(ds, {s, h, 0, 0}, {1, 1, n, d}, x.data());
    scratch.resize(x.size());
    std::transform(x.begin(), x.end(), scratch.begin(), float_to_half);
    h5::write_box(ds, {s, h, 0, 0}, {1, 1, n, d}, scratch.data());
}

}  // namespace

void write_synthetic_dump(const SynthOptions& opt, const std::string& path) {
    opt.layout.validate();
    const std::pair<const char*, int> counts[] = {{"layers", opt.layers},   {"heads", opt.heads},
                                                  {"samples", opt.samples}, {"prompts", opt.prompts},
                                                  {"num_steps", opt.num_steps}};
    for (const auto& [name, value] : counts)
        if (value < 1) throw ParameterError(name, fmt::format("must be at least 1, got {}", value));
    // Synthetic dumps feed the runtime's tests and benchmarks, so only head dims it serves.
    if (!runtime_supports_head_dim(opt.head_dim))
        throw ParameterError("head_dim", fmt::format("must be one that the runtime serves ({}), got {}",
                                                     fmt::join(kRuntimeHeadDims, ", "), opt.head_dim));
    if (opt.kinds.empty()) throw ParameterError("kinds", "needs at least one head kind");
    const int64_t n = opt.layout.tokens();
    if (opt.maps && n > 8192)
        throw ParameterError("maps", fmt::format("attention maps need N <= 8192 tokens, the grid gives {}", n));

    AtomicOutput out(path);
    const int d = opt.head_dim, S = opt.samples, H = opt.heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const h5::StoreType store = opt.float16 ? h5::StoreType::f16 : h5::StoreType::f32;
    {
        h5::File f = h5::File::create(out.temp_path());
        const hid_t root = f.id();
        h5::write_attr(root, "paro_format", std::string("paro-dump"));
        h5::write_attr(root, "paro_version", int64_t{1});
        DumpInfo header;
        header.layout = opt.layout;
        header.model = opt.model;
        header.num_steps = opt.num_steps;
        for (int s = 0; s < S; ++s) {
            const int64_t step = static_cast<int64_t>(s) * opt.num_steps / S;
            header.samples.push_back({1000.0 * (1.0 - static_cast<double>(step) / opt.num_steps), step, s % opt.prompts});
        }
        write_dump_header(root, header);

        h5::Handle layers = h5::create_group(root, "layers");
        std::map<HeadKind, std::vector<double>> features;
        for (HeadKind kind : opt.kinds)
            if (!features.count(kind)) features[kind] = feature_table(opt.layout, kind, d);
        // Heads are made a batch of `threads` at a time in parallel, then written in order (HDF5 is
        // serial): memory is threads x one head, whatever the model size.
        const int threads = std::max(1, omp_get_max_threads());
        std::vector<HeadTensors> batch(static_cast<size_t>(std::min(threads, H)));
        std::vector<float> p;
        std::vector<uint16_t> halves;
        // Logit gap between a full match and an unrelated key is about `sharpness`.
        const double amp = std::sqrt(opt.sharpness / scale);
        for (int l = 0; l < opt.layers; ++l) {
            h5::Handle g = h5::create_group(layers.get(), std::to_string(l));
            std::vector<std::string> kinds;
            for (int h = 0; h < H; ++h) kinds.push_back(to_string(planted_kind(opt, l, h)));
            h5::write_attr(g.get(), "planted_kinds", kinds);
            const h5::WriteOptions chunked{{1, 1, n, d}, 0};
            h5::Handle dq, dk, dv, da;
            if (opt.maps) {
                da = h5::create_dataset(g.get(), "attn", {S, H, n, n}, store, {{1, 1, std::min<int64_t>(n, 256), n}, 0});
            } else {
                dq = h5::create_dataset(g.get(), "q", {S, H, n, d}, store, chunked);
                dk = h5::create_dataset(g.get(), "k", {S, H, n, d}, store, chunked);
            }
            if (opt.with_v) dv = h5::create_dataset(g.get(), "v", {S, H, n, d}, store, chunked);
            const bool half = store == h5::StoreType::f16;
            for (int s = 0; s < S; ++s)
                for (int h0 = 0; h0 < H; h0 += static_cast<int>(batch.size())) {
                    const int count = std::min(static_cast<int>(batch.size()), H - h0);
#pragma omp parallel for schedule(dynamic) num_threads(count)
                    for (int i = 0; i < count; ++i)
                        make_head(opt, features.at(planted_kind(opt, l, h0 + i)), head_stream(opt.seed, l, s, h0 + i),
                                  amp, batch[static_cast<size_t>(i)]);
                    for (int i = 0; i < count; ++i) {
                        const int h = h0 + i;
                        const HeadTensors& t = batch[static_cast<size_t>(i)];
                        if (opt.maps) {
                            HeadSlice slice;
                            slice.tokens = n;
                            slice.head_dim = d;
                            slice.scale = scale;
                            slice.q = t.q;
                            slice.k = t.k;
                            const std::vector<double> attention = reference_attention_matrix(slice);
                            p.assign(attention.begin(), attention.end());
                            h5::write_box(da.get(), {s, h, 0, 0}, {1, 1, n, n}, p.data());
                        } else {
                            write_tensor(dq.get(), s, h, n, d, t.q, half, halves);
                            write_tensor(dk.get(), s, h, n, d, t.k, half, halves);
                        }
                        if (opt.with_v) write_tensor(dv.get(), s, h, n, d, t.v, half, halves);
                    }
                }
        }
        f.close();
    }
    out.commit();
}

}  // namespace paro
