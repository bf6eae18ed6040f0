/* flt_sample.h - one time step of a device's own data: what the sensor hook (port.h,
 * flt_port_read_sample) hands the window store (flt_window_store.h), and the quantization of a
 * raw reading into the backbone's int8 input.
 *
 * Contract
 * - A sample is `channels` int8 values (one time step of a window: docs/boards.md "Sensor
 *   hook"), already normalised and quantized like the model's input, plus its label
 *   (flt_sample_label_t). The label is the application's: a button, a rule, a user's override.
 *     classification: label = the class (0 .. n_classes - 1) or FLT_SAMPLE_UNLABELLED;
 *     regression:     targets[0 .. n_targets - 1] (n_targets <= FLT_SAMPLE_MAX_TARGETS), and
 *                     label = 0, or FLT_SAMPLE_UNLABELLED when the step has no target.
 * - flt_sample_quantize(raw, channels, mean, std, scale, zero_point, out): out[c] =
 *   clamp(round_half_away(((raw[c] - mean[c]) / std[c]) / scale) + zero_point, -128, 127),
 *   every operation in float32 (build with -ffp-contract=off): bit for bit what the host does
 *   to a data blob's windows (fltiny/devices/data.py quantize_windows, TFLite's rule). A NaN
 *   reading gives the zero point. Pure function, no state, cannot fail; the caller owns every
 *   buffer (channels values each; std[c] != 0, scale > 0).
 */
#ifndef FLT_SAMPLE_H
#define FLT_SAMPLE_H

#include <stdint.h>

#define FLT_SAMPLE_UNLABELLED (-1)
#define FLT_SAMPLE_MAX_TARGETS 4u

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t label;                         /* the class, or FLT_SAMPLE_UNLABELLED */
    float targets[FLT_SAMPLE_MAX_TARGETS]; /* regression: the first n_targets */
} flt_sample_label_t;

void flt_sample_quantize(const float *raw, uint32_t channels, const float *mean, const float *std,
                         float scale, int32_t zero_point, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* FLT_SAMPLE_H */
