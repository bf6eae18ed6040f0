/* flt_app_head.h - the generated head (head_init.h) as a flt_head_t.
 *
 * Contract: include after fltiny_config.h (FLT_APP_LOSS) and head_init.h (the layer tables);
 * flt_app_head() returns the descriptor by value (no state, cannot fail); layers beyond
 * FLT_HEAD_LAYERS are zeroed. Shared by the device loop, the self-test and the benchmark.
 * A head with conv or pooling layers (the "float tail", docs/architecture.md) comes with
 * FLT_HEAD_HAS_GEOMETRY and per-layer kind / channel / kernel / stride / padding tables;
 * without them (dense-only heads, and bundles exported before layer kinds existed) every
 * layer is dense and those fields are 0.
 */
#ifndef FLT_APP_HEAD_H
#define FLT_APP_HEAD_H

#include <stdint.h>

#include "train/flt_head.h"

#if defined(FLT_HEAD_HAS_GEOMETRY)
#define FLT_APP_HEAD_GEOM(table, l) ((l) < FLT_HEAD_LAYERS ? (uint32_t)(table)[(l)] : 0u)
#else
#define FLT_APP_HEAD_GEOM(table, l) 0u
#endif

static inline flt_head_t flt_app_head(void)
{
    flt_head_t h;
    h.n_layers = FLT_HEAD_LAYERS;
    h.loss = FLT_APP_LOSS;
    for (uint32_t l = 0; l < FLT_HEAD_MAX_LAYERS; ++l) {
        h.layers[l].in_size = l < FLT_HEAD_LAYERS ? flt_head_layer_in[l] : 0u;
        h.layers[l].out_size = l < FLT_HEAD_LAYERS ? flt_head_layer_out[l] : 0u;
        h.layers[l].act = l < FLT_HEAD_LAYERS ? flt_head_layer_act[l] : 0u;
        h.layers[l].kind = FLT_APP_HEAD_GEOM(flt_head_layer_kind, l);
        h.layers[l].in_ch = FLT_APP_HEAD_GEOM(flt_head_layer_in_ch, l);
        h.layers[l].out_ch = FLT_APP_HEAD_GEOM(flt_head_layer_out_ch, l);
        h.layers[l].kernel = FLT_APP_HEAD_GEOM(flt_head_layer_kernel, l);
        h.layers[l].stride = FLT_APP_HEAD_GEOM(flt_head_layer_stride, l);
        h.layers[l].pad_left = FLT_APP_HEAD_GEOM(flt_head_layer_pad_left, l);
    }
    return h;
}

#undef FLT_APP_HEAD_GEOM

#endif /* FLT_APP_HEAD_H */
