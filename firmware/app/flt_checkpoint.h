/* flt_checkpoint.h - the device's checkpoint record: what survives a reboot on a board with
 * storage (the model version, the last committed round, the global parameters and the
 * error-feedback residual), as the bytes the port stores (flt_port_ckpt_write / _read).
 *
 * Layout, little-endian, FLT_CKPT_SIZE(n) = 20 + 8 n bytes for a head of n parameters:
 *   0  "FLTC" (u32 0x43544C46)   4  u32 model_version   8  u32 committed round
 *   (FLT_CKPT_NO_ROUND: no round committed yet)   12 u32 n   16 u32 CRC-32 (IEEE) of bytes
 *   20 .. end   20 f32 params[n]   20 + 4 n  f32 residual[n]
 * Not checkpointed: the drift (FedDyn) state and the personal model; a boot zeroes them
 * (flt_device.h).
 *
 * Contract
 * - flt_ckpt_encode(ck, n, buf, cap) writes the record of *ck (params and residual: n floats
 *   each) into buf[0 .. FLT_CKPT_SIZE(n) - 1]. Failures: NULL -> FLT_ERR_ARG; n == 0 or
 *   n > FLT_CKPT_MAX_PARAMS -> FLT_ERR_ARG; cap < FLT_CKPT_SIZE(n) -> FLT_ERR_NOMEM.
 * - flt_ckpt_decode(buf, len, n, ck) reads a record for a head of n parameters into *ck
 *   (ck->params and ck->residual point to n floats each, caller-owned), checking in this order:
 *   NULL -> FLT_ERR_ARG; len != FLT_CKPT_SIZE(n) -> FLT_ERR_TRUNCATED (shorter) or
 *   FLT_ERR_OVERSIZE (longer); magic -> FLT_ERR_FORMAT; the record's n != n -> FLT_ERR_SHAPE;
 *   CRC -> FLT_ERR_CHECKSUM; a non-finite float -> FLT_ERR_NONFINITE. It writes *ck (the
 *   numbers and both arrays) only on FLT_OK: a record that fails leaves the caller's state as
 *   it was, and the device starts from its factory head.
 * - decode(encode(x)) == x for every finite x, and encode(decode(b)) == b for every b that
 *   decodes (the fuzz harness firmware/fuzz/checkpoint.c checks both).
 */
#ifndef FLT_CHECKPOINT_H
#define FLT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"

#define FLT_CKPT_MAGIC 0x43544C46u /* "FLTC" */
#define FLT_CKPT_HEADER 20u
#define FLT_CKPT_NO_ROUND 0xFFFFFFFFu
#define FLT_CKPT_MAX_PARAMS 0x0FFFFFFFu               /* FLT_CKPT_SIZE stays within 32 bits */
#define FLT_CKPT_SIZE(n) (FLT_CKPT_HEADER + 8u * (n)) /* usable in #if */

typedef struct {
    uint32_t model_version;
    uint32_t committed_round; /* FLT_CKPT_NO_ROUND: none yet */
    float *params;            /* n floats */
    float *residual;          /* n floats */
} flt_ckpt_t;

FLT_NODISCARD flt_status_t flt_ckpt_encode(const flt_ckpt_t *ck, uint32_t n, uint8_t *buf,
                                           size_t cap);
FLT_NODISCARD flt_status_t flt_ckpt_decode(const uint8_t *buf, size_t len, uint32_t n,
                                           flt_ckpt_t *ck);

#endif /* FLT_CHECKPOINT_H */
