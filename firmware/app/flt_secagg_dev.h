/* flt_secagg_dev.h - the device loop's part of secure aggregation (docs/protocol.md "Secure
 * aggregation on the device link"): the round delta a TRAIN with flag SECAGG keeps, and the
 * answer to each SECAGG message the host sends, computed by secagg/client.h in static memory.
 *
 * Part of app/. Depends on secagg/ (client.h, msg.h, input.h, keys.h), proto/messages.h,
 * port.h (flt_port_boot_secret) and the generated fltiny_config.h / fltiny_model.h. Compiled to
 * nothing unless the build's FLT_APP_SECAGG is 1 (fltiny.build.project.secagg_fits: boards with
 * more than 64 kB of RAM, where it takes at most an eighth of it); without it the device loop
 * answers SECAGG messages and TRAIN SECAGG with an ERROR naming the reason.
 *
 * Contract
 * - flt_secagg_dev_init(device_id): a client with no session. The device secret is drawn at
 *   the first BEGIN: HKDF (keys.h, label "devs") of the port's boot secret (port.h
 *   flt_port_boot_secret: the board's TRNG; on QEMU the per-launch seed its launcher loads, which
 *   the bridge never sees). Never the link key, and not the local-DP key. A port without a boot
 *   secret: every BEGIN is refused (FLT_ERR_UNSUPPORTED). Cannot fail otherwise.
 * - flt_secagg_dev_keep(round, trained, held): keeps delta[i] = trained[i] - held[i]
 *   (float32, FLT_HEAD_PARAMS values) for the MASKED of `round`; replaces any earlier one.
 * - flt_secagg_dev_handle(msg, len, out, cap, &out_len, &why): one SECAGG payload from the
 *   host (kind byte + secagg/msg.h body; the link checked the kind) -> the reply payload in
 *   out (kind byte + body, *out_len bytes): BEGIN -> ADVERTISE, COHORT -> SHARES (dealt),
 *   SHARES (relayed) -> MASKED (the kept delta of the cohort's round quantized on the round's
 *   index set, input.h, and masked), UNMASK -> REVEAL. On failure nothing is written to the
 *   caller (*out_len 0), *why is a constant text naming the step and the status is the
 *   client's (client.h: the round ends for the device on most failures) or FLT_ERR_STATE
 *   when no delta of that round is kept, FLT_ERR_SHAPE for a cohort K above FLT_HEAD_PARAMS,
 *   FLT_ERR_UNSUPPORTED for a device kind from the host. The kept delta is wiped once masked.
 * - cap: FLT_SECAGG_DEV_OUT_CAP suffices for every reply; FLT_SECAGG_DEV_IN_CAP is the largest
 *   SECAGG payload the host sends for a full cohort (the loop's receive buffer must hold it).
 * - Static RAM: the client (client.h: 3,048 B at 16 members) + 8 x FLT_HEAD_PARAMS bytes
 *   (the kept delta, and the index set / values of MASKED in one array).
 */
#ifndef FLT_SECAGG_DEV_H
#define FLT_SECAGG_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "fltiny_config.h"
#include "head_init.h"

#ifndef FLT_APP_SECAGG
#define FLT_APP_SECAGG 0
#endif

#if FLT_APP_SECAGG
#include "secagg/msg.h"

#define FLT_SA_MAX_PEERS (FLT_SECAGG_MAX_COHORT - 1u)
#define FLT_SA_MAX2_(a, b) ((a) > (b) ? (a) : (b))
#define FLT_SECAGG_DEV_OUT_CAP                                                                 \
    (1u +                                                                                      \
     FLT_SA_MAX2_(FLT_SA_MAX2_(FLT_SA_ADVERTISE_SIZE,                                          \
                               FLT_SA_SHARES_HEADER + FLT_SA_SHARES_ENTRY * FLT_SA_MAX_PEERS), \
                  FLT_SA_MAX2_(FLT_SA_MASKED_HEADER + 4u * FLT_HEAD_PARAMS,                    \
                               FLT_SA_REVEAL_HEADER + FLT_SA_REVEAL_ENTRY * FLT_SA_MAX_PEERS)))
#define FLT_SECAGG_DEV_IN_CAP                                                              \
    (1u + FLT_SA_MAX2_(FLT_SA_COHORT_HEADER + FLT_SA_COHORT_ENTRY * FLT_SECAGG_MAX_COHORT, \
                       FLT_SA_SHARES_HEADER + FLT_SA_SHARES_ENTRY * FLT_SA_MAX_PEERS))

FLT_NODISCARD flt_status_t flt_secagg_dev_init(uint32_t device_id);
void flt_secagg_dev_keep(uint32_t round, const float *trained, const float *held);
FLT_NODISCARD flt_status_t flt_secagg_dev_handle(const uint8_t *msg, size_t len, uint8_t *out,
                                                 size_t cap, size_t *out_len, const char **why);
#endif

#endif /* FLT_SECAGG_DEV_H */
