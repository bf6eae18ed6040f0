/* port.h - the per-target layer the portable device loop (firmware/app) runs on.
 *
 * Contract
 * - One port per target family (firmware/ports/<name>/): qemu-mps2, qemu-rv32, native,
 *   arduino (real Cortex-M boards), esp-idf (ESP32 family). The app calls only these
 *   functions; everything target-specific (startup, UART/TCP, timers, storage) stays behind.
 * - Link bytes: flt_port_write sends len bytes to the host and returns when they are handed to
 *   the transport (blocking; FLT_ERR_STATE when the link is down). Received bytes arrive in a
 *   ring buffer filled by the RX interrupt (or a socket reader); flt_port_read_byte pops one
 *   (returns 1) or reports that none is waiting (returns 0). Bytes beyond the ring's capacity
 *   are dropped and counted (the protocol's CRC/sequence checks and the host's retransmission
 *   recover from a drop).
 * - flt_port_wait_event(timeout_ms) sleeps (wfi / poll) until a byte arrives or timeout_ms
 *   passes, whichever is first; it may return early (spurious wakeups are allowed).
 * - flt_port_millis: monotonic milliseconds since boot (wraps after 49 days; compare with
 *   unsigned subtraction).
 * - Checkpoint storage: one blob of at most FLT_PORT_CKPT_MAX bytes. flt_port_ckpt_read copies
 *   the stored blob into buf[0..cap-1] and sets *len; FLT_ERR_STATE when nothing is stored or
 *   the board has no persistent storage (the QEMU boards: a reset restarts from the factory
 *   model and the host resyncs it); FLT_ERR_NOMEM when cap is too small. flt_port_ckpt_write
 *   replaces it atomically where the medium allows; FLT_ERR_UNSUPPORTED without storage.
 *   The app adds its own magic and CRC: the port stores opaque bytes.
 * - flt_port_data: the device's local data blob (docs/boards.md "Data blob"), read-only,
 *   owned by the port (flash, a QEMU loader region or a file mapped by the native port);
 *   NULL with *len = 0 when the board has none.
 * - Sensor hook: flt_port_read_sample(values, label) hands the app one time step of the
 *   board's own data (docs/boards.md "Sensor hook"): values = FLT_APP_SAMPLE_CHANNELS int8
 *   values (fltiny_config.h), already normalised and quantized as the model's input (a port
 *   that reads physical units converts them with flt_app_quantize_sample, flt_device.h), and
 *   label = the application's label of that step (flt_sample.h: the class, or
 *   FLT_SAMPLE_UNLABELLED; regression: the targets). Returns 1 when it wrote a sample, 0 when
 *   none is waiting now, FLT_PORT_NO_SAMPLES when the board has no sample source at all (the
 *   app then stops asking). Non-blocking: the app calls it from its loop (at least every
 *   FLT_APP_SAMPLE_POLL_MS while it waits for the host) until it returns 0, and not while a
 *   round trains, so a source faster than that buffers its samples (a sensor FIFO, an ISR
 *   ring) or loses them. Samples come in time order; the port owns the buffers it reads from.
 *   Which port has what: the emulated ports replay a recording from their data region
 *   (firmware/ports/common/flt_recorded_sensor.h); the arduino and esp-idf ports have none
 *   (flt_no_sensor.h) unless the build brings the application's own source (`fltiny build
 *   --sensor FILE` defines FLT_APP_SENSOR and compiles FILE, which defines this function).
 *   A device with a valid data blob trains on the blob and never calls the hook.
 * - flt_port_exit(code): ends the program where that makes sense (semihosting or the virt test
 *   finisher under QEMU, exit() natively); on real boards it resets. Never returns.
 * - flt_port_free_ram: bytes of RAM not used by static data and the stack reserve (reported in
 *   HELLO); 0 when unknown.
 * - flt_port_boot_secret(out): 32 bytes of secret randomness, the same for every call in one
 *   boot, new at every boot, never sent and never derived from the link key: the seed of the
 *   device's own secrets (local-DP noise, privacy/local_dp.h; secure aggregation's device
 *   secret, app/flt_secagg_dev.h). Callers derive what they need
 *   from it with HKDF. From the board's TRNG: esp_fill_random (ESP-IDF), esp_random (Arduino
 *   ESP32); /dev/urandom on the native port; on QEMU, which models no TRNG, 32 bytes the
 *   emulator launcher (fltiny.devices.qemu) draws from os.urandom at each launch, writes
 *   owner-only to the fleet's working folder (removed with it) and loads 32 bytes below the
 *   data region (the bridge never reads them). FLT_OK, or
 *   FLT_ERR_UNSUPPORTED when the board has no source (other Arduino cores today; a QEMU board
 *   started without the seed): a device then refuses the rounds that need one.
 */
#ifndef FLT_PORT_H
#define FLT_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "flt_sample.h"

#ifndef FLT_PORT_CKPT_MAX
#define FLT_PORT_CKPT_MAX 4096u
#endif

#if defined(__GNUC__)
#define FLT_NORETURN __attribute__((noreturn))
#else
#define FLT_NORETURN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* argc/argv are the process arguments on the native port and ignored elsewhere (0, NULL). */
FLT_NODISCARD flt_status_t flt_port_init(int argc, char **argv);
FLT_NODISCARD flt_status_t flt_port_write(const uint8_t *buf, size_t len);
int flt_port_read_byte(uint8_t *byte);
void flt_port_wait_event(uint32_t timeout_ms);
uint32_t flt_port_millis(void);
FLT_NODISCARD flt_status_t flt_port_ckpt_read(uint8_t *buf, size_t cap, size_t *len);
FLT_NODISCARD flt_status_t flt_port_ckpt_write(const uint8_t *buf, size_t len);
const uint8_t *flt_port_data(size_t *len);
FLT_NORETURN void flt_port_exit(int code);
uint32_t flt_port_free_ram(void);
/* One sample of the board's own data (see the contract): 1 written, 0 none now,
 * FLT_PORT_NO_SAMPLES no source. */
#define FLT_PORT_NO_SAMPLES (-1)
int flt_port_read_sample(int8_t *values, flt_sample_label_t *label);
/* Bytes dropped because the RX ring was full (diagnostics). */
uint32_t flt_port_rx_dropped(void);
#define FLT_PORT_SECRET_SIZE 32u
FLT_NODISCARD flt_status_t flt_port_boot_secret(uint8_t out[FLT_PORT_SECRET_SIZE]);

#ifdef __cplusplus
}
#endif

#endif /* FLT_PORT_H */
