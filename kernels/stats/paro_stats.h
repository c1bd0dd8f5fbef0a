/* paro_stats.h: the C API of paro's GPU tile statistics (libparo_stats.so).
 *
 * Calibration inside a model's forward pass: for each (layer, sample) the caller hands the q and k
 * of a batch of heads as device pointers, and the library adds their six-order tile statistics
 * (attention mass, max and count below eps per 64 x 64 tile of every axis order) into
 * statistics buffers the caller owns on the device, on the caller's CUDA stream, without host
 * synchronization and without writing q/k anywhere. The same numbers `paro calibrate` computes
 * from a dump (docs/gpu_calibration.md: algorithm, precision, tolerances).
 *
 * Conventions are those of paro_runtime.h: every function returns a paro_status (PARO_OK = 0);
 * paro_stats_last_error() gives a one-line message for the last failure on the calling thread;
 * a stream is a cudaStream_t passed as void* (NULL: the legacy default stream).
 */
#ifndef PARO_STATS_H
#define PARO_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "paro_runtime.h" /* paro_status, paro_dtype, PARO_API */

#ifdef __cplusplus
extern "C" {
#endif

#define PARO_STATS_API_VERSION 2

typedef struct paro_stats_engine paro_stats_engine;

typedef struct paro_stats_engine_desc {
    int64_t grid[3];       /* F, H, W of the video token grid */
    int64_t text_tokens;   /* tokens that are never permuted */
    int text_suffix;       /* 0: text first (CogVideoX), 1: text last (HunyuanVideo) */
    int block;             /* tile size; must be 64 */
    float eps;             /* an entry of P below eps counts as negligible (paro calibrate --eps) */
    int device;            /* CUDA device ordinal */
    size_t memory_budget;  /* device bytes the engine may hold for its workspace; 0: 1 GiB */
} paro_stats_engine_desc;

typedef struct paro_stats_engine_info {
    int64_t tokens;          /* N = text_tokens + F * H * W */
    int64_t tiles_per_side;  /* nb = ceil(N / block) */
    size_t tiles_per_head;   /* 6 * nb * nb: elements per head of each statistics buffer */
    size_t device_bytes;     /* device memory the engine holds now */
} paro_stats_engine_info;

/* q and k of `heads` heads: [heads][tokens][head_dim] views, head_dim contiguous, strides in
 * elements (PyTorch's .stride() of a [heads, tokens, head_dim] tensor), rows 16-byte aligned. */
typedef struct paro_stats_heads {
    const void* q;
    const void* k;
    int64_t q_stride_head, q_stride_token;
    int64_t k_stride_head, k_stride_token;
    int heads, head_dim;   /* head_dim 64 or 128 */
    paro_dtype dtype;      /* of q and k */
    double scale;          /* softmax scale on q . k; 0 means 1 / sqrt(head_dim) */
} paro_stats_heads;

/* Statistics on the device, each [heads][6 orders][nb][nb] (orders numbered as paro_order, tiles
 * row-major over the permuted sequence). accumulate adds into them: mass +=, max = max(max, .),
 * below_eps += (32-bit: about 10^6 samples per tile). Zero them before the first sample. */
typedef struct paro_stats_buffers {
    double* mass;
    float* max;
    uint32_t* below_eps;
} paro_stats_buffers;

PARO_API int paro_stats_api_version(void);
PARO_API const char* paro_stats_last_error(void);

PARO_API paro_status paro_stats_engine_create(const paro_stats_engine_desc* desc, paro_stats_engine** engine);
PARO_API void paro_stats_engine_destroy(paro_stats_engine* engine);
PARO_API paro_status paro_stats_engine_get_info(const paro_stats_engine* engine, paro_stats_engine_info* info);

/* Checks what paro_stats_accumulate would check (shapes, dtype, alignment) without launching. */
PARO_API paro_status paro_stats_can_implement(const paro_stats_engine* engine, const paro_stats_heads* heads);
/* Adds the statistics of `heads` into `stats` (which must hold heads->heads heads), stream-ordered.
 * Calls on one engine must not overlap in time (one workspace): use one engine per stream. */
PARO_API paro_status paro_stats_accumulate(paro_stats_engine* engine, const paro_stats_heads* heads,
                                           paro_stats_buffers stats, void* stream);
/* Synchronizes the device; *seen = 1 when an accumulate since the last call met scores that
 * overflow float32 (its statistics are then NaN/inf), else 0. */
PARO_API paro_status paro_stats_overflow_seen(paro_stats_engine* engine, int* seen);

/* ---- Recording a statistics file (API version 2) ----------------------------------------------
 * The recorder is calibration inside the forward pass: each (layer, sample) call computes the six
 * orders' tile statistics of the given heads on the GPU, and scores them on host threads while the
 * model goes on; paro_stats_recorder_write then writes a paro-stats file (docs/formats.md), which
 * `paro calibrate` turns into the pattern a dump of the same run would give. The options the
 * metrics are scored with are fixed here (those of paro calibrate of the same names). */

typedef struct paro_stats_recorder paro_stats_recorder;

typedef struct paro_stats_scoring {
    float eps;           /* --eps: an entry of P below it counts as negligible */
    double density;      /* --density */
    double recall;       /* --recall; 0: none (fixed density) */
    double min_density;  /* --min-density */
    int force_text;      /* 1: text rows and columns stay dense (--no-force-text: 0) */
    int force_ragged;    /* 1: the ragged last tile row and column stay dense */
    int objective;       /* 0: recall, 1: paper (output-error needs v: use a dump) */
    double alpha, sigma; /* --alpha, --sigma */
} paro_stats_scoring;

typedef struct paro_stats_recorder_desc {
    int64_t grid[3];
    int64_t text_tokens;
    int text_suffix;
    paro_stats_scoring scoring;
    int device;               /* CUDA device ordinal of the heads passed to add */
    const char* spool_dir;    /* directory for the spool (about 6x the file's masses; unlinked at
                                 once); NULL: the current directory */
    int threads;              /* host threads scoring; 0: every core */
    size_t memory_budget;     /* device bytes for the statistics workspace; 0: 1 GiB */
    int all_orders;           /* 1: the file keeps every head's masses under all six orders (six times
                                 the size), so it merges exactly with files of more samples (paro merge) */
} paro_stats_recorder_desc;

/* What the file says about the samples (numbered 0..count-1 in add) and layers. */
typedef struct paro_stats_samples {
    int64_t count;
    const double* timestep;      /* [count] */
    const int64_t* step;         /* [count] sampling step of each sample; NULL: not recorded */
    const int64_t* prompt;       /* [count] prompt ids */
    int64_t num_steps;           /* steps of the sampling run; 0: unknown */
    int64_t prompt_name_count;
    const char* const* prompt_names; /* [prompt_name_count] prompt texts, or NULL */
    const char* model;           /* or NULL */
    int64_t layer_count;         /* 0, or the number of layers with: */
    const int64_t* model_layer;  /* [layer_count] the model's index of each layer */
} paro_stats_samples;

typedef struct paro_stats_recorder_times {
    double gpu_seconds;    /* in add: waiting for the caller's stream and computing statistics */
    double wait_seconds;   /* in add: waiting for the host scoring to catch up */
    double score_seconds;  /* host threads: scoring and spooling */
    double write_seconds;  /* paro_stats_recorder_write */
} paro_stats_recorder_times;

PARO_API paro_status paro_stats_recorder_create(const paro_stats_recorder_desc* desc, paro_stats_recorder** recorder);
PARO_API void paro_stats_recorder_destroy(paro_stats_recorder* recorder);
/* The statistics of heads->heads heads of `layer` on `sample` (both numbered by the caller from
 * 0; each layer always with the same heads). Waits for the work queued on `stream`, computes on the
 * GPU, and returns once q and k may change; scoring goes on in the background. Each (layer,
 * sample) exactly once. Errors of the background scoring are reported by a later call. */
PARO_API paro_status paro_stats_recorder_add(paro_stats_recorder* recorder, int64_t layer, int64_t sample,
                                             const paro_stats_heads* heads, void* stream);
/* Finishes the scoring and writes the statistics file (atomically: a temporary, then renamed). */
PARO_API paro_status paro_stats_recorder_write(paro_stats_recorder* recorder, const paro_stats_samples* samples,
                                               const char* path);
PARO_API paro_status paro_stats_recorder_get_times(const paro_stats_recorder* recorder,
                                                   paro_stats_recorder_times* times);

#ifdef __cplusplus
}
#endif

#endif /* PARO_STATS_H */
