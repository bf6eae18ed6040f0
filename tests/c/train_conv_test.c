/* train_conv_test.c - the float tail (conv1d + gap1d + dense) of firmware/runtime/train under
 * ASan + UBSan, built by tests/test_train_conv.py. har-tiny's tail (conv 64x8 -> 32x16, k5 s2
 * pad 1, GAP, dense 16-16-6) trained with flt_train_epochs on buffers of exactly the sizes the
 * header macros give (static arrays: an off-by-one is an ASan error), then bad geometries.
 * Prints one line per failed check and "train_conv_test: N checks, F failed"; exit 0 iff F == 0. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/flt_status.h"
#include "train/flt_dense.h"
#include "train/flt_head.h"
#include "train/flt_rng.h"
#include "train/flt_train_loop.h"

#define CHECK_ST(expr, want) CHECK((expr) == (want))

#define N_SAMPLES 24u
#define IN_LEN 64u
#define IN_CH 8u
#define OUT_LEN 32u
#define OUT_CH 16u
#define N_IN (IN_LEN * IN_CH)
#define N_CLASSES 6u
#define N_PARAMS                                                            \
    (FLT_CONV1D_PARAMS(IN_CH, OUT_CH, 5u) + FLT_DENSE_PARAMS(OUT_CH, 16u) + \
     FLT_DENSE_PARAMS(16u, N_CLASSES))
#define N_ACTS (OUT_LEN * OUT_CH + OUT_CH + 16u + N_CLASSES)
#define MAX_W (OUT_LEN * OUT_CH)
#define N_WORK FLT_TRAIN_WORK_FLOATS(N_PARAMS, N_ACTS, MAX_W)

static float g_x[N_SAMPLES * N_IN];
static int32_t g_labels[N_SAMPLES];
static float g_params[N_PARAMS];
static float g_velocity[FLT_TRAIN_OPT_STATE_FLOATS(N_PARAMS)];
static float g_work[N_WORK];
static uint32_t g_order[N_SAMPLES];
static float g_acts[N_ACTS];
static float g_grad[N_PARAMS];
static float g_scratch[2u * MAX_W];

static void set_layer(flt_layer_t *ly, uint32_t kind, uint32_t in_size, uint32_t out_size,
                      uint32_t act)
{
    memset(ly, 0, sizeof *ly);
    ly->kind = kind;
    ly->in_size = in_size;
    ly->out_size = out_size;
    ly->act = act;
}

static flt_head_t tail_head(void)
{
    flt_head_t h;
    memset(&h, 0, sizeof h);
    h.n_layers = 4u;
    h.loss = FLT_LOSS_SOFTMAX_CE;
    set_layer(&h.layers[0], FLT_LAYER_CONV1D, N_IN, OUT_LEN * OUT_CH, FLT_ACT_RELU);
    h.layers[0].in_ch = IN_CH;
    h.layers[0].out_ch = OUT_CH;
    h.layers[0].kernel = 5u;
    h.layers[0].stride = 2u;
    h.layers[0].pad_left = 1u;
    set_layer(&h.layers[1], FLT_LAYER_GAP1D, OUT_LEN * OUT_CH, OUT_CH, FLT_ACT_NONE);
    set_layer(&h.layers[2], FLT_LAYER_DENSE, OUT_CH, 16u, FLT_ACT_RELU);
    set_layer(&h.layers[3], FLT_LAYER_DENSE, 16u, N_CLASSES, FLT_ACT_NONE);
    return h;
}

static void test_sizes_and_passes(void)
{
    flt_head_t h = tail_head();
    flt_train_sizes_t s;
    uint32_t i;
    CHECK_ST(flt_train_sizes(&h, N_SAMPLES, &s), FLT_OK);
    CHECK(s.n_params == N_PARAMS && N_PARAMS == 1030u);
    CHECK(s.n_acts == N_ACTS && N_ACTS == 550u);
    CHECK(s.max_width == MAX_W);
    CHECK(s.work_floats == N_WORK && N_WORK == 2604u);
    for (i = 0u; i < N_PARAMS; ++i) {
        g_params[i] = 0.01f * (float)(i % 17u) - 0.08f;
    }
    for (i = 0u; i < N_IN; ++i) {
        g_x[i] = (float)(i % 5u) * 0.25f;
    }
    for (i = 0u; i < 2u * MAX_W; ++i) {
        g_scratch[i] = 0.0f;
    }
    CHECK_ST(flt_dense_forward(&h, g_params, g_x, g_acts, N_ACTS), FLT_OK);
    CHECK_ST(flt_dense_forward(&h, g_params, g_x, g_acts, N_ACTS - 1u), FLT_ERR_NOMEM);
    g_scratch[0] = 1.0f; /* dL/d(logit 0) = 1, the rest 0: dout == scratch */
    CHECK_ST(flt_dense_backward(&h, g_params, g_x, g_acts, g_scratch, g_grad, N_PARAMS, g_scratch,
                                2u * MAX_W, 0),
             FLT_OK);
    CHECK_ST(flt_dense_backward(&h, g_params, g_x, g_acts, g_scratch, g_grad, N_PARAMS, g_scratch,
                                2u * MAX_W - 1u, 0),
             FLT_ERR_NOMEM);
}

static void test_training(void)
{
    flt_head_t h = tail_head();
    flt_train_cfg_t cfg;
    flt_rng_t rng;
    float mean = -1.0f;
    float losses[15];
    uint32_t i;
    uint32_t t;
    CHECK_ST(flt_rng_seed(&rng, 7u, 3u), FLT_OK);
    for (i = 0u; i < N_SAMPLES * N_IN; ++i) {
        g_x[i] = flt_rng_uniform(&rng);
    }
    for (i = 0u; i < N_SAMPLES; ++i) {
        g_labels[i] = (int32_t)(i % N_CLASSES);
        for (t = 0u; t < IN_LEN; ++t) { /* class c: channel c is strong all along */
            g_x[i * N_IN + t * IN_CH + (i % N_CLASSES)] += 2.0f;
        }
    }
    for (i = 0u; i < N_PARAMS; ++i) {
        g_params[i] = (flt_rng_uniform(&rng) - 0.5f) * 0.4f;
        g_velocity[i] = 0.0f;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.epochs = 15u;
    cfg.batch_size = 8u;
    cfg.seed = 11u;
    cfg.sgd.lr = 0.05f;
    cfg.sgd.momentum = 0.9f;
    cfg.sgd.clip = 5.0f;
    CHECK_ST(flt_train_epochs(&h, g_params, NULL, g_velocity, g_x, N_SAMPLES, g_labels, NULL, &cfg,
                              g_work, N_WORK - 1u, g_order, &mean, losses),
             FLT_ERR_NOMEM);
    CHECK_ST(flt_train_epochs(&h, g_params, NULL, g_velocity, g_x, N_SAMPLES, g_labels, NULL, &cfg,
                              g_work, N_WORK, g_order, &mean, losses),
             FLT_OK);
    CHECK(losses[14] < 0.5f * losses[0]);
    CHECK(mean == losses[14]);
}

static void test_bad_geometry(void)
{
    flt_head_t h = tail_head();
    h.layers[0].pad_left = 5u;
    CHECK_ST(flt_head_check(&h), FLT_ERR_RANGE);
    h = tail_head();
    h.layers[0].stride = 1u; /* 32 windows of stride 1 leave 31 rows unused */
    CHECK_ST(flt_head_check(&h), FLT_ERR_SHAPE);
    h = tail_head();
    h.layers[1].act = FLT_ACT_RELU;
    CHECK_ST(flt_head_check(&h), FLT_ERR_UNSUPPORTED);
    h = tail_head();
    h.layers[0].kind = 9u;
    CHECK_ST(flt_head_check(&h), FLT_ERR_UNSUPPORTED);
    h = tail_head();
    h.layers[0].kernel = FLT_HEAD_MAX_KERNEL + 1u;
    CHECK_ST(flt_head_check(&h), FLT_ERR_RANGE);
    CHECK_ST(flt_dense_forward(&h, g_params, g_x, g_acts, N_ACTS), FLT_ERR_RANGE);
}

int main(void)
{
    test_sizes_and_passes();
    test_training();
    test_bad_geometry();
    return check_report("train_conv_test");
}
