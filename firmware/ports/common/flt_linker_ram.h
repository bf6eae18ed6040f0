/* flt_linker_ram.h - flt_port_free_ram of port.h for a bare-metal board whose linker script
 * defines _ebss (end of .bss) and _estack (top of RAM, where the stack starts).
 *
 * Contract
 * - Defines (not just declares) flt_port_free_ram: the bytes between the end of .bss plus the
 *   stack reserve (FLT_BOARD_STACK_BYTES, fltiny_config.h) and the top of RAM; 0 when the
 *   reserve does not fit. Reads two linker symbols, no state, cannot fail.
 * - Include it from exactly one source file of a port (after port.h and fltiny_config.h),
 *   never from a header: it holds the one definition for the qemu-mps2 and qemu-rv32 ports.
 */
#ifndef FLT_LINKER_RAM_H
#define FLT_LINKER_RAM_H

#include <stdint.h>

#include "fltiny_config.h"
#include "port.h"

extern uint32_t _ebss, _estack;

uint32_t flt_port_free_ram(void)
{
    uint32_t used_end = (uint32_t)(uintptr_t)&_ebss;
    uint32_t top = (uint32_t)(uintptr_t)&_estack;
    return top > used_end + FLT_BOARD_STACK_BYTES ? top - used_end - FLT_BOARD_STACK_BYTES : 0u;
}

#endif /* FLT_LINKER_RAM_H */
