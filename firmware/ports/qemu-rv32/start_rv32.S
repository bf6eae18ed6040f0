/* start_rv32.S - entry of the QEMU riscv32 virt firmware (-bios none: QEMU jumps to _start in
 * machine mode). Sets the global pointer and the stack (top of the RAM budget, from the linker
 * script), then calls flt_rv32_reset (rv32_boot.h; port_rv32.c's runs the device loop, the
 * bare programs' (firmware/bare/bare_rv32.c) flt_bare_main). Interrupts stay globally disabled (mstatus.MIE = 0): the port sleeps with wfi, which
 * wakes on any interrupt enabled in mie even then, and services the UART by polling. */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, _estack
    call flt_rv32_reset
1:  wfi
    j 1b
