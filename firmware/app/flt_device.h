/* flt_device.h - the portable device loop: HELLO, GLOBAL, TRAIN, DELTA (SECAGG), checkpoint,
 * repeat.
 *
 * Contract
 * - flt_app_main(argc, argv) is what every port's entry point calls (main, app_main, setup);
 *   it returns only on a fatal port error (the port then exits or resets). With
 *   FLT_APP_SELFTEST defined it runs the on-target self-test instead (flt_selftest.h) and
 *   returns its exit code.
 * - The loop (docs/boards.md "Device loop"):
 *     boot: flt_port_init; parse the data blob (flt_data.h; its device id becomes the protocol
 *           device id, else a recording's in the same region, flt_recording.h, else
 *           FLT_DEVICE_ID_DEFAULT); read the checkpoint (model version, last
 *           committed round, head parameters, error-feedback residual) when the port has
 *           storage, else start from the factory head with model version 0;
 *     HELLO: name, capabilities, firmware version, model hash, model version, head size, free
 *           RAM; retransmitted (stop-and-wait, link.h) until acknowledged;
 *     GLOBAL: FULL replaces the parameters; DELTA applies to the current version only; a
 *           DELTA to the version the device holds already (model_version equal to its own,
 *           not 0) is acknowledged and changes nothing: a host that restarted sends again the
 *           GLOBAL it had sent before its crash, and a second apply would move the model. A
 *           GLOBAL that cannot be applied (a FULL of the wrong size, a DELTA from another
 *           version or one that does not decode or apply) reverts the device to its factory
 *           model: the factory head (head_init.h) becomes its global model with version 0
 *           (checkpointed), it serves that, and its ERROR says "serving the factory model";
 *           until a GLOBAL applies, a TRAIN is answered with an ERROR (FLT_ERR_STATE) asking
 *           for a FULL;
 *     DISABLE (docs/protocol.md): disabled 1 stops training: every TRAIN is answered with an
 *           ERROR FLT_ERR_STATE "training disabled by the host (DISABLE) ..." and the device
 *           serves the factory head; a GLOBAL still applies (kept, not served); disabled 0
 *           (ENABLE) resumes training and serving from the model it holds (global, or the
 *           personal model of its last PERSONAL round). Not checkpointed: a boot starts
 *           enabled and the host disables the device again after its HELLO;
 *     self-check: the first TRAIN after a GLOBAL applied whose flags carry a self-check drop
 *           D > 0 (bits 16-23, hundredths, docs/protocol.md) first runs flt_round_self_check
 *           (flt_round.h): the new global model and the factory head (head_init.h, in flash:
 *           no RAM for a copy of the model served before) on the personal test split. When
 *           the global model is worse by more than D (accuracy lower, MAE higher), the device
 *           reverts to its factory model exactly as after a GLOBAL it cannot apply (the
 *           factory head becomes its global model, version 0, served, checkpointed; TRAIN is
 *           answered with ERROR FLT_ERR_STATE asking for a FULL until a GLOBAL applies),
 *           trains nothing, and answers this TRAIN with ERROR FLT_ERR_STATE "self-check failed,
 *           serving the factory model: global=G factory=F drop=D n=N (per mille); send FULL"
 *           (the metrics in thousandths, rounded). Its round state (residual, drift, personal
 *           model) is unchanged. A check that passes, is off (D 0) or cannot run changes
 *           nothing: the round that follows is byte for byte the one without it, and the host
 *           recomputes a failed check from the same inputs (the same C), so both outcomes are
 *           replayable. A repeated TRAIN of the same round does not check again;
 *     TRAIN: flt_round_run (flt_round.h; settings from flt_round_cfg_from_train) on the
 *           blob's personal test split (its last n_test windows, evaluated, never trained on)
 *           and up to FLT_APP_MAX_WINDOWS of the most recent training windows before it, then
 *           a DELTA message carrying the personal metric. The new residual, the drift state
 *           (TRAIN flag DRIFT) and the served model (flag PERSONAL: the round's local model)
 *           are committed only when the host acknowledges the DELTA, so a reset between any
 *           two steps leaves a consistent state and a repeated TRAIN gives the same DELTA
 *           bytes. The DELTA stays in its buffer until the next round trains: the same
 *           TRAIN again (byte for byte) while the device holds the model version it trained
 *           from is answered with that same DELTA, whether or not its first copy was
 *           acknowledged, and its ACK commits the same state again (a no-op). So a host that
 *           was killed and resumes (docs/protocol.md "Host restart") re-runs its interrupted
 *           round and gets what the uninterrupted run got. Another TRAIN for the round last
 *           committed is answered with ERROR FLT_ERR_DUPLICATE "round already delivered".
 *           The kept DELTA is not checkpointed (after a boot: that ERROR).
 *           Only the parameters and the residual are checkpointed: after a boot the
 *           drift state is zero and the device serves the global model until its next
 *           acknowledged round (the host tracks the same).
 *     secure aggregation (FLT_APP_SECAGG 1, flt_secagg_dev.h; docs/protocol.md "Secure
 *           aggregation on the device link"): a TRAIN with flag SECAGG (and NO_FEEDBACK, else
 *           ERROR FLT_ERR_RANGE) runs the round as above, keeps its delta (trained minus held
 *           parameters) and sends a DELTA with an empty body; each SECAGG message from the
 *           host is answered with the next step's SECAGG reply (BEGIN -> ADVERTISE, COHORT ->
 *           SHARES, SHARES -> MASKED of the kept delta, UNMASK -> REVEAL) from its own outbox
 *           slot, or with an ERROR naming the step. HELLO sets capability FLT_CAP_SECAGG. With
 *           FLT_APP_SECAGG 0 (built without --secagg, or 64 kB of RAM or less) SECAGG and
 *           TRAIN SECAGG are answered with ERROR FLT_ERR_UNSUPPORTED "secure aggregation is
 *           not built into this firmware ...". The secagg state is not checkpointed: a boot
 *           starts a new session.
 *     round state left out (FLT_APP_FEEDBACK, FLT_APP_DRIFT or FLT_APP_PERSONAL 0: a RAM
 *           budget, docs/boards.md "RAM budget"): a TRAIN without NO_FEEDBACK, with DRIFT or
 *           with PERSONAL (respectively) is answered with ERROR FLT_ERR_UNSUPPORTED naming
 *           what is not built in, and trains nothing.
 * - RAM: the buffers of one round (flt_round.h's ws) and of a GLOBAL delta's decoding share
 *   their storage with the link's reassembled message (rx_msg): a handler copies what it keeps
 *   out of rx_msg before it uses them (on_train copies the TRAIN first).
 *   Protocol errors are answered by the link layer (ACK/NACK); application errors by ERROR
 *   messages carrying a flt_status_t code. The link layer sends no ACK for an accepted TRAIN
 *   or GLOBAL of at most FLT_PROTO_ANSWERED_CHUNKS chunks (link.h flt_proto_ack_mode): the
 *   DELTA or ERROR answering the TRAIN confirms both, and a TRAIN after a lost host frame is
 *   NACKed (FLT_ERR_ORDER) before it reaches on_train, so the device never trains from a
 *   GLOBAL it did not get whole.
 * - Data: a valid data blob in the port's data region (flt_port_data) wins: the device trains
 *   on it and never asks the sensor hook. Without one, the device collects its own windows:
 *   every turn of the loop it reads the samples the port's sensor hook has
 *   (flt_port_read_sample, port.h) into the window store (flt_window_store.h: FLT_APP_STORE_
 *   WINDOWS windows of FLT_APP_WINDOW_LEN steps, one cut every FLT_APP_WINDOW_STRIDE steps),
 *   waking at least every FLT_APP_SAMPLE_POLL_MS while it waits; a TRAIN then runs on the
 *   store's view (flt_round_run_train): its last flt_data_n_test(count) windows are the
 *   personal test split, up to FLT_APP_MAX_WINDOWS of the most recent windows before them
 *   train, so windows that arrived since the last round take part in the next one. A TRAIN
 *   before the first window -> ERROR FLT_ERR_STATE; a board with neither (or with no store,
 *   FLT_APP_STORE_WINDOWS 0) -> ERROR FLT_ERR_STATE at boot and for every TRAIN. With a sensor
 *   the windows change between a TRAIN and its repetition, so a repeated TRAIN of an
 *   unacknowledged round trains on the store as it is then (no replay applies to such a
 *   device: the host never holds its data).
 * - STATUS from the host is answered with a STATUS text of space-separated fields:
 *     "blob serving=M training=E count=N test=T"                   (a data blob)
 *     "store serving=M training=E count=N capacity=C test=T samples=S windows=W stored=K
 *      rejected=R dropped=D"                         (collecting; "none ..." with no source)
 *   then, with FLT_APP_STACK_WATCH (the QEMU boards), "stack=H": the deepest stack use since
 *   boot in bytes (flt_bench.h's painting, done first thing in flt_app_main).
 *   M = the model it serves (flt_device_served_model): "factory" (the factory head: disabled,
 *   reverted, or never given a GLOBAL), "global" or "personal"; E = "on", or "off" while
 *   disabled; count = windows held, test = its personal test split, then
 *   flt_window_store_stats_t. A field that would not fit in FLT_PROTO_MAX_TEXT is left out
 *   whole (never cut).
 * - flt_device_served_model() returns the P head parameters the device serves now (for a
 *   port's own inference): flt_head_init while disabled or reverted, else the personal model
 *   of its last acknowledged PERSONAL round, else the global parameters. Read only; valid
 *   until the next message is handled.
 * - flt_app_quantize_sample(raw, values): FLT_APP_SAMPLE_CHANNELS readings in the units the
 *   model was trained on -> the int8 values the sensor hook hands over (flt_sample_quantize
 *   with the bundle's normalisation and input quantization, head_init.h); defined when the
 *   normalisation is per channel (FLT_INPUT_CHANNELS == FLT_APP_SAMPLE_CHANNELS).
 * - All buffers are static and sized by the generated headers (fltiny_config.h, head_init.h,
 *   the backbone's header): no allocation.
 * - No status is dropped silently: a failure the loop recovers from by itself (a link write
 *   while the link is down, a checkpoint write, a message the outbox refused) is counted in
 *   flt_device_diag() (for a debugger, a port's diagnostics or a test) with the status of the
 *   latest one. A board without storage (FLT_ERR_UNSUPPORTED from the checkpoint write) is
 *   not a failure and is not counted.
 */
#ifndef FLT_DEVICE_H
#define FLT_DEVICE_H

#include <stdint.h>

#include "core/flt_status.h"
#include "flt_window_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Failures the device loop recovered from (see the contract); all zero after boot. */
typedef struct {
    uint32_t link_write_errors; /* flt_port_write failed (link down): retransmission resends */
    uint32_t ckpt_write_errors; /* flt_port_ckpt_write failed: a reset loses the last state */
    uint32_t outbox_errors;     /* the outbox refused a message: it is dropped, the host resyncs */
    uint32_t store_errors;      /* the window store refused a sample (the sample is lost) */
    flt_status_t last_error;    /* the status of the latest counted failure; FLT_OK if none */
    flt_window_store_stats_t store; /* the window store's counters (all 0 without a store) */
} flt_device_diag_t;

int flt_app_main(int argc, char **argv);
const flt_device_diag_t *flt_device_diag(void);
const float *flt_device_served_model(void);
void flt_app_quantize_sample(const float *raw, int8_t *values);

#ifdef __cplusplus
}
#endif

#endif /* FLT_DEVICE_H */
