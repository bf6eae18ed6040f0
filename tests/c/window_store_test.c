/* window_store_test.c - C unit test of the device's own data (firmware/app: flt_window_store.c,
 * flt_recording.c, flt_data_n_test), built under ASan + UBSan by tests/test_window_store.py.
 * Buffers are heap blocks of exactly the size the contract names, so a read or write one byte
 * out is a sanitizer error; every truncated or corrupted recording must be refused without one.
 * Prints one line per failed check and "window_store_test: N checks, F failed"; exit 0 iff F == 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/flt_status.h"
#include "flt_data.h"
#include "flt_recording.h"
#include "flt_window_store.h"
#include "proto/crc32.h"

#define NSTEPS 600u
#define CH 2u

static int8_t g_samples[NSTEPS][CH];
static int32_t g_labels[NSTEPS];

/* The windows the rule keeps, in time order (the reference: every window ending at
 * len - 1 + j * stride whose steps all carry its last step's valid label). */
static uint32_t reference(uint32_t n_steps, uint32_t len, uint32_t stride, int8_t *out,
                          int32_t *labels, uint32_t max)
{
    uint32_t n = 0;
    for (uint32_t end = len - 1u; end < n_steps; end += stride) {
        int ok = g_labels[end] >= 0 && g_labels[end] < 6;
        for (uint32_t k = end + 1u - len; k <= end; ++k) {
            ok = ok && g_labels[k] == g_labels[end];
        }
        if (ok) {
            if (n == max) { /* keep the last max: shift down */
                memmove(out, out + len * CH, (size_t)(max - 1u) * len * CH);
                memmove(labels, labels + 1, (size_t)(max - 1u) * sizeof *labels);
                n--;
            }
            memcpy(out + (size_t)n * len * CH, &g_samples[end + 1u - len][0], (size_t)len * CH);
            labels[n] = g_labels[end];
            n++;
        }
    }
    return n;
}

static void test_store_against_the_reference(uint32_t len, uint32_t stride, uint32_t cap)
{
    const size_t wb = (size_t)len * CH;
    int8_t *windows = malloc(cap * wb);
    int32_t *labels = malloc(cap * sizeof *labels);
    int8_t *assembly = malloc(wb);
    int8_t *want = malloc(cap * wb);
    int32_t *want_labels = malloc(cap * sizeof *want_labels);
    flt_window_store_t s;
    flt_window_store_cfg_t cfg = {len, CH, stride, cap, FLT_DATA_LABELS, 1u, 6u};
    CHECK(flt_window_store_init(&s, &cfg, windows, cap * wb, labels, cap, NULL, 0u, assembly, wb) ==
          FLT_OK);
    for (uint32_t i = 0; i < NSTEPS; ++i) {
        flt_sample_label_t lab;
        memset(&lab, 0, sizeof lab);
        lab.label = g_labels[i];
        CHECK(flt_window_store_push(&s, g_samples[i], &lab) == FLT_OK);
        if (i % 37u == 5u || i + 1u == NSTEPS) { /* views in between reorder the ring */
            uint32_t n = reference(i + 1u, len, stride, want, want_labels, cap);
            flt_data_t v;
            flt_status_t st = flt_window_store_view(&s, &v);
            CHECK(st == (n == 0u ? FLT_ERR_STATE : FLT_OK));
            if (st == FLT_OK) {
                CHECK(v.count == n && v.n_test == flt_data_n_test(n, FLT_DATA_PERSONAL_PPM));
                CHECK(memcmp(v.windows, want, n * wb) == 0);
                CHECK(memcmp(v.labels, want_labels, n * sizeof *want_labels) == 0);
                CHECK(v.window_bytes == wb && v.labels == labels && v.targets == NULL);
            }
            const flt_window_store_stats_t *t = flt_window_store_stats(&s);
            CHECK(t->count <= cap && t->count == t->stored - t->dropped);
            CHECK(t->windows == t->stored + t->rejected && t->samples == i + 1u);
        }
    }
    CHECK(flt_window_store_stats(&s)->dropped > 0u);
    free(windows);
    free(labels);
    free(assembly);
    free(want);
    free(want_labels);
}

static void test_regression_exact_buffers(void)
{
    const uint32_t cap = 3u, nt = FLT_SAMPLE_MAX_TARGETS;
    int8_t *windows = malloc(cap * 1u * 8u);
    float *targets = malloc(cap * nt * sizeof *targets);
    int8_t *assembly = malloc(8u);
    flt_window_store_t s;
    flt_window_store_cfg_t cfg = {1u, 8u, 1u, cap, FLT_DATA_TARGETS, nt, 0u};
    CHECK(flt_window_store_init(&s, &cfg, windows, cap * 8u, NULL, 0u, targets, cap * nt, assembly,
                                8u) == FLT_OK);
    for (uint32_t i = 0; i < 10u; ++i) {
        int8_t v[8];
        flt_sample_label_t lab;
        memset(v, (int)i, sizeof v);
        lab.label = 0;
        for (uint32_t k = 0; k < nt; ++k) {
            lab.targets[k] = (float)(i * 10u + k);
        }
        CHECK(flt_window_store_push(&s, v, &lab) == FLT_OK);
    }
    flt_data_t d;
    CHECK(flt_window_store_view(&s, &d) == FLT_OK);
    CHECK(d.count == 3u && d.windows[0] == 7 && d.windows[16] == 9);
    CHECK(d.targets[0] == 70.0f && d.targets[3] == 73.0f && d.targets[11] == 93.0f);
    CHECK(flt_window_store_stats(&s)->dropped == 7u);
    free(windows);
    free(targets);
    free(assembly);
}

static void test_bad_arguments(void)
{
    int8_t w[16] = {0}, a[4] = {0};
    int32_t l[4];
    flt_window_store_t s;
    flt_window_store_cfg_t cfg = {4u, 1u, 4u, 4u, FLT_DATA_LABELS, 1u, 0u};
    flt_sample_label_t lab;
    flt_data_t d;
    memset(&s, 0, sizeof s);
    memset(&lab, 0, sizeof lab);
    CHECK(flt_window_store_push(&s, w, &lab) == FLT_ERR_ARG); /* never initialised */
    CHECK(flt_window_store_view(&s, &d) == FLT_ERR_ARG);
    CHECK(flt_window_store_init(NULL, &cfg, w, 16u, l, 4u, NULL, 0u, a, 4u) == FLT_ERR_ARG);
    CHECK(flt_window_store_init(&s, &cfg, w, 15u, l, 4u, NULL, 0u, a, 4u) == FLT_ERR_NOMEM);
    CHECK(flt_window_store_init(&s, &cfg, w, 16u, l, 3u, NULL, 0u, a, 4u) == FLT_ERR_NOMEM);
    CHECK(flt_window_store_init(&s, &cfg, w, 16u, l, 4u, NULL, 0u, a, 3u) == FLT_ERR_NOMEM);
    cfg.window_len = 0x10000u;
    cfg.channels = 0x10000u; /* window bytes beyond 32 bits */
    CHECK(flt_window_store_init(&s, &cfg, w, 16u, l, 4u, NULL, 0u, a, 4u) == FLT_ERR_OVERSIZE);
    CHECK(flt_data_n_test(0u, FLT_DATA_PERSONAL_PPM) == 0u);
    CHECK(flt_data_n_test(1u, FLT_DATA_PERSONAL_PPM) == 0u);
    CHECK(flt_data_n_test(2u, FLT_DATA_PERSONAL_PPM) == 1u);
    CHECK(flt_data_n_test(UINT32_MAX, 1000000u) == UINT32_MAX - 1u);
    CHECK(flt_data_n_test(UINT32_MAX, UINT32_MAX) == UINT32_MAX - 1u);
}

/* A valid recording of `count` samples of 3 channels with labels, written the way the host
 * writes one (fltiny.devices.data.Recording). Returns its size. */
static size_t make_recording(uint8_t *buf, uint32_t count)
{
    const size_t body = (size_t)count * 3u, pad = (4u - (body & 3u)) & 3u;
    memset(buf, 0, 48u + body + pad + 4u * count);
    memcpy(buf, "FLTR", 4u);
    buf[4] = 1u;
    buf[6] = 48u;
    buf[8] = 9u;
    memcpy(buf + 12, &count, 4u);
    buf[18] = 3u;
    buf[21] = 1u;
    for (size_t i = 0; i < body; ++i) {
        buf[48u + i] = (uint8_t)(i * 7u);
    }
    for (uint32_t i = 0; i < count; ++i) {
        int32_t lab = (int32_t)(i % 5u) - 1;
        memcpy(buf + 48u + body + pad + 4u * i, &lab, 4u);
    }
    size_t total = 48u + body + pad + 4u * count;
    uint32_t crc = flt_crc32_update(0u, buf + 48u, total - 48u);
    memcpy(buf + 40, &crc, 4u);
    return total;
}

static void test_recordings_truncated_and_corrupted(void)
{
    static uint8_t src[48u + 33u + 3u + 4u * 11u];
    const size_t total = make_recording(src, 11u);
    CHECK(total == sizeof src);
    for (size_t len = 0; len <= total; ++len) { /* an exact heap block: one byte out is an error */
        uint8_t *b = malloc(len > 0u ? len : 1u);
        memcpy(b, src, len);
        flt_recording_t r;
        flt_status_t st = flt_recording_parse(b, len, &r);
        CHECK((st == FLT_OK) == (len == total));
        if (st == FLT_OK) {
            int8_t v[3];
            flt_sample_label_t lab;
            CHECK(r.count == 11u && r.device_id == 9u && r.channels == 3u);
            CHECK(flt_recording_sample(&r, 10u, v, &lab) == FLT_OK && lab.label == -1);
            CHECK(v[0] == (int8_t)(30u * 7u) && v[2] == (int8_t)(32u * 7u));
            CHECK(flt_recording_sample(&r, 11u, v, &lab) == FLT_ERR_RANGE);
        }
        free(b);
    }
    /* every single-byte corruption of the header: refused or parsed, never out of bounds */
    for (size_t at = 0; at < 48u; ++at) {
        for (unsigned bit = 0; bit < 8u; ++bit) {
            uint8_t *b = malloc(total);
            memcpy(b, src, total);
            b[at] ^= (uint8_t)(1u << bit);
            flt_recording_t r;
            flt_status_t st = flt_recording_parse(b, total, &r);
            /* what may change and still parse: the device id, the quantization, the model hash,
             * the pace, and labels read as one float target (the same body size) */
            const int harmless = (at >= 8u && at < 12u) || (at >= 24u && at < 40u) || at >= 44u ||
                                 (at == 20u && bit == 0u);
            CHECK(st != FLT_OK || harmless);
            free(b);
        }
    }
}

int main(void)
{
    uint32_t x = 12345u;
    int32_t label = 0;
    for (uint32_t i = 0; i < NSTEPS; ++i) {
        x = x * 1103515245u + 12345u;
        g_samples[i][0] = (int8_t)(x >> 24);
        g_samples[i][1] = (int8_t)(x >> 16);
        if ((x >> 8) % 23u == 0u) {
            label = (int32_t)((x >> 4) % 8u) - 1; /* -1 unlabelled, 6 and 7 out of range */
        }
        g_labels[i] = label;
    }
    test_store_against_the_reference(8u, 8u, 5u);
    test_store_against_the_reference(8u, 3u, 4u);
    test_store_against_the_reference(1u, 1u, 7u);
    test_store_against_the_reference(6u, 1u, 1u);
    test_regression_exact_buffers();
    test_bad_arguments();
    test_recordings_truncated_and_corrupted();
    return check_report("window_store_test");
}
