/* flt_window_store.h - the windows a device collects itself: samples from the sensor hook
 * (port.h flt_port_read_sample) cut into labelled windows, the most recent `capacity` of them
 * kept in RAM, handed to the round as one contiguous view (docs/boards.md "Window store").
 *
 * Contract
 * - Geometry (flt_window_store_cfg_t): a window is window_len time steps of `channels` int8
 *   values (window_bytes = window_len * channels: the backbone's input); a window is cut every
 *   `stride` steps (1 <= stride <= window_len; stride == window_len: disjoint windows, smaller:
 *   overlapping ones); the store holds up to `capacity` (>= 1) windows; target_kind
 *   FLT_DATA_LABELS (class labels below n_classes; n_classes 0: any label >= 0) or
 *   FLT_DATA_TARGETS (n_targets float targets, 1 .. FLT_SAMPLE_MAX_TARGETS).
 * - Buffers: caller-owned (static arrays sized at generation time), referenced, never
 *   allocated, sizes in elements given to flt_window_store_init and checked there:
 *     windows  capacity * window_bytes int8
 *     labels   capacity int32                (FLT_DATA_LABELS; NULL otherwise)
 *     targets  capacity * n_targets float    (FLT_DATA_TARGETS; NULL otherwise)
 *     assembly window_bytes int8             (the window being cut)
 *   init failures: NULL store/cfg/windows/assembly, or the wrong label buffer NULL ->
 *   FLT_ERR_ARG; a zero or inconsistent geometry (stride 0 or > window_len, capacity 0,
 *   n_targets out of range, unknown kind) -> FLT_ERR_RANGE; a buffer smaller than the
 *   geometry needs -> FLT_ERR_NOMEM; sizes beyond 32 bits -> FLT_ERR_OVERSIZE. The store is
 *   unusable after a failed init.
 * - flt_window_store_push(store, values, label): one time step (channels values, its label,
 *   flt_sample.h). A window is complete at the window_len-th step after init, then every
 *   `stride` steps; it holds the last window_len steps. Its label is its last step's:
 *     classification: stored only when every one of its steps carries that same valid label
 *                     (0 <= label < n_classes): a window spanning a change of label or an
 *                     unlabelled step is rejected, as the dataset's windows were cut;
 *     regression:     stored when its last step is labelled and its targets are finite, with
 *                     that step's targets.
 *   When the store is full, a stored window replaces the oldest one (dropped, counted): the
 *   store holds the `capacity` most recent accepted windows, in time order. NULL ->
 *   FLT_ERR_ARG (nothing changes); it cannot fail otherwise.
 * - Counters (flt_window_store_stats): samples pushed, windows cut, stored, rejected, dropped,
 *   held (count) and capacity; windows = stored + rejected, count = stored - dropped <=
 *   capacity (modulo 2^32: about 2.7 years of 50 Hz samples).
 * - flt_window_store_view(store, out): the held windows as a flt_data_t (flt_data.h) in time
 *   order, oldest first, with n_test = flt_data_n_test(count, FLT_DATA_PERSONAL_PPM): the last
 *   n_test windows are the personal test split, exactly as in a data blob, and
 *   flt_round_data_from_blob picks the round's windows from it. It reorders the ring in place
 *   (three reversals, no extra memory); out points into the store's buffers, valid until the
 *   next push (device_id, input_scale, input_zero_point, model_hash and total_bytes are 0).
 *   No window yet -> FLT_ERR_STATE; NULL -> FLT_ERR_ARG.
 */
#ifndef FLT_WINDOW_STORE_H
#define FLT_WINDOW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "flt_data.h"
#include "flt_sample.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t window_len;  /* time steps per window */
    uint32_t channels;    /* int8 values per step */
    uint32_t stride;      /* steps between the ends of two consecutive windows */
    uint32_t capacity;    /* windows held at most */
    uint32_t target_kind; /* FLT_DATA_LABELS / FLT_DATA_TARGETS */
    uint32_t n_targets;   /* FLT_DATA_TARGETS: targets per window; labels: 1 */
    uint32_t n_classes;   /* FLT_DATA_LABELS: labels must be below it (0: no bound) */
} flt_window_store_cfg_t;

typedef struct {
    uint32_t samples;  /* time steps pushed */
    uint32_t windows;  /* windows cut (stored + rejected) */
    uint32_t stored;   /* windows put in the store */
    uint32_t rejected; /* windows not stored: unlabelled, mixed labels, bad label or target */
    uint32_t dropped;  /* stored windows replaced by newer ones (the store was full) */
    uint32_t count;    /* windows held now (<= capacity) */
    uint32_t capacity;
} flt_window_store_stats_t;

typedef struct {
    flt_window_store_cfg_t cfg;
    uint32_t window_bytes;
    int8_t *windows;
    int32_t *labels;
    float *targets;
    int8_t *assembly;
    uint32_t fill;     /* steps in assembly */
    uint32_t head;     /* slot of the oldest window (0 until the store is full) */
    int32_t run_label; /* the label of the latest step */
    uint32_t run_len;  /* consecutive latest steps with that valid label (<= window_len) */
    float last_targets[FLT_SAMPLE_MAX_TARGETS];
    int32_t last_ok; /* regression: the latest step is labelled with finite targets */
    flt_window_store_stats_t stats;
} flt_window_store_t;

FLT_NODISCARD flt_status_t flt_window_store_init(flt_window_store_t *store,
                                                 const flt_window_store_cfg_t *cfg, int8_t *windows,
                                                 size_t windows_len, int32_t *labels,
                                                 size_t labels_len, float *targets,
                                                 size_t targets_len, int8_t *assembly,
                                                 size_t assembly_len);
FLT_NODISCARD flt_status_t flt_window_store_push(flt_window_store_t *store, const int8_t *values,
                                                 const flt_sample_label_t *label);
FLT_NODISCARD flt_status_t flt_window_store_view(flt_window_store_t *store, flt_data_t *out);
const flt_window_store_stats_t *flt_window_store_stats(const flt_window_store_t *store);

#ifdef __cplusplus
}
#endif

#endif /* FLT_WINDOW_STORE_H */
