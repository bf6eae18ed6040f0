/* delta.h - the on-device delta pipeline: error feedback, top-k selection, int8 quantization.
 *
 * What it does
 *   After local training of the float32 head (a flat vector of n parameters) the device sends
 *   a sparse, int8-quantized version of its update and keeps what it did not send as an
 *   error-feedback residual (Deep Gradient Compression, Lin et al. 2018; EF-SGD, Karimireddy
 *   et al. 2019):
 *     1. acc[i]      = (local[i] - global[i]) + residual[i]            (float32, in this order)
 *     2. indices     = the k entries of largest |acc|, ties to the lower index, ascending order
 *     3. values      = symmetric quantization of acc[indices] to the integers -qmax..qmax
 *                      (per tensor or per block; qmax 127 is int8, 7 is 4-bit, 1 ternary)
 *     4. residual[i] = acc[i] - values[j] * scale   where i = indices[j]; acc[i] elsewhere
 *   The numpy oracle is tests/oracles/delta.py; tests/vectors/delta pins both bit for bit.
 *
 * Arithmetic (identical bits on every IEEE-754 binary32 target; needs FLT_EVAL_METHOD == 0
 * and -ffp-contract=off, both checked or set by the build)
 *   |x| is taken on the bit pattern (sign bit cleared), never through libm. Ordering by
 *   magnitude compares key(x) = bits(x) & 0x7fffffff as unsigned integers, which is the
 *   magnitude order for every finite float (+0 and -0 are equal).
 *   Quantization of a group g of chosen values (the whole set, or B consecutive ones):
 *     m     = max |v| over g                       (exact)
 *     scale = m / (float)qmax                      (one float32 division, round to nearest even)
 *     q     = 0 for all of g                       if scale == 0 (m == 0 or m / qmax underflows)
 *     q     = clamp(rne(v / scale), -qmax, qmax)   otherwise (float32 division; rne = round
 *                                                  half to even, implemented with integers)
 *     deq   = (float)q * scale                     (one float32 multiplication)
 *
 * Top-k algorithm and memory
 *   Radix selection on key(x): FLT_DELTA_RADIX_PASSES histogram passes over acc find the k-th
 *   largest key T and how many entries equal to T are needed; one more pass emits, in index
 *   order, every entry with key > T and the first ones with key == T. O(n) time, no heap and
 *   no scratch array: the stack holds one histogram of 2^FLT_DELTA_RADIX_BITS uint32 counts
 *   (1 KiB with the default 8 bits; define FLT_DELTA_RADIX_BITS=4 for 64 bytes and 8 passes).
 *   Whole pipeline RAM besides the model: one float[n] working buffer (the residual, updated
 *   in place), uint32[k] indices, int8[k] values, float[flt_delta_num_scales()] scales.
 *
 * k from a fraction
 *   flt_delta_k_from_ppm(n, ppm) = min(n, max(1, floor(n * ppm / 1e6))) for n >= 1, in exact
 *   integer arithmetic (ppm = parts per million, so 1% is 10000); 0 for n == 0.
 *
 * Buffers and failures
 *   The caller owns every buffer. Input arrays are never modified unless a parameter says
 *   "in/out". On failure outputs are unspecified, except where a function says otherwise.
 *   NULL pointers for non-empty arrays, k > n, unknown modes, block sizes outside
 *   1..FLT_DELTA_MAX_BLOCK and qmax above 127 give FLT_ERR_ARG; a non-finite acc gives
 *   FLT_ERR_NONFINITE.
 */
#ifndef FLT_DELTA_H
#define FLT_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"

#ifndef FLT_DELTA_RADIX_BITS
#define FLT_DELTA_RADIX_BITS 8
#endif

/* Largest block size of per-block quantization (the payload stores it in 16 bits). */
#define FLT_DELTA_MAX_BLOCK 65535u

typedef enum {
    FLT_QUANT_TENSOR = 0, /* one scale for all k values */
    FLT_QUANT_BLOCK = 1   /* one scale per block of block_size consecutive chosen values */
} flt_quant_mode_t;

/* A sparse int8-quantized delta. The struct does not own its arrays. */
typedef struct {
    uint32_t n; /* dense length */
    uint32_t k; /* number of chosen entries, 0..n */
    flt_quant_mode_t mode;
    uint32_t block_size; /* 1..FLT_DELTA_MAX_BLOCK in FLT_QUANT_BLOCK mode, 0 in tensor mode */
    uint32_t *indices;   /* k entries, strictly increasing, each < n */
    int8_t *values;      /* k entries in [-127, 127] */
    float *scales;       /* flt_delta_num_scales(k, mode, block_size) entries, finite, >= +0 */
} flt_sparse_delta_t;

typedef struct {
    uint32_t k; /* number of entries to send, 0..n */
    flt_quant_mode_t mode;
    uint32_t block_size; /* used in FLT_QUANT_BLOCK mode only */
    int error_feedback;  /* nonzero: keep the residual; 0: residual ignored and zeroed */
    uint32_t qmax;       /* largest quantized magnitude, 1..127 (0: 127, int8) */
} flt_delta_config_t;

/* qmax of a value width in bits: 2^(bits-1) - 1 for 2 <= bits <= 8 (8 -> 127, 4 -> 7,
 * 2 -> 1); 0 for any other width. Never fails. */
uint32_t flt_delta_qmax_of_bits(uint32_t bits);

/* k = min(n, max(1, floor(n * ppm / 1000000))) for n >= 1; 0 for n == 0. Never fails. */
uint32_t flt_delta_k_from_ppm(uint32_t n, uint32_t ppm);

/* Number of scales: 0 if k == 0; 1 in tensor mode; ceil(k / block_size) in block mode
 * (0 if block_size == 0, an invalid configuration). Never fails. */
uint32_t flt_delta_num_scales(uint32_t k, flt_quant_mode_t mode, uint32_t block_size);

/* acc[i] = (local[i] - global[i]) + residual[i]; residual may be NULL (treated as zero, the
 * addition is then skipped). acc may alias residual (in-place). FLT_ERR_NONFINITE if some acc
 * entry is inf or NaN (acc is fully written anyway). */
FLT_NODISCARD flt_status_t flt_delta_accumulate(const float *local, const float *global,
                                                const float *residual, float *acc, uint32_t n);

/* Writes the k indices of largest |acc| (ties: lower index first) to indices[0..k-1] in
 * ascending order. FLT_ERR_ARG if k > n; FLT_ERR_NONFINITE if acc holds inf or NaN. */
FLT_NODISCARD flt_status_t flt_delta_topk(const float *acc, uint32_t n, uint32_t k,
                                          uint32_t *indices);

/* Quantizes acc[indices[j]] for j < k into values[j] and scales[] as described above, with
 * qmax = 127. indices must be < n (checked: FLT_ERR_RANGE). FLT_ERR_NONFINITE for a
 * non-finite value. */
FLT_NODISCARD flt_status_t flt_delta_quantize(const float *acc, uint32_t n, const uint32_t *indices,
                                              uint32_t k, flt_quant_mode_t mode,
                                              uint32_t block_size, int8_t *values, float *scales);
/* The same with qmax in 1..127 (else FLT_ERR_ARG). */
FLT_NODISCARD flt_status_t flt_delta_quantize_q(const float *acc, uint32_t n,
                                                const uint32_t *indices, uint32_t k,
                                                flt_quant_mode_t mode, uint32_t block_size,
                                                uint32_t qmax, int8_t *values, float *scales);

/* Checks the invariants of flt_sparse_delta_t (the ones listed in the struct); FLT_OK or
 * FLT_ERR_ARG (structure), FLT_ERR_RANGE (index/value/negative scale), FLT_ERR_NONFINITE. */
FLT_NODISCARD flt_status_t flt_delta_check(const flt_sparse_delta_t *delta);

/* One round on the device. work is in/out, n floats: on entry the residual of the previous
 * round (all zeros in the first round; ignored when error_feedback is 0), on exit the new
 * residual (all zeros when error_feedback is 0). out->indices / values / scales must point to
 * caller buffers of k, k and flt_delta_num_scales(...) entries; out->n, k, mode, block_size
 * are written. On failure work is unspecified (reset it to zeros). */
FLT_NODISCARD flt_status_t flt_delta_compress(const flt_delta_config_t *cfg, const float *local,
                                              const float *global, float *work, uint32_t n,
                                              flt_sparse_delta_t *out);

/* dense[0..n-1] = dequantized delta (zeros off the chosen indices). Validates delta first
 * (flt_delta_check); FLT_ERR_SHAPE if delta->n != n. */
FLT_NODISCARD flt_status_t flt_delta_dequantize(const flt_sparse_delta_t *delta, float *dense,
                                                uint32_t n);

/* params[indices[j]] += values[j] * scale (float32 multiply, then float32 add). Validates
 * delta first; FLT_ERR_SHAPE if delta->n != n; params untouched on failure. */
FLT_NODISCARD flt_status_t flt_delta_apply(const flt_sparse_delta_t *delta, float *params,
                                           uint32_t n);

#endif /* FLT_DELTA_H */
