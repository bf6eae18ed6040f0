/* flt_round.h - one federated round on a device, as one portable, deterministic function:
 * given the global head parameters, the local data, the TRAIN configuration and the
 * error-feedback residual, produce the delta payload.
 *
 * Contract
 * - flt_round_run does, in this order (all float32, no libm, no global state besides the
 *   generated backbone's static arena):
 *     1. for each window w (i = 0..n-1): q = backbone(w) (int8, model->n_features values);
 *        features[i][j] = (float)((int32_t)q[j] - feature_zero_point) * feature_scale
 *        (when model->backbone is NULL the windows already are the int8 features);
 *     2. params = global_params; velocity = 0;
 *        flt_train_epochs(head, params, global_params, velocity, features, n, labels,
 *        targets, &cfg->train, ...) -> mean_loss;
 *     3. flt_delta_compress(&cfg->delta, params, global_params, residual, P, &delta)
 *        (residual is in/out: the error-feedback state of the previous round on entry, the
 *        new one on exit);
 *     4. flt_payload_encode(&delta, FLT_INDEX_AUTO, payload, payload_cap, &len).
 *   The same inputs give the same payload bytes on every IEEE-754 binary32 target built with
 *   -ffp-contract=off (the device, QEMU and the host's shared library: fltiny replays device
 *   rounds on the host through this function).
 * - k: flt_round_k(n_params, kind, count, fraction) maps a TRAIN message's top-k fields to k:
 *   COUNT -> min(count, n); FRACTION -> flt_delta_k_from_ppm(n, ppm) with
 *   ppm = (uint32_t)(fraction * 1e6f + 0.5f) (float32 arithmetic), ppm capped at 1000000.
 * - Buffers (caller-owned, sizes in elements; flt_round_sizes computes them):
 *     ws->features  n * n_features floats      ws->feat_q    n_features int8
 *     ws->params    P floats (the local model on exit)
 *     ws->velocity  P floats                   ws->work      work_len floats
 *     ws->order     n uint32                   ws->indices   k uint32, ws->values k int8,
 *     ws->scales    flt_delta_num_scales(k, mode, block) floats (k <= ws->k_cap)
 *   data->windows: n * model->window_bytes int8; data->labels n int32 (classification) or
 *   data->targets n * n_outputs float (regression).
 * - Failures: NULL pointers or n == 0 -> FLT_ERR_ARG; k > ws->k_cap -> FLT_ERR_NOMEM;
 *   a backbone failure, a training failure or an encoder failure -> that status. On failure
 *   the residual is unspecified: the caller must zero it (flt_delta_compress's rule) and the
 *   payload is not to be sent. result is written on success only.
 */
#ifndef FLT_ROUND_H
#define FLT_ROUND_H

#include <stddef.h>
#include <stdint.h>

#include "delta/delta.h"
#include "flt_status.h"
#include "train/flt_head.h"
#include "train/flt_train_loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef flt_status_t (*flt_backbone_fn_t)(const int8_t *input, int8_t *output);

typedef struct {
    const flt_head_t *head;
    flt_backbone_fn_t backbone; /* NULL: windows are the head's int8 features already */
    uint32_t window_bytes;      /* int8 values per window (backbone input size) */
    uint32_t n_features;        /* backbone output size == head->layers[0].in_size */
    float feature_scale;
    int32_t feature_zero_point;
} flt_round_model_t;

typedef struct {
    const int8_t *windows;
    uint32_t n;
    const int32_t *labels; /* classification */
    const float *targets;  /* regression */
} flt_round_data_t;

typedef struct {
    flt_train_cfg_t train;
    flt_delta_config_t delta;
} flt_round_cfg_t;

typedef struct {
    float *features;
    int8_t *feat_q;
    float *params;
    float *velocity;
    float *work;
    uint32_t work_len;
    uint32_t *order;
    uint32_t *indices;
    int8_t *values;
    float *scales;
    uint32_t k_cap;
} flt_round_ws_t;

typedef struct {
    float mean_loss;
    uint32_t examples;
    uint32_t k;
    size_t payload_len;
} flt_round_result_t;

/* k for a TRAIN message (kind 0 = count, 1 = fraction); see the contract. */
uint32_t flt_round_k(uint32_t n_params, uint32_t kind, uint32_t count, float fraction);

FLT_NODISCARD flt_status_t flt_round_run(const flt_round_model_t *model,
                                         const flt_round_data_t *data,
                                         const float *global_params, const flt_round_cfg_t *cfg,
                                         float *residual, flt_round_ws_t *ws, uint8_t *payload,
                                         size_t payload_cap, flt_round_result_t *result);

#ifdef __cplusplus
}
#endif

#endif /* FLT_ROUND_H */
