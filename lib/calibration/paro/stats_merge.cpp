#include "paro/stats_merge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "paro/atomic_output.hpp"
#include "paro/error.hpp"
#include "paro/head_scoring.hpp"
#include "paro/memory_budget.hpp"
#include "paro/stats_file.hpp"

namespace paro {

namespace {

std::string recall_str(const std::optional<double>& r) { return r ? fmt::format("{}", *r) : std::string("none"); }

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
    const StatsScoring &s = other.scoring, &t = first.scoring;
    differ("attribute eps", s.tiles.eps, t.tiles.eps);
    differ("attribute density", s.mask.density, t.mask.density);
    differ("attribute recall", recall_str(s.mask.recall), recall_str(t.mask.recall));
    differ("attribute min_density", s.mask.min_density, t.mask.min_density);
    differ("attribute force_text", s.mask.force_text, t.mask.force_text);
    differ("attribute force_ragged", s.mask.force_ragged, t.mask.force_ragged);
    differ("attribute objective", to_string(s.objective.kind), to_string(t.objective.kind));
    differ("attribute alpha", s.objective.alpha, t.objective.alpha);
    differ("attribute sigma", s.objective.sigma, t.objective.sigma);
    differ("/samples/step", other.dump.has_steps() ? "recorded" : "not recorded",
           first.dump.has_steps() ? "recorded" : "not recorded");
    if (first.dump.has_steps()) differ("/samples attribute num_steps", other.dump.num_steps, first.dump.num_steps);
    differ("/layers", fmt::format("{} layers", other.dump.layers.size()), fmt::format("{} layers", first.dump.layers.size()));
    for (size_t l = 0; l < first.dump.layers.size(); ++l) {
        const DumpLayer &x = other.dump.layers[l], &y = first.dump.layers[l];
        const std::string at = fmt::format("/layers/{}", l);
        differ(at + "/order", fmt::format("{} heads", x.heads), fmt::format("{} heads", y.heads));
        differ(at + " attribute head_dim", x.head_dim, y.head_dim);
        differ(at + " attribute scale", x.scale, y.scale);
        differ(at + " attribute model_layer", other.model_layer[l], first.model_layer[l]);
    }
}

// The merged /samples: every input's samples in order. Prompts are matched by name when every input
// names its prompts (a sample of one name, step and timestep in two inputs is refused), else each
// input's prompt ids are moved past the previous inputs' ids.
DumpInfo merged_samples(const std::vector<std::unique_ptr<StatsReader>>& in, bool& by_name) {
    DumpInfo out = in.front()->info().dump;
    out.samples.clear();
    out.prompt_names.clear();
    by_name = std::all_of(in.begin(), in.end(), [](const auto& r) { return !r->info().dump.prompt_names.empty(); });
    std::map<std::string, int64_t> id_of_name;
    std::map<std::tuple<std::string, int64_t, double>, std::string> seen;  // (name, step, timestep) -> file
    int64_t offset = 0;
    for (const auto& r : in) {
        const DumpInfo& d = r->info().dump;
        int64_t top = -1;
        for (size_t i = 0; i < d.samples.size(); ++i) {
            DumpSample s = d.samples[i];
            top = std::max(top, s.prompt);
            if (by_name) {
                const std::string& name = d.prompt_names[static_cast<size_t>(s.prompt)];
                const auto [it, added] = id_of_name.emplace(name, static_cast<int64_t>(out.prompt_names.size()));
                if (added) out.prompt_names.push_back(name);
                const auto [at, fresh] = seen.emplace(std::make_tuple(name, s.step, s.timestep), d.path);
                if (!fresh)
                    throw InputError(d.path, "/samples",
                                     fmt::format("sample {} (prompt '{}', step {}, timestep {}) is also in {}: merge "
                                                 "statistics of different samples",
                                                 i, name.size() > 80 ? name.substr(0, 80) + "..." : name, s.step,
                                                 s.timestep, at->second));
                s.prompt = it->second;
            } else {
                s.prompt += offset;
            }
            out.samples.push_back(s);
        }
        offset += top + 1;
    }
    return out;
}

}  // namespace

StatsMergeResult merge_stats(const std::vector<std::string>& inputs, const std::string& output) {
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
    // One head at a time: its masses under the orders kept, and the writer's copy of them.
    require_memory(2.0 * (result.all_orders ? kNumOrders : 1) * static_cast<double>(S) * tiles * sizeof(float),
                   fmt::format("merging the masses of one head ({} samples, {} tiles)", S, tiles), output, "/layers");

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
