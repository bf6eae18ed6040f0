/* flt_app_head.h - the generated head (head_init.h) as a flt_head_t.
 *
 * Contract: include after fltiny_config.h (FLT_APP_LOSS) and head_init.h (the layer tables);
 * flt_app_head() returns the descriptor by value (no state, cannot fail); layers beyond
 * FLT_HEAD_LAYERS are zeroed. Shared by the device loop, the self-test and the benchmark.
 */
#ifndef FLT_APP_HEAD_H
#define FLT_APP_HEAD_H

#include <stdint.h>

#include "train/flt_head.h"

static inline flt_head_t flt_app_head(void) {
    flt_head_t h;
    h.n_layers = FLT_HEAD_LAYERS;
    h.loss = FLT_APP_LOSS;
    for (uint32_t l = 0; l < FLT_HEAD_MAX_LAYERS; ++l) {
        h.layers[l].in_size = l < FLT_HEAD_LAYERS ? flt_head_layer_in[l] : 0u;
        h.layers[l].out_size = l < FLT_HEAD_LAYERS ? flt_head_layer_out[l] : 0u;
        h.layers[l].act = l < FLT_HEAD_LAYERS ? flt_head_layer_act[l] : 0u;
    }
    return h;
}

#endif /* FLT_APP_HEAD_H */
