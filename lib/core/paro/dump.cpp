#include "paro/dump.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "paro/error.hpp"
#include "paro/schema_check.hpp"
#include "paro/value_rules.hpp"
#include "paro/memory_budget.hpp"
#include "paro/checksum.hpp"
#include "paro/half.hpp"

namespace paro {

int64_t DumpInfo::total_heads() const {
    int64_t n = 0;
    for (const auto& l : layers) n += l.heads;
    return n;
}

bool DumpInfo::has_v() const {
    return std::all_of(layers.begin(), layers.end(), [](const DumpLayer& l) { return l.has_v(); });
}

bool DumpInfo::has_steps() const {
    return num_steps > 0 &&
           std::all_of(samples.begin(), samples.end(), [](const DumpSample& s) { return s.step >= 0; });
}

double DumpInfo::step_fraction(int64_t sample) const {
    PARO_ASSERT(has_steps());
    return static_cast<double>(samples[sample].step) / static_cast<double>(num_steps);
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

// Validates one 4-d tensor dataset and returns its shape.
std::vector<int64_t> tensor_shape(const h5::File& f, const std::string& path) {
    h5::Handle d = h5::open_dataset(f, path);
    const auto info = h5::dataset_info(f, d.get(), path);
    if (info.type == h5::TypeClass::integer)
        throw InputError(f.path(), path, "integer tensors are not supported (write float16 or float32)");
    if (info.type != h5::TypeClass::floating || (info.type_size != 2 && info.type_size != 4 && info.type_size != 8))
        throw InputError(f.path(), path, "must be float16 or float32");
    if (info.shape.size() != 4)
        throw InputError(f.path(), path, fmt::format("must have 4 dimensions, has shape {}", shape_str(info.shape)));
    if (h5::stored_bytes(d.get()) == 0 &&
        std::none_of(info.shape.begin(), info.shape.end(), [](int64_t n) { return n == 0; }))
        throw InputError(f.path(), path, "holds no data (never written)");
    return info.shape;
}

}  // namespace

void read_dump_header(const h5::File& f, DumpInfo& info) {
    info.path = f.path();
    const hid_t root = f.id();

    const auto grid = h5::read_int_attr(f, root, "/", "grid");
    if (grid.size() != 3) throw InputError(f.path(), "attribute grid", "must hold 3 integers (F, H, W)");
    std::copy(grid.begin(), grid.end(), info.layout.grid.begin());
    info.layout.text_tokens = h5::has_attr(root, "text_tokens") ? h5::read_scalar_int_attr(f, root, "/", "text_tokens") : 0;
    if (h5::has_attr(root, "text_position"))
        info.layout.text_position =
            parse_text_position(h5::read_string_attr(f, root, "/", "text_position"), f.path(),
                                "attribute text_position");
    info.layout.validate(f.path());
    if (h5::has_attr(root, "model")) info.model = h5::read_string_attr(f, root, "/", "model");

    // Samples.
    h5::Handle samples = h5::open_group(f, "/samples");
    for (const char* name : {"/samples/prompt", "/samples/step"}) {
        if (!h5::link_exists(f.id(), name)) continue;
        h5::Handle d = h5::open_dataset(f, name);
        if (h5::dataset_info(f, d.get(), name).type != h5::TypeClass::integer)
            throw InputError(f.path(), name, "must hold integers");
    }
    const auto timestep = h5::read_all_double(f, "/samples/timestep");
    const auto prompt = h5::read_all_int(f, "/samples/prompt");
    const int64_t S = static_cast<int64_t>(timestep.size());
    if (S == 0) throw InputError(f.path(), "/samples/timestep", "holds no samples");
    if (static_cast<int64_t>(prompt.size()) != S)
        throw InputError(f.path(), "/samples/prompt", fmt::format("has {} entries, /samples/timestep has {}", prompt.size(), S));
    std::vector<int64_t> step(S, -1);
    if (h5::link_exists(f.id(), "/samples/step")) {
        step = h5::read_all_int(f, "/samples/step");
        if (static_cast<int64_t>(step.size()) != S)
            throw InputError(f.path(), "/samples/step", fmt::format("has {} entries, expected {}", step.size(), S));
        for (auto s : step)
            if (s < 0) throw InputError(f.path(), "/samples/step", fmt::format("negative step {}", s));
    }
    if (h5::has_attr(samples.get(), "num_steps")) {
        info.num_steps = h5::read_scalar_int_attr(f, samples.get(), "/samples", "num_steps");
        if (info.num_steps <= 0)
            throw InputError(f.path(), "/samples attribute num_steps", fmt::format("must be positive, is {}", info.num_steps));
    }
    if (h5::has_attr(samples.get(), "prompt_names"))
        info.prompt_names = h5::read_string_array_attr(f, samples.get(), "/samples", "prompt_names");
    for (int64_t s = 0; s < S; ++s) info.samples.push_back({timestep[s], step[s], prompt[s]});
    check_samples(info);
}

void check_samples(const DumpInfo& info) {
    const std::string& path = info.path;
    if (info.samples.empty()) throw InputError(path, "/samples/timestep", "holds no samples");
    if (info.num_steps != -1 && info.num_steps <= 0)
        throw InputError(path, "/samples attribute num_steps", fmt::format("must be positive, is {}", info.num_steps));
    const bool steps = info.samples[0].step >= 0;
    for (size_t s = 0; s < info.samples.size(); ++s) {
        const DumpSample& d = info.samples[s];
        if (!std::isfinite(d.timestep)) throw InputError(path, "/samples/timestep", "holds NaN or Inf");
        if ((d.step >= 0) != steps)
            throw InputError(path, "/samples/step", fmt::format("sample {} has no step where others have one", s));
        if (info.num_steps > 0 && d.step >= info.num_steps)
            throw InputError(path, "/samples/step",
                             fmt::format("step {} is not below num_steps {}", d.step, info.num_steps));
        if (!info.prompt_names.empty() &&
            (d.prompt < 0 || d.prompt >= static_cast<int64_t>(info.prompt_names.size())))
            throw InputError(path, "/samples/prompt",
                             fmt::format("prompt {} of sample {} has no entry in the {} prompt_names", d.prompt, s,
                                         info.prompt_names.size()));
    }
}

void write_dump_header(hid_t root, const DumpInfo& info) {
    h5::write_attr(root, "grid", std::vector<int64_t>(info.layout.grid.begin(), info.layout.grid.end()));
    h5::write_attr(root, "text_tokens", info.layout.text_tokens);
    h5::write_attr(root, "text_position", to_string(info.layout.text_position));
    h5::write_attr(root, "model", info.model);
    h5::Handle samples = h5::create_group(root, "samples");
    if (info.num_steps > 0) h5::write_attr(samples.get(), "num_steps", info.num_steps);
    if (!info.prompt_names.empty()) h5::write_attr(samples.get(), "prompt_names", info.prompt_names);
    const int64_t S = static_cast<int64_t>(info.samples.size());
    std::vector<double> timestep;
    std::vector<int64_t> step, prompt;
    for (const DumpSample& s : info.samples) {
        timestep.push_back(s.timestep);
        step.push_back(s.step);
        prompt.push_back(s.prompt);
    }
    h5::write_dataset(samples.get(), "timestep", {S}, h5::StoreType::f64, timestep.data(), h5::StoreType::f64);
    if (std::all_of(step.begin(), step.end(), [](int64_t x) { return x >= 0; }))
        h5::write_dataset(samples.get(), "step", {S}, h5::StoreType::i64, step.data(), h5::StoreType::i64);
    h5::write_dataset(samples.get(), "prompt", {S}, h5::StoreType::i64, prompt.data(), h5::StoreType::i64);
}

DumpReader::DumpReader(const std::string& path)
    : file_(h5::open_for<DumpReader>(path)), direct_(std::make_unique<DirectReads>(path)) {
    h5::expect_format(file_, "paro-dump", 1, 1);
    // The layout `paro check` applies (schemas/paro-dump-v1.json), tensors' values aside: those are
    // checked as each head is decoded.
    SchemaUse layout;
    layout.dataset_values = false;
    require_schema(file_, kDumpSchemaJson, layout);
    read_dump_header(file_, info_);
    const int64_t S = static_cast<int64_t>(info_.samples.size());

    // Layers: named 0..L-1, each with q/k (+v) or attn.
    if (!h5::is_group(file_.id(), "/layers")) throw InputError(path, "/layers", "missing group");
    const auto names = h5::list_members(file_, "/layers");
    if (names.empty()) throw InputError(path, "/layers", "holds no layers");
    const int64_t L = static_cast<int64_t>(names.size());
    for (const auto& nm : names) {
        const bool decimal = !nm.empty() && nm.size() <= 9 && std::all_of(nm.begin(), nm.end(), ::isdigit) &&
                             (nm == "0" || nm[0] != '0');
        if (!decimal || std::stoll(nm) >= L)
            throw InputError(path, "/layers/" + nm, fmt::format("unexpected member (layers must be named 0..{})", L - 1));
    }
    const int64_t N = info_.layout.tokens();
    for (int64_t l = 0; l < L; ++l) {
        const std::string base = fmt::format("/layers/{}", l);
        h5::Handle g = h5::open_group(file_, base);
        DumpLayer layer;
        std::vector<int64_t> shape;
        const bool has_q = h5::link_exists(file_.id(), base + "/q");
        const bool has_k = h5::link_exists(file_.id(), base + "/k");
        const bool has_attn = h5::link_exists(file_.id(), base + "/attn");
        if ((has_q || has_k) && has_attn)
            throw InputError(path, base + "/attn",
                             fmt::format("is not allowed beside {}{}", base, has_q ? "/q" : "/k"));
        if (has_q || has_k) {
            if (!has_q) throw InputError(path, base + "/q", "missing dataset (the layer has k)");
            if (!has_k) throw InputError(path, base + "/k", "missing dataset (the layer has q)");
            shape = tensor_shape(file_, base + "/q");
            const auto ks = tensor_shape(file_, base + "/k");
            if (ks != shape)
                throw InputError(path, base + "/k",
                                 fmt::format("shape {} does not match q's {}", shape_str(ks), shape_str(shape)));
            layer.kind = DumpKind::qk;
            layer.head_dim = shape[3];
            if (layer.head_dim <= 0) throw InputError(path, base + "/q", "head dimension is zero");
        } else if (has_attn) {
            shape = tensor_shape(file_, base + "/attn");
            layer.kind = DumpKind::attention;
            if (shape[3] != shape[2])
                throw InputError(path, base + "/attn", fmt::format("shape {} is not [S, heads, N, N]", shape_str(shape)));
        } else {
            throw InputError(path, base, "has neither q/k nor attn");
        }
        const std::string main = base + (layer.kind == DumpKind::qk ? "/q" : "/attn");
        if (shape[0] != S)
            throw InputError(path, main, fmt::format("has {} samples, /samples has {}", shape[0], S));
        if (shape[1] <= 0) throw InputError(path, main, "has no heads");
        if (shape[2] != N)
            throw InputError(path, main,
                             fmt::format("has N = {} tokens but grid {} gives {}", shape[2],
                                         info_.layout.describe(), N));
        layer.heads = shape[1];
        if (h5::link_exists(file_.id(), base + "/v")) {
            const auto vs = tensor_shape(file_, base + "/v");
            if (vs[0] != S || vs[1] != layer.heads || vs[2] != N || vs[3] <= 0)
                throw InputError(path, base + "/v",
                                 fmt::format("shape {} does not match [S={}, heads={}, N={}, Dv]", shape_str(vs), S,
                                             layer.heads, N));
            layer.value_dim = vs[3];
        }
        if (h5::has_attr(g.get(), "scale")) {
            const auto sc = h5::read_float_attr(file_, g.get(), base, "scale");
            if (sc.size() != 1 || !std::isfinite(sc[0]) || sc[0] <= 0)
                throw InputError(path, base + " attribute scale", "must be one positive finite number");
            layer.scale = sc[0];
        } else {
            layer.scale = layer.head_dim > 0 ? 1.0 / std::sqrt(static_cast<double>(layer.head_dim)) : 1.0;
        }
        info_.layers.push_back(layer);
    }
    int64_t slices = 0;
    for (const DumpLayer& layer : info_.layers) first_slice_.push_back(slices), slices += layer.heads;
    slices *= S;
    slice_crc_.assign(static_cast<size_t>(slices), 0);
    slice_bytes_.assign(static_cast<size_t>(slices), 0);
}

int64_t RawHeads::stored_bytes() const {
    int64_t n = 0;
    for (const Tensor& t : tensors) n += static_cast<int64_t>(t.bytes.size());
    return n;
}

void DumpReader::read_raw(int64_t sample, int64_t layer, int64_t h0, int64_t count, bool with_v,
                          RawHeads& raw) const {
    prepare_raw(sample, layer, h0, count, with_v, raw);
    read_raw_heads(raw, 0, count);
}

void DumpReader::prepare_raw(int64_t sample, int64_t layer, int64_t h0, int64_t count, bool with_v,
                             RawHeads& raw) const {
    PARO_ASSERT(sample >= 0 && sample < static_cast<int64_t>(info_.samples.size()));
    PARO_ASSERT(layer >= 0 && layer < static_cast<int64_t>(info_.layers.size()));
    const DumpLayer& L = info_.layers[layer];
    PARO_ASSERT(h0 >= 0 && count > 0 && h0 + count <= L.heads);
    const int64_t n = info_.tokens();
    raw.sample = sample, raw.layer = layer, raw.h0 = h0, raw.count = count;
    std::vector<std::pair<const char*, int64_t>> wanted;
    if (L.kind == DumpKind::qk)
        wanted = {{"q", L.head_dim}, {"k", L.head_dim}};
    else
        wanted = {{"attn", n}};
    if (with_v && L.has_v()) wanted.emplace_back("v", L.value_dim);
    // The read and its decoded floats (at most 4 + 4 bytes per value), before any allocation.
    double values = 0;
    for (const auto& w : wanted) values += static_cast<double>(count) * static_cast<double>(n) * static_cast<double>(w.second);
    require_memory(8.0 * values, fmt::format("{} head(s) of layer {}, sample {}", count, layer, sample), info_.path,
                   fmt::format("/layers/{}", layer));
    raw.tensors.resize(wanted.size());
    for (size_t t = 0; t < wanted.size(); ++t) {
        RawHeads::Tensor& out = raw.tensors[t];
        out.path = fmt::format("/layers/{}/{}", layer, wanted[t].first);
        out.cols = wanted[t].second;
        h5::Handle d = h5::open_dataset(file_, out.path);
        out.half = h5::stored_as_half(d.get());
        out.bytes.resize(static_cast<size_t>(count * n * out.cols) * (out.half ? sizeof(uint16_t) : sizeof(float)));
    }
}

void DumpReader::read_raw_heads(RawHeads& raw, int64_t i0, int64_t n) const {
    PARO_ASSERT(i0 >= 0 && n > 0 && i0 + n <= raw.count);
    const int64_t tokens = info_.tokens();
    for (RawHeads::Tensor& t : raw.tensors) {
        const size_t per_head = static_cast<size_t>(tokens * t.cols) * (t.half ? sizeof(uint16_t) : sizeof(float));
        int64_t direct = 0;  // heads read without libhdf5, from i0 on
        while (direct < n && direct_->read(file_, t.path, t.half, raw.sample, raw.h0 + i0 + direct, tokens, t.cols,
                                           t.bytes.data() + static_cast<size_t>(i0 + direct) * per_head))
            ++direct;
        if (direct == n) continue;
        h5::Handle d = h5::open_dataset(file_, t.path);
        h5::read_box_raw(file_, d.get(), t.path, {raw.sample, raw.h0 + i0 + direct, 0, 0},
                         {1, n - direct, tokens, t.cols}, t.half,
                         t.bytes.data() + static_cast<size_t>(i0 + direct) * per_head);
    }
}

void DumpReader::decode(const RawHeads& raw, int64_t i, HeadSlice& s, HalfQK halves) const {
    PARO_ASSERT(i >= 0 && i < raw.count);
    const DumpLayer& L = info_.layers[raw.layer];
    s.file = info_.path;
    s.sample = raw.sample;
    s.layer = raw.layer;
    s.head = raw.h0 + i;
    s.tokens = info_.tokens();
    s.head_dim = L.head_dim;
    s.value_dim = 0;
    s.scale = L.scale;
    // Tensors this dump does not hold, or holds in the other form, are emptied; the others keep
    // their storage (a resize to the same size writes nothing: zero-filling 9 MB per head was a
    // tenth of decoding it).
    std::vector<float>* floats[4] = {&s.q, &s.k, &s.v, &s.attention};
    std::vector<uint16_t>* kept[2] = {&s.q_half, &s.k_half};
    bool held_floats[4] = {false, false, false, false}, held_halves[2] = {false, false};
    constexpr size_t kBlock = size_t(1) << 14;
    std::vector<float> widened;  // a block of kept halves as floats, for the checksum
    uint32_t crc = 0;
    int64_t bytes = 0;
    for (const RawHeads::Tensor& t : raw.tensors) {
        const char* name = t.path.c_str() + t.path.rfind('/') + 1;
        const int which = name[0] == 'q' ? 0 : name[0] == 'k' ? 1 : name[0] == 'v' ? 2 : 3;
        if (which == 2) s.value_dim = L.value_dim;
        const size_t per_head = static_cast<size_t>(s.tokens * t.cols);
        const bool keep = t.half && which < 2 && halves == HalfQK::keep;
        (keep ? held_halves : held_floats)[which] = true;
        if (keep) {
            kept[which]->resize(per_head);
            widened.resize(std::min(kBlock, per_head));
        } else {
            floats[which]->resize(per_head);
        }
        // In blocks, each checksummed while it is in cache.
        bool finite = true;
        for (size_t b = 0; b < per_head; b += kBlock) {
            const size_t n = std::min(kBlock, per_head - b);
            const uint8_t* in = t.bytes.data() + (i * per_head + b) * (t.half ? sizeof(uint16_t) : sizeof(float));
            float* o = keep ? widened.data() : floats[which]->data() + b;
            if (keep) {
                uint16_t* h = kept[which]->data() + b;
                std::memcpy(h, in, n * sizeof(uint16_t));
                finite &= widen_halves(h, o, n);
            } else if (t.half) {
                finite &= widen_halves(reinterpret_cast<const uint16_t*>(in), o, n);
            } else {
                std::memcpy(o, in, n * sizeof(float));
                finite &= std::all_of(o, o + n, [](float x) { return std::isfinite(x); });
            }
            crc = crc32_update(crc, o, n * sizeof(float));
        }
        bytes += static_cast<int64_t>(per_head * sizeof(float));
        if (!finite)
            throw InputError(info_.path, t.path,
                             fmt::format("NaN or Inf in layer {}, sample {}, head {}", s.layer, s.sample, s.head));
        if (which == 3) {  // each value a probability (the schema's bounds), then each row's sum
            for (float x : s.attention)
                if (!(x >= 0.0 && static_cast<double>(x) <= 1.001))
                    throw InputError(info_.path, t.path,
                                     fmt::format("value {} in layer {}, sample {}, head {} is not a post-softmax "
                                                 "probability",
                                                 x, s.layer, s.sample, s.head));
            double sum = 0;
            const int64_t off = attention_row_off(s.attention.data(), s.tokens, s.tokens, &sum);
            if (off >= 0)
                throw InputError(info_.path, t.path,
                                 fmt::format("row {} in layer {}, sample {}, head {} sums to {}, not 1 (tolerance {}): "
                                             "not post-softmax attention",
                                             off, s.layer, s.sample, s.head, sum, kAttentionRowSumTolerance));
        }
    }
    for (int w = 0; w < 4; ++w)
        if (!held_floats[w]) floats[w]->clear();
    for (int w = 0; w < 2; ++w)
        if (!held_halves[w]) kept[w]->clear();
    const size_t slot = static_cast<size_t>((first_slice_[raw.layer] + s.head) * static_cast<int64_t>(info_.samples.size()) +
                                            s.sample);
    slice_crc_[slot] = crc;
    slice_bytes_[slot] = bytes;
}

HeadSlice with_floats(const HeadSlice& s) {
    HeadSlice out = s;
    for (auto [halves, floats] : {std::pair{&out.q_half, &out.q}, std::pair{&out.k_half, &out.k}}) {
        if (halves->empty()) continue;
        floats->resize(halves->size());
        (void)widen_halves(halves->data(), floats->data(), halves->size());  // finite: decode checked
        halves->clear();
    }
    return out;
}

HeadSlice DumpReader::read(int64_t sample, int64_t layer, int64_t head, bool with_v) const {
    RawHeads raw;
    read_raw(sample, layer, head, 1, with_v, raw);
    HeadSlice s;
    decode(raw, 0, s);
    return s;
}

LayerChecksum DumpReader::layer_checksum(int64_t layer, int64_t h0, int64_t count) const {
    PARO_ASSERT(layer >= 0 && layer < static_cast<int64_t>(info_.layers.size()));
    if (count < 0) count = info_.layers[layer].heads - h0;
    PARO_ASSERT(h0 >= 0 && h0 + count <= info_.layers[layer].heads);
    const size_t S = info_.samples.size();
    const size_t first = static_cast<size_t>(first_slice_[layer] + h0) * S;
    const size_t end = first + static_cast<size_t>(count) * S;
    uLong crc = crc32(0, nullptr, 0);
    int64_t bytes = 0;
    for (size_t i = first; i < end; ++i)
        if (slice_bytes_[i] > 0) crc = crc32_combine64(crc, slice_crc_[i], slice_bytes_[i]), bytes += slice_bytes_[i];
    return {static_cast<uint32_t>(crc), bytes};
}

LayerChecksum concatenate_checksums(const std::vector<LayerChecksum>& pieces) {
    uLong crc = crc32(0, nullptr, 0);
    int64_t bytes = 0;
    for (const LayerChecksum& l : pieces)
        if (l.bytes > 0) crc = crc32_combine64(crc, l.crc, l.bytes), bytes += l.bytes;
    return {static_cast<uint32_t>(crc), bytes};
}

uint32_t combine_checksums(const std::vector<LayerChecksum>& layers) { return concatenate_checksums(layers).crc; }

uint32_t DumpReader::checksum() const {
    uLong crc = crc32(0, nullptr, 0);
    for (size_t i = 0; i < slice_crc_.size(); ++i)
        if (slice_bytes_[i] > 0) crc = crc32_combine64(crc, slice_crc_[i], slice_bytes_[i]);
    return static_cast<uint32_t>(crc);
}

bool looks_like_dump(const std::string& path) { return h5::probe_format_name(path) == "paro-dump"; }

}  // namespace paro
