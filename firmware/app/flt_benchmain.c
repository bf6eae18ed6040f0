/* flt_benchmain.c - the benchmark firmware's entry (built with FLT_APP_BENCH instead of the
 * device loop, flt_device.c, which the bench build leaves out).
 *
 * Contract
 * - flt_app_main paints the unused stack (flt_bench.h), initialises the port, stops SysTick on
 *   the mps2 boards (so no interrupt handler lands inside a measured interval), reads the data
 *   blob (QEMU loader, docs/boards.md "Data blob") and uses its first n = min(count,
 *   FLT_APP_MAX_WINDOWS) windows. Then, each between its markers (ids in flt_bench.h):
 *     CALIBRATE  nothing (the marker overhead)
 *     INFER      one backbone inference (window 0)
 *     FEATURES   backbone + dequantization of the n windows
 *     TRAIN      flt_train_epochs_src, one epoch over the n samples (batch 8, lr 0.05,
 *                momentum 0.9: the self-test's settings), the backbone run again at every
 *                use of a sample as on the device (which caches no features)
 *     DELTA      flt_delta_compress (top 10%, int8 per tensor, error feedback) +
 *                flt_payload_encode of the trained head
 *     ROUND      flt_round_run over the n windows with the same settings (zero residual)
 * - Prints one line on the port's link:
 *     fltiny bench: n=N params=P payload=B stack_hwm=H stack_reserve=R
 *   and returns 0, or prints "fltiny bench: FAILED step S status X" and returns 10 + S.
 */
#ifdef FLT_APP_BENCH

#include <stddef.h>
#include <stdint.h>

#include "delta/delta.h"
#include "delta/payload.h"
#include "flt_bench.h"
#include "flt_data.h"
#include "flt_device.h"
#include "flt_round.h"
#include "fltiny_config.h"
#include "fltiny_model.h"
#include "head_init.h"
#include "flt_app_head.h"
#include "port.h"
#include "flt_say.h"

#define P FLT_HEAD_PARAMS
#define NF FLT_HEAD_INPUTS
#define MAXW FLT_APP_MAX_WINDOWS
#define PAYLOAD_CAP FLT_ROUND_PAYLOAD_CAP(P)

static float b_x[NF];
static int8_t b_feat_q[NF];
static int8_t b_out[FLT_BACKBONE_OUTPUT_SIZE];
static float b_global[P];
static float b_params[P];
static float b_velocity[P];
static float b_residual[P];
static float b_work[FLT_TRAIN_WORK_FLOATS(P, FLT_APP_HEAD_ACTS, FLT_APP_HEAD_MAXW)];
static uint32_t b_order[MAXW];
static uint32_t b_indices[P];
static int8_t b_values[P];
static float b_scales[P];
static uint8_t b_payload[PAYLOAD_CAP];

static void say_u32(const char *label, uint32_t v)
{
    char buf[12];
    unsigned i = sizeof buf - 1u;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u && i > 0u);
    flt_app_say(label);
    flt_app_say(&buf[i]);
}

static int fail(uint32_t step, flt_status_t st)
{
    say_u32("fltiny bench: FAILED step ", step);
    say_u32(" status ", (uint32_t)st);
    flt_app_say("\n");
    return (int)(10u + step);
}

static void stop_timer_interrupts(void)
{
#if defined(__arm__) && defined(FLT_BOARD_DATA_ADDRESS)
    /* mps2: SysTick off (SYST_CSR), so the measured intervals hold no interrupt handler */
    *(volatile uint32_t *)0xE000E010u = 0u;
#endif
}

static void dequantize(const int8_t *q, float *f)
{
    for (uint32_t j = 0; j < NF; ++j) {
        f[j] = (float)((int32_t)q[j] - (int32_t)FLT_FEATURE_ZERO_POINT) * FLT_FEATURE_SCALE;
    }
}

static flt_data_t data;

/* Sample i's features, recomputed (the device's way; flt_train_loop.h sample source). */
static flt_status_t bench_sample(void *ctx, uint32_t i, float *x)
{
    (void)ctx;
    FLT_TRY(FLT_BACKBONE_INVOKE(data.windows + (size_t)i * data.window_bytes, b_feat_q));
    dequantize(b_feat_q, x);
    return FLT_OK;
}

int flt_app_main(int argc, char **argv)
{
    flt_bench_stack_paint();
    if (flt_port_init(argc, argv) != FLT_OK) {
        return 1;
    }
    stop_timer_interrupts();

    size_t cap = 0;
    const uint8_t *blob = flt_port_data(&cap);
    flt_status_t st = blob != NULL ? flt_data_parse(blob, cap, &data) : FLT_ERR_STATE;
    if (st != FLT_OK) {
        return fail(0, st);
    }
    if (data.window_bytes != FLT_BACKBONE_INPUT_SIZE) {
        return fail(0, FLT_ERR_SHAPE);
    }
    uint32_t n = data.count < MAXW ? data.count : MAXW;

    flt_head_t head = flt_app_head();
    for (uint32_t i = 0; i < P; ++i) {
        b_global[i] = flt_head_init[i];
        b_residual[i] = 0.0f;
    }
    flt_round_cfg_t cfg;
    cfg.train.epochs = 1u;
    cfg.train.batch_size = 8u;
    cfg.train.seed = 3u;
    cfg.train.sgd.lr = 0.05f;
    cfg.train.sgd.momentum = 0.9f;
    cfg.train.sgd.mu = 0.0f;
    cfg.train.sgd.clip = 0.0f;
    cfg.train.sgd.weight_decay = 0.0f;
    cfg.delta.k = flt_round_k(P, 1u, 0u, 0.1f);
    cfg.delta.mode = FLT_QUANT_TENSOR;
    cfg.delta.block_size = 0u;
    cfg.delta.error_feedback = 1;
    cfg.delta.qmax = flt_delta_qmax_of_bits(4u); /* the default value width (TrainParams) */
    cfg.flags = 0u;

    flt_bench_begin(FLT_BENCH_CALIBRATE);
    flt_bench_end(FLT_BENCH_CALIBRATE);

    flt_bench_begin(FLT_BENCH_INFER);
    st = FLT_BACKBONE_INVOKE(data.windows, b_out);
    flt_bench_end(FLT_BENCH_INFER);
    if (st != FLT_OK) {
        return fail(1, st);
    }

    flt_bench_begin(FLT_BENCH_FEATURES);
    for (uint32_t i = 0; i < n && st == FLT_OK; ++i) {
        st = bench_sample(NULL, i, b_x);
    }
    flt_bench_end(FLT_BENCH_FEATURES);
    if (st != FLT_OK) {
        return fail(2, st);
    }

    for (uint32_t i = 0; i < P; ++i) {
        b_params[i] = b_global[i];
        b_velocity[i] = 0.0f;
    }
    float loss = 0.0f;
    flt_bench_begin(FLT_BENCH_TRAIN);
    flt_sample_source_t src = {bench_sample, NULL, b_x};
    st = flt_train_epochs_src(&head, b_params, b_global, b_velocity, &src, n, data.labels,
                              data.targets, &cfg.train, b_work,
                              (uint32_t)(sizeof b_work / sizeof b_work[0]), b_order, &loss, NULL);
    flt_bench_end(FLT_BENCH_TRAIN);
    if (st != FLT_OK) {
        return fail(3, st);
    }

    flt_sparse_delta_t delta;
    delta.indices = b_indices;
    delta.values = b_values;
    delta.scales = b_scales;
    size_t len = 0;
    flt_bench_begin(FLT_BENCH_DELTA);
    st = flt_delta_compress(&cfg.delta, b_params, b_global, b_residual, P, &delta);
    if (st == FLT_OK) {
        st = flt_payload_encode(&delta, FLT_INDEX_AUTO, b_payload, PAYLOAD_CAP, &len);
    }
    flt_bench_end(FLT_BENCH_DELTA);
    if (st != FLT_OK) {
        return fail(4, st);
    }

    for (uint32_t i = 0; i < P; ++i) {
        b_residual[i] = 0.0f;
    }
    flt_round_model_t model = {&head, FLT_BACKBONE_INVOKE, FLT_BACKBONE_INPUT_SIZE,
                               NF,    FLT_FEATURE_SCALE,   FLT_FEATURE_ZERO_POINT};
    flt_round_data_t rdata = {data.windows, n, 0u, data.labels, data.targets};
    flt_round_ws_t ws = {b_feat_q,
                         NULL,
                         b_x,
                         b_params,
                         b_velocity,
                         b_work,
                         (uint32_t)(sizeof b_work / sizeof b_work[0]),
                         b_order,
                         b_indices,
                         b_values,
                         b_scales,
                         P};
    flt_round_state_t rstate = {NULL, b_residual, NULL, NULL, 0u};
    flt_round_result_t res;
    flt_bench_begin(FLT_BENCH_ROUND);
    st = flt_round_run(&model, &rdata, b_global, &cfg, &rstate, &ws, b_payload, PAYLOAD_CAP, &res);
    flt_bench_end(FLT_BENCH_ROUND);
    if (st != FLT_OK) {
        return fail(5, st);
    }

    say_u32("fltiny bench: n=", n);
    say_u32(" params=", P);
    say_u32(" payload=", (uint32_t)res.payload_len);
    say_u32(" stack_hwm=", flt_bench_stack_high_water());
    say_u32(" stack_reserve=", FLT_BOARD_STACK_BYTES);
    flt_app_say("\n");
    return 0;
}

#else
/* ISO C forbids an empty translation unit */
typedef int flt_benchmain_unused_t;
#endif /* FLT_APP_BENCH */
