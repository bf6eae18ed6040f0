/* flt_seeded_secret.h - flt_port_boot_secret for the QEMU ports (port.h): QEMU models no TRNG,
 * so the emulator launcher (fltiny.devices.qemu) loads 32 random bytes of its own, drawn at
 * each launch, just below the board's data region (FLT_BOARD_DATA_ADDRESS - 32, an address no
 * section of the link uses). All zero (a board started without them): FLT_ERR_UNSUPPORTED.
 * Included once, by the port's C file. */
#ifndef FLT_SEEDED_SECRET_H
#define FLT_SEEDED_SECRET_H

#include <stdint.h>

#include "port.h"

flt_status_t flt_port_boot_secret(uint8_t out[FLT_PORT_SECRET_SIZE])
{
    const volatile uint8_t *seed =
        (const volatile uint8_t *)(uintptr_t)(FLT_BOARD_DATA_ADDRESS - FLT_PORT_SECRET_SIZE);
    uint8_t any = 0u;
    for (uint32_t i = 0; i < FLT_PORT_SECRET_SIZE; ++i) {
        out[i] = seed[i];
        any |= out[i];
    }
    return any != 0u ? FLT_OK : FLT_ERR_UNSUPPORTED;
}

#endif /* FLT_SEEDED_SECRET_H */
