/* flt_selftest.h - the on-target self-test (firmware built with FLT_APP_SELFTEST).
 *
 * Contract
 * - flt_selftest_run() runs the generated backbone on the inputs embedded in
 *   flt_selftest_data.h (rendered by fltiny.build.selftest from the host's results of the same
 *   C code) and compares every int8 output; then runs flt_round_run (backbone, training, delta,
 *   payload) on the embedded windows and compares the payload bytes and the loss bits.
 * - Returns the exit code, 0 only when everything is equal: 10 + i for a backbone output
 *   mismatch on input i (1 if invoke failed), 20 when the TRAIN mapping (flt_round_cfg_from_train)
 *   or the round fails, 21 for a payload length
 *   mismatch, 22 for different payload bytes, 23 for a different loss. It prints one line
 *   ("fltiny selftest: ok" or the failure) on the port's link.
 */
#ifndef FLT_SELFTEST_H
#define FLT_SELFTEST_H

int flt_selftest_run(void);

#endif /* FLT_SELFTEST_H */
