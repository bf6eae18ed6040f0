/* kernel_variants_target.c - a board's target conv kernel against the reference, on the board
 * (a firmware/bare program, tests/test_kernel_variants_ontarget.py). flt_conv_s8 is the
 * variant the board's firmware uses (firmware/runtime/kernels/<target>/conv.c, chosen by
 * fltiny.build.project.kernel_variant), ref_flt_conv_s8 the reference kernels/conv.c under
 * another name (tests/c/kernel_ref_conv.c). Both run on the same inputs for the backbone shapes
 * of the zoo and then for CASES random parameter sets from a seeded xorshift32: batches, groups
 * (odd channel counts per group), kernel sizes, strides, dilations, padding before and after
 * (outputs whose taps are all padding included), input offsets -127 / 128 and output offsets
 * -128 / 127 among random ones, extreme and random int8 values, random multipliers and shifts
 * (saturating outputs included), with and without bias, and small products scaled by about 1
 * (an accumulator one off shows in the output). Each output buffer is poisoned first
 * and must match the reference byte for byte, and the bytes after it must be untouched.
 *
 * Exit code: 0 all cases match; 1 a case differs (the output names it and the first differing
 * byte); 2 flt_conv_prepare refused a generated case (a bug in this program); 3 the cases were
 * too weak (no saturated or no unsaturated outputs). Output line on success:
 * "kernel variants: ok conv cases=C outputs=N saturated=S empty_taps=E". */
#include <stddef.h>
#include <stdint.h>

#include "bare.h"
#include "kernels/conv.h"

void ref_flt_conv_s8(const flt_conv_params_t *p, const int8_t *input, const int8_t *filter,
                     const int32_t *bias, int8_t *output);

#define CASES 600u
#define MAX_IN 4096
#define MAX_FILTER 8192
#define MAX_OUT 4096
#define MAX_OC 32
#define GUARD 16
#define POISON 0x5a

static int8_t input[MAX_IN];
static int8_t filter[MAX_FILTER];
static int32_t bias[MAX_OC];
static int32_t multiplier[MAX_OC];
static int32_t shift[MAX_OC];
static int8_t out_ref[MAX_OUT + GUARD];
static int8_t out_var[MAX_OUT + GUARD];

static uint32_t rng_state = 0x2545f491u;

static uint32_t next(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

/* uniform-ish in [lo, hi] (hi - lo small) */
static int32_t uniform(int32_t lo, int32_t hi)
{
    return lo + (int32_t)(next() % (uint32_t)(hi - lo + 1));
}

static void write_i32(int32_t v)
{
    if (v < 0) {
        flt_bare_write("-");
        flt_bare_write_u32((uint32_t)0 - (uint32_t)v);
    } else {
        flt_bare_write_u32((uint32_t)v);
    }
}

static void field(const char *name, int32_t v)
{
    flt_bare_write(" ");
    flt_bare_write(name);
    flt_bare_write("=");
    write_i32(v);
}

static void describe(const flt_conv_params_t *p)
{
    field("batches", p->batches);
    field("in", p->in_h);
    field("x", p->in_w);
    field("x", p->in_c);
    field("out", p->out_h);
    field("x", p->out_w);
    field("x", p->out_c);
    field("k", p->k_h);
    field("x", p->k_w);
    field("x", p->filter_in_c);
    field("stride", p->stride_h);
    field("x", p->stride_w);
    field("dil", p->dil_h);
    field("x", p->dil_w);
    field("pad", p->pad_h);
    field("x", p->pad_w);
    field("in_off", p->input_offset);
    field("out_off", p->output_offset);
    field("act", p->act_min);
    field("..", p->act_max);
}

/* Output size along one axis (pad before and after), or 0 when the kernel does not fit. */
static int32_t out_size(int32_t in, int32_t k, int32_t dil, int32_t stride, int32_t pad,
                        int32_t pad_end)
{
    const int32_t span = in + pad + pad_end - ((k - 1) * dil + 1);
    return span < 0 ? 0 : span / stride + 1;
}

/* Clamps to int8. */
static int8_t s8(int32_t v)
{
    return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

/* Fills the data of a case: values mode 0 random, 1 inputs all -128, 2 inputs all 127,
 * 3 filters only -128 / 127, 4 small products (inputs within 3 of the zero point, filters in
 * [-4, 4]) with multipliers near 1, so that an accumulator off by one changes the output. */
static void fill(const flt_conv_params_t *p, int32_t n_in, int32_t n_filter, int32_t mode)
{
    for (int32_t i = 0; i < n_in; ++i) {
        const int32_t r = (int32_t)(next() >> 24) - 128;
        input[i] = mode == 1   ? (int8_t)-128
                   : mode == 2 ? (int8_t)127
                   : mode == 4 ? s8(-p->input_offset + r % 4)
                               : (int8_t)r;
    }
    for (int32_t i = 0; i < n_filter; ++i) {
        const uint32_t r = next();
        const int32_t v = mode == 3   ? ((r & 1u) ? 127 : -128)
                          : mode == 4 ? (int32_t)(r % 9u) - 4
                                      : (int32_t)(r >> 24) - 128;
        filter[i] = (int8_t)v;
    }
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        bias[oc] = mode == 4 ? uniform(-40, 40) : uniform(-70000, 70000);
        multiplier[oc] = (int32_t)(0x40000000u + (next() >> 2)); /* [2^30, 2^31) */
        shift[oc] = mode == 4             ? uniform(-3, 0)
                    : (next() & 3u) == 0u ? uniform(-22, 1)
                                          : uniform(-17, -9);
    }
}

/* Runs both kernels on one case; 0 when they agree, else 1 (after describing the case). */
static int compare(uint32_t index, const flt_conv_params_t *p, const int32_t *b, int32_t n_out,
                   uint32_t *saturated)
{
    for (int32_t i = 0; i < MAX_OUT + GUARD; ++i) {
        out_ref[i] = (int8_t)POISON;
        out_var[i] = (int8_t)POISON;
    }
    ref_flt_conv_s8(p, input, filter, b, out_ref);
    flt_conv_s8(p, input, filter, b, out_var);
    for (int32_t i = 0; i < n_out + GUARD; ++i) {
        if (out_ref[i] != out_var[i]) {
            flt_bare_write("kernel variants: MISMATCH conv case ");
            flt_bare_write_u32(index);
            field("byte", i);
            field("of", n_out);
            field("ref", out_ref[i]);
            field("variant", out_var[i]);
            describe(p);
            field("bias", b != 0);
            flt_bare_write("\n");
            return 1;
        }
    }
    for (int32_t i = 0; i < n_out; ++i) {
        *saturated += (uint32_t)(out_ref[i] == p->act_min || out_ref[i] == p->act_max);
    }
    return 0;
}

/* Conv layers of the zoo's backbones (har-tiny, har-small, har-gateway's first, digits-tiny),
 * padded SAME as TFLM does. */
typedef struct {
    int32_t in_h, in_w, in_c, out_c, k_h, k_w, stride;
} model_case_t;

static const model_case_t MODEL_CASES[] = {
    {1, 128, 3, 8, 1, 5, 2},  {1, 64, 8, 16, 1, 5, 2},  {1, 128, 3, 16, 1, 5, 2},
    {1, 64, 16, 32, 1, 5, 2}, {1, 32, 32, 32, 1, 5, 2}, {1, 128, 3, 32, 1, 7, 2},
    {8, 8, 1, 8, 3, 3, 1},    {4, 4, 8, 16, 3, 3, 1},
};

/* TFLM's SAME padding along one axis: the rows before (*before) and after (*after). */
static void same_padding(int32_t in, int32_t k, int32_t stride, int32_t *before, int32_t *after)
{
    const int32_t out = (in + stride - 1) / stride;
    int32_t total = (out - 1) * stride + k - in;
    if (total < 0) {
        total = 0;
    }
    *before = total / 2;
    *after = total - total / 2;
}

int flt_bare_main(void)
{
    uint32_t cases = 0;
    uint32_t outputs = 0;
    uint32_t saturated = 0;
    uint32_t empty_taps = 0;
    const uint32_t n_models = (uint32_t)(sizeof MODEL_CASES / sizeof MODEL_CASES[0]);
    for (uint32_t index = 0; cases < CASES + n_models; ++index) {
        flt_conv_params_t p;
        int32_t pad_end_h;
        int32_t pad_end_w;
        int32_t mode = 0;
        const int32_t *b = bias;
        if (index < n_models) {
            mode = (index & 1u) ? 4 : 0;
            const model_case_t *m = &MODEL_CASES[index];
            p.batches = 1;
            p.in_h = m->in_h;
            p.in_w = m->in_w;
            p.in_c = m->in_c;
            p.out_c = m->out_c;
            p.filter_in_c = m->in_c;
            p.k_h = m->k_h;
            p.k_w = m->k_w;
            p.stride_h = m->in_h > 1 ? m->stride : 1;
            p.stride_w = m->stride;
            p.dil_h = 1;
            p.dil_w = 1;
            same_padding(p.in_h, p.k_h, p.stride_h, &p.pad_h, &pad_end_h);
            same_padding(p.in_w, p.k_w, p.stride_w, &p.pad_w, &pad_end_w);
            p.input_offset = uniform(-127, 128);
            p.output_offset = uniform(-128, 127);
            p.act_min = p.output_offset; /* RELU */
            p.act_max = 127;
        } else {
            const int32_t groups = (next() % 4u) == 0u ? uniform(2, 3) : 1;
            p.filter_in_c = uniform(1, 9);
            p.in_c = groups * p.filter_in_c;
            p.out_c = groups * uniform(1, 9);
            p.batches = uniform(1, 2);
            p.k_h = uniform(1, 3);
            p.k_w = uniform(1, 5);
            p.dil_h = (next() % 3u) == 0u ? uniform(2, 3) : 1;
            p.dil_w = (next() % 3u) == 0u ? uniform(2, 3) : 1;
            p.stride_h = uniform(1, 3);
            p.stride_w = uniform(1, 3);
            p.in_h = uniform(1, 6);
            p.in_w = uniform(1, 16);
            p.pad_h = uniform(0, (p.k_h - 1) * p.dil_h);
            p.pad_w = uniform(0, (p.k_w - 1) * p.dil_w);
            pad_end_h = uniform(0, (p.k_h - 1) * p.dil_h);
            pad_end_w = uniform(0, (p.k_w - 1) * p.dil_w);
            const uint32_t r = next();
            p.input_offset = (r & 3u) == 0u ? -127 : (r & 3u) == 1u ? 128 : uniform(-127, 128);
            p.output_offset = (r & 12u) == 0u ? -128 : (r & 12u) == 4u ? 127 : uniform(-128, 127);
            if ((r & 16u) == 0u) {
                p.act_min = -128;
                p.act_max = 127;
            } else {
                p.act_min = uniform(-128, 127);
                p.act_max = uniform(p.act_min, 127);
            }
            mode = (int32_t)((r >> 6) % 7u); /* 0, 5, 6: random values */
            if (mode > 4) {
                mode = 0;
            }
            if (((r >> 9) & 7u) == 0u) {
                b = 0;
            }
        }
        p.out_h = out_size(p.in_h, p.k_h, p.dil_h, p.stride_h, p.pad_h, pad_end_h);
        p.out_w = out_size(p.in_w, p.k_w, p.dil_w, p.stride_w, p.pad_w, pad_end_w);
        p.multiplier = multiplier;
        p.shift = shift;
        const int32_t n_in = p.batches * p.in_h * p.in_w * p.in_c;
        const int32_t n_filter = p.out_c * p.k_h * p.k_w * p.filter_in_c;
        const int32_t n_out = p.batches * p.out_h * p.out_w * p.out_c;
        if (p.out_h == 0 || p.out_w == 0 || n_in > MAX_IN || n_filter > MAX_FILTER ||
            n_out > MAX_OUT || p.out_c > MAX_OC) {
            if (index < n_models) {
                return 2;
            }
            continue; /* draw again */
        }
        fill(&p, n_in, n_filter, mode);
        if (flt_conv_prepare(&p) != FLT_OK) {
            flt_bare_write("kernel variants: prepare refused case ");
            flt_bare_write_u32(index);
            describe(&p);
            flt_bare_write("\n");
            return 2;
        }
        /* an output whose taps all fall in the padding (its value is the bias alone) */
        for (int32_t ox = 0; ox < p.out_w; ++ox) {
            int32_t valid = 0;
            for (int32_t kx = 0; kx < p.k_w; ++kx) {
                const int32_t ix = ox * p.stride_w - p.pad_w + kx * p.dil_w;
                valid += ix >= 0 && ix < p.in_w;
            }
            empty_taps += (uint32_t)(valid == 0);
        }
        if (compare(index, &p, b, n_out, &saturated) != 0) {
            return 1;
        }
        cases += 1u;
        outputs += (uint32_t)n_out;
    }
    flt_bare_write("kernel variants: ok conv cases=");
    flt_bare_write_u32(cases);
    flt_bare_write(" outputs=");
    flt_bare_write_u32(outputs);
    flt_bare_write(" saturated=");
    flt_bare_write_u32(saturated);
    flt_bare_write(" empty_taps=");
    flt_bare_write_u32(empty_taps);
    flt_bare_write("\n");
    return (saturated == 0u || saturated == outputs || empty_taps == 0u) ? 3 : 0;
}
