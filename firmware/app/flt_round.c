/* flt_round.c - see flt_round.h. */
#include "flt_round.h"

#include "delta/payload.h"

uint32_t flt_round_k(uint32_t n_params, uint32_t kind, uint32_t count, float fraction) {
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

flt_status_t flt_round_run(const flt_round_model_t *model, const flt_round_data_t *data,
                           const float *global_params, const flt_round_cfg_t *cfg,
                           float *residual, flt_round_ws_t *ws, uint8_t *payload,
                           size_t payload_cap, flt_round_result_t *result) {
    FLT_REQUIRE(model && data && global_params && cfg && residual && ws && payload && result,
                FLT_ERR_ARG);
    FLT_REQUIRE(model->head && data->windows && data->n > 0u, FLT_ERR_ARG);
    FLT_REQUIRE(ws->features && ws->feat_q && ws->params && ws->velocity && ws->work &&
                    ws->order && ws->indices && ws->values && ws->scales,
                FLT_ERR_ARG);
    FLT_TRY(flt_head_check(model->head));
    const uint32_t nf = model->n_features;
    FLT_REQUIRE(nf == model->head->layers[0].in_size, FLT_ERR_SHAPE);
    FLT_REQUIRE(model->backbone != NULL || model->window_bytes == nf, FLT_ERR_SHAPE);
    FLT_REQUIRE(cfg->delta.k <= ws->k_cap, FLT_ERR_NOMEM);
    const uint32_t n_params = flt_head_n_params(model->head);

    /* 1. features of every window through the frozen int8 backbone */
    for (uint32_t i = 0; i < data->n; ++i) {
        const int8_t *w = data->windows + (size_t)i * model->window_bytes;
        const int8_t *q = w;
        if (model->backbone != NULL) {
            FLT_TRY(model->backbone(w, ws->feat_q));
            q = ws->feat_q;
        }
        float *f = ws->features + (size_t)i * nf;
        for (uint32_t j = 0; j < nf; ++j) {
            f[j] = (float)((int32_t)q[j] - model->feature_zero_point) * model->feature_scale;
        }
    }

    /* 2. local training from the global parameters */
    for (uint32_t i = 0; i < n_params; ++i) {
        ws->params[i] = global_params[i];
        ws->velocity[i] = 0.0f;
    }
    float mean_loss = 0.0f;
    FLT_TRY(flt_train_epochs(model->head, ws->params, global_params, ws->velocity, ws->features,
                             data->n, data->labels, data->targets, &cfg->train, ws->work,
                             ws->work_len, ws->order, &mean_loss, NULL));

    /* 3. error feedback + top-k + int8 */
    flt_sparse_delta_t delta;
    delta.indices = ws->indices;
    delta.values = ws->values;
    delta.scales = ws->scales;
    FLT_TRY(flt_delta_compress(&cfg->delta, ws->params, global_params, residual, n_params,
                               &delta));

    /* 4. payload */
    size_t len = 0;
    FLT_TRY(flt_payload_encode(&delta, FLT_INDEX_AUTO, payload, payload_cap, &len));
    result->mean_loss = mean_loss;
    result->examples = data->n;
    result->k = delta.k;
    result->payload_len = len;
    return FLT_OK;
}
