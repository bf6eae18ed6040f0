/* check_common.h - parameter checks shared by the kernels' prepare steps (internal).
 *
 * Contract: pure predicates on integers; no state. Used only by the kernel sources.
 */
#ifndef FLT_KERNELS_CHECK_COMMON_H
#define FLT_KERNELS_CHECK_COMMON_H

#include <stdint.h>

#include "core/flt_status.h"

/* 1 when lo <= v <= hi. */
static inline int flt_in_range(int32_t v, int32_t lo, int32_t hi)
{
    return v >= lo && v <= hi;
}

/* Checks a per-channel (or single) multiplier/shift table: shift in [-31, 30], multiplier >= 0. */
static inline flt_status_t flt_check_multipliers(const int32_t *m, const int32_t *s, int32_t n)
{
    FLT_REQUIRE(m != 0 && s != 0 && n > 0, FLT_ERR_ARG);
    for (int32_t i = 0; i < n; ++i) {
        FLT_REQUIRE(m[i] >= 0 && flt_in_range(s[i], -31, 30), FLT_ERR_RANGE);
    }
    return FLT_OK;
}

/* Checks a quantized activation range. */
static inline flt_status_t flt_check_act(int32_t act_min, int32_t act_max)
{
    FLT_REQUIRE(flt_in_range(act_min, -128, 127) && flt_in_range(act_max, -128, 127) &&
                    act_min <= act_max,
                FLT_ERR_RANGE);
    return FLT_OK;
}

#endif /* FLT_KERNELS_CHECK_COMMON_H */
