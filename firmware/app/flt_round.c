/* flt_round.c - see flt_round.h. */
#include "flt_round.h"

#include "delta/payload.h"
#include "privacy/local_dp.h"
#include "train/flt_dense.h"

uint32_t flt_round_k(uint32_t n_params, uint32_t kind, uint32_t count, float fraction)
{
    if (kind == 0u) {
        return count < n_params ? count : n_params;
    }
    float scaled = fraction * 1000000.0f + 0.5f;
    uint32_t ppm;
    if (!(scaled >= 0.0f)) {
        ppm = 0u;
    } else if (scaled >= 1000000.0f) {
        ppm = 1000000u;
    } else {
        ppm = (uint32_t)scaled;
    }
    return flt_delta_k_from_ppm(n_params, ppm);
}

flt_status_t flt_round_cfg_from_train(const flt_msg_train_t *train, uint32_t n_params,
                                      flt_round_cfg_t *cfg)
{
    uint32_t bits;
    FLT_REQUIRE(train != NULL && cfg != NULL, FLT_ERR_ARG);
    cfg->train.epochs = train->epochs;
    cfg->train.batch_size = train->batch_size;
    cfg->train.seed = train->seed;
    cfg->train.sgd.lr = train->learning_rate;
    cfg->train.sgd.momentum = train->momentum;
    cfg->train.sgd.mu = train->prox_mu;
    cfg->train.sgd.clip = train->clip;
    cfg->train.sgd.weight_decay = 0.0f;
    cfg->delta.k = flt_round_k(n_params, train->topk_kind, train->topk_count, train->topk_fraction);
    cfg->delta.mode = FLT_QUANT_TENSOR;
    cfg->delta.block_size = 0u;
    cfg->delta.error_feedback = (train->flags & FLT_TRAIN_NO_FEEDBACK) == 0u;
    bits = (train->flags & FLT_TRAIN_BITS_MASK) >> FLT_TRAIN_BITS_SHIFT;
    cfg->delta.qmax = flt_delta_qmax_of_bits(bits != 0u ? bits : 8u);
    cfg->flags = train->flags;
    cfg->ldp_clip = train->ldp_clip;
    cfg->ldp_noise = train->ldp_noise;
    return FLT_OK;
}

flt_status_t flt_round_sizes(const flt_head_t *head, uint32_t n_train, uint32_t k_cap,
                             flt_round_sizes_t *out)
{
    flt_train_sizes_t ts;
    FLT_REQUIRE(out != NULL, FLT_ERR_ARG);
    FLT_TRY(flt_train_sizes(head, n_train, &ts));
    FLT_REQUIRE(k_cap <= ts.n_params, FLT_ERR_RANGE);
    FLT_REQUIRE(n_train == 0u || ts.n_inputs <= UINT32_MAX / n_train, FLT_ERR_OVERSIZE);
    out->n_params = ts.n_params;
    out->feat_cache = n_train * ts.n_inputs;
    out->work = ts.work_floats;
    out->order = n_train;
    out->scales = flt_delta_num_scales(k_cap, FLT_QUANT_TENSOR, 0u);
    out->payload = FLT_ROUND_PAYLOAD_CAP(ts.n_params);
    return FLT_OK;
}

/* The sample source of the training loop: window i's dequantized features. */
typedef struct {
    const flt_round_model_t *model;
    const int8_t *windows;
    int8_t *feat_q;
    const int8_t *cache; /* n_train * n_features int8 already computed, or NULL */
} flt_round_src_t;

static void dequantize(const flt_round_model_t *model, const int8_t *q, float *x)
{
    for (uint32_t j = 0; j < model->n_features; ++j) {
        x[j] = (float)((int32_t)q[j] - model->feature_zero_point) * model->feature_scale;
    }
}

static flt_status_t features_q(const flt_round_model_t *model, const int8_t *window, int8_t *feat_q,
                               const int8_t **q)
{
    if (model->backbone == NULL) {
        *q = window;
        return FLT_OK;
    }
    FLT_TRY(model->backbone(window, feat_q));
    *q = feat_q;
    return FLT_OK;
}

static flt_status_t round_sample(void *ctx, uint32_t index, float *x)
{
    const flt_round_src_t *src = (const flt_round_src_t *)ctx;
    const flt_round_model_t *model = src->model;
    const int8_t *q;
    if (src->cache != NULL) {
        q = src->cache + (size_t)index * model->n_features;
    } else {
        FLT_TRY(
            features_q(model, src->windows + (size_t)index * model->window_bytes, src->feat_q, &q));
    }
    dequantize(model, q, x);
    return FLT_OK;
}

/* Step 1's metric of `params` on windows first .. first + count - 1 (count >= 1). */
static flt_status_t metric_on(const flt_round_model_t *model, const flt_round_data_t *data,
                              const float *params, uint32_t first, uint32_t count,
                              flt_round_ws_t *ws, float *metric);

/* Step 1 of the contract: the served model on the personal test split. */
static flt_status_t personal_metric(const flt_round_model_t *model, const flt_round_data_t *data,
                                    const float *served, flt_round_ws_t *ws, float *metric)
{
    return metric_on(model, data, served, data->n - data->n_test, data->n_test, ws, metric);
}

static flt_status_t metric_on(const flt_round_model_t *model, const flt_round_data_t *data,
                              const float *params, uint32_t first, uint32_t count,
                              flt_round_ws_t *ws, float *metric)
{
    const flt_head_t *head = model->head;
    flt_train_sizes_t sz;
    FLT_TRY(flt_train_sizes(head, 0u, &sz));
    const uint32_t n_out = sz.n_outputs;
    const float *y = ws->work + (sz.n_acts - n_out); /* the network output (flt_dense_forward) */
    FLT_REQUIRE(head->loss == FLT_LOSS_SOFTMAX_CE ? data->labels != NULL : data->targets != NULL,
                FLT_ERR_ARG);
    uint32_t correct = 0;
    float abs_sum = 0.0f;
    for (uint32_t i = first; i < first + count; ++i) {
        const int8_t *q;
        FLT_TRY(features_q(model, data->windows + (size_t)i * model->window_bytes, ws->feat_q, &q));
        dequantize(model, q, ws->x);
        FLT_TRY(flt_dense_forward(head, params, ws->x, ws->work, ws->work_len));
        if (head->loss == FLT_LOSS_SOFTMAX_CE) {
            uint32_t best = 0;
            for (uint32_t j = 1; j < n_out; ++j) {
                if (y[j] > y[best]) {
                    best = j;
                }
            }
            FLT_REQUIRE(data->labels[i] >= 0 && (uint32_t)data->labels[i] < n_out, FLT_ERR_RANGE);
            correct += (best == (uint32_t)data->labels[i]) ? 1u : 0u;
        } else {
            const float *t = data->targets + (size_t)i * n_out;
            for (uint32_t j = 0; j < n_out; ++j) {
                float d = y[j] - t[j];
                abs_sum = abs_sum + (d < 0.0f ? -d : d);
            }
        }
    }
    if (head->loss == FLT_LOSS_SOFTMAX_CE) {
        *metric = (float)correct / (float)count;
    } else {
        *metric = abs_sum / ((float)count * (float)n_out);
    }
    return FLT_OK;
}

flt_status_t flt_round_run(const flt_round_model_t *model, const flt_round_data_t *data,
                           const float *global_params, const flt_round_cfg_t *cfg,
                           const flt_round_state_t *state, flt_round_ws_t *ws, uint8_t *payload,
                           size_t payload_cap, flt_round_result_t *result)
{
    FLT_REQUIRE(model && data && global_params && cfg && state && ws && payload && result,
                FLT_ERR_ARG);
    FLT_REQUIRE(model->head && data->windows && data->n > 0u && data->n_test < data->n,
                FLT_ERR_ARG);
    FLT_REQUIRE(state->residual && ws->feat_q && ws->x && ws->params && ws->velocity && ws->work &&
                    ws->order && ws->indices && ws->values && ws->scales,
                FLT_ERR_ARG);
    FLT_TRY(flt_head_check(model->head));
    const uint32_t nf = model->n_features;
    FLT_REQUIRE(nf == model->head->layers[0].in_size, FLT_ERR_SHAPE);
    FLT_REQUIRE(model->backbone != NULL || model->window_bytes == nf, FLT_ERR_SHAPE);
    FLT_REQUIRE(cfg->delta.k <= ws->k_cap, FLT_ERR_NOMEM);
    FLT_REQUIRE((cfg->flags & ~(uint32_t)FLT_TRAIN_FLAGS_KNOWN) == 0u, FLT_ERR_RANGE);
    const int drift = (cfg->flags & FLT_ROUND_DRIFT) != 0u;
    const int ldp = (cfg->flags & FLT_TRAIN_LOCAL_DP) != 0u;
    FLT_REQUIRE(!ldp || state->ldp_key != NULL, FLT_ERR_ARG);
    const float mu = cfg->train.sgd.mu;
    if (drift) {
        FLT_REQUIRE(state->drift != NULL, FLT_ERR_ARG);
        FLT_REQUIRE(mu > 0.0f, FLT_ERR_RANGE);
    }
    const uint32_t n_params = flt_head_n_params(model->head);
    const uint32_t n_train = data->n - data->n_test;
    const int select = (cfg->flags & FLT_ROUND_SELECT) != 0u;
    const uint32_t n_val = select ? n_train / 4u : 0u; /* step 6's validation split */
    const uint32_t n_fit = n_train - n_val;

    /* 0. FLT_TRAIN_RESET: a fresh round state (zero residual and drift, the global served) */
    const float *served = state->served;
    if ((cfg->flags & FLT_TRAIN_RESET) != 0u) {
        served = NULL;
        for (uint32_t i = 0; i < n_params; ++i) {
            state->residual[i] = 0.0f;
            if (drift) {
                state->drift[i] = 0.0f;
            }
        }
    }

    /* 1. the personal metric of the served model, before any training */
    float metric = 0.0f;
    if (data->n_test > 0u && !ldp) { /* local DP: not reported (computed on the data, no noise) */
        FLT_TRY(personal_metric(model, data, served != NULL ? served : global_params, ws, &metric));
    }

    /* 2. local training from the global parameters (features cached or recomputed) */
    if (ws->feat_cache != NULL) {
        for (uint32_t i = 0; i < n_fit; ++i) {
            const int8_t *q;
            int8_t *c = ws->feat_cache + (size_t)i * nf;
            FLT_TRY(features_q(model, data->windows + (size_t)i * model->window_bytes, c, &q));
            if (q != c) {
                for (uint32_t j = 0; j < nf; ++j) {
                    c[j] = q[j];
                }
            }
        }
    }
    const float *anchor = global_params;
    for (uint32_t i = 0; i < n_params; ++i) {
        ws->params[i] = global_params[i];
        ws->velocity[i] = 0.0f;
    }
    if (drift) { /* the anchor in place of the drift state (RAM: no extra P floats) */
        for (uint32_t i = 0; i < n_params; ++i) {
            state->drift[i] = global_params[i] + state->drift[i] / mu;
        }
        anchor = state->drift;
    }
    flt_round_src_t rs = {model, data->windows, ws->feat_q, ws->feat_cache};
    flt_sample_source_t src = {round_sample, &rs, ws->x};
    float mean_loss = 0.0f;
    FLT_TRY(flt_train_epochs_src(model->head, ws->params, anchor, ws->velocity, &src, n_fit,
                                 data->labels, data->targets, &cfg->train, ws->work, ws->work_len,
                                 ws->order, &mean_loss, NULL));

    /* 3. the drift-control state, from the anchor a = global + drift / mu */
    if (drift) {
        for (uint32_t i = 0; i < n_params; ++i) {
            state->drift[i] = mu * (state->drift[i] - ws->params[i]);
        }
    }

    /* 3b. local DP: the update clipped and noised, in the velocity buffer (free by now) */
    const float *sent = ws->params;
    if (ldp) {
        float norm = 0.0f;
        FLT_TRY(flt_ldp_privatize(ws->params, global_params, n_params, cfg->ldp_clip,
                                  cfg->ldp_noise, state->ldp_key, state->ldp_nonce, ws->velocity,
                                  &norm));
        sent = ws->velocity;
    }

    /* 4. error feedback + top-k + int8 */
    flt_sparse_delta_t delta;
    delta.indices = ws->indices;
    delta.values = ws->values;
    delta.scales = ws->scales;
    FLT_TRY(
        flt_delta_compress(&cfg->delta, sent, global_params, state->residual, n_params, &delta));

    /* 5. payload */
    size_t len = 0;
    FLT_TRY(flt_payload_encode(&delta, FLT_INDEX_AUTO, payload, payload_cap, &len));

    /* 6. the model to serve: the local one, unless the validation split prefers the global */
    uint32_t serve_local = (cfg->flags & FLT_ROUND_PERSONAL) != 0u;
    if (serve_local && n_val > 0u) {
        float local = 0.0f, global = 0.0f;
        FLT_TRY(metric_on(model, data, ws->params, n_fit, n_val, ws, &local));
        FLT_TRY(metric_on(model, data, global_params, n_fit, n_val, ws, &global));
        serve_local =
            (model->head->loss == FLT_LOSS_SOFTMAX_CE) ? (local >= global) : (local <= global);
    }
    result->mean_loss = ldp ? 0.0f : mean_loss;
    result->flags = cfg->flags;
    result->examples = n_fit;
    result->k = delta.k;
    result->payload_len = len;
    result->personal_n = ldp ? 0u : data->n_test;
    result->personal_metric = metric;
    result->serve_local = serve_local;
    return FLT_OK;
}

flt_status_t flt_round_data_from_blob(const flt_data_t *blob, uint32_t max_train,
                                      flt_round_data_t *out)
{
    FLT_REQUIRE(blob != NULL && out != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(max_train > 0u, FLT_ERR_RANGE);
    FLT_REQUIRE(blob->n_test < blob->count, FLT_ERR_FORMAT);
    const uint32_t n_train_all = blob->count - blob->n_test;
    const uint32_t n_train = n_train_all < max_train ? n_train_all : max_train;
    const uint32_t skip = n_train_all - n_train;
    out->windows = blob->windows + (size_t)skip * blob->window_bytes;
    out->n = n_train + blob->n_test;
    out->n_test = blob->n_test;
    out->labels = blob->labels != NULL ? blob->labels + skip : NULL;
    out->targets = blob->targets != NULL ? blob->targets + (size_t)skip * blob->n_targets : NULL;
    return FLT_OK;
}

/* The round from a decoded configuration and the device's windows (a blob or the store). */
static flt_status_t run_on(const flt_round_model_t *model, const flt_round_cfg_t *cfg,
                           const flt_data_t *d, uint32_t max_train, const float *global_params,
                           const flt_round_state_t *state, flt_round_ws_t *ws, uint8_t *payload,
                           size_t payload_cap, flt_round_result_t *result)
{
    FLT_REQUIRE(d->window_bytes == model->window_bytes, FLT_ERR_SHAPE);
    flt_round_data_t rd;
    FLT_TRY(flt_round_data_from_blob(d, max_train, &rd));
    return flt_round_run(model, &rd, global_params, cfg, state, ws, payload, payload_cap, result);
}

flt_status_t flt_round_run_message(const flt_round_model_t *model, const uint8_t *blob,
                                   size_t blob_len, uint32_t max_train, const uint8_t *train,
                                   size_t train_len, const float *global_params,
                                   const flt_round_state_t *state, flt_round_ws_t *ws,
                                   uint8_t *payload, size_t payload_cap, flt_round_result_t *result)
{
    FLT_REQUIRE(model != NULL && model->head != NULL, FLT_ERR_ARG);
    flt_msg_train_t t;
    FLT_TRY(flt_msg_train_decode(train, train_len, &t));
    flt_round_cfg_t cfg;
    FLT_TRY(flt_round_cfg_from_train(&t, flt_head_n_params(model->head), &cfg));
    flt_data_t d;
    FLT_TRY(flt_data_parse(blob, blob_len, &d));
    return run_on(model, &cfg, &d, max_train, global_params, state, ws, payload, payload_cap,
                  result);
}

flt_status_t flt_round_run_train(const flt_round_model_t *model, const flt_data_t *data,
                                 uint32_t max_train, const uint8_t *train, size_t train_len,
                                 const float *global_params, const flt_round_state_t *state,
                                 flt_round_ws_t *ws, uint8_t *payload, size_t payload_cap,
                                 flt_round_result_t *result)
{
    FLT_REQUIRE(model != NULL && model->head != NULL && data != NULL, FLT_ERR_ARG);
    flt_msg_train_t t;
    FLT_TRY(flt_msg_train_decode(train, train_len, &t));
    flt_round_cfg_t cfg;
    FLT_TRY(flt_round_cfg_from_train(&t, flt_head_n_params(model->head), &cfg));
    return run_on(model, &cfg, data, max_train, global_params, state, ws, payload, payload_cap,
                  result);
}

flt_status_t flt_round_self_check(const flt_round_model_t *model, const flt_round_data_t *data,
                                  const float *params, const float *reference, float drop,
                                  flt_round_ws_t *ws, flt_round_check_t *out)
{
    FLT_REQUIRE(model && data && params && reference && ws && out, FLT_ERR_ARG);
    FLT_REQUIRE(model->head && data->windows && data->n > 0u && data->n_test < data->n,
                FLT_ERR_ARG);
    FLT_REQUIRE(ws->feat_q && ws->x && ws->work, FLT_ERR_ARG);
    FLT_TRY(flt_head_check(model->head));
    FLT_REQUIRE(model->n_features == model->head->layers[0].in_size, FLT_ERR_SHAPE);
    flt_round_check_t c = {0u, 0.0f, 0.0f, drop, 0};
    if (drop > 0.0f && data->n_test > 0u) {
        FLT_TRY(personal_metric(model, data, params, ws, &c.metric));
        FLT_TRY(personal_metric(model, data, reference, ws, &c.reference_metric));
        c.n = data->n_test;
        const float worse = model->head->loss == FLT_LOSS_SOFTMAX_CE
                                ? c.reference_metric - c.metric
                                : c.metric - c.reference_metric;
        c.failed = worse > drop ? 1 : 0;
    }
    *out = c;
    return FLT_OK;
}

static flt_status_t check_on(const flt_round_model_t *model, const flt_data_t *d,
                             uint32_t max_train, const uint8_t *train, size_t train_len,
                             const float *params, const float *reference, flt_round_ws_t *ws,
                             flt_round_check_t *out)
{
    flt_msg_train_t t;
    FLT_TRY(flt_msg_train_decode(train, train_len, &t));
    FLT_REQUIRE(d->window_bytes == model->window_bytes, FLT_ERR_SHAPE);
    flt_round_data_t rd;
    FLT_TRY(flt_round_data_from_blob(d, max_train, &rd));
    const uint32_t hundredths = (t.flags & FLT_TRAIN_CHECK_MASK) >> FLT_TRAIN_CHECK_SHIFT;
    return flt_round_self_check(model, &rd, params, reference, (float)hundredths / 100.0f, ws, out);
}

flt_status_t flt_round_self_check_message(const flt_round_model_t *model, const uint8_t *blob,
                                          size_t blob_len, uint32_t max_train, const uint8_t *train,
                                          size_t train_len, const float *params,
                                          const float *reference, flt_round_ws_t *ws,
                                          flt_round_check_t *out)
{
    FLT_REQUIRE(model != NULL && model->head != NULL, FLT_ERR_ARG);
    flt_data_t d;
    FLT_TRY(flt_data_parse(blob, blob_len, &d));
    return check_on(model, &d, max_train, train, train_len, params, reference, ws, out);
}

flt_status_t flt_round_self_check_train(const flt_round_model_t *model, const flt_data_t *data,
                                        uint32_t max_train, const uint8_t *train, size_t train_len,
                                        const float *params, const float *reference,
                                        flt_round_ws_t *ws, flt_round_check_t *out)
{
    FLT_REQUIRE(model != NULL && model->head != NULL && data != NULL, FLT_ERR_ARG);
    return check_on(model, data, max_train, train, train_len, params, reference, ws, out);
}
