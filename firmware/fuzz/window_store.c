/* window_store.c - libFuzzer harness of the window store (firmware/app/flt_window_store.c): the
 * state machine that cuts the sensor hook's samples (external data: a sensor, a recording, the
 * application's labels) into the windows a device trains on.
 *
 * Feeds: bytes 0..6 the geometry (window length 1..16, channels 1..4, stride 1..window length,
 * capacity 1..8, labels or targets, 1..4 targets, classes 0..7 where 0 is "any label >= 0");
 * then operations (op byte): modulo 8 == 7 takes the view (flt_window_store_view), anything else
 * pushes one sample: `channels` value bytes and, with labels, a signed label byte (-1 is
 * unlabelled; labels at or above the class count are invalid), with targets a byte whose bit 7
 * marks the step unlabelled and n_targets float32s from the input (NaN and inf included).
 * Buffers are heap blocks of exactly the sizes the geometry needs.
 * Asserts, beyond memory safety:
 * - flt_window_store_init refuses each buffer one element short with FLT_ERR_NOMEM;
 * - after every push the counters agree with a model of the contract in flt_window_store.h
 *   (a window every `stride` steps from the window_len-th on; stored when all its steps carry
 *   the same valid label, or when its last step is labelled with finite targets; the oldest
 *   dropped when full): samples, windows = stored + rejected, dropped, count <= capacity;
 * - the view holds exactly the model's windows, oldest first, with their labels / targets and
 *   n_test = flt_data_n_test(count, FLT_DATA_PERSONAL_PPM); before any window it is
 *   FLT_ERR_STATE.
 */
#include "core/flt_bits.h"
#include "flt_window_store.h"
#include "fuzz.h"

#define MAX_LEN 16u
#define MAX_CH 4u
#define MAX_CAP 8u

typedef struct {
    int8_t values[MAX_LEN * MAX_CH];
    int32_t label;
    float targets[FLT_SAMPLE_MAX_TARGETS];
} window_t;

typedef struct {
    flt_window_store_cfg_t cfg;
    uint32_t wb;
    /* the last window_len steps, oldest first */
    int8_t hist[MAX_LEN * MAX_CH];
    int32_t hist_label[MAX_LEN];
    uint32_t steps;
    float last_targets[FLT_SAMPLE_MAX_TARGETS];
    int last_ok;
    window_t ring[MAX_CAP]; /* the held windows, oldest first */
    uint32_t count;
    flt_window_store_stats_t stats;
} model_t;

static model_t m;

static int label_valid(int32_t label)
{
    return label >= 0 && (m.cfg.n_classes == 0u || (uint32_t)label < m.cfg.n_classes);
}

static void model_push(const int8_t *values, const flt_sample_label_t *label)
{
    const uint32_t len = m.cfg.window_len, ch = m.cfg.channels;
    memmove(m.hist, m.hist + ch, (len - 1u) * ch);
    memcpy(m.hist + (len - 1u) * ch, values, ch);
    memmove(m.hist_label, m.hist_label + 1, (len - 1u) * sizeof m.hist_label[0]);
    m.hist_label[len - 1u] = label->label;
    m.steps++;
    m.stats.samples++;
    if (m.cfg.target_kind == FLT_DATA_TARGETS) {
        m.last_ok = label->label != FLT_SAMPLE_UNLABELLED;
        for (uint32_t k = 0; k < m.cfg.n_targets; ++k) {
            m.last_targets[k] = label->targets[k];
            m.last_ok = m.last_ok && flt_f32_bits_finite(flt_f32_bits(label->targets[k]));
        }
    }
    if (m.steps < len || (m.steps - len) % m.cfg.stride != 0u) {
        return;
    }
    m.stats.windows++;
    int accept = 1;
    if (m.cfg.target_kind == FLT_DATA_LABELS) {
        for (uint32_t i = 0; i < len; ++i) {
            accept = accept && label_valid(m.hist_label[i]) && m.hist_label[i] == label->label;
        }
    } else {
        accept = m.last_ok;
    }
    if (!accept) {
        m.stats.rejected++;
        return;
    }
    if (m.count == m.cfg.capacity) {
        memmove(&m.ring[0], &m.ring[1], (m.count - 1u) * sizeof m.ring[0]);
        m.count--;
        m.stats.dropped++;
    }
    window_t *w = &m.ring[m.count++];
    memcpy(w->values, m.hist, m.wb);
    w->label = label->label;
    memcpy(w->targets, m.last_targets, sizeof w->targets);
    m.stats.stored++;
    m.stats.count = m.count;
}

static void check_stats(const flt_window_store_t *s)
{
    const flt_window_store_stats_t *st = flt_window_store_stats(s);
    FUZZ_ASSERT(st->samples == m.stats.samples && st->windows == m.stats.windows &&
                st->stored == m.stats.stored && st->rejected == m.stats.rejected &&
                st->dropped == m.stats.dropped && st->count == m.count &&
                st->capacity == m.cfg.capacity);
    FUZZ_ASSERT(st->windows == st->stored + st->rejected && st->count <= st->capacity &&
                st->count == st->stored - st->dropped);
}

static void check_view(flt_window_store_t *s)
{
    flt_data_t v;
    flt_status_t st = flt_window_store_view(s, &v);
    if (m.count == 0u) {
        FUZZ_ASSERT(st == FLT_ERR_STATE);
        return;
    }
    FUZZ_ASSERT(st == FLT_OK && v.count == m.count &&
                v.n_test == flt_data_n_test(m.count, FLT_DATA_PERSONAL_PPM));
    FUZZ_ASSERT(v.window_len == m.cfg.window_len && v.channels == m.cfg.channels &&
                v.window_bytes == m.wb && v.target_kind == m.cfg.target_kind &&
                v.n_targets == m.cfg.n_targets);
    for (uint32_t i = 0; i < m.count; ++i) {
        const window_t *w = &m.ring[i];
        FUZZ_ASSERT(memcmp(v.windows + (size_t)i * m.wb, w->values, m.wb) == 0);
        if (m.cfg.target_kind == FLT_DATA_LABELS) {
            FUZZ_ASSERT(v.targets == NULL && v.labels[i] == w->label);
        } else {
            FUZZ_ASSERT(v.labels == NULL);
            for (uint32_t k = 0; k < m.cfg.n_targets; ++k) {
                FUZZ_ASSERT(flt_f32_bits(v.targets[(size_t)i * m.cfg.n_targets + k]) ==
                            flt_f32_bits(w->targets[k]));
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = fuzz_in(data, size);
    memset(&m, 0, sizeof m);
    flt_window_store_cfg_t *c = &m.cfg;
    c->window_len = 1u + fuzz_u8(&in) % MAX_LEN;
    c->channels = 1u + fuzz_u8(&in) % MAX_CH;
    c->stride = 1u + fuzz_u8(&in) % c->window_len;
    c->capacity = 1u + fuzz_u8(&in) % MAX_CAP;
    c->target_kind = (fuzz_u8(&in) & 1u) ? FLT_DATA_TARGETS : FLT_DATA_LABELS;
    uint8_t nt = fuzz_u8(&in);
    c->n_targets = c->target_kind == FLT_DATA_LABELS ? 1u : 1u + nt % FLT_SAMPLE_MAX_TARGETS;
    c->n_classes = fuzz_u8(&in) % 8u;
    m.wb = c->window_len * c->channels;
    const int labelled = c->target_kind == FLT_DATA_LABELS;

    size_t n_win = (size_t)c->capacity * m.wb, n_lab = labelled ? c->capacity : 0u;
    size_t n_tgt = labelled ? 0u : (size_t)c->capacity * c->n_targets;
    int8_t *windows = (int8_t *)malloc(n_win);
    int8_t *assembly = (int8_t *)malloc(m.wb);
    int32_t *labels = labelled ? (int32_t *)malloc(n_lab * sizeof *labels) : NULL;
    float *targets = labelled ? NULL : (float *)malloc(n_tgt * sizeof *targets);
    FUZZ_ASSERT(windows != NULL && assembly != NULL && (labels != NULL || targets != NULL));

    flt_window_store_t s;
    FUZZ_ASSERT(flt_window_store_init(&s, c, windows, n_win - 1u, labels, n_lab, targets, n_tgt,
                                      assembly, m.wb) == FLT_ERR_NOMEM);
    FUZZ_ASSERT(flt_window_store_init(&s, c, windows, n_win, labels, n_lab, targets, n_tgt,
                                      assembly, m.wb - 1u) == FLT_ERR_NOMEM);
    FUZZ_ASSERT(flt_window_store_init(&s, c, windows, n_win, labels, labelled ? n_lab - 1u : 0u,
                                      targets, labelled ? 0u : n_tgt - 1u, assembly,
                                      m.wb) == FLT_ERR_NOMEM);
    FUZZ_ASSERT(flt_window_store_init(&s, c, windows, n_win, labels, n_lab, targets, n_tgt,
                                      assembly, m.wb) == FLT_OK);
    check_stats(&s);

    while (fuzz_left(&in) > 0u) {
        if (fuzz_u8(&in) % 8u == 7u) {
            check_view(&s);
            continue;
        }
        int8_t values[MAX_CH];
        flt_sample_label_t label;
        for (uint32_t ch = 0; ch < c->channels; ++ch) {
            values[ch] = (int8_t)fuzz_u8(&in);
        }
        memset(&label, 0, sizeof label);
        uint8_t lb = fuzz_u8(&in);
        if (labelled) {
            label.label = (int32_t)(int8_t)lb;
        } else {
            label.label = (lb & 0x80u) ? FLT_SAMPLE_UNLABELLED : 0;
            for (uint32_t k = 0; k < c->n_targets; ++k) {
                label.targets[k] = flt_f32_from_bits(fuzz_u32(&in));
            }
        }
        FUZZ_ASSERT(flt_window_store_push(&s, values, &label) == FLT_OK);
        model_push(values, &label);
        check_stats(&s);
    }
    check_view(&s);
    free(windows);
    free(assembly);
    free(labels);
    free(targets);
    return 0;
}
