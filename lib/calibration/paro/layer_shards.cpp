#include "paro/layer_shards.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "paro/atomic_output.hpp"
#include "paro/dump.hpp"
#include "paro/error.hpp"

namespace paro {

namespace fs = std::filesystem;

std::optional<std::string> job_difference(const Pattern& a, const Pattern& b) {
    const auto differs = [](const char* what, const std::string& x, const std::string& y) -> std::optional<std::string> {
        if (x == y) return std::nullopt;
        return fmt::format("its {} ({}) differs from {}", what, y, x);
    };
    const auto grid = [](const Pattern& p) {
        return fmt::format("{}, tile {}", p.layout.describe(), p.block_q);
    };
    const auto slots = [](const Pattern& p) { return fmt::format("{}", fmt::join(p.slots.boundaries, ", ")); };
    for (const auto& d : {differs("layout", grid(a), grid(b)), differs("slot boundaries", slots(a), slots(b)),
                          differs("objective", a.objective, b.objective),
                          differs("options", a.provenance.options_json, b.provenance.options_json),
                          differs("paro version", a.provenance.tool_version, b.provenance.tool_version),
                          differs("source dump", a.provenance.source_dump, b.provenance.source_dump)})
        if (d) return d;
    if (!a.layers.empty() && !b.layers.empty() && a.num_samples() != b.num_samples())
        return fmt::format("its samples ({}) differ from {}", b.num_samples(), a.num_samples());
    return std::nullopt;
}

PartialPattern stitch_layers(const std::vector<PartialPattern>& parts, const std::vector<std::string>& names,
                             int64_t first, int64_t end) {
    PARO_ASSERT(!parts.empty() && parts.size() == names.size() && first < end);
    const PartialPattern& head = parts.front();
    // Which part holds each layer of the range.
    std::vector<std::optional<std::pair<size_t, size_t>>> where(static_cast<size_t>(end - first));
    for (size_t i = 0; i < parts.size(); ++i) {
        const PartialPattern& p = parts[i];
        if (p.total_layers != head.total_layers)
            throw InputError(names[i], "attribute total_layers",
                             fmt::format("is {}, but {} has {}: parts of different models", p.total_layers, names[0],
                                         head.total_layers));
        if (const auto d = job_difference(head.pattern, p.pattern))
            throw InputError(names[i], "attribute options", fmt::format("not the same calibration as {}: {}", names[0], *d));
        for (size_t k = 0; k < p.pattern.layers.size(); ++k) {
            const int64_t layer = p.first_layer + static_cast<int64_t>(k);
            if (layer < first || layer >= end)
                throw InputError(names[i], fmt::format("/layers/{}", k),
                                 fmt::format("holds layer {}, outside the layers {}..{} asked for", layer, first, end - 1));
            auto& slot = where[static_cast<size_t>(layer - first)];
            if (slot)
                throw InputError(names[i], fmt::format("/layers/{}", k),
                                 fmt::format("holds layer {}, which {} holds too", layer, names[slot->first]));
            slot = std::make_pair(i, k);
        }
    }
    for (size_t l = 0; l < where.size(); ++l)
        if (!where[l])
            throw InputError(names[0], "attribute first_layer",
                             fmt::format("no part holds layer {} (of layers {}..{})", first + int64_t(l), first, end - 1));
    PartialPattern out;
    out.pattern = head.pattern;
    out.pattern.layers.clear();
    out.first_layer = first;
    out.total_layers = head.total_layers;
    out.source_identity = head.source_identity;
    for (const auto& w : where) {
        out.pattern.layers.push_back(parts[w->first].pattern.layers[w->second]);
        out.checksums.push_back(parts[w->first].checksums[w->second]);
    }
    out.pattern.provenance.source_checksum = fmt::format("crc32:{:08x}", combine_checksums(out.checksums));
    return out;
}

Pattern merge_partials(const std::vector<PartialPattern>& parts, const std::vector<std::string>& names) {
    return stitch_layers(parts, names, 0, parts.front().total_layers).pattern;
}

std::string file_identity(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "";
    return fmt::format("{} bytes, modified {}.{:09}", st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

LayerCheckpoint::LayerCheckpoint(const std::string& output, const Pattern& job, int64_t total_layers,
                                 std::string identity)
    : job_(job), total_layers_(total_layers), identity_(std::move(identity)) {
    const fs::path out(output);
    dir_ = (out.parent_path() / ("." + out.filename().string() + ".checkpoint")).string();
    job_.layers.clear();
}

std::string LayerCheckpoint::layer_path(int64_t layer) const {
    return (fs::path(dir_) / fmt::format("layer-{:06}.h5", layer)).string();
}

PartialPattern LayerCheckpoint::one_layer(int64_t layer, std::vector<HeadPattern> heads, LayerChecksum checksum) const {
    PartialPattern p;
    p.pattern = job_;
    p.pattern.layers.push_back({std::move(heads)});
    p.first_layer = layer;
    p.total_layers = total_layers_;
    p.checksums.push_back(checksum);
    p.source_identity = identity_;
    return p;
}

std::optional<std::string> LayerCheckpoint::mismatch(const PartialPattern& p) const {
    if (p.pattern.layers.size() != 1) return "holds more than one layer";
    if (p.total_layers != total_layers_)
        return fmt::format("is of a dump with {} layers, not {}", p.total_layers, total_layers_);
    if (const auto d = job_difference(job_, p.pattern)) return "is of another calibration: " + *d;
    if (p.source_identity != identity_)
        return fmt::format("was made from the dump as it was then ({}), not as it is now ({})", p.source_identity,
                           identity_);
    return std::nullopt;
}

std::vector<int64_t> LayerCheckpoint::resume() {
    std::vector<int64_t> layers;
    std::error_code ec;
    if (!fs::is_directory(dir_, ec)) return layers;
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : fs::directory_iterator(dir_)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("layer-", 0) != 0 || entry.path().extension() != ".h5") continue;  // temporaries
        const std::string path = entry.path().string();
        PartialPattern p = read_partial_file(path);
        if (const auto why = mismatch(p))
            throw InputError(path, "checkpoint", *why + "; remove it with --fresh to calibrate from the start");
        const int64_t layer = p.first_layer;
        layers.push_back(layer);
        kept_.insert_or_assign(layer, std::move(p));
    }
    std::sort(layers.begin(), layers.end());
    return layers;
}

std::map<int64_t, PartialPattern> LayerCheckpoint::take() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::exchange(kept_, {});
}

namespace {
// What the pattern readers refuse in a layer's values (pattern.cpp), checked on a layer computed
// here: the output is stitched from memory, so no read of the layer's file would catch it.
void check_values(const std::vector<HeadPattern>& heads, int64_t layer, const std::string& file) {
    const auto refuse = [&](const char* dataset, const char* why) {
        return InputError(file, fmt::format("/layers/{}/{}", layer, dataset), why);
    };
    for (const HeadPattern& h : heads) {
        for (const double d : h.density)
            if (!(d >= 0 && d <= 1)) throw refuse("density", "a computed density is outside [0, 1]");
        for (const auto* values : {&h.recall, &h.sample_recall})
            for (const double r : *values)
                if (!(r >= 0 && r <= 1.000001)) throw refuse("recall", "a computed recall is outside [0, 1]");
        for (const OrderMetrics& m : h.scores)
            for (const double x : metric_values(m))
                if (!std::isfinite(x)) throw refuse("scores", "a computed score is NaN or Inf");
    }
}
}  // namespace

void LayerCheckpoint::write_layer(int64_t layer, std::vector<HeadPattern> heads, LayerChecksum checksum) {
    check_values(heads, layer, job_.provenance.source_dump);
    fs::create_directories(dir_);
    PartialPattern p = one_layer(layer, std::move(heads), checksum);
    write_partial_file(p, layer_path(layer));
    kept_.insert_or_assign(layer, std::move(p));
}

void LayerCheckpoint::save(const HeadBlock& block, int64_t layer_heads, std::vector<HeadPattern> heads,
                           LayerChecksum checksum) {
    PARO_ASSERT(static_cast<int64_t>(heads.size()) == block.count && block.h0 + block.count <= layer_heads);
    std::lock_guard<std::mutex> lock(mutex_);
    if (block.count == layer_heads) return write_layer(block.layer, std::move(heads), checksum);
    auto [it, fresh] = pending_.try_emplace(block.layer);
    Pending& p = it->second;
    if (fresh) {
        p.heads.resize(static_cast<size_t>(layer_heads));
        p.have.assign(static_cast<size_t>(layer_heads), false);
        p.left = layer_heads;
    }
    for (int64_t h = block.h0; h < block.h0 + block.count; ++h) {
        if (p.have[static_cast<size_t>(h)])
            throw InputError(dir_, "checkpoint",
                             fmt::format("head {} of layer {} came twice (ranks of different jobs?)", h, block.layer));
        p.have[static_cast<size_t>(h)] = true;
    }
    std::move(heads.begin(), heads.end(), p.heads.begin() + block.h0);
    p.pieces[block.h0] = checksum;
    if ((p.left -= block.count) > 0) return;
    // The blocks' checksums in head order: the layer's, as one process reading it would have it.
    std::vector<LayerChecksum> pieces;
    for (const auto& [h0, c] : p.pieces) pieces.push_back(c);
    Pending done = std::move(p);
    pending_.erase(it);
    write_layer(block.layer, std::move(done.heads), concatenate_checksums(pieces));
}

std::string LayerCheckpoint::encode(const HeadBlock& block, std::vector<HeadPattern> heads, LayerChecksum checksum) const {
    // Through a file: HDF5 writes files, and the bytes of a whole layer are then its checkpoint file.
    const std::string tmp =
        (fs::temp_directory_path() / fmt::format("paro-block-{}-{}-{}.h5", ::getpid(), block.layer, block.h0)).string();
    write_partial_file(one_layer(block.layer, std::move(heads), checksum), tmp);
    std::ifstream in(tmp, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fs::remove(tmp);
    return bytes;
}

void LayerCheckpoint::save_encoded(const HeadBlock& block, int64_t layer_heads, const std::string& bytes) {
    const bool whole = block.count == layer_heads;
    if (whole) {
        std::lock_guard<std::mutex> lock(mutex_);
        fs::create_directories(dir_);
    }
    // A whole layer's bytes are its checkpoint file; a block's are read back to be assembled.
    AtomicOutput out(whole ? layer_path(block.layer)
                           : (fs::temp_directory_path() /
                              fmt::format("paro-block-{}-{}-{}.h5", ::getpid(), block.layer, block.h0))
                                 .string());
    {
        std::ofstream f(out.temp_path(), std::ios::binary);
        f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!f) throw InputError(out.temp_path(), "", "cannot be written");
    }
    if (whole) {
        // Read here, in the receiver thread, while the pipeline runs (not at the end), as blocks
        // always were: the ranks of one mpirun are one job, and what they send is checked as a
        // layer of it, not opened as an untrusted file would be (no child-process rehearsal).
        PartialPattern p = read_partial_file(out.temp_path());
        std::optional<std::string> why = mismatch(p);
        if (!why && p.first_layer != block.layer) why = fmt::format("holds layer {}", p.first_layer);
        if (why)
            throw InputError("", "mpirun",
                             fmt::format("a rank sent layer {} that {} (ranks of different jobs or paro versions?)",
                                         block.layer, *why));
        out.commit();
        std::lock_guard<std::mutex> lock(mutex_);
        kept_.insert_or_assign(block.layer, std::move(p));
        return;
    }
    PartialPattern p = read_partial_file(out.temp_path());
    if (p.first_layer != block.layer || p.pattern.layers.size() != 1 ||
        static_cast<int64_t>(p.pattern.layers[0].heads.size()) != block.count)
        throw InputError(out.temp_path(), "", fmt::format("is not the block of layer {}, heads {}..{} it was sent as",
                                                          block.layer, block.h0, block.h0 + block.count - 1));
    save(block, layer_heads, std::move(p.pattern.layers[0].heads), p.checksums[0]);
}

void LayerCheckpoint::discard() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

}  // namespace paro
