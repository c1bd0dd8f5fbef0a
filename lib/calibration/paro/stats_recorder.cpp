#include "paro/stats_recorder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "paro/atomic_output.hpp"
#include "paro/error.hpp"
#include "paro/mask_builder.hpp"
#include "paro/parallel.hpp"

namespace paro {

namespace {

// An unlinked temporary file: positional reads and writes, gone when closed.
class Spool {
public:
    explicit Spool(const std::string& dir) : where_(dir) {
        std::string name = (dir.empty() ? std::string(".") : dir) + "/.paro-stats-spool-XXXXXX";
        fd_ = ::mkstemp(name.data());
        if (fd_ < 0) throw InputError(dir, "spool", fmt::format("cannot create a spool file: {}", std::strerror(errno)));
        ::unlink(name.c_str());
    }
    ~Spool() { ::close(fd_); }
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    // Appends bytes; returns their offset.
    int64_t append(const void* data, size_t bytes) {
        const int64_t at = end_;
        for (size_t done = 0; done < bytes;) {
            const ssize_t n = ::pwrite(fd_, static_cast<const char*>(data) + done, bytes - done, at + static_cast<int64_t>(done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0)
                throw InputError(where_, "spool", fmt::format("cannot write the spool file: {}",
                                                              n < 0 ? std::strerror(errno) : "no space written"));
            done += static_cast<size_t>(n);
        }
        end_ += static_cast<int64_t>(bytes);
        return at;
    }
    void read(int64_t at, void* out, size_t bytes) const {
        for (size_t done = 0; done < bytes;) {
            const ssize_t n = ::pread(fd_, static_cast<char*>(out) + done, bytes - done, at + static_cast<int64_t>(done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0)
                throw InputError(where_, "spool", fmt::format("cannot read the spool file: {}",
                                                              n < 0 ? std::strerror(errno) : "it ends early"));
            done += static_cast<size_t>(n);
        }
    }

private:
    std::string where_;
    int fd_ = -1;
    int64_t end_ = 0;
};

// One (layer, sample): each head's metrics, and where its six orders' masses sit in the spool.
struct Group {
    bool scored = false;
    int64_t offset = 0;  // head h, order o at offset + (h * 6 + o) * tiles floats
    std::vector<SampleMetrics> metrics;
};

struct LayerRecord {
    int64_t heads = 0, head_dim = 0;
    double scale = 0;
    std::map<int64_t, Group> samples;
};

}  // namespace

struct StatsRecorder::Impl {
    struct Job {
        int64_t layer, sample;
        std::vector<SixOrderStats> stats;
    };

    TokenLayout layout;
    StatsScoring scoring;
    CalibrateOptions opt;
    TileGrid grid;
    BlockMask forced;
    int threads;
    Spool spool;
    std::map<int64_t, LayerRecord> layers;

    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> queue;
    bool working = false, stopping = false;
    std::exception_ptr error;
    double busy = 0;
    std::vector<float> buffer;  // the worker's: one group's six orders' masses
    std::thread worker;

    Impl(const TokenLayout& l, const StatsScoring& s, const std::string& dir, int t)
        : layout(l), scoring(s), grid{l.tokens(), s.tiles.block}, threads(std::max(1, t)), spool(dir) {
        opt.tiles = s.tiles;
        opt.mask = s.mask;
        opt.objective = s.objective;
        forced = forced_tiles(layout, grid, opt.mask);
        worker = std::thread([this] { run(); });
    }
    ~Impl() {
        {
            std::lock_guard<std::mutex> lock(mu);
            stopping = true;
        }
        cv.notify_all();
        worker.join();
    }

    void run() {
        for (;;) {
            Job job;
            {
                std::unique_lock<std::mutex> lock(mu);
                cv.wait(lock, [&] { return stopping || !queue.empty(); });
                if (queue.empty()) return;
                job = std::move(queue.front());
                queue.pop_front();
                working = true;
            }
            cv.notify_all();
            const auto t0 = std::chrono::steady_clock::now();
            try {
                score(job);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mu);
                if (!error) error = std::current_exception();
            }
            {
                std::lock_guard<std::mutex> lock(mu);
                working = false;
                busy += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            }
            cv.notify_all();
        }
    }

    void score(Job& job) {
        const int64_t H = static_cast<int64_t>(job.stats.size());
        const size_t tiles = static_cast<size_t>(grid.tiles());
        std::vector<SampleMetrics> metrics(static_cast<size_t>(H));
        buffer.resize(static_cast<size_t>(H) * kNumOrders * tiles);
        parallel_for(H, threads, [&](int64_t h) {
            const SixOrderStats st = std::move(job.stats[h]);  // freed when scored
            ScoredSample scored = score_sample(st, forced, opt);
            for (const std::vector<float>& mass : scored.mass)
                for (float m : mass)
                    if (!(m >= 0) || std::isinf(m))
                        throw ParameterError("stats", fmt::format("layer {} sample {} head {}: a tile mass is negative, "
                                                                  "NaN or infinite (scores overflowing float32?)",
                                                                  job.layer, job.sample, h));
            metrics[h] = scored.metrics;
            for (int o = 0; o < kNumOrders; ++o)
                std::copy(scored.mass[o].begin(), scored.mass[o].end(),
                          buffer.begin() + static_cast<ptrdiff_t>((static_cast<size_t>(h) * kNumOrders + o) * tiles));
        });
        const int64_t offset = spool.append(buffer.data(), buffer.size() * sizeof(float));
        std::lock_guard<std::mutex> lock(mu);
        Group& g = layers[job.layer].samples[job.sample];
        g.offset = offset;
        g.metrics = std::move(metrics);
        g.scored = true;
    }

    void rethrow() {
        if (error) std::rethrow_exception(error);
    }
};

StatsRecorder::StatsRecorder(const TokenLayout& layout, const StatsScoring& scoring, const std::string& spool_dir,
                             int threads) {
    if (scoring.objective.kind == ObjectiveKind::output_error)
        throw ParameterError("objective", "output-error needs v, which statistics do not keep: capture a dump");
    if (scoring.tiles.block != kRuntimeTile)
        throw ParameterError("block", fmt::format("statistics are made with {}-token tiles", kRuntimeTile));
    // What calibrate would refuse (one sample, one slot: only the options are at stake).
    DumpInfo probe;
    probe.layout = layout;
    probe.samples.push_back({});
    CalibrateOptions opt;
    opt.tiles = scoring.tiles;
    opt.mask = scoring.mask;
    opt.objective = scoring.objective;
    validate_calibration(probe, opt);
    impl_ = std::make_unique<Impl>(layout, scoring, spool_dir, threads);
}

StatsRecorder::~StatsRecorder() = default;

void StatsRecorder::add(int64_t layer, int64_t sample, int64_t head_dim, double scale, std::vector<SixOrderStats>&& stats) {
    Impl& m = *impl_;
    if (layer < 0) throw ParameterError("layer", fmt::format("must be >= 0, got {}", layer));
    if (sample < 0) throw ParameterError("sample", fmt::format("must be >= 0, got {}", sample));
    if (stats.empty()) throw ParameterError("stats", "holds no heads");
    if (head_dim <= 0) throw ParameterError("head_dim", fmt::format("must be positive, got {}", head_dim));
    if (!(std::isfinite(scale) && scale > 0)) throw ParameterError("scale", fmt::format("must be positive, got {}", scale));
    for (const SixOrderStats& st : stats)
        for (const TileStats& t : st)
            if (t.grid.tokens != m.grid.tokens || t.grid.block != m.grid.block ||
                t.mass.size() != static_cast<size_t>(m.grid.tiles()))
                throw ParameterError("stats", fmt::format("tile statistics of {} tokens in tiles of {}; the recorder "
                                                          "was made for {} tokens in tiles of {}",
                                                          t.grid.tokens, t.grid.block, m.grid.tokens, m.grid.block));
    std::unique_lock<std::mutex> lock(m.mu);
    m.rethrow();
    LayerRecord& rec = m.layers[layer];
    const int64_t H = static_cast<int64_t>(stats.size());
    if (rec.heads == 0) {
        rec.heads = H, rec.head_dim = head_dim, rec.scale = scale;
    } else if (rec.heads != H || rec.head_dim != head_dim || rec.scale != scale) {
        throw ParameterError("stats", fmt::format("layer {} came with {} heads, head_dim {}, scale {}; earlier with {}, "
                                                  "{}, {}",
                                                  layer, H, head_dim, scale, rec.heads, rec.head_dim, rec.scale));
    }
    if (!rec.samples.emplace(sample, Group{}).second)
        throw ParameterError("sample", fmt::format("layer {} sample {} was added twice", layer, sample));
    m.cv.wait(lock, [&] { return m.queue.size() < 2 || m.error; });
    m.rethrow();
    m.queue.push_back({layer, sample, std::move(stats)});
    lock.unlock();
    m.cv.notify_all();
}

void StatsRecorder::write(const std::string& path, const DumpInfo& header, const std::vector<int64_t>& model_layer,
                          const std::string& tile_statistics, bool all_orders) {
    Impl& m = *impl_;
    {
        std::unique_lock<std::mutex> lock(m.mu);
        m.cv.wait(lock, [&] { return (m.queue.empty() && !m.working) || m.error; });
        m.rethrow();
    }
    const int64_t S = static_cast<int64_t>(header.samples.size());
    if (S == 0) throw ParameterError("samples", "no sample was recorded");
    {
        DumpInfo named = header;
        named.path = path;
        check_samples(named);  // what the reader will check, before the file exists
    }
    if (m.layers.empty()) throw ParameterError("layers", "no layer was recorded");
    const int64_t L = static_cast<int64_t>(m.layers.size());
    StatsInfo info;
    info.dump = header;
    info.dump.layout = m.layout;
    info.dump.layers.clear();
    info.scoring = m.scoring;
    info.model_layer = model_layer;
    info.tile_statistics = tile_statistics;
    for (int64_t l = 0; l < L; ++l) {
        const auto it = m.layers.find(l);
        if (it == m.layers.end()) throw ParameterError("layer", fmt::format("layer {} was never recorded (layers are "
                                                                            "numbered 0..{})", l, L - 1));
        const LayerRecord& rec = it->second;
        for (int64_t s = 0; s < S; ++s)
            if (!rec.samples.count(s))
                throw ParameterError("sample", fmt::format("layer {} has no statistics of sample {}", l, s));
        if (static_cast<int64_t>(rec.samples.size()) != S)
            throw ParameterError("samples", fmt::format("layer {} has statistics of sample {}, but only {} samples are "
                                                        "described", l, rec.samples.rbegin()->first, S));
        DumpLayer dl;
        dl.heads = rec.heads, dl.head_dim = rec.head_dim, dl.scale = rec.scale;
        info.dump.layers.push_back(dl);
    }
    AtomicOutput out(path);
    StatsWriter writer(out.temp_path(), info, all_orders);
    const size_t tiles = static_cast<size_t>(m.grid.tiles());
    for (int64_t l = 0; l < L; ++l) {
        const LayerRecord& rec = m.layers.at(l);
        StatsLayerScores scores;
        scores.metrics.resize(static_cast<size_t>(rec.heads));
        for (int64_t h = 0; h < rec.heads; ++h) {
            for (const auto& [s, g] : rec.samples) scores.metrics[h].push_back(g.metrics[h]);
            scores.order.push_back(choose_head_order(scores.metrics[h], m.opt).order);
        }
        writer.write_layer(l, scores, [&](int64_t h, int64_t s, AxisOrder o, float* dst) {
            const int64_t at = rec.samples.at(s).offset +
                               static_cast<int64_t>((static_cast<size_t>(h) * kNumOrders + index_of(o)) * tiles * sizeof(float));
            m.spool.read(at, dst, tiles * sizeof(float));
        });
    }
    writer.close();
    out.commit();
}

double StatsRecorder::busy_seconds() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->busy;
}

}  // namespace paro
