#include "paro/stats_merge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "paro/atomic_output.hpp"
#include "paro/error.hpp"
#include "paro/head_scoring.hpp"
#include "paro/memory_budget.hpp"
#include "paro/stats_file.hpp"

namespace paro {

namespace {

// Refuses `other` where it is not the same model, layout, layers and scoring as `first`.
void expect_compatible(const StatsInfo& first, const StatsInfo& other) {
    const auto differ = [&](const std::string& what, const auto& here, const auto& there) {
        if (!(here == there))
            throw InputError(other.dump.path, what,
                             fmt::format("is {} here but {} in {}: only statistics of one model, layout and scoring "
                                         "merge",
                                         here, there, first.dump.path));
    };
    const TokenLayout &a = other.dump.layout, &b = first.dump.layout;
    differ("attribute grid", fmt::format("{}x{}x{}", a.grid[0], a.grid[1], a.grid[2]),
           fmt::format("{}x{}x{}", b.grid[0], b.grid[1], b.grid[2]));
    differ("attribute text_tokens", a.text_tokens, b.text_tokens);
    differ("attribute text_position", to_string(a.text_position), to_string(b.text_position));
    differ("attribute model", "'" + other.dump.model + "'", "'" + first.dump.model + "'");
    const auto mine = scoring_fields(other.scoring), theirs = scoring_fields(first.scoring);
    for (size_t i = 0; i < mine.size(); ++i) differ("attribute " + mine[i].first, mine[i].second, theirs[i].second);
    differ("/samples/step", other.dump.has_steps() ? "recorded" : "not recorded",
           first.dump.has_steps() ? "recorded" : "not recorded");
    if (first.dump.has_steps()) differ("/samples attribute num_steps", other.dump.num_steps, first.dump.num_steps);
    differ("/layers", fmt::format("{} layers", other.dump.layers.size()), fmt::format("{} layers", first.dump.layers.size()));
    const auto model_layer = [](int64_t v) { return v < 0 ? std::string("absent") : std::to_string(v); };
    for (size_t l = 0; l < first.dump.layers.size(); ++l) {
        const DumpLayer &x = other.dump.layers[l], &y = first.dump.layers[l];
        const std::string at = fmt::format("/layers/{}", l);
        differ(at + "/order", fmt::format("{} heads", x.heads), fmt::format("{} heads", y.heads));
        differ(at + " attribute head_dim", x.head_dim, y.head_dim);
        differ(at + " attribute scale", x.scale, y.scale);
        differ(at + " attribute model_layer", model_layer(other.model_layer[l]), model_layer(first.model_layer[l]));
    }
}

// Whether a file's prompt names can map its prompts to the merged ones: present and distinct.
bool names_prompts(const DumpInfo& d) {
    return !d.prompt_names.empty() &&
           std::set<std::string>(d.prompt_names.begin(), d.prompt_names.end()).size() == d.prompt_names.size();
}

// The merged /samples: every input's samples in order. When every input names its prompts, the
// merged names are the first file's, then each other file's names not seen yet, and each sample's
// prompt is its name's place (so the first file's ids stay); else each input's ids are moved past
// the previous inputs' (the first file's stay).
DumpInfo merged_samples(const std::vector<std::unique_ptr<StatsReader>>& in, bool& by_name) {
    DumpInfo out = in.front()->info().dump;
    out.samples.clear();
    out.prompt_names.clear();
    by_name = std::all_of(in.begin(), in.end(), [](const auto& r) { return names_prompts(r->info().dump); });
    std::map<std::string, int64_t> id_of_name;
    int64_t next = 0;  // renumbering: the first id free for the next input
    for (const auto& r : in) {
        const DumpInfo& d = r->info().dump;
        if (by_name)
            for (const std::string& name : d.prompt_names)
                if (id_of_name.emplace(name, static_cast<int64_t>(out.prompt_names.size())).second)
                    out.prompt_names.push_back(name);
        int64_t low = 0, high = -1;  // the input's prompt ids (ids may be any integers without names)
        for (const DumpSample& s : d.samples) low = std::min(low, s.prompt), high = std::max(high, s.prompt);
        constexpr int64_t kFar = int64_t(1) << 40;  // ids past this cannot be renumbered without overflow
        if (!by_name && (low < -kFar || high > kFar || next > kFar))
            throw InputError(d.path, "/samples/prompt",
                             fmt::format("prompt ids from {} to {} are too far apart to renumber; name the prompts "
                                         "(prompt_names) to merge by name",
                                         low, high));
        const int64_t shift = &r == &in.front() ? 0 : next - low;
        for (DumpSample s : d.samples) {
            s.prompt = by_name ? id_of_name.at(d.prompt_names[static_cast<size_t>(s.prompt)]) : s.prompt + shift;
            out.samples.push_back(s);
        }
        next = std::max(next, high + shift + 1);
    }
    return out;
}

// The same file merged twice (a copy, or renamed prompts) would weigh its samples double: an input
// every sample of which equals a sample of an earlier input (step, timestep and the metrics of
// every head of the first layer, bit for bit) is refused. Single equal samples are kept, as one
// run over both would keep them: with a fixed seed, the unconditional halves of two prompts' first
// step are the same tensors.
void refuse_duplicates(const std::vector<std::unique_ptr<StatsReader>>& in) {
    std::map<std::string, std::pair<size_t, size_t>> seen;  // fingerprint -> (input, sample)
    for (size_t k = 0; k < in.size(); ++k) {
        const DumpInfo& d = in[k]->info().dump;
        const StatsLayerScores scores = in[k]->read_scores(0);
        std::vector<std::pair<size_t, size_t>> earlier;  // (input, sample) each sample of k equals
        std::vector<std::string> keys;
        for (size_t s = 0; s < d.samples.size(); ++s) {
            std::string key = fmt::format("{}/{}", d.samples[s].step, d.samples[s].timestep);
            for (const auto& head : scores.metrics)
                for (const OrderMetrics& m : head[s])
                    for (double v : metric_values(m)) key.append(reinterpret_cast<const char*>(&v), sizeof v);
            const auto it = seen.find(key);
            if (it != seen.end()) earlier.push_back(it->second);
            keys.push_back(std::move(key));
        }
        if (!earlier.empty() && earlier.size() == d.samples.size())
            throw InputError(d.path, "/samples",
                             fmt::format("every sample is also in an earlier input (sample 0 is sample {} of {}: the "
                                         "same step, timestep and metrics): the file was given twice",
                                         earlier.front().second, in[earlier.front().first]->info().dump.path));
        for (size_t s = 0; s < keys.size(); ++s) seen.emplace(std::move(keys[s]), std::make_pair(k, s));
    }
}

}  // namespace

StatsMergeResult merge_stats(const std::vector<std::string>& inputs, const std::string& output,
                             const std::function<void(int64_t, int64_t)>& progress) {
    if (inputs.size() < 2) throw InputError("", "inputs", "merging statistics needs at least two files");
    std::vector<std::unique_ptr<StatsReader>> in;
    for (size_t i = 0; i < inputs.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
            std::error_code ec;
            if (std::filesystem::equivalent(inputs[i], inputs[j], ec))
                throw InputError(inputs[i], "inputs", fmt::format("is given twice (also as {})", inputs[j]));
        }
        in.push_back(std::make_unique<StatsReader>(inputs[i]));
        if (i > 0) expect_compatible(in.front()->info(), in.back()->info());
    }
    refuse_duplicates(in);
    StatsMergeResult result;
    StatsInfo info = in.front()->info();
    info.dump = merged_samples(in, result.prompt_names);
    std::set<std::string> sources;
    info.tile_statistics.clear();
    for (const auto& r : in)
        if (sources.insert(r->info().tile_statistics).second)
            info.tile_statistics += (info.tile_statistics.empty() ? "" : "; ") + r->info().tile_statistics;
    result.all_orders = std::all_of(in.begin(), in.end(), [](const auto& r) { return r->all_orders(); });
    const int64_t S = static_cast<int64_t>(info.dump.samples.size());
    const size_t tiles = static_cast<size_t>(info.tiles_per_side() * info.tiles_per_side());
    // One head at a time: its masses under the orders kept, the writer's buffer (the other five
    // orders' at most) and one input's read.
    const double orders_held = result.all_orders ? 2 * kNumOrders : 3;
    require_memory(orders_held * static_cast<double>(S) * tiles * sizeof(float),
                   fmt::format("merging the masses of one head ({} samples, {} tiles)", S, tiles), output, "/layers");

    require_free_space(output, stats_file_bytes(info, result.all_orders), "option -o", "");
    int64_t total_heads = 0;
    for (const DumpLayer& l : info.dump.layers) total_heads += l.heads;
    CalibrateOptions opt;
    opt.tiles = info.scoring.tiles;
    opt.mask = info.scoring.mask;
    opt.objective = info.scoring.objective;
    AtomicOutput out(output);
    StatsWriter writer(out.temp_path(), info, result.all_orders);
    for (int64_t l = 0; l < static_cast<int64_t>(info.dump.layers.size()); ++l) {
        std::vector<StatsLayerScores> parts;
        for (const auto& r : in) parts.push_back(r->read_scores(l));
        const int64_t H = info.dump.layers[l].heads;
        StatsLayerScores merged;
        writer.begin_layer(l);
        for (int64_t h = 0; h < H; ++h) {
            std::vector<SampleMetrics> metrics;
            for (const StatsLayerScores& p : parts) metrics.insert(metrics.end(), p.metrics[h].begin(), p.metrics[h].end());
            const AxisOrder order = choose_head_order(metrics, opt).order;
            std::array<std::vector<float>, kNumOrders> mass;  // the merged samples' masses per order kept
            for (AxisOrder o : kAllOrders) {
                if (o != order && !result.all_orders) continue;
                mass[index_of(o)].reserve(static_cast<size_t>(S) * tiles);
                for (size_t k = 0; k < in.size(); ++k) {
                    const std::vector<float> m = in[k]->read_head_mass(l, h, parts[k].order[h], o);
                    mass[index_of(o)].insert(mass[index_of(o)].end(), m.begin(), m.end());
                }
            }
            if (std::any_of(parts.begin(), parts.end(), [&](const StatsLayerScores& p) { return p.order[h] != order; }))
                ++result.reordered;
            writer.write_head(l, h, order, [&](int64_t s, AxisOrder o, float* dst) {
                const float* src = mass[index_of(o)].data() + static_cast<size_t>(s) * tiles;
                std::copy(src, src + tiles, dst);
            });
            merged.metrics.push_back(std::move(metrics));
            merged.order.push_back(order);
            if (progress) progress(result.heads + h + 1, total_heads);
        }
        writer.end_layer(l, merged);
        result.heads += H;
    }
    writer.close();
    out.commit();
    result.samples = S;
    result.layers = static_cast<int64_t>(info.dump.layers.size());
    return result;
}

}  // namespace paro
