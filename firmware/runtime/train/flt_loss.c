/* flt_loss.c - see flt_loss.h. */
#include "train/flt_loss.h"

#include <stddef.h>

#include "train/flt_math.h"

flt_status_t flt_loss_softmax_ce(const float *logits, uint32_t n, int32_t label, float *loss,
                                 float *dlogits)
{
    float m;
    float zy;
    float s;
    uint32_t i;
    FLT_REQUIRE(logits != NULL && loss != NULL && dlogits != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(n != 0u, FLT_ERR_SHAPE);
    FLT_REQUIRE(label >= 0 && (uint32_t)label < n, FLT_ERR_RANGE);
    m = logits[0];
    for (i = 1u; i < n; ++i) {
        if (logits[i] > m) {
            m = logits[i];
        }
    }
    zy = logits[label] - m; /* read before dlogits (which may alias logits) is written */
    for (i = 0u; i < n; ++i) {
        dlogits[i] = flt_expf(logits[i] - m);
    }
    s = dlogits[0];
    for (i = 1u; i < n; ++i) {
        s = s + dlogits[i];
    }
    *loss = flt_logf(s) - zy;
    for (i = 0u; i < n; ++i) {
        dlogits[i] = dlogits[i] / s;
    }
    dlogits[label] = dlogits[label] - 1.0f;
    return FLT_OK;
}

flt_status_t flt_loss_mse(const float *y, const float *t, uint32_t n, float *loss, float *dy)
{
    float acc = 0.0f;
    float scale;
    uint32_t i;
    FLT_REQUIRE(y != NULL && t != NULL && loss != NULL && dy != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(n != 0u, FLT_ERR_SHAPE);
    scale = 2.0f / (float)n;
    for (i = 0u; i < n; ++i) {
        const float d = y[i] - t[i];
        acc = (i == 0u) ? d * d : acc + d * d;
        dy[i] = scale * d;
    }
    *loss = acc / (float)n;
    return FLT_OK;
}
