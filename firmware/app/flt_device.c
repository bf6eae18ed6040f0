/* flt_device.c - see flt_device.h. */
#include "flt_device.h"

#include <stddef.h>
#include <stdint.h>

#include "delta/payload.h"
#include "flt_checkpoint.h"
#include "flt_data.h"
#include "flt_recording.h"
#include "flt_round.h"
#include "flt_sample.h"
#include "flt_secagg_dev.h"
#include "flt_window_store.h"
#include "fltiny_config.h"
#include "fltiny_model.h"
#include "head_init.h"
#include "flt_app_head.h"
#include "port.h"
#include "core/flt_bytes.h"
#include "proto/link.h"
#include "proto/messages.h"
#include "proto/outbox.h"

#ifdef FLT_APP_SELFTEST
#include "flt_selftest.h"
#endif
#ifdef FLT_APP_STACK_WATCH
#include "flt_bench.h"
#endif

/* round state compiled in (fltiny_config.h; all on unless a RAM budget left some out) */
#ifndef FLT_APP_FEEDBACK
#define FLT_APP_FEEDBACK 1
#endif
#ifndef FLT_APP_DRIFT
#define FLT_APP_DRIFT 1
#endif
#ifndef FLT_APP_PERSONAL
#define FLT_APP_PERSONAL 1
#endif

#define P FLT_HEAD_PARAMS
#define NF FLT_HEAD_INPUTS
#define MAXW FLT_APP_MAX_WINDOWS

/* largest messages: a FULL GLOBAL of P floats in, a DELTA with a worst-case payload out */
#define GLOBAL_MAX (FLT_MSG_GLOBAL_HEADER_SIZE + 4u * P)
#define RX_MSG_CAP_PLAIN (GLOBAL_MAX > FLT_MSG_TRAIN_MAX_SIZE ? GLOBAL_MAX : FLT_MSG_TRAIN_MAX_SIZE)
#if FLT_APP_SECAGG /* and a SECAGG message of a full cohort (flt_secagg_dev.h) */
#define RX_MSG_CAP \
    (RX_MSG_CAP_PLAIN > FLT_SECAGG_DEV_IN_CAP ? RX_MSG_CAP_PLAIN : FLT_SECAGG_DEV_IN_CAP)
#else
#define RX_MSG_CAP RX_MSG_CAP_PLAIN
#endif
#define PAYLOAD_CAP FLT_ROUND_PAYLOAD_CAP(P)
#define DELTA_MSG_CAP (FLT_MSG_DELTA_HEADER_MAX + PAYLOAD_CAP)
#define TEXT_MSG_CAP (4u + FLT_PROTO_MAX_TEXT)

#define CKPT_SIZE FLT_CKPT_SIZE(P)
#if FLT_PORT_CKPT_MAX > 0 && CKPT_SIZE > FLT_PORT_CKPT_MAX
#error "checkpoint larger than FLT_PORT_CKPT_MAX: raise it in the port or use a smaller head"
#endif

#define STORE_CAP FLT_APP_STORE_WINDOWS
#if FLT_APP_WINDOW_LEN * FLT_APP_SAMPLE_CHANNELS != FLT_BACKBONE_INPUT_SIZE
#error "FLT_APP_WINDOW_LEN x FLT_APP_SAMPLE_CHANNELS must be the backbone's input size"
#endif
#define SAMPLE_POLL_MS FLT_APP_SAMPLE_POLL_MS
#define SAMPLES_PER_POLL 4096u /* then the link is served before more samples are read */

/* The message handlers keep their own frames (not inlined into the loop, where GCC would add
 * them up): the stack then holds one handler's frame at a time (the stack reserve is measured:
 * docs/boards.md "RAM budget"). */
#if defined(__GNUC__)
#define HANDLER __attribute__((noinline))
#else
#define HANDLER
#endif

#define RETX_MS 400u
#define HELLO_RETRIES 0xFFFFFFFFu
#define MSG_RETRIES 12u

/* ---- state ------------------------------------------------------------------------------ */

static const uint8_t device_key[FLT_PROTO_KEY_SIZE] = FLT_DEVICE_KEY;

static float global_params[P];
#if FLT_APP_FEEDBACK
static float residual[P];
static float residual_next[P];
#endif
#if FLT_APP_DRIFT
static float drift[P]; /* FedDyn state (TRAIN flag DRIFT); not checkpointed: zero after a boot */
static float drift_next[P];
#endif
#if FLT_APP_PERSONAL
static float personal[P];  /* the model this device serves (TRAIN flag PERSONAL) */
static float ws_params[P]; /* the local model after a round: the next served model */
#endif
static int have_personal;
static uint32_t delta_flags;       /* the flags of the round whose DELTA awaits its ACK */
static uint32_t delta_serve_local; /* that round's flt_round_result_t.serve_local */
/* The DELTA in delta_buf stays intact until the next round trains: `kept` when delta_buf
 * holds the DELTA (kept_len bytes) that the TRAIN kept_train produced from model version
 * kept_base. The same TRAIN again, with that version still held, gets the same DELTA again
 * (a host that restarted re-runs the round it was killed in: flt_device.h). Not
 * checkpointed: a boot keeps no DELTA. */
static int kept;
static uint8_t kept_train[FLT_MSG_TRAIN_MAX_SIZE];
static size_t kept_train_len;
static size_t kept_len;
static uint32_t kept_base;
static uint32_t model_version;
static uint32_t committed_round;
static int have_round;
/* Safe default: the factory head (head_init.h, in flash) is served instead of the global or
 * personal model while the host has disabled training (DISABLE; not checkpointed: a boot
 * starts enabled and the host disables again after its HELLO), and after a GLOBAL that could
 * not be applied (reverted: global_params are the factory head, model version 0, until a
 * GLOBAL applies). */
static int disabled;
static int reverted;
/* a GLOBAL applied since the last TRAIN: that TRAIN's self-check is due (flt_device.h) */
static int check_pending;

/* Local DP (TRAIN flag LOCAL_DP, privacy/local_dp.h): the noise key is the port's boot secret
 * (port.h), read at the first private round and never sent; every boot has a new one, so the
 * nonce may start again at 0. */
static uint8_t ldp_secret[32];
static int ldp_ready;
static uint32_t ldp_nonce;

static const uint8_t *ldp_key(void)
{
    if (!ldp_ready) {
        if (flt_port_boot_secret(ldp_secret) != FLT_OK) {
            return NULL; /* no entropy: flt_round_run refuses a LOCAL_DP round (FLT_ERR_ARG) */
        }
        ldp_ready = 1;
    }
    return ldp_secret;
}

static flt_data_t data;
static int data_ok; /* the port's data region holds a valid data blob: it wins over a sensor */
static const uint8_t *blob_bytes; /* the port's data blob (flt_port_data) */
static size_t blob_len;
static uint32_t device_id;

/* The window store (flt_window_store.h): the windows the device collects through the sensor
 * hook when it has no data blob; compiled out on boards with no RAM for it (STORE_CAP 0). */
static int sensor_state; /* 0: not asked yet, 1: the port has a sample source, -1: none */
#if STORE_CAP > 0
static int8_t store_windows[STORE_CAP * FLT_BACKBONE_INPUT_SIZE];
static int8_t store_assembly[FLT_BACKBONE_INPUT_SIZE];
#if FLT_APP_TARGET_KIND == FLT_DATA_LABELS
static int32_t store_labels[STORE_CAP];
#define STORE_LABELS store_labels, STORE_CAP, NULL, 0u
#else
#define STORE_TARGETS_LEN (STORE_CAP * FLT_APP_N_TARGETS)
static float store_targets[STORE_TARGETS_LEN];
#define STORE_LABELS NULL, 0u, store_targets, STORE_TARGETS_LEN
#endif
static flt_window_store_t store;
static int store_ok;
#define STORE_READY store_ok
#else
#define STORE_READY 0
#endif

/* scales: one per-tensor scale for the device's own DELTA, one per block of a GLOBAL delta
 * (the host quantizes GLOBAL deltas in blocks of 64; 16 or more fit) */
#define SCALES_CAP ((P + 15u) / 16u)
#define WORK_FLOATS FLT_TRAIN_WORK_FLOATS(P, FLT_APP_HEAD_ACTS, FLT_APP_HEAD_MAXW)

/* The buffers of one round (flt_round.h's ws) and of one GLOBAL delta's decoding. They hold
 * nothing between two messages, so they share their storage with rx_msg (below), and inside
 * the training workspace with each other where flt_round.h allows it ("Sharing"): the top-k
 * buffers (steps 4-5, and on_global's decoding) and the window's int8 features (read before
 * each forward pass) lie in `work`. Bytes of the region before `u` are at least rx_msg's, so
 * a GLOBAL delta decodes from rx_msg into `u.topk` without overlap (msg_clear). */
#define ROUND_PARAMS_FLOATS (FLT_APP_PERSONAL ? 0u : P)
#define ROUND_HEAD_BYTES (4u * (ROUND_PARAMS_FLOATS + P + NF + MAXW))
#if RX_MSG_CAP > ROUND_HEAD_BYTES
#define MSG_CLEAR_BYTES ((RX_MSG_CAP - ROUND_HEAD_BYTES + 3u) & ~3u)
#else
#define MSG_CLEAR_BYTES 4u
#endif
typedef struct {
#if !FLT_APP_PERSONAL
    float params[P]; /* the local model (not kept after the round: no personal serving) */
#endif
    float velocity[P];
    float x[NF];
    uint32_t order[MAXW];
    uint8_t msg_clear[MSG_CLEAR_BYTES]; /* rx_msg ends before u (see above) */
    union {
        float work[WORK_FLOATS]; /* training: gradient, activations, backward scratch */
        struct {
#if !FLT_APP_FEEDBACK
            float residual[P]; /* flt_delta_compress's accumulator: no feedback kept */
#endif
            uint32_t indices[P];
            int8_t values[P];
            float scales[SCALES_CAP];
        } topk;
        struct {
            float before[P + FLT_APP_HEAD_ACTS]; /* gradient and activations */
            int8_t q[NF];                        /* in the backward scratch */
        } feat;
    } u;
#if FLT_APP_FEATURE_CACHE
    int8_t feat_cache[MAXW * NF];
#endif
} round_bufs_t;

static union {
    uint8_t msg[RX_MSG_CAP]; /* rx_msg: the link's reassembled message */
    round_bufs_t r;
} shared;
#define RB shared.r
#if FLT_APP_PERSONAL
#define ROUND_PARAMS ws_params
#else
#define ROUND_PARAMS RB.params
#endif

static uint8_t rx_frame[FLT_PROTO_MAX_FRAME];
static uint8_t wire[FLT_PROTO_MAX_WIRE];
static flt_proto_rx_t rx;
static flt_proto_tx_t tx;

/* ---- outbox: at most one message of each kind (firmware/runtime/proto/outbox.h) ---------- */

#if FLT_APP_SECAGG /* the reply to the host's last SECAGG message (flt_secagg_dev.h) */
enum { OUT_HELLO = 0, OUT_DELTA = 1, OUT_TEXT = 2, OUT_SECAGG = 3, OUT_KINDS = 4 };
static uint8_t secagg_buf[FLT_SECAGG_DEV_OUT_CAP];
#else
enum { OUT_HELLO = 0, OUT_DELTA = 1, OUT_TEXT = 2, OUT_KINDS = 3 };
#endif

static uint8_t hello_buf[FLT_MSG_HELLO_SIZE];
static uint8_t delta_buf[DELTA_MSG_CAP];
static uint8_t text_buf[TEXT_MSG_CAP];
static flt_outbox_slot_t out_slots[OUT_KINDS];
static flt_outbox_t outbox;

static flt_device_diag_t diag;

/* The head's descriptor (flt_app_head.h), set once at boot: static rather than in on_train's
 * frame, where it sat under the whole round's stack (the stack reserve is measured). */
static flt_head_t app_head;

HANDLER static void app_head_init(void)
{
    app_head = flt_app_head();
}

const flt_device_diag_t *flt_device_diag(void)
{
#if STORE_CAP > 0
    if (store_ok) {
        diag.store = *flt_window_store_stats(&store);
    }
#endif
    return &diag;
}

#if FLT_INPUT_CHANNELS == FLT_APP_SAMPLE_CHANNELS
void flt_app_quantize_sample(const float *raw, int8_t *values)
{
    flt_sample_quantize(raw, FLT_APP_SAMPLE_CHANNELS, flt_input_mean, flt_input_std,
                        FLT_INPUT_SCALE, FLT_INPUT_ZERO_POINT, values);
}
#endif

/* Counts a failure the loop recovers from by itself (flt_device.h); `counter` is in diag. */
static void note_failure(uint32_t *counter, flt_status_t s)
{
    *counter += 1u;
    diag.last_error = s;
}

static flt_status_t out_init(void)
{
    FLT_TRY(flt_outbox_init(&outbox, &tx, out_slots, OUT_KINDS, RETX_MS));
    FLT_TRY(flt_outbox_slot(&outbox, OUT_HELLO, hello_buf, sizeof hello_buf, HELLO_RETRIES));
    FLT_TRY(flt_outbox_slot(&outbox, OUT_DELTA, delta_buf, sizeof delta_buf, MSG_RETRIES));
#if FLT_APP_SECAGG
    FLT_TRY(flt_outbox_slot(&outbox, OUT_SECAGG, secagg_buf, sizeof secagg_buf, MSG_RETRIES));
#endif
    return flt_outbox_slot(&outbox, OUT_TEXT, text_buf, sizeof text_buf, MSG_RETRIES);
}

static void out_queue(unsigned kind, uint8_t type, size_t len)
{
    /* should not fail: kind and type are constants and len fits its slot (the encoders were
     * given the slot's cap); if it does, the message is dropped and counted */
    flt_status_t s = flt_outbox_queue(&outbox, kind, type, len);
    if (s != FLT_OK) {
        note_failure(&diag.outbox_errors, s);
    }
}

/* Queues the message an encoder just wrote into slot `kind`'s buffer, or counts the
 * encoder's failure (`encoded`; the message is dropped). */
static void out_queue_encoded(unsigned kind, uint8_t type, flt_status_t encoded, size_t len)
{
    if (encoded != FLT_OK) {
        note_failure(&diag.outbox_errors, encoded);
        return;
    }
    out_queue(kind, type, len);
}

static void on_delta_acked(void);

static void out_service(void)
{
    flt_outbox_event_t ev;
    flt_status_t s = flt_outbox_service(&outbox, flt_port_millis(), wire, sizeof wire, &ev);
    if (s != FLT_OK) {
        /* the message is dropped (sequence numbers exhausted): the host resyncs */
        note_failure(&diag.outbox_errors, s);
        return;
    }
    if (ev.event == FLT_OUTBOX_EV_FRAME) {
        /* a failed write (link down) is counted; the retransmission timer resends */
        s = flt_port_write(wire, ev.frame_len);
        if (s != FLT_OK) {
            note_failure(&diag.link_write_errors, s);
        }
    }
    /* GAVE_UP: the host will ask again (TRAIN) or a reboot re-HELLOs */
}

static void out_on_control(const flt_proto_rx_event_t *rx_ev)
{
    flt_outbox_event_t ev;
    flt_status_t s = flt_outbox_on_control(&outbox, rx_ev, &ev);
    if (s != FLT_OK) {
        note_failure(&diag.outbox_errors, s); /* only for NULL pointers (outbox.h) */
    } else if (ev.event == FLT_OUTBOX_EV_DONE && ev.slot == OUT_DELTA) {
        on_delta_acked();
    }
}

static void send_error(flt_status_t code, const char *text)
{
    flt_msg_text_t t;
    size_t n = 0;
    while (text[n] != '\0' && n < FLT_PROTO_MAX_TEXT) {
        n++;
    }
    t.code = (uint16_t)code;
    t.text = text;
    t.text_len = n;
    size_t len = 0;
    flt_status_t s = flt_msg_text_encode(FLT_MSG_ERROR, &t, text_buf, sizeof text_buf, &len);
    out_queue_encoded(OUT_TEXT, FLT_MSG_ERROR, s, len);
}

/* ---- checkpoint ------------------------------------------------------------------------- */

/* The factory head, model version 0, no residual: a fresh device. */
static void ckpt_reset(void)
{
    for (uint32_t i = 0; i < P; ++i) {
        global_params[i] = flt_head_init[i];
#if FLT_APP_FEEDBACK
        residual[i] = 0.0f;
#endif
#if FLT_APP_DRIFT
        drift[i] = 0.0f;
#endif
    }
    model_version = 0;
    have_round = 0;
    have_personal = 0;
}

#if FLT_PORT_CKPT_MAX > 0
static uint8_t ckpt_buf[CKPT_SIZE];

/* The checkpoint's residual: the device's, or without error feedback (FLT_APP_FEEDBACK 0)
 * zeros in the round's scratch (free whenever a checkpoint is written or read). */
static float *ckpt_residual(void)
{
#if FLT_APP_FEEDBACK
    return residual;
#else
    for (uint32_t i = 0; i < P; ++i) {
        RB.u.topk.residual[i] = 0.0f;
    }
    return RB.u.topk.residual;
#endif
}

static void ckpt_save(void)
{
    flt_ckpt_t ck;
    ck.model_version = model_version;
    ck.committed_round = have_round ? committed_round : FLT_CKPT_NO_ROUND;
    ck.params = global_params;
    ck.residual = ckpt_residual();
    flt_status_t s = flt_ckpt_encode(&ck, P, ckpt_buf, sizeof ckpt_buf);
    if (s == FLT_OK) {
        s = flt_port_ckpt_write(ckpt_buf, CKPT_SIZE);
    }
    /* UNSUPPORTED on boards without storage is expected: a reset restarts from the factory
     * head and the host resyncs; any other failure is counted */
    if (s != FLT_OK && s != FLT_ERR_UNSUPPORTED) {
        note_failure(&diag.ckpt_write_errors, s);
    }
}

static void ckpt_load(void)
{
    size_t len = 0;
    ckpt_reset();
    if (flt_port_ckpt_read(ckpt_buf, sizeof ckpt_buf, &len) != FLT_OK) {
        return;
    }
    flt_ckpt_t ck;
    ck.params = global_params;
    ck.residual = ckpt_residual();
    if (flt_ckpt_decode(ckpt_buf, len, P, &ck) != FLT_OK) {
        return; /* corrupt, torn or from another model: the factory head (ckpt_reset) */
    }
    model_version = ck.model_version;
    have_round = ck.committed_round != FLT_CKPT_NO_ROUND;
    committed_round = have_round ? ck.committed_round : 0u;
}
#else
/* No persistent storage (FLT_PORT_CKPT_MAX == 0): no checkpoint buffer; every boot starts
 * from the factory head and the host resyncs the device with a FULL GLOBAL. */
static void ckpt_save(void)
{
}

static void ckpt_load(void)
{
    ckpt_reset();
}
#endif

/* ---- the served model ------------------------------------------------------------------- */

const float *flt_device_served_model(void)
{
    if (disabled || reverted) {
        return flt_head_init;
    }
#if FLT_APP_PERSONAL
    return have_personal ? personal : global_params;
#else
    return global_params;
#endif
}

static const char *serving_name(void)
{
    const float *m = flt_device_served_model();
    if (m == flt_head_init || (m == global_params && model_version == 0u)) {
        return "factory";
    }
    return m == global_params ? "global" : "personal";
}

/* The factory head becomes the global model (version 0, checkpointed) after a GLOBAL that
 * cannot be applied: the device never keeps serving a half-applied or unknown model. */
static void revert_to_factory(void)
{
    for (uint32_t i = 0; i < P; ++i) {
        global_params[i] = flt_head_init[i];
    }
    model_version = 0;
    reverted = 1;
    ckpt_save();
}

/* ---- messages --------------------------------------------------------------------------- */

HANDLER static void queue_hello(void)
{
    static const uint8_t hash[FLT_MSG_HASH_SIZE] = FLT_MODEL_HASH;
    flt_msg_hello_t h;
    const char *name = FLT_BOARD_NAME;
    flt_bytes_zero(&h, sizeof h);
    for (unsigned i = 0; i < FLT_MSG_NAME_SIZE && name[i] != '\0'; ++i) {
        h.name[i] = name[i];
    }
    h.capabilities = FLT_CAP_TRAIN_HEAD | FLT_CAP_DELTA_BLOCK | FLT_CAP_GLOBAL_DELTA;
#if FLT_APP_SECAGG
    h.capabilities |= FLT_CAP_SECAGG;
#endif
    h.firmware_version = FLT_FIRMWARE_VERSION;
    flt_bytes_copy(h.model_hash, hash, FLT_MSG_HASH_SIZE);
    h.model_version = model_version;
    h.head_params = P;
    h.free_ram = flt_port_free_ram();
    h.host_seq = rx.last_seq;
    size_t len = 0;
    flt_status_t s = flt_msg_hello_encode(&h, hello_buf, sizeof hello_buf, &len);
    out_queue_encoded(OUT_HELLO, FLT_MSG_HELLO, s, len);
}

HANDLER static void on_global(const uint8_t *buf, size_t len)
{
    flt_msg_global_t g;
    if (flt_msg_global_decode(buf, len, &g) != FLT_OK) {
        return; /* the link layer validated it already */
    }
    if (g.kind == FLT_GLOBAL_FULL) {
        if (g.body_len != 4u * P) {
            revert_to_factory();
            send_error(FLT_ERR_SHAPE, "GLOBAL has the wrong number of head parameters: "
                                      "serving the factory model");
            return;
        }
        for (uint32_t i = 0; i < P; ++i) {
            const float v = flt_msg_global_param(&g, i);
            if (flt_f32_bits(v) != flt_f32_bits(global_params[i])) {
                kept = 0; /* another model: the kept DELTA no longer answers its TRAIN */
            }
            global_params[i] = v;
        }
    } else if (g.model_version == model_version && model_version != 0u && !reverted) {
        /* the delta to the version this device holds already: a host that restarted sends
         * again the GLOBAL it had sent before its crash (the same bytes); applying it twice
         * would move the parameters, so it is acknowledged and nothing changes */
        return;
    } else {
        if (g.base_version != model_version) {
            revert_to_factory();
            send_error(FLT_ERR_STATE, "GLOBAL delta from another version: serving the factory "
                                      "model; send FULL");
            return;
        }
        flt_sparse_delta_t d;
        flt_payload_limits_t lim = {P, P, SCALES_CAP};
        d.indices = RB.u.topk.indices;
        d.values = RB.u.topk.values;
        d.scales = RB.u.topk.scales;
        flt_status_t s = flt_payload_decode(g.body, g.body_len, &lim, &d);
        if (s == FLT_OK) {
            s = flt_delta_apply(&d, global_params, P);
        }
        if (s != FLT_OK) {
            revert_to_factory(); /* the apply may have changed some parameters */
            send_error(s, "GLOBAL delta rejected: serving the factory model; send FULL");
            return;
        }
    }
    model_version = g.model_version;
    reverted = 0;
    check_pending = 1;
    ckpt_save();
}

static void put_field(char *buf, size_t cap, size_t *n, const char *name, uint32_t value);

/* A metric in thousandths, rounded, for a text without float printf (clamped to u32). */
static uint32_t per_mille(float v)
{
    float x = v * 1000.0f + 0.5f;
    if (!(x > 0.0f)) {
        return 0u;
    }
    return x >= 4294967040.0f ? 0xFFFFFFFFu : (uint32_t)x;
}

/* The self-check of the GLOBAL applied since the last TRAIN (flt_device.h): 1 when the new
 * global model failed it (the device reverted to its factory model and said so in an ERROR),
 * 0 when it passed, was off (drop 0) or could not run (the round then fails on the same
 * data and reports that). */
HANDLER static int self_check_failed(const flt_round_model_t *model, flt_round_ws_t *ws,
                                     const uint8_t *train, size_t len)
{
    flt_round_check_t c;
    flt_status_t s;
    if (data_ok) {
        s = flt_round_self_check_message(model, blob_bytes, blob_len, MAXW, train, len,
                                         global_params, flt_head_init, ws, &c);
    } else {
#if STORE_CAP > 0
        flt_data_t view;
        s = store_ok ? flt_window_store_view(&store, &view) : FLT_ERR_STATE;
        if (s == FLT_OK) {
            s = flt_round_self_check_train(model, &view, MAXW, train, len, global_params,
                                           flt_head_init, ws, &c);
        }
#else
        s = FLT_ERR_UNSUPPORTED;
#endif
    }
    if (s != FLT_OK || !c.failed) {
        return 0;
    }
    revert_to_factory();
    char text[FLT_PROTO_MAX_TEXT + 1];
    static const char head[] = "self-check failed, serving the factory model: ";
    size_t n = sizeof head - 1u;
    const size_t cap = FLT_PROTO_MAX_TEXT;
    flt_bytes_copy(text, head, n);
    put_field(text, cap, &n, "global", per_mille(c.metric));
    put_field(text, cap, &n, "factory", per_mille(c.reference_metric));
    put_field(text, cap, &n, "drop", per_mille(c.drop));
    put_field(text, cap, &n, "n", c.n);
    static const char tail[] = "(per mille); send FULL";
    for (size_t i = 0; tail[i] != '\0' && n < cap; ++i) {
        text[n++] = tail[i];
    }
    text[n] = '\0';
    send_error(FLT_ERR_STATE, text);
    return 1;
}

/* secure aggregation: the section before the main loop */
static int secagg_train_refused(const flt_msg_train_t *t);
static void secagg_train_keep(const flt_msg_train_t *t, flt_msg_delta_t *d);

static uint32_t delta_round;

static int same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        if (a[i] != b[i]) {
            return 0;
        }
    }
    return 1;
}

/* 1 (and the ERROR sent) when a TRAIN asks for round state this firmware leaves out to fit
 * its RAM budget (FLT_APP_FEEDBACK, FLT_APP_DRIFT, FLT_APP_PERSONAL 0: fltiny build
 * --ram-budget, docs/boards.md "RAM budget"). */
static int train_feature_refused(const flt_msg_train_t *t)
{
    const char *why = NULL;
    (void)t; /* (every feature built in: nothing to refuse) */
#if !FLT_APP_FEEDBACK
    if ((t->flags & FLT_TRAIN_NO_FEEDBACK) == 0u) {
        why = "error feedback is not built into this firmware (its RAM budget left it out): "
              "send TRAIN with NO_FEEDBACK (fltiny run --no-error-feedback)";
    }
#endif
#if !FLT_APP_DRIFT
    if ((t->flags & FLT_TRAIN_DRIFT) != 0u) {
        why = "FedDyn drift state is not built into this firmware (its RAM budget left it out)";
    }
#endif
#if !FLT_APP_PERSONAL
    if ((t->flags & FLT_TRAIN_PERSONAL) != 0u) {
        why = "personal serving is not built into this firmware (its RAM budget left it out)";
    }
#endif
    if (why == NULL) {
        return 0;
    }
    send_error(FLT_ERR_UNSUPPORTED, why);
    return 1;
}

HANDLER static void on_train(const uint8_t *buf, size_t len)
{
    flt_msg_train_t t;
    if (flt_msg_train_decode(buf, len, &t) != FLT_OK) {
        return;
    }
    if (disabled) {
        send_error(FLT_ERR_STATE, "training disabled by the host (DISABLE): serving the factory "
                                  "model until ENABLE");
        return;
    }
    if (reverted) {
        send_error(FLT_ERR_STATE, "serving the factory model after a GLOBAL failed: send FULL");
        return;
    }
    if (!data_ok && sensor_state <= 0) {
        send_error(FLT_ERR_STATE, "no valid local data blob and no sample source");
        return;
    }
    if (secagg_train_refused(&t) || train_feature_refused(&t)) {
        return;
    }
    if (kept && kept_base == model_version && len == kept_train_len &&
        same_bytes(buf, kept_train, len)) {
        /* the TRAIN of the DELTA in delta_buf, again (delivered or not): the same DELTA again;
         * its ACK commits the same state again (residual_next, drift_next and ws_params are
         * untouched since), so a repeated round changes nothing */
        out_queue(OUT_DELTA, FLT_MSG_DELTA, kept_len);
        return;
    }
    if (have_round && t.round == committed_round && (t.flags & FLT_TRAIN_RESET) == 0u) {
        /* (a RESET starts over, the round count included: a new host's round numbers) */
        send_error(FLT_ERR_DUPLICATE, "round already delivered");
        return;
    }
    kept = 0; /* delta_buf is about to change: the DELTA still being sent from it goes */
    if (out_slots[OUT_DELTA].queued && flt_outbox_cancel(&outbox, OUT_DELTA) != FLT_OK) {
        note_failure(&diag.outbox_errors, FLT_ERR_STATE);
        return;
    }
    /* the TRAIN moves out of rx_msg, whose storage the round's buffers share (shared) */
    flt_bytes_copy(kept_train, buf, len);
    kept_train_len = len;
    buf = kept_train;
    flt_round_model_t model;
    model.head = &app_head;
    model.backbone = FLT_BACKBONE_INVOKE;
    model.window_bytes = FLT_BACKBONE_INPUT_SIZE;
    model.n_features = NF;
    model.feature_scale = FLT_FEATURE_SCALE;
    model.feature_zero_point = FLT_FEATURE_ZERO_POINT;
    flt_round_ws_t ws;
    ws.feat_q = RB.u.feat.q;
#if FLT_APP_FEATURE_CACHE
    ws.feat_cache = RB.feat_cache;
#else
    /* RAM: the backbone runs again at every use of a window */
    ws.feat_cache = NULL;
#endif
    ws.x = RB.x;
    ws.params = ROUND_PARAMS;
    ws.velocity = RB.velocity;
    ws.work = RB.u.work;
    ws.work_len = WORK_FLOATS;
    ws.order = RB.order;
    ws.indices = RB.u.topk.indices;
    ws.values = RB.u.topk.values;
    ws.scales = RB.u.topk.scales;
    ws.k_cap = P;
    if (check_pending) {
        check_pending = 0;
        /* local DP: no self-check, whose ERROR would report metrics of the data in clear */
        if ((t.flags & FLT_TRAIN_LOCAL_DP) == 0u && self_check_failed(&model, &ws, buf, len)) {
            return;
        }
    }
    flt_round_state_t st;
    st.served = NULL;
#if FLT_APP_PERSONAL
    if ((t.flags & FLT_ROUND_PERSONAL) != 0u && have_personal) {
        st.served = personal;
    }
#endif
#if FLT_APP_FEEDBACK
    for (uint32_t i = 0; i < P; ++i) {
        residual_next[i] = residual[i];
    }
    st.residual = residual_next;
#else
    st.residual = RB.u.topk.residual; /* NO_FEEDBACK (train_feature_refused): scratch only */
#endif
#if FLT_APP_DRIFT
    for (uint32_t i = 0; i < P; ++i) {
        drift_next[i] = drift[i];
    }
    st.drift = drift_next;
#else
    st.drift = NULL;                  /* no DRIFT round here (train_feature_refused) */
#endif
    st.ldp_key = ldp_key();
    st.ldp_nonce = ldp_nonce++; /* a fresh noise stream for every round that trains */
    flt_round_result_t res;
    uint8_t *payload = delta_buf + FLT_MSG_DELTA_HEADER_MAX; /* moved behind the head */
    flt_status_t s;
    if (data_ok) {
        s = flt_round_run_message(&model, blob_bytes, blob_len, MAXW, buf, len, global_params, &st,
                                  &ws, payload, PAYLOAD_CAP, &res);
    } else {
#if STORE_CAP > 0
        flt_data_t view;
        s = store_ok ? flt_window_store_view(&store, &view) : FLT_ERR_STATE;
        if (s != FLT_OK) {
            send_error(s, "no windows collected yet");
            return;
        }
        s = flt_round_run_train(&model, &view, MAXW, buf, len, global_params, &st, &ws, payload,
                                PAYLOAD_CAP, &res);
#else
        s = FLT_ERR_UNSUPPORTED;      /* unreachable: without a store the sensor is never asked */
#endif
    }
    if (s != FLT_OK) {
        send_error(s, "local round failed");
        return;
    }
    flt_msg_delta_t d;
    d.round = t.round;
    d.base_version = model_version;
    d.examples = res.examples;
    d.loss = res.mean_loss;
    d.personal_n = res.personal_n;
    d.personal_metric = res.personal_metric;
    d.body = payload;
    d.body_len = res.payload_len;
    secagg_train_keep(&t, &d);
    /* the payload was built FLT_MSG_DELTA_HEADER_MAX bytes in: the encoder writes the
     * (varint, shorter) head before it and moves the body down behind it (messages.h) */
    size_t n = 0;
    s = flt_msg_delta_encode(&d, delta_buf, sizeof delta_buf, &n);
    if (s != FLT_OK) {
        send_error(s, "DELTA encoding failed");
        return;
    }
    delta_round = t.round;
    delta_flags = res.flags;
    delta_serve_local = res.serve_local;
    kept_len = n;
    kept_base = model_version;
    kept = 1;
    out_queue(OUT_DELTA, FLT_MSG_DELTA, n);
}

static void on_disable(const uint8_t *buf, size_t len)
{
    flt_msg_disable_t m;
    if (flt_msg_disable_decode(buf, len, &m) != FLT_OK) {
        return; /* the link layer validated it already */
    }
    disabled = m.disabled != 0u;
}

static void on_delta_acked(void)
{
    for (uint32_t i = 0; i < P; ++i) {
#if FLT_APP_FEEDBACK
        residual[i] = residual_next[i];
#endif
#if FLT_APP_DRIFT
        if ((delta_flags & FLT_ROUND_DRIFT) != 0u) {
            drift[i] = drift_next[i];
        }
#endif
#if FLT_APP_PERSONAL
        if (delta_serve_local) {
            personal[i] = ws_params[i];
        }
#endif
    }
    /* serve the local model, or (PERSONAL with SELECT preferring it) the global one again */
    if ((delta_flags & FLT_ROUND_PERSONAL) != 0u) {
        have_personal = delta_serve_local != 0u;
    }
    committed_round = delta_round;
    have_round = 1;
    ckpt_save();
}

/* ---- the device's own data: sensor hook -> window store, and its STATUS -------------------- */

/* Reads the samples the sensor hook has (at most SAMPLES_PER_POLL) into the store; returns 1
 * when more may be waiting. Never called on a device with a data blob (the blob wins). */
static int poll_samples(void)
{
#if STORE_CAP > 0
    if (!store_ok || sensor_state < 0) {
        return 0;
    }
    for (uint32_t i = 0; i < SAMPLES_PER_POLL; ++i) {
        int8_t values[FLT_APP_SAMPLE_CHANNELS];
        flt_sample_label_t label;
        int r = flt_port_read_sample(values, &label);
        if (r < 0) { /* the board has no sample source: say so once, never ask again */
            sensor_state = -1;
            send_error(FLT_ERR_STATE, "no valid local data blob and no sample source");
            return 0;
        }
        sensor_state = 1;
        if (r == 0) {
            return 0;
        }
        flt_status_t s = flt_window_store_push(&store, values, &label);
        if (s != FLT_OK) { /* only for NULL pointers: cannot happen, counted if it does */
            note_failure(&diag.store_errors, s);
            return 0;
        }
    }
    return 1;
#else
    return 0;
#endif
}

/* Appends `name=value ` to buf at *n when all of it fits in cap (a field that does not fit
 * is left out whole, never cut: a cut number would read as another value). */
static void put_text_field(char *buf, size_t cap, size_t *n, const char *name, const char *value,
                           size_t value_len)
{
    size_t name_len = 0;
    while (name[name_len] != '\0') {
        name_len++;
    }
    if (name_len + value_len + 2u > cap - *n) {
        return;
    }
    flt_bytes_copy(buf + *n, name, name_len);
    *n += name_len;
    buf[(*n)++] = '=';
    flt_bytes_copy(buf + *n, value, value_len);
    *n += value_len;
    buf[(*n)++] = ' ';
}

static void put_word_field(char *buf, size_t cap, size_t *n, const char *name, const char *word)
{
    size_t len = 0;
    while (word[len] != '\0') {
        len++;
    }
    put_text_field(buf, cap, n, name, word, len);
}

/* `name=value ` in decimal, as put_text_field. */
static void put_field(char *buf, size_t cap, size_t *n, const char *name, uint32_t value)
{
    char digits[10];
    char text[10];
    unsigned k = 0, i = 0;
    do {
        digits[k++] = (char)('0' + (char)(value % 10u));
        value /= 10u;
    } while (value != 0u && k < sizeof digits);
    while (k > 0u) {
        text[i++] = digits[--k];
    }
    put_text_field(buf, cap, n, name, text, i);
}

/* The source word that opens a STATUS ("blob", "store", "none"), then the served model. */
static void put_status_head(char *buf, size_t cap, size_t *n, const char *source)
{
    for (; *source != '\0' && *n < cap; ++source) {
        buf[(*n)++] = *source;
    }
    if (*n < cap) {
        buf[(*n)++] = ' ';
    }
    put_word_field(buf, cap, n, "serving", serving_name());
    put_word_field(buf, cap, n, "training", disabled ? "off" : "on");
}

/* The answer to a STATUS from the host: where this device's windows come from and, for the
 * window store, its counters (flt_device.h). */
HANDLER static void send_status(void)
{
    char text[FLT_PROTO_MAX_TEXT];
    size_t n = 0;
    const size_t cap = sizeof text;
    if (data_ok) {
        put_status_head(text, cap, &n, "blob");
        put_field(text, cap, &n, "count", data.count);
        put_field(text, cap, &n, "test", data.n_test);
    } else {
#if STORE_CAP > 0
        const flt_window_store_stats_t *st = flt_window_store_stats(&store);
        put_status_head(text, cap, &n, sensor_state > 0 ? "store" : "none");
        put_field(text, cap, &n, "count", st->count);
        put_field(text, cap, &n, "capacity", st->capacity);
        put_field(text, cap, &n, "test", flt_data_n_test(st->count, FLT_DATA_PERSONAL_PPM));
        put_field(text, cap, &n, "samples", st->samples);
        put_field(text, cap, &n, "windows", st->windows);
        put_field(text, cap, &n, "stored", st->stored);
        put_field(text, cap, &n, "rejected", st->rejected);
        put_field(text, cap, &n, "dropped", st->dropped);
#else
        put_status_head(text, cap, &n, "none");
        put_field(text, cap, &n, "capacity", 0u);
#endif
    }
#ifdef FLT_APP_STACK_WATCH
    put_field(text, cap, &n, "stack", flt_bench_stack_high_water());
#endif
    n = n > 0u ? n - 1u : 0u; /* the last space */
    flt_msg_text_t t;
    t.code = 0u;
    t.text = text;
    t.text_len = n;
    size_t len = 0;
    flt_status_t s = flt_msg_text_encode(FLT_MSG_STATUS, &t, text_buf, sizeof text_buf, &len);
    out_queue_encoded(OUT_TEXT, FLT_MSG_STATUS, s, len);
}

/* ---- secure aggregation (flt_secagg_dev.h; docs/protocol.md "Secure aggregation on the
 * device link"): TRAIN SECAGG keeps the round's delta and sends a DELTA without a body; each
 * SECAGG message from the host is answered with the next step's SECAGG reply. Without
 * FLT_APP_SECAGG (a build without --secagg, or a board with 64 kB of RAM or less) both are
 * answered with an ERROR. ------- */

#define SECAGG_OFF_TEXT                                                                    \
    "secure aggregation is not built into this firmware (FLT_APP_SECAGG 0: built without " \
    "--secagg, or the board's RAM has no room for it)"

static void secagg_init(void)
{
#if FLT_APP_SECAGG
    if (flt_secagg_dev_init(device_id) != FLT_OK) { /* only for NULL pointers: cannot happen */
        note_failure(&diag.outbox_errors, FLT_ERR_STATE);
    }
#endif
}

/* 1 (and the ERROR sent) when a TRAIN with flag SECAGG cannot run here. */
static int secagg_train_refused(const flt_msg_train_t *t)
{
    if ((t->flags & FLT_TRAIN_SECAGG) == 0u) {
        return 0;
    }
#if FLT_APP_SECAGG
    if ((t->flags & FLT_TRAIN_NO_FEEDBACK) == 0u || (t->flags & FLT_TRAIN_LOCAL_DP) != 0u) {
        send_error(FLT_ERR_RANGE, "TRAIN SECAGG needs NO_FEEDBACK and no LOCAL_DP (a masked "
                                  "round carries the whole delta, no residual, no noise)");
        return 1;
    }
    return 0;
#else
    send_error(FLT_ERR_UNSUPPORTED, SECAGG_OFF_TEXT);
    return 1;
#endif
}

/* A TRAIN SECAGG round: keep its delta for MASKED, and its DELTA carries no update. */
static void secagg_train_keep(const flt_msg_train_t *t, flt_msg_delta_t *d)
{
    if ((t->flags & FLT_TRAIN_SECAGG) == 0u) {
        return;
    }
#if FLT_APP_SECAGG
    flt_secagg_dev_keep(t->round, ROUND_PARAMS, global_params);
#endif
    d->body_len = 0u; /* (secagg_train_refused let only a SECAGG build get here) */
}

HANDLER static void on_secagg(const uint8_t *buf, size_t len)
{
#if FLT_APP_SECAGG
    /* the host asks the next step only after it received the last reply: a reply still
     * queued (its ACK lost) is not needed any more, and its buffer is about to change */
    if (out_slots[OUT_SECAGG].queued && flt_outbox_cancel(&outbox, OUT_SECAGG) != FLT_OK) {
        note_failure(&diag.outbox_errors, FLT_ERR_STATE);
        return;
    }
    size_t n = 0;
    const char *why = "";
    flt_status_t s = flt_secagg_dev_handle(buf, len, secagg_buf, sizeof secagg_buf, &n, &why);
    if (s != FLT_OK) {
        send_error(s, why);
        return;
    }
    out_queue(OUT_SECAGG, FLT_MSG_SECAGG, n);
#else
    (void)buf;
    (void)len;
    send_error(FLT_ERR_UNSUPPORTED, SECAGG_OFF_TEXT);
#endif
}

/* ---- main loop -------------------------------------------------------------------------- */

static int device_loop(void)
{
    blob_bytes = flt_port_data(&blob_len);
    data_ok = blob_bytes != NULL && flt_data_parse(blob_bytes, blob_len, &data) == FLT_OK &&
              data.window_bytes == FLT_BACKBONE_INPUT_SIZE;
    /* the protocol device id: the data region's header (a blob or a recording, the same
     * offset), else the build's */
    flt_recording_t rec;
    device_id = FLT_DEVICE_ID_DEFAULT;
    if (data_ok) {
        device_id = data.device_id;
    } else if (blob_bytes != NULL && flt_recording_parse(blob_bytes, blob_len, &rec) == FLT_OK) {
        device_id = rec.device_id;
    }
    ckpt_load();
    app_head_init();
#if STORE_CAP > 0
    if (!data_ok) {
        flt_window_store_cfg_t cfg;
        cfg.window_len = FLT_APP_WINDOW_LEN;
        cfg.channels = FLT_APP_SAMPLE_CHANNELS;
        cfg.stride = FLT_APP_WINDOW_STRIDE;
        cfg.capacity = STORE_CAP;
        cfg.target_kind = FLT_APP_TARGET_KIND;
        cfg.n_targets = FLT_APP_N_TARGETS;
        cfg.n_classes = FLT_APP_TARGET_KIND == FLT_DATA_LABELS ? FLT_HEAD_OUTPUTS : 0u;
        store_ok =
            flt_window_store_init(&store, &cfg, store_windows, sizeof store_windows, STORE_LABELS,
                                  store_assembly, sizeof store_assembly) == FLT_OK;
    }
#endif
    if (flt_proto_rx_init(&rx, device_key, device_id, 0, rx_frame, sizeof rx_frame, shared.msg,
                          sizeof shared.msg) != FLT_OK ||
        flt_proto_tx_init(&tx, device_key, device_id, 0, 1u) != FLT_OK || out_init() != FLT_OK) {
        return 2;
    }
    queue_hello();
    if (!data_ok && !STORE_READY) {
        send_error(FLT_ERR_STATE, "no valid local data blob (see docs/boards.md)");
    }
    secagg_init();
    for (;;) {
        const int more = data_ok ? 0 : poll_samples();
        uint8_t b;
        while (flt_port_read_byte(&b)) {
            flt_proto_rx_event_t ev;
            flt_status_t s = flt_proto_rx_feed(&rx, b, &ev);
            if (s == FLT_ERR_REPLAY && ev.reply == FLT_MSG_NACK && !out_slots[OUT_HELLO].queued) {
                /* an authenticated host frame below the last seq accepted: a host that does
                 * not know this board's sequence (a new run); announce it again, with the
                 * seq to continue above (docs/protocol.md "Re-announce") */
                queue_hello();
            }
            if (ev.reply != 0u) {
                size_t n = 0;
                flt_status_t w = flt_proto_tx_reply(&tx, &ev, wire, sizeof wire, &n);
                if (w == FLT_OK) {
                    w = flt_port_write(wire, n);
                }
                if (w != FLT_OK) { /* counted; the host's retransmission asks again */
                    note_failure(&diag.link_write_errors, w);
                }
            }
            if (ev.event == FLT_PROTO_EV_CONTROL) {
                out_on_control(&ev);
            } else if (ev.event == FLT_PROTO_EV_MESSAGE) {
                if (ev.header.type == FLT_MSG_GLOBAL) {
                    on_global(shared.msg, ev.msg_len);
                } else if (ev.header.type == FLT_MSG_TRAIN) {
                    on_train(shared.msg, ev.msg_len);
                } else if (ev.header.type == FLT_MSG_STATUS) {
                    send_status();
                } else if (ev.header.type == FLT_MSG_DISABLE) {
                    on_disable(shared.msg, ev.msg_len);
                } else if (ev.header.type == FLT_MSG_SECAGG) {
                    on_secagg(shared.msg, ev.msg_len);
                }
            }
        }
        out_service();
        uint32_t wait_ms = flt_outbox_head(&outbox) >= 0 ? RETX_MS / 4u : 1000u;
        if (!data_ok && sensor_state >= 0 && STORE_READY) {
            wait_ms = more ? 0u : (wait_ms < SAMPLE_POLL_MS ? wait_ms : SAMPLE_POLL_MS);
        }
        flt_port_wait_event(wait_ms);
    }
}

int flt_app_main(int argc, char **argv)
{
#ifdef FLT_APP_STACK_WATCH
    flt_bench_stack_paint(); /* first: the STATUS reports the deepest stack use since boot */
#endif
    if (flt_port_init(argc, argv) != FLT_OK) {
        return 1;
    }
#ifdef FLT_APP_SELFTEST
    (void)device_loop; /* kept compiling, dropped by the linker */
    return flt_selftest_run();
#else
    return device_loop();
#endif
}
