/* flt_round.h - one federated round on a device, as one portable, deterministic function:
 * given the global model, the local data, the TRAIN configuration and the device's state
 * (error-feedback residual, drift-control state, the model it serves), produce the delta
 * payload and the personal metric.
 *
 * Contract
 * - flt_round_run does, in this order (all float32, no libm, no global state besides the
 *   generated backbone's static arena). Windows 0 .. n_train-1 (n_train = n - n_test) are the
 *   training split, the last n_test windows the personal test split (never trained on).
 *     0. x(w): q = backbone(w) (int8, model->n_features values; when model->backbone is NULL
 *        the window already is the int8 features); x[j] = (float)((int32_t)q[j] -
 *        feature_zero_point) * feature_scale. With ws->feat_cache the training windows' q are
 *        computed once (step 2) and read back; without it the backbone runs again at every
 *        use: both give the same bits.
 *     0. with FLT_TRAIN_RESET the round starts from a fresh state: residual (and with
 *        FLT_ROUND_DRIFT drift) set to zeros, state->served taken as NULL;
 *     1. personal metric (n_test > 0): the served model (state->served, or global_params when
 *        it is NULL) on each test window, flt_dense_forward; classification: correct when the
 *        first maximum of the output is the label, metric = correct / n_test; regression:
 *        metric = (sequential sum over windows and outputs of |y - t|) / (n_test * n_outputs).
 *        n_test == 0: metric 0.
 *     2. params = global_params; velocity = 0; the anchor of the proximal term is
 *        global_params, or with FLT_ROUND_DRIFT (FedDyn, Acar et al. 2021, ICLR, "Federated
 *        Learning Based on Dynamic Regularization") a[i] = global[i] + drift[i] / mu, held in
 *        the drift buffer itself: mu * (w - a) = mu * (w - global) - drift, i.e. FedDyn's
 *        local objective L(w) - <drift, w> + mu/2 |w - global|^2 with mu = cfg->train.sgd.mu
 *        (> 0 required); flt_train_epochs_src(head, params, anchor, velocity, x of the
 *        training windows, n_train, ...) -> mean_loss;
 *     3. with FLT_ROUND_DRIFT: drift[i] = mu * (a[i] - params[i]) (= drift - mu * (params -
 *        global) up to rounding);
 *     3b. with FLT_TRAIN_LOCAL_DP: flt_ldp_privatize(params, global_params, P, cfg->ldp_clip,
 *        cfg->ldp_noise, state->ldp_key, state->ldp_nonce, ws->velocity, &norm)
 *        (privacy/local_dp.h: the update clipped and noised; the velocity buffer is free
 *        after training) and step 4 compresses ws->velocity instead of params: error
 *        feedback, top-k and quantization are post-processing of the noised update. params
 *        (the local model the device may serve) is never noised: it does not leave the
 *        device. The noise comes from state->ldp_key, which the host does not hold, so the
 *        payload of such a round cannot be replayed. What the noise does not cover is not
 *        reported: with LOCAL_DP step 1 is skipped and result->mean_loss, personal_n and
 *        personal_metric are 0; only result->examples (the training windows' count) is
 *        computed from the data outside the noise.
 *     4. flt_delta_compress(&cfg->delta, params, global_params, residual, P, &delta)
 *        (residual is in/out: the error-feedback state of the previous round on entry, the
 *        new one on exit);
 *     5. flt_payload_encode(&delta, FLT_INDEX_AUTO, payload, payload_cap, &len).
 *     6. result->serve_local: 1 when the device is to serve the local model from now on
 *        (FLT_ROUND_PERSONAL; with FLT_ROUND_SELECT only when it scores at least as well as
 *        global_params on the validation split, step 1's rule, classification accuracy >=,
 *        regression MAE <=), else 0 (FLT_ROUND_PERSONAL with SELECT: the global model is
 *        served; without PERSONAL the served model does not change). FLT_ROUND_SELECT: the
 *        validation split is the last n_val = n_train / 4 training windows, held out of step
 *        2's training (which then uses the first n_train - n_val, result->examples); n_val ==
 *        0 (fewer than 4 training windows) serves the local model.
 *   ws->params holds the local model on exit: the device serves it from then on when
 *   result->serve_local is 1 (its loop keeps it as state->served once the DELTA is
 *   acknowledged, and goes back to the global model when it is 0 under PERSONAL). The same inputs
 * give the same payload bytes and metrics on every IEEE-754 binary32 target built with
 * -ffp-contract=off (the device, QEMU and the host's shared library: fltiny replays device rounds
 * on the host through this function).
 * - Settings: flt_round_cfg_from_train maps a decoded TRAIN message to the configuration, the
 *   one mapping for the device loop and the host replay: epochs, batch size, seed, lr,
 *   momentum, mu = prox_mu, clip, weight decay 0; k = flt_round_k(P, topk_kind, topk_count,
 *   topk_fraction), one per-tensor scale, values of the TRAIN's width (flags bits 8-11:
 *   qmax = flt_delta_qmax_of_bits(bits), 0 meaning 8 bits: int8), error feedback on unless
 *   the TRAIN flag NO_FEEDBACK is set (then the residual is ignored and left zero); flags =
 *   the TRAIN flags.
 *   flt_round_k: COUNT -> min(count, n); FRACTION -> flt_delta_k_from_ppm(n, ppm) with
 *   ppm = (uint32_t)(fraction * 1e6f + 0.5f) (float32 arithmetic), ppm capped at 1000000.
 * - Self-check (flt_round_self_check; the device loop runs it on the first TRAIN after a
 *   GLOBAL applied, before the round, firmware/app/flt_device.h): the personal metric (step
 *   1's rule) of `params` (the new global model) and of `reference` (the factory head) on the
 *   personal test split; failed when params is worse than reference by more than `drop`:
 *   classification reference_metric - metric > drop, regression (MAE) metric -
 *   reference_metric > drop, in float32. drop <= 0 or n_test == 0: no check (n 0, failed 0).
 *   It reads nothing but its arguments and writes only ws->feat_q, ws->x and ws->work (which
 *   flt_round_run overwrites before use): a round after a passed check gives the same bytes as
 *   one without it, so the host replays such rounds unchanged, and it can recompute a failed
 *   check from the same inputs (flt_round_self_check_message).
 *   The drop of a TRAIN is (flags & FLT_TRAIN_CHECK_MASK) >> FLT_TRAIN_CHECK_SHIFT hundredths:
 *   drop = (float)hundredths / 100.0f.
 * - Buffers (caller-owned, sizes in elements; flt_round_sizes computes them for a head, its
 *   feature count, n_train and k_cap):
 *     ws->feat_q    n_features int8           ws->x        n_features floats
 *     ws->feat_cache n_train * n_features int8, or NULL (recompute)
 *     ws->params    P floats                  ws->velocity P floats
 *     ws->work      work_len floats           ws->order    n_train uint32
 *     ws->indices   k uint32, ws->values k int8,
 *     ws->scales    flt_delta_num_scales(k, mode, block) floats (k <= ws->k_cap)
 *   state->residual P floats (in/out); state->drift P floats (in/out, FLT_ROUND_DRIFT only);
 *   state->served P floats or NULL (read only). data->windows: n * model->window_bytes int8;
 *   data->labels n int32 (classification) or data->targets n * n_outputs float (regression).
 * - Sharing (what a device with little RAM may overlap; the host replay keeps every buffer
 *   apart and gets the same bits): ws->indices, ws->values and ws->scales may lie inside
 *   ws->work (they are used in steps 4-5 only, when work holds nothing live), and so may
 *   state->residual in a round with error feedback off (NO_FEEDBACK: step 4 only writes it);
 *   ws->feat_q may lie inside ws->work past its first P + n_acts floats (the backward scratch:
 *   feat_q is read only to fill ws->x before a forward pass, which writes work's first n_acts
 *   floats only). No other buffer may overlap another.
 * - Failures: NULL pointers (state->ldp_key with FLT_TRAIN_LOCAL_DP), n == 0 or n_test >= n ->
 *   FLT_ERR_ARG; k > ws->k_cap ->
 *   FLT_ERR_NOMEM; FLT_ROUND_DRIFT with mu == 0 or unknown flags -> FLT_ERR_RANGE; a backbone,
 *   training or encoder failure -> that status. On failure residual and drift are
 *   unspecified (the caller passes copies and keeps its own on failure) and the payload is
 *   not to be sent. result is written on success only.
 */
#ifndef FLT_ROUND_H
#define FLT_ROUND_H

#include <stddef.h>
#include <stdint.h>

#include "delta/delta.h"
#include "delta/payload.h"
#include "flt_data.h"
#include "core/flt_status.h"
#include "proto/messages.h"
#include "train/flt_head.h"
#include "train/flt_train_loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Worst-case delta payload bytes of a round for P parameters: k = P values, the index section
 * never larger than the bitmap (FLT_INDEX_AUTO picks the smallest), one per-tensor scale
 * (flt_round_cfg_from_train's mode; a block-mode configuration may need more: the encoder
 * then fails with FLT_ERR_NOMEM). */
#define FLT_ROUND_PAYLOAD_CAP(P) (FLT_PAYLOAD_HEADER_MAX + 4u + ((P) + 7u) / 8u + (P))

#define FLT_ROUND_DRIFT FLT_TRAIN_DRIFT
#define FLT_ROUND_PERSONAL FLT_TRAIN_PERSONAL
#define FLT_ROUND_SELECT FLT_TRAIN_SELECT

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
    uint32_t n;            /* all windows: the training split first */
    uint32_t n_test;       /* the last n_test windows: the personal test split */
    const int32_t *labels; /* classification */
    const float *targets;  /* regression */
} flt_round_data_t;

typedef struct {
    flt_train_cfg_t train;
    flt_delta_config_t delta;
    uint32_t flags;  /* FLT_ROUND_DRIFT | FLT_ROUND_PERSONAL | FLT_TRAIN_LOCAL_DP ... */
    float ldp_clip;  /* FLT_TRAIN_LOCAL_DP: the update's L2 bound */
    float ldp_noise; /* FLT_TRAIN_LOCAL_DP: the noise multiplier */
} flt_round_cfg_t;

typedef struct {
    const float *served;    /* the model the device serves; NULL: the global model */
    float *residual;        /* error feedback, in/out */
    float *drift;           /* FedDyn state, in/out (FLT_ROUND_DRIFT) */
    const uint8_t *ldp_key; /* FLT_TRAIN_LOCAL_DP: the device's noise secret (32 bytes) */
    uint32_t ldp_nonce;     /* FLT_TRAIN_LOCAL_DP: never the same twice under one key */
} flt_round_state_t;

typedef struct {
    int8_t *feat_q;
    int8_t *feat_cache; /* NULL: recompute the backbone at every use */
    float *x;
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

/* Element counts of every flt_round_ws_t buffer (see the contract). */
typedef struct {
    uint32_t n_params;
    uint32_t feat_cache; /* n_train * n_features (int8), if the caller caches */
    uint32_t work;       /* floats */
    uint32_t order;      /* n_train */
    uint32_t scales;     /* worst case over k <= k_cap, per-tensor mode */
    uint32_t payload;    /* bytes: worst-case payload for k_cap entries */
} flt_round_sizes_t;

typedef struct {
    float mean_loss;
    uint32_t flags;    /* the round's flags (what the caller commits on acknowledgement) */
    uint32_t examples; /* n_train */
    uint32_t k;
    size_t payload_len;
    uint32_t personal_n;
    float personal_metric;
    uint32_t serve_local; /* step 6: 1 serve the local model, 0 the global (or unchanged) */
} flt_round_result_t;

/* The self-check's verdict (see the contract). */
typedef struct {
    uint32_t n;             /* personal test windows evaluated; 0: no check ran */
    float metric;           /* the checked model's personal metric */
    float reference_metric; /* the reference model's (the factory head's) */
    float drop;             /* the allowed drop */
    int32_t failed;         /* 1: worse than the reference by more than drop */
} flt_round_check_t;

/* k for a TRAIN message (kind 0 = count, 1 = fraction); see the contract. */
uint32_t flt_round_k(uint32_t n_params, uint32_t kind, uint32_t count, float fraction);

/* TRAIN -> round configuration (the one mapping). NULL -> FLT_ERR_ARG. */
FLT_NODISCARD flt_status_t flt_round_cfg_from_train(const flt_msg_train_t *train, uint32_t n_params,
                                                    flt_round_cfg_t *cfg);

/* Buffer sizes for a head; invalid head -> its flt_head_check status; NULL -> FLT_ERR_ARG. */
FLT_NODISCARD flt_status_t flt_round_sizes(const flt_head_t *head, uint32_t n_train, uint32_t k_cap,
                                           flt_round_sizes_t *out);

/* The windows a device uses from its blob: the personal test split (the last n_test) and up
 * to max_train of the most recent training windows before it, contiguous. NULL ->
 * FLT_ERR_ARG; max_train 0 -> FLT_ERR_RANGE. */
FLT_NODISCARD flt_status_t flt_round_data_from_blob(const flt_data_t *blob, uint32_t max_train,
                                                    flt_round_data_t *out);

/* The whole round from the bytes a device holds, the one path of the device loop and the
 * host replay: flt_msg_train_decode(train, train_len), flt_round_cfg_from_train,
 * flt_data_parse(blob, blob_len) (4-byte aligned), flt_round_data_from_blob(max_train),
 * flt_round_run. Any step's failure is returned as is (a blob whose window size is not
 * model->window_bytes -> FLT_ERR_SHAPE). */
FLT_NODISCARD flt_status_t flt_round_run_message(const flt_round_model_t *model,
                                                 const uint8_t *blob, size_t blob_len,
                                                 uint32_t max_train, const uint8_t *train,
                                                 size_t train_len, const float *global_params,
                                                 const flt_round_state_t *state, flt_round_ws_t *ws,
                                                 uint8_t *payload, size_t payload_cap,
                                                 flt_round_result_t *result);

/* The same round on windows the device holds as a flt_data_t already (the window store's view,
 * flt_window_store.h): flt_msg_train_decode, flt_round_cfg_from_train,
 * flt_round_data_from_blob(data, max_train), flt_round_run; failures as
 * flt_round_run_message's (NULL data -> FLT_ERR_ARG). */
FLT_NODISCARD flt_status_t flt_round_run_train(const flt_round_model_t *model,
                                               const flt_data_t *data, uint32_t max_train,
                                               const uint8_t *train, size_t train_len,
                                               const float *global_params,
                                               const flt_round_state_t *state, flt_round_ws_t *ws,
                                               uint8_t *payload, size_t payload_cap,
                                               flt_round_result_t *result);

/* The self-check of `params` against `reference` (see the contract). ws needs feat_q, x, work
 * and work_len only. NULL pointers, data->n == 0 or n_test >= n -> FLT_ERR_ARG; a backbone
 * or forward failure -> that status; out is written on success only. */
FLT_NODISCARD flt_status_t flt_round_self_check(const flt_round_model_t *model,
                                                const flt_round_data_t *data, const float *params,
                                                const float *reference, float drop,
                                                flt_round_ws_t *ws, flt_round_check_t *out);

/* The self-check a device holding `blob` runs for a TRAIN (its drop from the TRAIN's flags,
 * the blob's windows as flt_round_run_message takes them): failures as
 * flt_round_run_message's and flt_round_self_check's. */
FLT_NODISCARD flt_status_t flt_round_self_check_message(const flt_round_model_t *model,
                                                        const uint8_t *blob, size_t blob_len,
                                                        uint32_t max_train, const uint8_t *train,
                                                        size_t train_len, const float *params,
                                                        const float *reference, flt_round_ws_t *ws,
                                                        flt_round_check_t *out);

/* The same on windows the device holds as a flt_data_t (the window store's view). */
FLT_NODISCARD flt_status_t flt_round_self_check_train(const flt_round_model_t *model,
                                                      const flt_data_t *data, uint32_t max_train,
                                                      const uint8_t *train, size_t train_len,
                                                      const float *params, const float *reference,
                                                      flt_round_ws_t *ws, flt_round_check_t *out);

FLT_NODISCARD flt_status_t flt_round_run(const flt_round_model_t *model,
                                         const flt_round_data_t *data, const float *global_params,
                                         const flt_round_cfg_t *cfg, const flt_round_state_t *state,
                                         flt_round_ws_t *ws, uint8_t *payload, size_t payload_cap,
                                         flt_round_result_t *result);

#ifdef __cplusplus
}
#endif

#endif /* FLT_ROUND_H */
