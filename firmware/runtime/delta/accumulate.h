/* accumulate.h - batched decode-and-accumulate of delta payloads (the aggregator's FedAvg sum).
 *
 * What it does
 *   Decodes N delta payloads (payload.h, version 3) in one call, with exactly the rules of
 *   flt_payload_decode, and adds each accepted payload's dequantized delta, times its weight
 *   (its example count), into one float64 running sum of the model's n parameters:
 *       sum[idx[j]] += (double)w * (double)(float)(q[j] * scale(j))
 *   The value is the float32 product flt_delta_dequantize computes, so the sum equals the
 *   float64 sum of the dense float32 deltas the host would otherwise decode one by one.
 *   In the same pass it measures each payload's squared L2 norm (float64 sum of the squared
 *   float32 values), which the host's update validation needs.
 *   Memory is O(n) whatever N is: the sum and one payload's decode scratch. No allocation.
 *   Host binding: fltiny/native/accumulate.py; the strategies' accumulating path uses it.
 *
 * Buffers (all owned by the caller; flt_accum_init stores the pointers, they must outlive acc)
 *   sum      n doubles, zeroed by flt_accum_init, then only added to
 *   indices  k_max uint32_t  } decode scratch of one payload; k_max and scales_max are the
 *   values   k_max int8_t    } decoder's limits (a payload with more entries or scales is
 *   work     k_max float     } rejected with FLT_ERR_OVERSIZE); k_max = n accepts all
 *   scales   scales_max float}
 *
 * Batch contract (flt_accum_add)
 *   Payload i is data[i][0 .. lens[i]-1] (data[i] may be NULL only when lens[i] == 0) with
 *   weight weights[i]. Every payload is judged on its own; status[i] receives its outcome:
 *     FLT_OK               decoded, its weighted values added, weight_sum and accepted updated
 *     any decode status    exactly flt_payload_decode's status for these bytes and limits
 *                          (payload.h, "Failures"): nothing of it is added
 *     FLT_ERR_SHAPE        a valid payload whose n is not the model's n
 *     FLT_ERR_NONFINITE    a value q * scale overflows float32, or the weight is inf or NaN
 *     FLT_ERR_RANGE        the weight is negative or above FLT_ACCUM_MAX_WEIGHT
 *   A rejected payload changes nothing but status[i] (and sq_norms[i] = -1): one bad payload
 *   never spoils the batch. sq_norms may be NULL. weights == NULL measures only: every
 *   payload is validated and measured, nothing is added (a scan before deciding which to add).
 *   Return value: FLT_OK when the call was well formed (whatever the payloads' statuses),
 *   FLT_ERR_ARG for a NULL acc, data, lens or status with count > 0, or an acc not set up by
 *   flt_accum_init; then nothing was read or written.
 *
 * Range argument (float64, no integer accumulation)
 *   |value| <= 127 * FLT_MAX < 4.4e40 (finite by the check above) and 0 <= w <= 2^53, so each
 *   term is below 3.9e56 and a sum of at most 2^32 payloads per entry stays below 1.7e66:
 *   finite. A squared norm is at most 2^32 * (4.4e40)^2 < 8.4e90: finite.
 */
#ifndef FLT_ACCUMULATE_H
#define FLT_ACCUMULATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "payload.h"

#define FLT_ACCUM_MAX_WEIGHT 9007199254740992.0 /* 2^53: every integer count is exact */

typedef struct {
    double *sum; /* n running sums */
    uint32_t n;
    uint32_t *indices; /* decode scratch, k_max entries */
    int8_t *values;
    float *work; /* the dequantized values of the payload being added */
    float *scales;
    flt_payload_limits_t limits; /* n_max = n, k_max, scales_max */
    double weight_sum;           /* sum of the accepted payloads' weights */
    uint32_t accepted;           /* payloads added */
    uint32_t rejected;           /* payloads refused by adding calls (status != FLT_OK) */
} flt_accum_t;

/* Sets up acc over the caller's buffers and zeroes sum and the counters. FLT_ERR_ARG for
 * NULL pointers, n == 0, k_max == 0 or scales_max == 0 (acc is then unusable). */
FLT_NODISCARD flt_status_t flt_accum_init(flt_accum_t *acc, double *sum, uint32_t n,
                                          uint32_t *indices, int8_t *values, float *work,
                                          uint32_t k_max, float *scales, uint32_t scales_max);

/* Decodes, validates, measures and (weights != NULL) adds count payloads; see "Batch
 * contract" above. Calls may be repeated: the sum keeps running. */
FLT_NODISCARD flt_status_t flt_accum_add(flt_accum_t *acc, const uint8_t *const *data,
                                         const size_t *lens, const double *weights, uint32_t count,
                                         int32_t *status, double *sq_norms);

#endif /* FLT_ACCUMULATE_H */
