// paro calibrate DUMP -o PATTERN: choose an order per head, build masks, write the pattern file.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <filesystem>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "calibration_output.hpp"
#include "cluster.hpp"
#include "cli_docs.hpp"
#include "commands.hpp"
#include "option_names.hpp"
#include "paro/atomic_output.hpp"
#include "paro/calibrator.hpp"
#include "paro/error.hpp"
#include "paro/head_scoring.hpp"
#include "paro/layer_shards.hpp"
#include "paro/progress.hpp"
#include "paro/runtime_limits.hpp"
#include "paro/stats_file.hpp"
#include "paro/stats_sink.hpp"
#include "paro/summary.hpp"
#include "paro/tile_stats.hpp"

#ifdef PARO_HAVE_CUDA
#include "cuda_tile_stats_backend.hpp"
#endif

namespace paro::cli {

namespace {
struct CalibrateArgs {
    std::string dump, output, objective = "recall";
    // --density is the fraction of tiles kept; with --recall it is the cap and defaults to 1.
    std::optional<double> density, recall;
    double min_density = 0, alpha = 0.5, sigma = 0.9;
    float eps = 1e-3f;
    int64_t block = kRuntimeTile;
    int slots = 1, qk_bits = 8, mask_rows = 1;
    std::string pv_format = to_string(kDefaultPvFormat);
    int pv_bits = 0;  // deprecated spelling of pv_format (16: fp16, 8: int8); 0 = not given
    bool uniform_slots = false, no_force_text = false, no_force_ragged = false;
    std::string device = "auto";
    std::string layers;  // --layers A:B: write a partial of layers [A, B)
    bool fresh = false;  // discard the checkpoint of an earlier run
    std::string stats_out, stats_orders = "all";  // --stats-out: also keep the statistics (paro-stats)
    bool stats_orders_given = false;
    SummaryOptions summary;
    std::set<std::string> given;  // the scoring options given on the command line
};

// --layers A:B, A: or :B (end exclusive, as Python slices) against the dump's L layers.
std::pair<int64_t, int64_t> parse_layer_range(const std::string& spec, int64_t L) {
    const auto bad = [&](const std::string& why) { return InputError("", "option --layers", "'" + spec + "': " + why); };
    const size_t colon = spec.find(':');
    if (colon == std::string::npos || spec.find(':', colon + 1) != std::string::npos) throw bad("expected A:B, A: or :B");
    const auto number = [&](const std::string& t, int64_t fallback) {
        if (t.empty()) return fallback;
        if (t.size() > 9 || !std::all_of(t.begin(), t.end(), ::isdigit)) throw bad("layer indices are whole numbers");
        return static_cast<int64_t>(std::stoll(t));
    };
    const int64_t first = number(spec.substr(0, colon), 0), end = number(spec.substr(colon + 1), L);
    if (first >= end || end > L) throw bad(fmt::format("must name at least one of the dump's layers 0..{}", L - 1));
    return {first, end};
}

// --device: auto (every usable GPU, else the CPU), cpu, cuda (every usable GPU), cuda:I,J,...
std::vector<std::unique_ptr<TileStatsBackend>> make_backends(const std::string& spec, const TokenLayout& layout,
                                                             const TileStatsOptions& tiles) {
    const auto bad = [&](const std::string& why) { return InputError("", "option --device", "'" + spec + "': " + why); };
    if (spec != "auto" && spec != "cpu" && spec != "cuda" && spec.rfind("cuda:", 0) != 0)
        throw bad("expected auto, cpu, cuda or cuda:I[,J...]");
    // The spec's syntax first: a malformed one is bad input whatever the machine has.
    std::vector<int> ids;
    if (spec.rfind("cuda:", 0) == 0) {
        std::string list = spec.substr(5);
        for (size_t pos = 0;;) {
            const size_t comma = list.find(',', pos);
            const std::string id = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
            if (id.empty() || id.size() > 3 || !std::all_of(id.begin(), id.end(), ::isdigit))
                throw bad("devices are numbers, as in cuda:0 or cuda:0,1");
            if (std::find(ids.begin(), ids.end(), std::stoi(id)) != ids.end())
                throw bad("device " + id + " is named twice");
            ids.push_back(std::stoi(id));
            if (comma == std::string::npos) break;
            pos = comma + 1;
        }
    }
    std::vector<std::unique_ptr<TileStatsBackend>> out;
#ifdef PARO_HAVE_CUDA
    const int devices = gpu::cuda_device_count();
    if (spec != "cpu" && (spec != "auto" || devices > 0)) {
        if (devices == 0)
            throw NoDeviceError("option --device: '" + spec + "': no CUDA device is usable on this machine (use --device cpu)");
        for (int id : ids)
            if (id >= devices) throw bad(fmt::format("this machine has {} CUDA device(s)", devices));
        if (ids.empty())
            for (int id = 0; id < devices; ++id) ids.push_back(id);
        const int sharers = gpu::CudaTileStatsBackend::sharers(layout, tiles);
        for (int id : ids)
            for (int b = 0; b < sharers; ++b)
                out.push_back(std::make_unique<gpu::CudaTileStatsBackend>(layout, tiles, id, sharers));
        return out;
    }
#else
    if (spec != "auto" && spec != "cpu")
        throw NoDeviceError("option --device: '" + spec + "': this paro was built without CUDA (use --device cpu)");
#endif
    out.push_back(std::make_unique<TileStatsEngine>(layout, tiles));
    return out;
}

CalibrateOptions options_from(const CalibrateArgs& a) {
    CalibrateOptions opt;
    opt.tiles = {a.block, a.eps};
    opt.objective = {parse_objective(a.objective), a.alpha, a.sigma};
    opt.mask = {a.density.value_or(a.recall ? 1.0 : 0.5), !a.no_force_text, !a.no_force_ragged, a.recall, a.min_density,
                a.mask_rows};
    opt.slots = a.slots;
    opt.share_later_half = !a.uniform_slots;
    opt.qk_bits = a.qk_bits;
    opt.pv_format = a.pv_bits ? pv_format_from_v1_bits(a.pv_bits, "", "option --pv-bits")
                              : parse_pv_format(a.pv_format, "", "option --pv-format");
    return opt;
}

// The options as the pattern's provenance records them.
std::string options_json(const CalibrateOptions& opt) {
    nlohmann::json j{{"density", opt.mask.density},
                     {"objective", to_string(opt.objective.kind)},
                     {"alpha", opt.objective.alpha},
                     {"sigma", opt.objective.sigma},
                     {"eps", opt.tiles.eps},
                     {"block", opt.tiles.block},
                     {"slots", opt.slots},
                     {"share_later_half", opt.share_later_half},
                     {"force_text", opt.mask.force_text},
                     {"force_ragged", opt.mask.force_ragged},
                     {"mask_rows", opt.mask.rows_per_group},
                     {"qk_bits", opt.qk_bits},
                     {"pv_format", to_string(opt.pv_format)}};
    if (opt.mask.recall) j["recall"] = *opt.mask.recall, j["min_density"] = opt.mask.min_density;
    return j.dump();
}

// A statistics file was scored at capture with its own options: those not given on the command
// line are taken from it (given ones must agree; calibrate() says which does not).
void adopt_scoring(const StatsScoring& s, const std::set<std::string>& given, CalibrateOptions& opt) {
    const auto take = [&](const char* flag) { return !given.count(flag); };
    if (take("--block")) opt.tiles.block = s.tiles.block;
    if (take("--eps")) opt.tiles.eps = s.tiles.eps;
    if (take("--recall")) opt.mask.recall = s.mask.recall;
    if (take("--density")) opt.mask.density = s.mask.density;
    if (take("--min-density")) opt.mask.min_density = s.mask.min_density;
    if (take("--no-force-text")) opt.mask.force_text = s.mask.force_text;
    if (take("--no-force-ragged")) opt.mask.force_ragged = s.mask.force_ragged;
    if (take("--objective")) opt.objective.kind = s.objective.kind;
    if (take("--alpha")) opt.objective.alpha = s.objective.alpha;
    if (take("--sigma")) opt.objective.sigma = s.objective.sigma;
}

// The backends of this process: under mpirun, --device auto means the GPU of the rank's place on
// its machine (ranks beyond the GPUs share them), or the CPU where there is none.
std::vector<std::unique_ptr<TileStatsBackend>> rank_backends(const std::string& spec, const Cluster& cluster,
                                                             const TokenLayout& layout, const TileStatsOptions& tiles) {
#ifdef PARO_HAVE_CUDA
    if (cluster.size() > 1 && spec == "auto" && gpu::cuda_device_count() > 0)
        return make_backends(fmt::format("cuda:{}", cluster.local_rank() % gpu::cuda_device_count()), layout, tiles);
#endif
    return make_backends(cluster.size() > 1 && spec == "auto" ? "cpu" : spec, layout, tiles);
}

// Ends every rank of the job after an error on this one, which it names (exit 2).
[[noreturn]] void abort_ranks(const Cluster& cluster, const std::exception& e) {
    std::fprintf(stderr, "paro: %s (rank %d of %d)\n", e.what(), cluster.rank(), cluster.size());
    cluster.abort(2);
}

// The work ranks share: whole layers while there are at least kBlocksPerRank of them per rank (one
// process: always), else each layer cut into blocks of equal numbers of heads until there are (a
// dump with fewer layers than ranks, or too few to even out the ranks' loads). A head's samples
// stay on one rank, so each block is finished where it is computed and a rank sends rank 0 only
// its heads' results (orders, masks, scores), never statistics.
std::vector<HeadBlock> shared_blocks(const DumpInfo& dump, const std::vector<int64_t>& layers, int ranks) {
    constexpr int64_t kBlocksPerRank = 4;
    std::vector<HeadBlock> blocks;
    if (layers.empty()) return blocks;
    const int64_t L = static_cast<int64_t>(layers.size());
    const int64_t per_layer = ranks > 1 ? (kBlocksPerRank * ranks + L - 1) / L : 1;
    for (const int64_t l : layers) {
        const int64_t H = dump.layers[static_cast<size_t>(l)].heads;
        const int64_t size = (H + std::min(per_layer, H) - 1) / std::min(per_layer, H);
        for (int64_t h0 = 0; h0 < H; h0 += size) blocks.push_back({l, h0, std::min(size, H - h0)});
    }
    return blocks;
}

// Calibration of a dump in layers: each finished layer is kept in the checkpoint beside the output
// (by rank 0; other ranks send theirs to it), layers an earlier run of the same job finished are
// taken from there, and the output is stitched from the checkpoint, which is then removed.
int calibrate_in_layers(const CalibrateArgs& a, const GlobalOptions& g, CalibrateOptions& opt,
                        std::chrono::steady_clock::time_point t0, DumpReader& reader, const Cluster& cluster) {
    const bool root = cluster.rank() == 0;
    if (!a.stats_out.empty() && cluster.size() > 1)
        throw InputError("", "option --stats-out", "is for one process; under mpirun each rank sees only its layers");
    const DumpInfo& dump = reader.info();
    validate_calibration(dump, opt);
    const int64_t L = static_cast<int64_t>(dump.layers.size());
    const auto [first, end] = a.layers.empty() ? std::make_pair(int64_t{0}, L) : parse_layer_range(a.layers, L);
    LayerCheckpoint checkpoint(a.output, pattern_shell(dump, opt, SlotPlan::make(opt.slots, opt.share_later_half)), L,
                               file_identity(a.dump));
    std::vector<int64_t> resumed;
    if (root) {
        if (a.fresh) checkpoint.discard();
        for (const int64_t layer : checkpoint.resume())
            if (layer >= first && layer < end) resumed.push_back(layer);
    }
    resumed = cluster.broadcast(resumed);
    if (!a.stats_out.empty() && !resumed.empty())
        throw InputError(a.output, "option --stats-out",
                         fmt::format("the checkpoint of an earlier run holds {} finished layers, whose statistics were "
                                     "not kept: add --fresh to calibrate every layer again",
                                     resumed.size()));
    std::vector<int64_t> todo;
    for (int64_t l = first; l < end; ++l)
        if (!std::binary_search(resumed.begin(), resumed.end(), l)) todo.push_back(l);
    const std::vector<HeadBlock> blocks = shared_blocks(dump, todo, cluster.size());
    std::vector<HeadBlock> mine;
    const auto layer_heads = [&](const HeadBlock& b) { return dump.layers[static_cast<size_t>(b.layer)].heads; };
    int64_t received_heads = 0, received_layers = 0;
    for (size_t i = 0; i < blocks.size(); ++i) {
        if (static_cast<int>(i % static_cast<size_t>(cluster.size())) == cluster.rank()) {
            mine.push_back(blocks[i]);
        } else {
            received_heads += blocks[i].count;
            received_layers += blocks[i].count == layer_heads(blocks[i]);
        }
    }

    ProgressLine progress("calibrate", "heads", !g.quiet && !a.summary.json && root);
    opt.progress = [&](int64_t done, int64_t total) { progress.update(done, total); };
    opt.blocks = mine;
    std::atomic<int64_t> received_bytes{0};
    opt.block_done = [&](const HeadBlock& block, const std::vector<HeadPattern>& heads) {
        const LayerChecksum checksum = reader.layer_checksum(block.layer, block.h0, block.count);
        if (root) return checkpoint.save(block, layer_heads(block), heads, checksum);
        cluster.send_block(block, checkpoint.encode(block, heads, checksum));
    };
    std::exception_ptr receive_error;
    std::thread receiver;
    const int64_t received_blocks = static_cast<int64_t>(blocks.size() - mine.size());
    const int64_t first_layer = first, end_layer = end;  // lambdas cannot capture structured bindings before C++20
    if (root && cluster.size() > 1)
        receiver = std::thread([&] {
            try {
                cluster.receive_blocks(received_blocks, [&](const HeadBlock& block, const std::string& bytes) {
                    if (block.layer < first_layer || block.layer >= end_layer || block.h0 < 0 || block.count <= 0 ||
                        block.h0 + block.count > layer_heads(block))
                        throw InputError("", "mpirun",
                                         fmt::format("a rank sent heads {}..{} of layer {}, which this job does not "
                                                     "have (ranks of different jobs or paro versions?)",
                                                     block.h0, block.h0 + block.count - 1, block.layer));
                    received_bytes += static_cast<int64_t>(bytes.size());
                    checkpoint.save_encoded(block, layer_heads(block), bytes);
                });
            } catch (...) {
                receive_error = std::current_exception();
            }
        });
    std::optional<CalibrationTimes> times;
    std::unique_ptr<StatsFileSink> stats;
    try {
        if (!mine.empty()) {
        const auto t_devices = std::chrono::steady_clock::now();
        // Attention-map dumps go to the CPU engine unless a GPU was asked for by name (which refuses them).
        const bool maps = std::any_of(dump.layers.begin(), dump.layers.end(),
                                      [](const DumpLayer& l) { return l.kind == DumpKind::attention; });
        const auto devices =
            rank_backends(maps && a.device == "auto" ? "cpu" : a.device, cluster, dump.layout, opt.tiles);
        const auto t_pipeline = std::chrono::steady_clock::now();
        std::vector<TileStatsBackend*> backends;
        for (const auto& d : devices) backends.push_back(d.get());
        if (!a.stats_out.empty()) {
            StatsInfo info;
            info.dump = dump;
            info.scoring = {opt.tiles, opt.mask, opt.objective};
            std::vector<std::string> names;
            for (const TileStatsBackend* b : backends) names.push_back(b->describe());
            for (const auto& [name, count] : distinct_names(names))  // a GPU's backends once
                info.tile_statistics += (info.tile_statistics.empty() ? "" : "; ") + name;
            const bool all = a.stats_orders == "all";
            require_free_space(a.stats_out, stats_file_bytes(info, all), "option --stats-out",
                               all ? "--stats-orders chosen keeps one order's masses: " +
                                         readable_bytes(stats_file_bytes(info, false))
                                   : "");
            stats = std::make_unique<StatsFileSink>(a.stats_out, info, all);
            opt.head_scored = [&](int64_t layer, int64_t head, const std::vector<SampleMetrics>& metrics,
                                  AxisOrder order, const std::vector<SampleMasses>& mass) {
                stats->head(layer, head, metrics, order, mass);
            };
        }
        times.emplace();
        calibrate(reader, opt, backends, &*times);
        times->setup_seconds = std::chrono::duration<double>(t_pipeline - t0).count();
        times->device_setup_seconds = std::chrono::duration<double>(t_pipeline - t_devices).count();
        opt.head_scored = nullptr;  // it refers to this frame's sink
        if (stats) stats->commit();
        }
    } catch (const std::exception& e) {
        // The receiver may still wait for blocks, writing into this frame's checkpoint: every rank
        // ends here, before that unwinds.
        if (receiver.joinable()) abort_ranks(cluster, e);
        // A refused input is refused again by the next run, and a fixed dump is another dump, whose run
        // resumes nothing from this one: the layers kept so far go with the run. (A kill, or a device or
        // memory failure, keeps them for the next run to resume.)
        if (root && dynamic_cast<const InputError*>(&e)) checkpoint.discard();
        throw;
    }
    if (receiver.joinable()) receiver.join();
    if (receive_error) std::rethrow_exception(receive_error);
    progress.finish();
    if (!root) return 0;

    const auto t_assemble = std::chrono::steady_clock::now();
    std::vector<PartialPattern> parts;
    std::vector<std::string> names;
    for (auto& [layer, part] : checkpoint.take())
        if (layer >= first && layer < end) {
            parts.push_back(std::move(part));
            names.push_back(fmt::format("{}/layer-{:06}.h5", checkpoint.directory(), layer));
        }
    PartialPattern whole = stitch_layers(parts, names, first, end);
    const auto t_write = std::chrono::steady_clock::now();
    if (times) times->assemble_seconds = std::chrono::duration<double>(t_write - t_assemble).count();
    const int64_t bytes = a.layers.empty() ? write_pattern_file(whole.pattern, a.output) : write_partial_file(whole, a.output);
    checkpoint.discard();
    const auto t_end = std::chrono::steady_clock::now();
    CalibrationOutput out;
    out.pattern = &whole.pattern;
    out.output = a.output;
    out.partial = !a.layers.empty();
    out.bytes = bytes;
    out.seconds = std::chrono::duration<double>(t_end - t0).count();
    out.times = times ? &*times : nullptr;
    out.write_seconds = std::chrono::duration<double>(t_end - t_write).count();
    out.extra["layers_calibrated"] = {first, end};
    out.extra["resumed_layers"] = resumed.size();
    if (stats) {
        out.extra["stats_out"] = a.stats_out;
        out.notes.push_back(fmt::format("statistics: {} ({} masses)", a.stats_out,
                                        a.stats_orders == "all" ? "all six orders'" : "the chosen order's"));
    }
    if (!resumed.empty())
        out.notes.push_back(fmt::format("resumed {} of {} layers from the checkpoint of an earlier run", resumed.size(),
                                        end - first));
    if (cluster.size() > 1) {
        out.extra["ranks"] = {{"count", cluster.size()},
                              {"layers_received", received_layers},
                              {"blocks", blocks.size()},
                              {"blocks_received", received_blocks},
                              {"heads_received", received_heads},
                              {"bytes_received", received_bytes.load()}};
        out.notes.push_back(fmt::format("{} ranks, {} blocks of heads: rank 0 received {} blocks ({} heads), {} bytes "
                                        "({} per head)",
                                        cluster.size(), blocks.size(), received_blocks, received_heads,
                                        received_bytes.load(), received_bytes.load() / std::max<int64_t>(1, received_heads)));
    }
    print_calibration(out, a.summary, g);
    return 0;
}

int run_dump_calibration(const CalibrateArgs& a, const GlobalOptions& g, CalibrateOptions& opt,
                         std::chrono::steady_clock::time_point t0) {
    DumpReader reader(a.dump);  // before MPI starts threads: the file's child-process walk needs one
    Cluster cluster;
    try {
        return calibrate_in_layers(a, g, opt, t0, reader, cluster);
    } catch (const std::exception& e) {
        if (cluster.size() == 1) throw;
        abort_ranks(cluster, e);  // the other ranks would wait for this one (its blocks, a broadcast)
    }
}

// What --stats-out cannot go with, refused before any work.
void check_stats_out(const CalibrateArgs& a, const CalibrateOptions& opt) {
    const auto refuse = [](const std::string& why) { return InputError("", "option --stats-out", why); };
    if (a.stats_orders != "all" && a.stats_orders != "chosen")
        throw InputError("", "option --stats-orders", "'" + a.stats_orders + "': expected all or chosen");
    try {
        AtomicOutput::check(a.stats_out);
    } catch (const ParameterError& e) {  // "path" would name -o
        throw InputError(e.file(), "option --stats-out", e.message());
    }
    namespace fs = std::filesystem;
    const auto canonical = [](const std::string& p) {  // as spelled when it cannot be resolved
        std::error_code ec;
        const fs::path c = fs::weakly_canonical(p, ec);
        return ec ? fs::path(p) : c;
    };
    const fs::path stats = canonical(a.stats_out);
    if (stats == canonical(a.dump) || stats == canonical(a.output))
        throw refuse("names the input or the pattern file; name another file");
    if (looks_like_stats(a.dump)) throw refuse("keeps the statistics of a dump; the input is already a statistics file");
    if (!a.layers.empty()) throw refuse("keeps every layer's statistics; it does not combine with --layers");
    if (opt.objective.kind == ObjectiveKind::output_error)
        throw refuse("statistics files do not keep v, which the objective output-error needs");
    if (opt.tiles.block != kRuntimeTile)
        throw refuse(fmt::format("statistics files are made with {}-token tiles (--block)", kRuntimeTile));
}

int run_calibrate(const CalibrateArgs& a, const GlobalOptions& g) {
    const auto t0 = std::chrono::steady_clock::now();
    CalibrateOptions opt = options_from(a);
    // Fail on a bad output path now, not after the calibration; never overwrite the input.
    AtomicOutput::check(a.output);
    std::error_code ec;
    if (std::filesystem::equivalent(a.dump, a.output, ec))
        throw InputError(a.output, "option -o", "is the input file; name another file");
    if (!a.stats_out.empty()) check_stats_out(a, opt);
    else if (a.stats_orders_given)
        throw InputError("", "option --stats-orders", "says which masses --stats-out keeps; it needs --stats-out");
    if (!looks_like_stats(a.dump)) {
        opt.options_json = options_json(opt);
        return run_dump_calibration(a, g, opt, t0);
    }
    if (!a.layers.empty())
        throw InputError(a.dump, "option --layers", "applies to dumps; a statistics file is calibrated whole");
    ProgressLine progress("calibrate", "heads", !g.quiet && !a.summary.json);
    opt.progress = [&](int64_t done, int64_t total) { progress.update(done, total); };
    const StatsReader reader(a.dump);
    adopt_scoring(reader.info().scoring, a.given, opt);
    opt.options_json = options_json(opt);
    const Pattern pattern = calibrate(reader, opt);
    progress.finish();
    CalibrationOutput out;
    out.pattern = &pattern;
    out.output = a.output;
    out.bytes = write_pattern_file(pattern, a.output);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    print_calibration(out, a.summary, g);
    return 0;
}
}  // namespace

void add_calibrate(CLI::App& app, Runner& run, const GlobalOptions& g) {
    auto a = std::make_shared<CalibrateArgs>();
    auto* sub = app.add_subcommand("calibrate", "Choose an axis order per head and build block masks from a dump or statistics file");
    sub->add_option("input", a->dump, "paro-dump or paro-stats file (HDF5)")->required();
    sub->add_option("-o,--output", a->output, "pattern file to write")->required();
    sub->add_option("--density", a->density,
                    "fraction of all tiles computed, forced tiles included (default 0.5); with --recall the most "
                    "a mask may keep (default 1)");
    sub->add_option("--recall", a->recall,
                    "per-mask adaptive density: keep the fewest tiles holding this share of the attention mass");
    sub->add_option("--min-density", a->min_density, "with --recall: the fewest tiles a mask keeps (fraction)")
        ->capture_default_str();
    sub->add_option("--mask-rows", a->mask_rows,
                    "tile rows whose kept tiles are chosen together, 1 (tile by tile) to 16; with a fixed --density, 3 "
                    "makes every group a triple that the Hopper kernel runs on shared K/V (fp16 PV), faster for "
                    "a little recall (docs/method.md)")
        ->capture_default_str();
    sub->add_option("--objective", a->objective, "how orders are scored (see docs/method.md)")
        ->type_name(choice_type({"recall", "paper", "output-error"}))
        ->capture_default_str();
    sub->add_option("--alpha", a->alpha, "paper objective: weight of incoherence vs sparsity")->capture_default_str();
    sub->add_option("--sigma", a->sigma, "paper sparsity: share of entries below eps")->capture_default_str();
    sub->add_option("--eps", a->eps, "threshold of a negligible attention entry")->capture_default_str();
    sub->add_option("--block", a->block, fmt::format("tile size (the runtime serves {})", kRuntimeTile))
        ->capture_default_str();
    sub->add_option("--slots", a->slots, "timestep slots, each with its own masks")->capture_default_str();
    sub->add_flag("--uniform-slots", a->uniform_slots, "split all steps evenly (default: later half shares one slot)");
    sub->add_flag("--no-force-text", a->no_force_text, "do not keep text rows/columns dense");
    sub->add_flag("--no-force-ragged", a->no_force_ragged, "do not keep the ragged last tile row/column dense");
    sub->add_option("--device", a->device,
                    "where tile statistics run: auto (every GPU, else the CPU), cpu, cuda (every GPU), cuda:I[,J...]")
        ->type_name(choice_type({"auto", "cpu", "cuda"}))
        ->capture_default_str();
    sub->add_option("--layers", a->layers,
                    "only layers A:B (A: or :B; end excluded): writes a partial that paro merge stitches with the others");
    sub->add_flag("--fresh", a->fresh, "discard the checkpoint an interrupted run left beside the output");
    sub->add_option("--stats-out", a->stats_out,
                    "also write the statistics (paro-stats): paro merge grows them with statistics of more prompts, "
                    "paro calibrate turns them into patterns");
    sub->add_option("--stats-orders", a->stats_orders,
                    "masses --stats-out keeps: all (six orders: merges exactly whatever order the merged samples "
                    "choose) or chosen (one sixth of the size)")
        ->type_name(choice_type({"all", "chosen"}))
        ->capture_default_str();
    a->summary.add_to(*sub);
    sub->add_option("--qk-bits", a->qk_bits, "quantization plan: bits for QK (4, 8, 16; the runtime runs 16 as 16-bit QK on Hopper, 8 and 4 as INT8)")->capture_default_str();
    auto* pv_format = sub->add_option("--pv-format", a->pv_format, "quantization plan: PV format (fp16: the fastest on Hopper and the most accurate; int8: the fastest on the sm_80 kernel at head dim 128)")
                          ->type_name(choice_type({"int8", "fp16", "fp8_e4m3"}))
                          ->capture_default_str();
    sub->add_option("--pv-bits", a->pv_bits, "deprecated: --pv-format (16 = fp16, 8 = int8)")
        ->check(CLI::IsMember({4, 8, 16}))
        ->excludes(pv_format);
    sub->callback([a, sub, &run, &g] {
        for (const char* flag : {"--block", "--eps", "--recall", "--density", "--min-density", "--no-force-text",
                                 "--no-force-ragged", "--objective", "--alpha", "--sigma"})
            if (sub->get_option(flag)->count() > 0) a->given.insert(flag);
        a->stats_orders_given = sub->get_option("--stats-orders")->count() > 0;
        run = with_option_names({{"density", "--density"},
                                 {"recall", "--recall"},
                                 {"min_density", "--min-density"},
                                 {"mask_rows", "--mask-rows"},
                                 {"objective", "--objective"},
                                 {"alpha", "--alpha"},
                                 {"sigma", "--sigma"},
                                 {"eps", "--eps"},
                                 {"block", "--block"},
                                 {"slots", "--slots"},
                                 {"qk_bits", "--qk-bits"},
                                 {"force_text", "--no-force-text"},
                                 {"force_ragged", "--no-force-ragged"},
                                 {"path", "-o"}},
                                [a, &g] { return run_calibrate(*a, g); });
    });
}

}  // namespace paro::cli
