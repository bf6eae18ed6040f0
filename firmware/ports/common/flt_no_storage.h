/* flt_no_storage.h - the checkpoint functions of port.h for a board without persistent storage.
 *
 * Contract
 * - Defines (not just declares) flt_port_ckpt_read and flt_port_ckpt_write as port.h says a
 *   board without storage answers: read gives FLT_ERR_STATE with *len = 0 (nothing stored),
 *   write gives FLT_ERR_UNSUPPORTED; neither touches buf. A reset then restarts from the
 *   factory head and the host resyncs the device with a FULL GLOBAL.
 * - Include it from exactly one source file of a port (after port.h), never from a header:
 *   it holds the one definition of both functions for the qemu-mps2, qemu-rv32 and arduino
 *   ports. Ports with storage (native, esp-idf) define their own.
 */
#ifndef FLT_NO_STORAGE_H
#define FLT_NO_STORAGE_H

#include "port.h"

flt_status_t flt_port_ckpt_read(uint8_t *buf, size_t cap, size_t *len)
{
    (void)buf;
    (void)cap;
    if (len) {
        *len = 0;
    }
    return FLT_ERR_STATE;
}

flt_status_t flt_port_ckpt_write(const uint8_t *buf, size_t len)
{
    (void)buf;
    (void)len;
    return FLT_ERR_UNSUPPORTED;
}

#endif /* FLT_NO_STORAGE_H */
