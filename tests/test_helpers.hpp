#pragma once
// Shared helpers for the unit tests: random slices and temporary files.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "paro/dump.hpp"
#include "paro/synth.hpp"

namespace paro::test {

// The synthetic-dump options the tests vary (the rest as SynthOptions defaults them).
inline SynthOptions synth_options(const TokenLayout& layout, int layers, int heads, int samples, uint64_t seed) {
    SynthOptions so;
    so.layout = layout;
    so.layers = layers;
    so.heads = heads;
    so.samples = samples;
    so.seed = seed;
    return so;
}

// n draws from N(0, sigma^2), reproducible from the seed.
inline std::vector<float> random_normal(size_t n, unsigned seed, float sigma = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, sigma);
    std::vector<float> x(n);
    for (auto& v : x) v = normal(rng);
    return x;
}

// A random q/k head slice; `spread` scales the logits (large spread = peaked, adversarial rows).
inline HeadSlice random_slice(int64_t n, int64_t d, uint64_t seed, double spread = 1.0, bool with_v = false) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    HeadSlice s;
    s.tokens = n;
    s.head_dim = d;
    s.scale = spread / std::sqrt(static_cast<double>(d));
    s.q.resize(static_cast<size_t>(n * d));
    s.k.resize(s.q.size());
    for (auto& x : s.q) x = normal(rng);
    for (auto& x : s.k) x = normal(rng);
    if (with_v) {
        s.value_dim = d;
        s.v.resize(s.q.size());
        for (auto& x : s.v) x = normal(rng);
    }
    return s;
}

// A fresh temporary directory, removed at scope exit.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "paro-test-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace paro::test
