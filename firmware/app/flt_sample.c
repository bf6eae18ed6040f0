/* flt_sample.c - see flt_sample.h. */
#include "flt_sample.h"

void flt_sample_quantize(const float *raw, uint32_t channels, const float *mean, const float *std,
                         float scale, int32_t zero_point, int8_t *out)
{
    for (uint32_t c = 0; c < channels; ++c) {
        float xn = (raw[c] - mean[c]) / std[c];
        float v = xn / scale;
        float a = (v < 0.0f ? -v : v) + 0.5f;
        int32_t q;
        if (!(a == a)) {
            q = 0; /* NaN: the zero point */
        } else if (a >= 1024.0f) {
            q = 1024; /* clamps to the range either way; keeps the cast in range */
        } else {
            q = (int32_t)a; /* truncation = floor for a >= 0 */
        }
        q = (v < 0.0f ? -q : q) + zero_point;
        out[c] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
}
