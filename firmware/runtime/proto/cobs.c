#include "cobs.h"

void flt_cobs_enc_begin(flt_cobs_enc_t *enc, uint8_t *out, size_t cap)
{
    enc->out = out;
    enc->cap = cap;
    enc->code_pos = 0;
    enc->pos = 1;
    enc->code = 1;
    enc->overflow = (uint8_t)(cap < 1u);
}

static void flt_cobs_close_block(flt_cobs_enc_t *enc)
{
    if (enc->code_pos < enc->cap) {
        enc->out[enc->code_pos] = enc->code;
    } else {
        enc->overflow = 1;
    }
    enc->code_pos = enc->pos++;
    enc->code = 1;
}

void flt_cobs_enc_put(flt_cobs_enc_t *enc, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; ++i) {
        if (data[i] == 0u) {
            flt_cobs_close_block(enc);
            continue;
        }
        if (enc->pos < enc->cap) {
            enc->out[enc->pos] = data[i];
        } else {
            enc->overflow = 1;
        }
        enc->pos++;
        enc->code++;
        if (enc->code == 0xFFu) {
            flt_cobs_close_block(enc);
        }
    }
}

flt_status_t flt_cobs_enc_end(flt_cobs_enc_t *enc, size_t *out_len)
{
    if (enc->code_pos < enc->cap) {
        enc->out[enc->code_pos] = enc->code;
    } else {
        enc->overflow = 1;
    }
    FLT_REQUIRE(!enc->overflow, FLT_ERR_NOMEM);
    *out_len = enc->pos;
    return FLT_OK;
}

flt_status_t flt_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                             size_t *out_len)
{
    flt_cobs_enc_t enc;
    FLT_REQUIRE(out != NULL && out_len != NULL && (in != NULL || len == 0u), FLT_ERR_ARG);
    flt_cobs_enc_begin(&enc, out, cap);
    flt_cobs_enc_put(&enc, in, len);
    return flt_cobs_enc_end(&enc, out_len);
}

flt_status_t flt_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                             size_t *out_len)
{
    size_t i = 0, n = 0;
    FLT_REQUIRE(out_len != NULL && (in != NULL || len == 0u) && (out != NULL || cap == 0u),
                FLT_ERR_ARG);
    while (i < len) {
        uint8_t code = in[i++];
        size_t run, j;
        FLT_REQUIRE(code != 0u, FLT_ERR_FORMAT);
        run = (size_t)code - 1u;
        FLT_REQUIRE(run <= len - i, FLT_ERR_FORMAT);
        FLT_REQUIRE(run <= cap - n, FLT_ERR_NOMEM);
        for (j = 0; j < run; ++j) {
            FLT_REQUIRE(in[i + j] != 0u, FLT_ERR_FORMAT);
            out[n++] = in[i + j];
        }
        i += run;
        if (code != 0xFFu && i < len) {
            FLT_REQUIRE(n < cap, FLT_ERR_NOMEM);
            out[n++] = 0;
        }
    }
    *out_len = n;
    return FLT_OK;
}
