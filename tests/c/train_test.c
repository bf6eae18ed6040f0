/* train_test.c - C unit test of firmware/runtime/train, built under ASan + UBSan by
 * tests/test_train_sanitize.py. Every bad input must return its status without a crash or a
 * sanitizer report; a good run must use exactly the buffer sizes flt_train_sizes reports
 * (buffers here are sized exactly, so an off-by-one is an ASan error).
 * Prints one line per failed check and "train_test: N checks, F failed"; exit 0 iff F == 0. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/flt_status.h"
#include "train/flt_dense.h"
#include "train/flt_head.h"
#include "train/flt_loss.h"
#include "train/flt_math.h"
#include "train/flt_optim.h"
#include "train/flt_rng.h"
#include "train/flt_train_loop.h"

#define CHECK_ST(expr, want) CHECK((expr) == (want))

static flt_head_t make_head(uint32_t n, const uint32_t *sizes, uint32_t loss)
{
    flt_head_t h;
    uint32_t l;
    memset(&h, 0, sizeof h);
    h.n_layers = n;
    h.loss = loss;
    for (l = 0u; l < n && l < FLT_HEAD_MAX_LAYERS; ++l) {
        h.layers[l].in_size = sizes[l];
        h.layers[l].out_size = sizes[l + 1u];
        h.layers[l].act = (l + 1u < n) ? FLT_ACT_RELU : FLT_ACT_NONE;
    }
    return h;
}

static void test_math_and_rng(void)
{
    static const uint32_t ref[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                    0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
    flt_rng_t rng;
    uint32_t i;
    uint32_t out = 99u;
    uint32_t perm[5] = {0u, 1u, 2u, 3u, 4u};
    uint32_t seen = 0u;
    CHECK(flt_expf(0.0f) == 1.0f);
    CHECK(flt_logf(1.0f) == 0.0f);
    CHECK(flt_sqrtf(4.0f) == 2.0f);
    CHECK(flt_sqrtf(2.25f) == 1.5f);
    CHECK(flt_expf(1000.0f) > 3.0e38f);
    CHECK(flt_expf(-1000.0f) == 0.0f);
    CHECK(flt_logf(0.0f) < -3.0e38f);
    CHECK(flt_logf(-1.0f) != flt_logf(-1.0f)); /* NaN */
    CHECK(flt_expf(flt_logf(10.0f)) > 9.9999f && flt_expf(flt_logf(10.0f)) < 10.0001f);
    CHECK_ST(flt_rng_seed(&rng, 42u, 54u), FLT_OK);
    for (i = 0u; i < 6u; ++i) {
        CHECK(flt_rng_next_u32(&rng) == ref[i]);
    }
    CHECK_ST(flt_rng_seed(NULL, 1u, 1u), FLT_ERR_ARG);
    CHECK_ST(flt_rng_bounded(&rng, 0u, &out), FLT_ERR_RANGE);
    CHECK(out == 99u);
    CHECK_ST(flt_rng_bounded(NULL, 3u, &out), FLT_ERR_ARG);
    CHECK_ST(flt_rng_bounded(&rng, 3u, NULL), FLT_ERR_ARG);
    CHECK_ST(flt_shuffle_u32(&rng, NULL, 3u), FLT_ERR_ARG);
    CHECK_ST(flt_shuffle_u32(&rng, NULL, 0u), FLT_OK);
    CHECK_ST(flt_shuffle_u32(&rng, perm, 5u), FLT_OK);
    for (i = 0u; i < 5u; ++i) {
        seen |= 1u << perm[i];
    }
    CHECK(seen == 0x1fu);
}

static void test_head_check(void)
{
    static const uint32_t sizes[10] = {4u, 4u, 4u, 4u, 4u, 4u, 4u, 4u, 4u, 4u};
    flt_head_t h = make_head(2u, sizes, FLT_LOSS_SOFTMAX_CE);
    flt_train_sizes_t s;
    CHECK_ST(flt_head_check(&h), FLT_OK);
    CHECK_ST(flt_head_check(NULL), FLT_ERR_ARG);
    h.n_layers = 0u;
    CHECK_ST(flt_head_check(&h), FLT_ERR_SHAPE);
    CHECK(flt_head_n_params(&h) == 0u);
    h.n_layers = FLT_HEAD_MAX_LAYERS + 1u;
    CHECK_ST(flt_head_check(&h), FLT_ERR_RANGE);
    h.n_layers = 0xffffffffu;
    CHECK_ST(flt_head_check(&h), FLT_ERR_RANGE);
    h = make_head(FLT_HEAD_MAX_LAYERS, sizes, FLT_LOSS_MSE);
    CHECK_ST(flt_head_check(&h), FLT_OK);
    h = make_head(2u, sizes, FLT_LOSS_SOFTMAX_CE);
    h.layers[1].in_size = 5u;
    CHECK_ST(flt_head_check(&h), FLT_ERR_SHAPE);
    h = make_head(2u, sizes, FLT_LOSS_SOFTMAX_CE);
    h.layers[0].in_size = 0u;
    CHECK_ST(flt_head_check(&h), FLT_ERR_RANGE);
    h.layers[0].in_size = FLT_HEAD_MAX_WIDTH + 1u;
    CHECK_ST(flt_head_check(&h), FLT_ERR_RANGE);
    h = make_head(2u, sizes, FLT_LOSS_SOFTMAX_CE);
    h.layers[1].act = 7u;
    CHECK_ST(flt_head_check(&h), FLT_ERR_UNSUPPORTED);
    h = make_head(2u, sizes, 9u);
    CHECK_ST(flt_head_check(&h), FLT_ERR_UNSUPPORTED);
    /* 8 layers of 4096 x 4096: far beyond FLT_HEAD_MAX_PARAMS, no overflow on the way */
    {
        uint32_t l;
        h = make_head(2u, sizes, FLT_LOSS_MSE);
        h.n_layers = FLT_HEAD_MAX_LAYERS;
        for (l = 0u; l < FLT_HEAD_MAX_LAYERS; ++l) {
            h.layers[l].in_size = FLT_HEAD_MAX_WIDTH;
            h.layers[l].out_size = FLT_HEAD_MAX_WIDTH;
            h.layers[l].act = FLT_ACT_RELU;
        }
        CHECK_ST(flt_head_check(&h), FLT_ERR_OVERSIZE);
    }
    h = make_head(2u, sizes, FLT_LOSS_SOFTMAX_CE);
    CHECK_ST(flt_train_sizes(&h, 10u, NULL), FLT_ERR_ARG);
    CHECK_ST(flt_train_sizes(NULL, 10u, &s), FLT_ERR_ARG);
    CHECK_ST(flt_train_sizes(&h, 10u, &s), FLT_OK);
    CHECK(s.n_params == 40u && s.work_floats == 40u + 8u + 8u && s.order_len == 10u);
    CHECK(s.total_bytes == 4u * (56u + 40u + 10u));
    CHECK_ST(flt_train_sizes(&h, 0xffffffffu, &s), FLT_ERR_OVERSIZE);
}

static void test_dense_and_loss(void)
{
    static const uint32_t sizes[3] = {3u, 4u, 2u};
    flt_head_t h = make_head(2u, sizes, FLT_LOSS_SOFTMAX_CE);
    float params[3 * 4 + 4 + 4 * 2 + 2];
    float grad[sizeof params / sizeof params[0]];
    float x[3] = {0.5f, -1.0f, 2.0f};
    float acts[6];
    float scratch[8];
    float dout[2];
    float t[2] = {0.0f, 1.0f};
    float loss = -1.0f;
    uint32_t i;
    for (i = 0u; i < sizeof params / sizeof params[0]; ++i) {
        params[i] = 0.1f * (float)(i % 7u) - 0.3f;
    }
    CHECK_ST(flt_dense_forward(&h, params, x, acts, 6u), FLT_OK);
    CHECK_ST(flt_dense_forward(&h, params, x, acts, 5u), FLT_ERR_NOMEM);
    CHECK_ST(flt_dense_forward(&h, NULL, x, acts, 6u), FLT_ERR_ARG);
    CHECK_ST(flt_dense_forward(&h, params, NULL, acts, 6u), FLT_ERR_ARG);
    CHECK_ST(flt_dense_forward(&h, params, x, NULL, 6u), FLT_ERR_ARG);
    CHECK_ST(flt_dense_forward(NULL, params, x, acts, 6u), FLT_ERR_ARG);
    CHECK_ST(flt_loss_softmax_ce(acts + 4, 2u, 1, &loss, dout), FLT_OK);
    CHECK(loss > 0.0f && dout[0] > 0.0f && dout[1] < 0.0f);
    CHECK_ST(flt_loss_softmax_ce(acts + 4, 2u, 2, &loss, dout), FLT_ERR_RANGE);
    CHECK_ST(flt_loss_softmax_ce(acts + 4, 2u, -1, &loss, dout), FLT_ERR_RANGE);
    CHECK_ST(flt_loss_softmax_ce(acts + 4, 0u, 0, &loss, dout), FLT_ERR_SHAPE);
    CHECK_ST(flt_loss_softmax_ce(NULL, 2u, 0, &loss, dout), FLT_ERR_ARG);
    CHECK_ST(flt_loss_softmax_ce(acts + 4, 2u, 0, NULL, dout), FLT_ERR_ARG);
    CHECK_ST(flt_loss_mse(acts + 4, t, 2u, &loss, dout), FLT_OK);
    CHECK_ST(flt_loss_mse(acts + 4, NULL, 2u, &loss, dout), FLT_ERR_ARG);
    CHECK_ST(flt_loss_mse(acts + 4, t, 0u, &loss, dout), FLT_ERR_SHAPE);
    CHECK_ST(flt_dense_backward(&h, params, x, acts, dout, grad, 26u, scratch, 8u, 0), FLT_OK);
    CHECK_ST(flt_dense_backward(&h, params, x, acts, dout, grad, 25u, scratch, 8u, 0),
             FLT_ERR_NOMEM);
    CHECK_ST(flt_dense_backward(&h, params, x, acts, dout, grad, 26u, scratch, 7u, 0),
             FLT_ERR_NOMEM);
    CHECK_ST(flt_dense_backward(&h, params, x, acts, NULL, grad, 26u, scratch, 8u, 0), FLT_ERR_ARG);
    CHECK_ST(flt_dense_backward(&h, params, x, acts, dout, NULL, 26u, scratch, 8u, 0), FLT_ERR_ARG);
    {
        float g[3] = {3.0f, 4.0f, 0.0f};
        float nrm = 0.0f;
        flt_sgd_cfg_t c = {0.1f, 0.9f, 0.0f, 0.0f, 0.0f};
        float w[3] = {1.0f, 1.0f, 1.0f};
        float v[3] = {0.0f, 0.0f, 0.0f};
        CHECK_ST(flt_clip_grad_norm(g, 3u, 1.0f, &nrm), FLT_OK);
        CHECK(nrm == 5.0f && g[0] == 3.0f * (1.0f / 5.0f) && g[1] == 4.0f * 0.2f);
        CHECK_ST(flt_clip_grad_norm(g, 3u, -1.0f, &nrm), FLT_ERR_RANGE);
        CHECK_ST(flt_clip_grad_norm(NULL, 3u, 1.0f, &nrm), FLT_ERR_ARG);
        g[2] = flt_bits_float(0x7f800000u);
        CHECK_ST(flt_clip_grad_norm(g, 3u, 1.0f, &nrm), FLT_ERR_NONFINITE);
        g[2] = 1.0f;
        CHECK_ST(flt_sgd_step(w, g, v, NULL, 3u, &c), FLT_OK);
        CHECK(v[2] == 1.0f && w[2] == 1.0f - 0.1f * 1.0f);
        c.mu = 0.5f;
        CHECK_ST(flt_sgd_step(w, g, v, NULL, 3u, &c), FLT_ERR_ARG);
        c.mu = 0.0f;
        c.momentum = 1.0f;
        CHECK_ST(flt_sgd_step(w, g, v, NULL, 3u, &c), FLT_ERR_RANGE);
        c.momentum = 0.0f;
        c.lr = flt_bits_float(0x7fc00000u);
        CHECK_ST(flt_sgd_step(w, g, v, NULL, 3u, &c), FLT_ERR_RANGE);
        CHECK_ST(flt_sgd_step(w, g, v, NULL, 3u, NULL), FLT_ERR_ARG);
    }
}

/* 64 -> 32 -> 6 classification head on 40 samples, 100 steps, exact-sized buffers. */
#define N_SAMPLES 40u
#define N_IN 64u
#define N_HID 32u
#define N_OUT 6u
#define N_PARAMS (FLT_DENSE_PARAMS(N_IN, N_HID) + FLT_DENSE_PARAMS(N_HID, N_OUT))
#define N_WORK FLT_TRAIN_WORK_FLOATS(N_PARAMS, N_HID + N_OUT, N_HID)

static float g_features[N_SAMPLES * N_IN];
static int32_t g_labels[N_SAMPLES];
static float g_params[N_PARAMS];
static float g_global[N_PARAMS];
static float g_velocity[FLT_TRAIN_OPT_STATE_FLOATS(N_PARAMS)];
static float g_work[N_WORK];
static uint32_t g_order[N_SAMPLES];

static void test_training(void)
{
    static const uint32_t sizes[3] = {N_IN, N_HID, N_OUT};
    flt_head_t h = make_head(2u, sizes, FLT_LOSS_SOFTMAX_CE);
    flt_train_cfg_t cfg;
    flt_train_sizes_t s;
    flt_rng_t rng;
    float mean = -1.0f;
    float first = 0.0f;
    float losses[20];
    uint32_t i;
    uint32_t idx[3] = {0u, 1u, N_SAMPLES};

    CHECK_ST(flt_rng_seed(&rng, 1u, 2u), FLT_OK);
    for (i = 0u; i < N_SAMPLES * N_IN; ++i) {
        g_features[i] = flt_rng_uniform(&rng) * 2.0f - 1.0f;
    }
    for (i = 0u; i < N_SAMPLES; ++i) {
        g_labels[i] = (int32_t)(i % N_OUT);
        g_features[i * N_IN + (i % N_OUT)] += 3.0f; /* separable */
    }
    for (i = 0u; i < N_PARAMS; ++i) {
        g_params[i] = (flt_rng_uniform(&rng) - 0.5f) * 0.3f;
        g_global[i] = g_params[i];
    }
    CHECK_ST(flt_train_sizes(&h, N_SAMPLES, &s), FLT_OK);
    CHECK(s.n_params == N_PARAMS && s.work_floats == N_WORK);

    cfg.epochs = 20u;
    cfg.batch_size = 8u;
    cfg.seed = 7u;
    cfg.sgd.lr = 0.05f;
    cfg.sgd.momentum = 0.9f;
    cfg.sgd.mu = 0.01f;
    cfg.sgd.clip = 1.0f;
    cfg.sgd.weight_decay = 1e-4f;

    /* bad input first: each must leave params untouched */
    CHECK_ST(flt_train_epochs(&h, NULL, g_global, g_velocity, g_features, N_SAMPLES, g_labels, NULL,
                              &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_ARG);
    CHECK_ST(flt_train_epochs(&h, g_params, NULL, g_velocity, g_features, N_SAMPLES, g_labels, NULL,
                              &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_ARG);
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, NULL, N_SAMPLES, g_labels, NULL,
                              &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_ARG);
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, NULL, NULL,
                              &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_ARG);
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                              NULL, &cfg, g_work, N_WORK, NULL, &mean, NULL),
             FLT_ERR_ARG);
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                              NULL, &cfg, g_work, N_WORK - 1u, g_order, &mean, NULL),
             FLT_ERR_NOMEM);
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, 0u, g_labels, NULL,
                              &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_ARG);
    cfg.batch_size = 0u;
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                              NULL, &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_ARG);
    cfg.batch_size = 8u;
    cfg.epochs = 0u;
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                              NULL, &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_ARG);
    cfg.epochs = 20u;
    g_labels[3] = (int32_t)N_OUT;
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                              NULL, &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_RANGE);
    g_labels[3] = -1;
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                              NULL, &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_RANGE);
    g_labels[3] = (int32_t)(3u % N_OUT);
    h.n_layers = 0u;
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                              NULL, &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_SHAPE);
    h.n_layers = 2u;
    CHECK_ST(flt_train_step(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                            NULL, idx, 3u, &cfg.sgd, g_work, N_WORK, &mean),
             FLT_ERR_RANGE);
    CHECK_ST(flt_train_step(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                            NULL, idx, 0u, &cfg.sgd, g_work, N_WORK, &mean),
             FLT_ERR_ARG);
    CHECK_ST(flt_train_step(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                            NULL, NULL, N_SAMPLES + 1u, &cfg.sgd, g_work, N_WORK, &mean),
             FLT_ERR_RANGE);
    for (i = 0u; i < N_PARAMS; ++i) {
        if (g_params[i] != g_global[i] || g_velocity[i] != 0.0f) {
            break;
        }
    }
    CHECK(i == N_PARAMS); /* nothing written by the failed calls */

    /* the good run */
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                              NULL, &cfg, g_work, N_WORK, g_order, &mean, losses),
             FLT_OK);
    first = losses[0];
    CHECK(mean == losses[19] && mean < 0.5f * first);

    /* a NaN feature stops training with FLT_ERR_NONFINITE */
    g_features[5] = flt_bits_float(0x7fc00000u);
    CHECK_ST(flt_train_epochs(&h, g_params, g_global, g_velocity, g_features, N_SAMPLES, g_labels,
                              NULL, &cfg, g_work, N_WORK, g_order, &mean, NULL),
             FLT_ERR_NONFINITE);
}

/* Regression head 8 -> 16 -> 16 -> 1 with batch_size > n (one batch) and weight decay. */
static void test_regression(void)
{
    static const uint32_t sizes[4] = {8u, 16u, 16u, 1u};
    flt_head_t h = make_head(3u, sizes, FLT_LOSS_MSE);
    enum { N = 12, P = 8 * 16 + 16 + 16 * 16 + 16 + 16 + 1, W = P + 33 + 32 };
    float x[N * 8];
    float t[N];
    float p[P];
    float v[P];
    float work[W];
    uint32_t order[N];
    float losses[30];
    float mean;
    flt_train_cfg_t cfg;
    flt_rng_t rng;
    uint32_t i;
    CHECK_ST(flt_rng_seed(&rng, 3u, 4u), FLT_OK);
    for (i = 0u; i < N * 8u; ++i) {
        x[i] = flt_rng_uniform(&rng) - 0.5f;
    }
    for (i = 0u; i < N; ++i) {
        t[i] = x[i * 8u] + 0.5f;
    }
    for (i = 0u; i < P; ++i) {
        p[i] = (flt_rng_uniform(&rng) - 0.5f) * 0.5f;
        v[i] = 0.0f;
    }
    cfg.epochs = 30u;
    cfg.batch_size = 100u;
    cfg.seed = 1u;
    cfg.sgd.lr = 0.05f;
    cfg.sgd.momentum = 0.5f;
    cfg.sgd.mu = 0.0f;
    cfg.sgd.clip = 0.0f;
    cfg.sgd.weight_decay = 1e-3f;
    CHECK_ST(
        flt_train_epochs(&h, p, NULL, v, x, N, NULL, NULL, &cfg, work, W, order, &mean, losses),
        FLT_ERR_ARG); /* MSE needs targets */
    CHECK_ST(flt_train_epochs(&h, p, NULL, v, x, N, NULL, t, &cfg, work, W, order, &mean, losses),
             FLT_OK);
    CHECK(losses[29] < losses[0]);
}

int main(void)
{
    test_math_and_rng();
    test_head_check();
    test_dense_and_loss();
    test_training();
    test_regression();
    return check_report("train_test");
}
