/* add.h - int8 elementwise addition of two same-shape tensors (TFLite ADD, no broadcast).
 *
 * Contract
 * - Arithmetic (TFLite int8 spec as TFLM evaluates it): each input is offset by minus its
 *   zero point, shifted left by left_shift (20), rescaled with its own multiplier to the
 *   common scale 2*max(s1, s2), summed, rescaled to the output scale, offset by the output
 *   zero point and clamped to [act_min, act_max]. All multipliers are < 1 (shifts <= 0) and
 *   computed at generation time.
 * - flt_add_prepare() validates (FLT_ERR_ARG / _RANGE, writes nothing); flt_add_s8() never
 *   fails or allocates and writes only `output`; output may equal input1 or input2 (each
 *   element is read before it is written) but must not overlap them otherwise.
 */
#ifndef FLT_KERNELS_ADD_H
#define FLT_KERNELS_ADD_H

#include <stdint.h>

#include "core/flt_status.h"

typedef struct {
    int32_t size;
    int32_t left_shift;
    int32_t input1_offset, input2_offset; /* minus the zero points */
    int32_t output_offset;                /* the output zero point */
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} flt_add_params_t;

FLT_NODISCARD flt_status_t flt_add_prepare(const flt_add_params_t *p);

void flt_add_s8(const flt_add_params_t *p, const int8_t *input1, const int8_t *input2,
                int8_t *output);

#endif /* FLT_KERNELS_ADD_H */
