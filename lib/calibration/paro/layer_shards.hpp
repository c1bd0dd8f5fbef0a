#pragma once
// Calibration in pieces: layers finished by different runs, processes or machines (pattern.hpp's
// PartialPattern), checked to belong to one job and stitched into the pattern a single run makes;
// and the checkpoint of a run, its finished layers kept beside the output so that the same
// command continues after a kill.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "paro/pattern.hpp"

namespace paro {

// How `b` differs from `a` as calibrations of one job (layout, tiles, slots, samples, objective,
// options, tool version and source dump name; not the creation time or checksum), or nullopt.
std::optional<std::string> job_difference(const Pattern& a, const Pattern& b);

// Layers [first, end) from parts holding them (names[i] names parts[i] in errors). Every part must
// be of one job (job_difference) with the same total_layers, and the parts must hold each layer
// of the range exactly once and no other: else InputError naming the file at fault. The result's
// source_checksum combines the parts' (combine_checksums); its provenance is the first part's.
PartialPattern stitch_layers(const std::vector<PartialPattern>& parts, const std::vector<std::string>& names,
                             int64_t first, int64_t end);

// The finished pattern of every layer (`paro merge`): stitch_layers over [0, total_layers).
Pattern merge_partials(const std::vector<PartialPattern>& parts, const std::vector<std::string>& names);

// A run's finished layers beside its output: OUTPUT's directory/.NAME.checkpoint/layer-NNNNNN.h5,
// each a one-layer PartialPattern written atomically.
class LayerCheckpoint {
public:
    // `job`: the run's pattern shell (pattern_shell: layout, options, provenance); `identity`: the
    // dump's (file_identity). Nothing is read or written yet.
    LayerCheckpoint(const std::string& output, const Pattern& job, int64_t total_layers, std::string identity);
    const std::string& directory() const { return dir_; }

    // The layers an earlier run of the same job finished, read now and kept for take(). Throws
    // InputError naming the checkpoint (and saying to pass --fresh) when they come from another job
    // or another state of the dump.
    std::vector<int64_t> resume();
    // Every layer resumed, saved or received so far, from memory (reading the files back cost a
    // second per 40 layers: each is opened as untrusted input). Moves them out.
    std::map<int64_t, PartialPattern> take();
    // Keeps a finished block of a layer's heads (of `layer_heads` in all): the layer is saved when
    // the last of its blocks comes in, at once for a block of every head. Thread-safe.
    void save(const HeadBlock& block, int64_t layer_heads, std::vector<HeadPattern> heads, LayerChecksum checksum);
    // A finished block as file bytes (what another process sends), and the same from those bytes.
    std::string encode(const HeadBlock& block, std::vector<HeadPattern> heads, LayerChecksum checksum) const;
    void save_encoded(const HeadBlock& block, int64_t layer_heads, const std::string& bytes);
    // Removes the directory: after the output is written, or for --fresh.
    void discard();

private:
    PartialPattern one_layer(int64_t layer, std::vector<HeadPattern> heads, LayerChecksum checksum) const;
    // How a one-layer part differs from this job's layers (layer count, calibration, dump state), or nullopt.
    std::optional<std::string> mismatch(const PartialPattern& p) const;
    // Writes a complete layer's checkpoint file (under mutex_).
    void write_layer(int64_t layer, std::vector<HeadPattern> heads, LayerChecksum checksum);
    std::string layer_path(int64_t layer) const;

    std::string dir_;
    Pattern job_;  // no layers
    int64_t total_layers_;
    std::string identity_;
    // Layers whose blocks are coming in: their heads so far, and each block's checksum by h0.
    struct Pending {
        std::vector<HeadPattern> heads;
        std::vector<bool> have;  // per head: its block came in
        std::map<int64_t, LayerChecksum> pieces;
        int64_t left = 0;
    };
    std::map<int64_t, Pending> pending_;
    std::map<int64_t, PartialPattern> kept_;  // finished layers, as written
    std::mutex mutex_;
};

// The identity of a file as calibration read it: its size and modification time.
std::string file_identity(const std::string& path);

}  // namespace paro
