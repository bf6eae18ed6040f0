/* bare_rv32.S - entry of a bare.h program on QEMU riscv32 virt (-bios none: QEMU jumps to
 * _start in machine mode): global pointer, stack (top of the RAM budget), then flt_bare_reset
 * (bare_rv32.c). Interrupts stay disabled. */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, _estack
    call flt_bare_reset
1:  j 1b
