#pragma once
// The pattern report: `paro report PATTERN [--dump DUMP] -o DIR` writes DIR/index.html plus PNG
// images in DIR/img/, viewable offline (no network, no server, no JS framework). See docs/report.md.
//
// What it shows: a summary (layout, tiles, slots, density, recall, mask storage), layers x heads
// heatmaps of the chosen order and of density / recall per slot, per-layer order counts, plan
// stability across samples, per-order scores of every head, the calibration options, and for a few
// chosen heads the tile-level attention mass in raster and chosen order (needs the dump) and the
// masks per slot.
//
// The directory is written atomically: everything goes to a temporary sibling directory first,
// which replaces DIR only when complete. Bad input throws InputError before anything is created.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "paro/summary.hpp"

namespace paro {

struct HeadRef {
    int64_t layer = 0, head = 0;
    bool operator==(const HeadRef& o) const { return layer == o.layer && head == o.head; }
};

// Parses "L:H,L:H,..." (decimal, no spaces needed; spaces are ignored). Throws ParameterError
// ("heads") on anything else or an empty list.
std::vector<HeadRef> parse_head_list(const std::string& spec);

struct ReportOptions {
    std::string pattern_path;
    std::string dump_path;           // empty: no dump (no attention maps, no recomputed recall)
    std::string out_dir;
    std::vector<HeadRef> heads;      // empty: the worst and best `default_heads_each` by recall
    int default_heads_each = 3;
    int64_t full_res_max_tokens = 1024;  // token-level maps when N <= this (and a dump is given)
    double warn_recall = kDefaultWarnRecall;  // a warning at the top when a mask keeps less (0: never)
    // A head is listed under "samples disagree" when the shared mask keeps at least this much less
    // of a disagreeing sample's attention mass than of the agreeing samples'.
    double disagreement_cost = 1e-3;
    std::function<void(const std::string&)> progress;  // optional, one line per step
};

struct ReportResult {
    std::string index_path;          // DIR/index.html
    int64_t html_bytes = 0;
    int64_t total_bytes = 0;         // everything in DIR
    int images = 0;
    std::vector<HeadRef> heads;      // the heads shown in detail
    RecallWarning low_recall;        // what the page warns about (options.warn_recall)
};

ReportResult write_report(const ReportOptions& options);

}  // namespace paro
