/* flt_window_store.c - see flt_window_store.h. */
#include "flt_window_store.h"

#include "core/flt_bits.h"
#include "core/flt_bytes.h"

flt_status_t flt_window_store_init(flt_window_store_t *store, const flt_window_store_cfg_t *cfg,
                                   int8_t *windows, size_t windows_len, int32_t *labels,
                                   size_t labels_len, float *targets, size_t targets_len,
                                   int8_t *assembly, size_t assembly_len)
{
    FLT_REQUIRE(store && cfg && windows && assembly, FLT_ERR_ARG);
    const int labelled = cfg->target_kind == FLT_DATA_LABELS;
    FLT_REQUIRE(labelled || cfg->target_kind == FLT_DATA_TARGETS, FLT_ERR_RANGE);
    FLT_REQUIRE(labelled ? labels != NULL : targets != NULL, FLT_ERR_ARG);
    FLT_REQUIRE(cfg->window_len > 0u && cfg->channels > 0u && cfg->capacity > 0u, FLT_ERR_RANGE);
    FLT_REQUIRE(cfg->stride > 0u && cfg->stride <= cfg->window_len, FLT_ERR_RANGE);
    FLT_REQUIRE(labelled ? cfg->n_targets == 1u
                         : (cfg->n_targets > 0u && cfg->n_targets <= FLT_SAMPLE_MAX_TARGETS),
                FLT_ERR_RANGE);
    const uint64_t wb = (uint64_t)cfg->window_len * cfg->channels;
    const uint64_t all = wb * cfg->capacity;
    const uint64_t tg = (uint64_t)cfg->capacity * cfg->n_targets;
    FLT_REQUIRE(wb <= UINT32_MAX && all <= (uint64_t)SIZE_MAX, FLT_ERR_OVERSIZE);
    FLT_REQUIRE(windows_len >= all && assembly_len >= wb, FLT_ERR_NOMEM);
    FLT_REQUIRE(labelled ? labels_len >= cfg->capacity : targets_len >= tg, FLT_ERR_NOMEM);
    flt_bytes_zero(store, sizeof *store);
    store->cfg = *cfg;
    store->window_bytes = (uint32_t)wb;
    store->windows = windows;
    store->labels = labelled ? labels : NULL;
    store->targets = labelled ? NULL : targets;
    store->assembly = assembly;
    store->run_label = FLT_SAMPLE_UNLABELLED;
    store->stats.capacity = cfg->capacity;
    return FLT_OK;
}

static int label_valid(const flt_window_store_t *s, int32_t label)
{
    return label >= 0 && (s->cfg.n_classes == 0u || (uint32_t)label < s->cfg.n_classes);
}

/* The step's label: classification tracks the run of equal valid labels ending here,
 * regression keeps the step's targets when they are usable. */
static void note_label(flt_window_store_t *s, const flt_sample_label_t *label)
{
    if (s->labels != NULL) {
        if (!label_valid(s, label->label)) {
            s->run_len = 0u;
        } else if (label->label == s->run_label && s->run_len > 0u) {
            s->run_len += s->run_len < s->cfg.window_len ? 1u : 0u;
        } else {
            s->run_len = 1u;
        }
        s->run_label = label->label;
        return;
    }
    int ok = label->label != FLT_SAMPLE_UNLABELLED;
    for (uint32_t k = 0; k < s->cfg.n_targets; ++k) {
        ok = ok && flt_f32_bits_finite(flt_f32_bits(label->targets[k]));
        s->last_targets[k] = label->targets[k];
    }
    s->last_ok = ok;
}

/* The assembled window is complete: store it (replacing the oldest when full) or reject it. */
static void emit(flt_window_store_t *s)
{
    s->stats.windows += 1u;
    const int accept = s->labels != NULL ? s->run_len >= s->cfg.window_len : s->last_ok;
    if (!accept) {
        s->stats.rejected += 1u;
        return;
    }
    const uint32_t cap = s->cfg.capacity;
    const int full = s->stats.count == cap;
    const uint32_t slot = full ? s->head : s->stats.count;
    flt_bytes_copy(s->windows + (size_t)slot * s->window_bytes, s->assembly, s->window_bytes);
    if (s->labels != NULL) {
        s->labels[slot] = s->run_label;
    } else {
        for (uint32_t k = 0; k < s->cfg.n_targets; ++k) {
            s->targets[(size_t)slot * s->cfg.n_targets + k] = s->last_targets[k];
        }
    }
    if (full) {
        s->head = s->head + 1u == cap ? 0u : s->head + 1u;
        s->stats.dropped += 1u;
    } else {
        s->stats.count += 1u;
    }
    s->stats.stored += 1u;
}

flt_status_t flt_window_store_push(flt_window_store_t *store, const int8_t *values,
                                   const flt_sample_label_t *label)
{
    FLT_REQUIRE(store && values && label && store->assembly, FLT_ERR_ARG);
    flt_window_store_t *s = store;
    const uint32_t ch = s->cfg.channels;
    flt_bytes_copy(s->assembly + (size_t)s->fill * ch, values, ch);
    s->fill += 1u;
    s->stats.samples += 1u;
    note_label(s, label);
    if (s->fill == s->cfg.window_len) {
        emit(s);
        /* keep the last window_len - stride steps: the start of the next window */
        const uint32_t keep = s->cfg.window_len - s->cfg.stride;
        const size_t from = (size_t)s->cfg.stride * ch;
        for (size_t i = 0; i < (size_t)keep * ch; ++i) {
            s->assembly[i] = s->assembly[from + i];
        }
        s->fill = keep;
    }
    return FLT_OK;
}

static void reverse(uint8_t *p, size_t n)
{
    size_t i = 0;
    size_t j = n;
    while (i + 1u < j) {
        j--;
        uint8_t t = p[i];
        p[i] = p[j];
        p[j] = t;
        i++;
    }
}

/* Left rotation of p[0 .. n-1] by k bytes: reverse both parts, then the whole. */
static void rotate_left(uint8_t *p, size_t n, size_t k)
{
    reverse(p, k);
    reverse(p + k, n - k);
    reverse(p, n);
}

flt_status_t flt_window_store_view(flt_window_store_t *store, flt_data_t *out)
{
    FLT_REQUIRE(store && out && store->windows, FLT_ERR_ARG);
    flt_window_store_t *s = store;
    FLT_REQUIRE(s->stats.count > 0u, FLT_ERR_STATE);
    const uint32_t cap = s->cfg.capacity;
    if (s->head != 0u) { /* only a full ring wraps: make it linear, oldest first */
        rotate_left((uint8_t *)s->windows, (size_t)cap * s->window_bytes,
                    (size_t)s->head * s->window_bytes);
        if (s->labels != NULL) {
            rotate_left((uint8_t *)(void *)s->labels, (size_t)cap * 4u, (size_t)s->head * 4u);
        } else {
            const size_t row = (size_t)s->cfg.n_targets * 4u;
            rotate_left((uint8_t *)(void *)s->targets, cap * row, s->head * row);
        }
        s->head = 0u;
    }
    flt_bytes_zero(out, sizeof *out);
    out->count = s->stats.count;
    out->n_test = flt_data_n_test(s->stats.count, FLT_DATA_PERSONAL_PPM);
    out->window_len = s->cfg.window_len;
    out->channels = s->cfg.channels;
    out->window_bytes = s->window_bytes;
    out->target_kind = s->cfg.target_kind;
    out->n_targets = s->cfg.n_targets;
    out->windows = s->windows;
    out->labels = s->labels;
    out->targets = s->targets;
    return FLT_OK;
}

const flt_window_store_stats_t *flt_window_store_stats(const flt_window_store_t *store)
{
    return &store->stats;
}
