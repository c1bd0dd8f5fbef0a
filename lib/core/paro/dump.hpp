#pragma once
// Reader for attention dumps, format "paro-dump" version 1 (docs/formats.md, schemas/paro-dump-v1.json).
// Opening validates every attribute and shape before any work starts; slices are then read one
// (sample, layer, head) at a time, so memory stays O(N*D) for q/k dumps.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "paro/direct_reads.hpp"
#include "paro/hdf5_io.hpp"
#include "paro/pattern.hpp"
#include "paro/token_layout.hpp"

namespace paro {

enum class DumpKind { qk, attention };

struct DumpLayer {
    DumpKind kind = DumpKind::qk;
    int64_t heads = 0;
    int64_t head_dim = 0;   // D of q/k (0 for attention maps)
    int64_t value_dim = 0;  // Dv, 0 when the layer has no v
    double scale = 0;       // softmax scale (1/sqrt(D) unless the layer says otherwise)
    bool has_v() const { return value_dim > 0; }
};

struct DumpSample {
    double timestep = 0;
    int64_t step = -1;  // -1: not recorded
    int64_t prompt = 0;
};

struct DumpInfo {
    std::string path;
    TokenLayout layout;
    std::string model;
    int64_t num_steps = -1;  // -1: not recorded
    std::vector<DumpSample> samples;
    std::vector<std::string> prompt_names;  // /samples attribute prompt_names: prompt id -> text (optional)
    std::vector<DumpLayer> layers;

    int64_t tokens() const { return layout.tokens(); }
    int64_t total_heads() const;
    bool has_v() const;          // every layer has v
    bool has_steps() const;      // every sample has a step and num_steps is known
    // Fraction of the sampling run at which a sample was taken: step / num_steps.
    double step_fraction(int64_t sample) const;
};

// One (sample, layer, head) slice, converted to float32, row-major.
struct HeadSlice {
    std::string file;  // the dump it came from, for error messages
    int64_t sample = 0, layer = 0, head = 0;
    int64_t tokens = 0, head_dim = 0, value_dim = 0;
    double scale = 0;
    std::vector<float> q, k, v;  // [N, D], [N, D], [N, Dv] (v empty when absent)
    std::vector<float> attention;  // [N, N] for attention-map dumps, else empty
    // q or k as the dump stored it, IEEE halves, when decoded with HalfQK::keep from a half dataset
    // (that tensor's floats are then empty; a dump may store one of q, k as halves, the other not).
    std::vector<uint16_t> q_half, k_half;
    bool is_attention() const { return !attention.empty(); }
    bool has_halves() const { return !q_half.empty() || !k_half.empty(); }
};

// What decoding makes of q and k stored as halves: floats, which every consumer takes, or the
// halves themselves, for a consumer that computes in fp16 anyway (the GPU statistics) and would
// otherwise narrow the floats back: the round trip was most of the host's work per head there.
enum class HalfQK { widen, keep };

// A copy of s with q and k as floats (widened from its kept halves, if it has them).
HeadSlice with_floats(const HeadSlice& s);

// The stored values of heads [h0, h0 + count) of one (sample, layer) (read_raw, or prepare_raw
// and read_raw_heads), turned into HeadSlices by decode. The split lets callers read a head while
// they decode others.
struct RawHeads {
    struct Tensor {
        std::string path;  // dataset, e.g. "/layers/3/q"
        bool half = false;  // bytes hold IEEE halves, else floats
        int64_t cols = 0;  // values per token (D, Dv, or N for attn)
        std::vector<uint8_t> bytes;  // [count, N, cols]
    };
    int64_t sample = 0, layer = 0, h0 = 0, count = 0;
    std::vector<Tensor> tensors;  // q, k[, v] or attn
    int64_t stored_bytes() const;
};

class DumpReader {
public:
    // Opens and validates. Throws InputError naming the file and the attribute/dataset at fault.
    explicit DumpReader(const std::string& path);

    const DumpInfo& info() const { return info_; }
    // Reads one slice; with_v also reads v when the layer has it. Throws InputError on NaN/Inf.
    HeadSlice read(int64_t sample, int64_t layer, int64_t head, bool with_v) const;
    // Reads heads [h0, h0 + count) of one (sample, layer) as stored into raw (buffers reused).
    void read_raw(int64_t sample, int64_t layer, int64_t h0, int64_t count, bool with_v, RawHeads& raw) const;
    // The same in two steps: raw sized for those heads (nothing read), then heads [i0, i0 + n) of
    // raw read into place, so that a caller can decode a head while the next one is read.
    void prepare_raw(int64_t sample, int64_t layer, int64_t h0, int64_t count, bool with_v, RawHeads& raw) const;
    void read_raw_heads(RawHeads& raw, int64_t i0, int64_t n) const;
    // Head h0 + i of raw as a slice (out's buffers reused); records its checksum (of the values
    // as floats, whatever `halves` says). Throws InputError on NaN/Inf. Safe to call concurrently
    // for distinct i (and distinct raws).
    void decode(const RawHeads& raw, int64_t i, HeadSlice& out, HalfQK halves = HalfQK::widen) const;
    // CRC-32 of the floats of every slice read so far, slice by slice in (layer, head, sample)
    // order and q, k, v within a slice, whatever order they were read in (the pattern file's
    // provenance; a calibration spread over devices reads in another order than one on the CPU).
    uint32_t checksum() const;
    // The same over heads [h0, h0 + count) of one layer (by default all of them): the pieces a
    // sharded or resumed calibration combines (concatenate_checksums).
    LayerChecksum layer_checksum(int64_t layer, int64_t h0 = 0, int64_t count = -1) const;

private:
    h5::File file_;
    std::unique_ptr<DirectReads> direct_;  // q, k, v of common layouts read without libhdf5
    DumpInfo info_;
    std::vector<int64_t> first_slice_;  // per layer: index of its (head 0, sample 0) slice
    // Per slice (canonical index): CRC-32 of its floats and their byte count (0: not read).
    mutable std::vector<uint32_t> slice_crc_;
    mutable std::vector<int64_t> slice_bytes_;
};

// The root layout attributes (grid, text_tokens, text_position, model) and /samples, as paro-dump
// v1 lays them out; paro-stats files share them. The reader validates as DumpReader does (InputError).
void read_dump_header(const h5::File& f, DumpInfo& info);
void write_dump_header(hid_t root, const DumpInfo& info);
// The checks on the samples' values read_dump_header makes (InputError naming info.path and the
// dataset): timesteps finite, steps below num_steps (and all or none recorded), prompt ids named.
void check_samples(const DumpInfo& info);

// True when the file's root says paro_format = "paro-dump" (no other validation).
bool looks_like_dump(const std::string& path);

// The pieces one after another (layers, or a layer's head blocks in order) as one piece.
LayerChecksum concatenate_checksums(const std::vector<LayerChecksum>& pieces);
// Their CRC-32: DumpReader::checksum() of a run that read them all.
uint32_t combine_checksums(const std::vector<LayerChecksum>& layers);

}  // namespace paro
