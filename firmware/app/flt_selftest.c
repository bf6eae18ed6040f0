/* flt_selftest.c - see flt_selftest.h. Compiled only into self-test firmware. */
#ifdef FLT_APP_SELFTEST

#include "flt_selftest.h"

#include <stdint.h>

#include "core/flt_bits.h"
#include "flt_round.h"
#include "flt_selftest_data.h"
#include "fltiny_config.h"
#include "fltiny_model.h"
#include "head_init.h"
#include "flt_app_head.h"
#include "port.h"
#include "flt_say.h"

#define P FLT_HEAD_PARAMS
#define NT FLT_ST_N_TRAIN
#define PAYLOAD_CAP FLT_ROUND_PAYLOAD_CAP(P)

static float st_x[FLT_HEAD_INPUTS];
static int8_t st_feat_q[FLT_HEAD_INPUTS];
static float st_params[P];
static float st_velocity[P];
static float st_global[P];
static float st_residual[P];
static float st_work[FLT_TRAIN_WORK_FLOATS(P, FLT_APP_HEAD_ACTS, FLT_APP_HEAD_MAXW)];
static uint32_t st_order[NT];
static uint32_t st_indices[P];
static int8_t st_values[P];
static float st_scales[P];
static uint8_t st_payload[PAYLOAD_CAP];
static int8_t st_out[FLT_BACKBONE_OUTPUT_SIZE];

static int check(void)
{
    for (uint32_t i = 0; i < FLT_ST_N_INFER; ++i) {
        if (FLT_BACKBONE_INVOKE(flt_st_infer_in[i], st_out) != FLT_OK) {
            return 1;
        }
        for (uint32_t j = 0; j < FLT_BACKBONE_OUTPUT_SIZE; ++j) {
            if (st_out[j] != flt_st_infer_out[i][j]) {
                return (int)(10u + i);
            }
        }
    }
    flt_head_t head = flt_app_head();
    for (uint32_t i = 0; i < P; ++i) {
        st_global[i] = flt_head_init[i];
        st_residual[i] = 0.0f;
    }
    flt_round_model_t model = {&head,           FLT_BACKBONE_INVOKE, FLT_BACKBONE_INPUT_SIZE,
                               FLT_HEAD_INPUTS, FLT_FEATURE_SCALE,   FLT_FEATURE_ZERO_POINT};
    flt_round_data_t data = {flt_st_train_windows, NT, 0u, flt_st_train_labels, NULL};
    flt_round_cfg_t cfg;
    flt_msg_train_t train; /* the host's TRAIN, mapped by the one mapping the device loop uses */
    train.round = 0u;
    train.epochs = (uint8_t)FLT_ST_EPOCHS;
    train.topk_kind = (uint8_t)FLT_TOPK_FRACTION;
    train.batch_size = (uint16_t)FLT_ST_BATCH;
    train.learning_rate = flt_f32_from_bits(FLT_ST_LR_BITS);
    train.momentum = flt_f32_from_bits(FLT_ST_MOMENTUM_BITS);
    train.prox_mu = 0.0f;
    train.clip = 0.0f;
    train.topk_count = 0u;
    train.topk_fraction = flt_f32_from_bits(FLT_ST_FRACTION_BITS);
    train.seed = FLT_ST_SEED;
    train.flags = FLT_ST_FLAGS;
    if (flt_round_cfg_from_train(&train, P, &cfg) != FLT_OK) {
        return 20;
    }
    flt_round_ws_t ws = {st_feat_q,
                         NULL,
                         st_x,
                         st_params,
                         st_velocity,
                         st_work,
                         (uint32_t)(sizeof st_work / sizeof st_work[0]),
                         st_order,
                         st_indices,
                         st_values,
                         st_scales,
                         P};
    flt_round_state_t state = {NULL, st_residual, NULL, NULL, 0u};
    flt_round_result_t res;
    if (flt_round_run(&model, &data, st_global, &cfg, &state, &ws, st_payload, PAYLOAD_CAP, &res) !=
        FLT_OK) {
        return 20;
    }
    if (res.payload_len != FLT_ST_PAYLOAD_LEN) {
        return 21;
    }
    for (uint32_t i = 0; i < FLT_ST_PAYLOAD_LEN; ++i) {
        if (st_payload[i] != flt_st_payload[i]) {
            return 22;
        }
    }
    if (flt_f32_bits(res.mean_loss) != FLT_ST_LOSS_BITS) {
        return 23;
    }
    return 0;
}

int flt_selftest_run(void)
{
    int code = check();
    flt_app_say(code == 0 ? "fltiny selftest: ok\n" : "fltiny selftest: FAILED\n");
    return code;
}

#else
/* ISO C forbids an empty translation unit */
typedef int flt_selftest_unused_t;
#endif /* FLT_APP_SELFTEST */
