/* flt_device.h - the portable device loop: HELLO, GLOBAL, TRAIN, DELTA, checkpoint, repeat.
 *
 * Contract
 * - flt_app_main(argc, argv) is what every port's entry point calls (main, app_main, setup);
 *   it returns only on a fatal port error (the port then exits or resets). With
 *   FLT_APP_SELFTEST defined it runs the on-target self-test instead (flt_selftest.h) and
 *   returns its exit code.
 * - The loop (docs/boards.md "Device loop"):
 *     boot: flt_port_init; parse the data blob (flt_data.h; its device id becomes the protocol
 *           device id, else FLT_DEVICE_ID_DEFAULT); read the checkpoint (model version, last
 *           committed round, head parameters, error-feedback residual) when the port has
 *           storage, else start from the factory head with model version 0;
 *     HELLO: name, capabilities, firmware version, model hash, model version, head size, free
 *           RAM; retransmitted (stop-and-wait, link.h) until acknowledged;
 *     GLOBAL: FULL replaces the parameters; DELTA applies to the current version only (else an
 *           ERROR asks the host for a FULL);
 *     TRAIN: flt_round_run (flt_round.h; settings from flt_round_cfg_from_train) on the
 *           blob's personal test split (its last n_test windows, evaluated, never trained on)
 *           and up to FLT_APP_MAX_WINDOWS of the most recent training windows before it, then
 *           a DELTA message carrying the personal metric. The new residual, the drift state
 *           (TRAIN flag DRIFT) and the served model (flag PERSONAL: the round's local model)
 *           are committed only when the host acknowledges the DELTA, so a reset between any
 *           two steps leaves a consistent state and a repeated TRAIN gives the same DELTA
 *           bytes. Only the parameters and the residual are checkpointed: after a boot the
 *           drift state is zero and the device serves the global model until its next
 *           acknowledged round (the host tracks the same).
 *   Protocol errors are answered by the link layer (ACK/NACK); application errors by ERROR
 *   messages carrying a flt_status_t code.
 * - All buffers are static and sized by the generated headers (fltiny_config.h, head_init.h,
 *   the backbone's header): no allocation.
 */
#ifndef FLT_DEVICE_H
#define FLT_DEVICE_H

#ifdef __cplusplus
extern "C" {
#endif

int flt_app_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* FLT_DEVICE_H */
