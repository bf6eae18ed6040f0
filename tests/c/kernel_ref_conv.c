/* kernel_ref_conv.c - the reference conv kernel (firmware/runtime/kernels/conv.c) compiled
 * under the name ref_flt_conv_s8, so that a bare program can link it beside the board's target
 * variant (which defines flt_conv_s8) and compare the two (tests/c/kernel_variants_target.c).
 * The rename covers conv.h's declaration too; flt_conv_prepare is conv_prepare.c's, shared. */
#define flt_conv_s8 ref_flt_conv_s8
#include "kernels/conv.c"
