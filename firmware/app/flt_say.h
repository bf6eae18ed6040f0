/* flt_say.h - one line of text to the host over the port's link, for the firmware variants
 * whose output is text rather than the protocol (the self-test and the benchmark).
 *
 * Contract
 * - flt_app_say(text) writes the NUL-terminated `text` (without the NUL) with flt_port_write.
 *   The link is the only channel out, so a failed write has nowhere to be reported: it is
 *   dropped on purpose, and the run's result still reaches the host as the exit code
 *   (flt_port_exit). Needs port.h; no allocation; text is owned by the caller.
 */
#ifndef FLT_SAY_H
#define FLT_SAY_H

#include <stdint.h>

#include "port.h"

static inline void flt_app_say(const char *text)
{
    uint32_t n = 0;
    while (text[n] != '\0') {
        n++;
    }
    flt_status_t s = flt_port_write((const uint8_t *)text, n);
    (void)s; /* see the contract: nowhere to report it */
}

#endif /* FLT_SAY_H */
