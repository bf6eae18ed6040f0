/* flt_status.h - the one status type of the fltiny runtime.
 *
 * Part of core/ (with flt_bits.h and flt_bytes.h), the base every component includes as
 * "core/flt_status.h". fltiny/native/status.py reads the X-macro list below.
 *
 * Contract
 * - Every fallible runtime function returns flt_status_t; FLT_OK (0) is success.
 *   Such functions are declared FLT_NODISCARD so a dropped error is a compiler warning
 *   (and, with -Werror, a build failure).
 * - On failure a function leaves its output buffers in an unspecified state unless its
 *   own header says otherwise; inputs are never modified.
 * - flt_status_str() maps a status to a constant string (never NULL, "unknown status"
 *   for values outside the enum). The enum and the strings come from one X-macro list,
 *   so they cannot drift apart.
 * - No allocation, no global state besides nothing: this header is safe on any target.
 */
#ifndef FLT_STATUS_H
#define FLT_STATUS_H

#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define FLT_NODISCARD __attribute__((warn_unused_result))
#else
#define FLT_NODISCARD
#endif

/* X(name, value, text) */
#define FLT_STATUS_LIST(X)                                        \
    X(FLT_OK, 0, "ok")                                            \
    X(FLT_ERR_ARG, 1, "invalid argument")                         \
    X(FLT_ERR_SHAPE, 2, "shape mismatch")                         \
    X(FLT_ERR_RANGE, 3, "value out of range")                     \
    X(FLT_ERR_TRUNCATED, 4, "input truncated")                    \
    X(FLT_ERR_OVERSIZE, 5, "input larger than the buffer allows") \
    X(FLT_ERR_FORMAT, 6, "malformed input")                       \
    X(FLT_ERR_UNSUPPORTED, 7, "unsupported operation or option")  \
    X(FLT_ERR_NOMEM, 8, "output buffer too small")                \
    X(FLT_ERR_NONFINITE, 9, "non-finite value")                   \
    X(FLT_ERR_CHECKSUM, 10, "checksum or tag mismatch")           \
    X(FLT_ERR_STATE, 11, "operation not valid in this state")     \
    X(FLT_ERR_AUTH, 12, "authentication tag mismatch")            \
    X(FLT_ERR_REPLAY, 13, "replayed or stale sequence number")    \
    X(FLT_ERR_DUPLICATE, 14, "duplicate frame")                   \
    X(FLT_ERR_ORDER, 15, "chunk out of order or missing")

#define FLT_STATUS_ENUM_ITEM(name, value, text) name = value,
typedef enum { FLT_STATUS_LIST(FLT_STATUS_ENUM_ITEM) FLT_STATUS_COUNT } flt_status_t;
#undef FLT_STATUS_ENUM_ITEM

const char *flt_status_str(flt_status_t status);

/* Return early with the status of `expr` when it is not FLT_OK. */
#define FLT_TRY(expr)                     \
    do {                                  \
        flt_status_t flt_try_s_ = (expr); \
        if (flt_try_s_ != FLT_OK) {       \
            return flt_try_s_;            \
        }                                 \
    } while (0)

/* Return `status` when `cond` is false. */
#define FLT_REQUIRE(cond, status) \
    do {                          \
        if (!(cond)) {            \
            return (status);      \
        }                         \
    } while (0)

#endif /* FLT_STATUS_H */
