/* flt_recorded_sensor.h - flt_port_read_sample of port.h as a recorded-data source: the
 * samples of a recording (flt_recording.h, docs/boards.md "Recording") in the port's data
 * region (flt_port_data: the QEMU boards' loader region, the native board's --data file),
 * replayed through the sensor hook at the recording's pace, in place of a sensor.
 *
 * Contract
 * - Defines (not just declares) flt_port_read_sample. On its first call it parses
 *   flt_port_data() as a recording and starts the clock (t0 = flt_port_millis()). Without a
 *   valid recording whose geometry is the firmware's (channels == FLT_APP_SAMPLE_CHANNELS,
 *   target kind and count == FLT_APP_TARGET_KIND / FLT_APP_N_TARGETS) it returns
 *   FLT_PORT_NO_SAMPLES, then and ever after (a data blob in the region is the app's business).
 * - Pace: sample i is due once (flt_port_millis() - t0) * samples_per_second / 1000 > i
 *   (64-bit product, no overflow); samples_per_second 0: every sample is due at once. Each
 *   call returns the next due sample (1) or 0 (none due, or the recording is over: it is
 *   replayed once, never looped, so no window reaches the store twice).
 * - Include it from exactly one source file of a port (after port.h and fltiny_config.h), and
 *   only when FLT_APP_SENSOR is not defined (then the application brings its own source).
 *   State: the parsed header and a cursor, static; no allocation.
 */
#ifndef FLT_RECORDED_SENSOR_H
#define FLT_RECORDED_SENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "flt_recording.h"
#include "fltiny_config.h"
#include "port.h"

static flt_recording_t flt_rec_source;
static int flt_rec_state; /* 0: not opened yet, 1: replaying, -1: no recording */
static uint32_t flt_rec_next;
static uint32_t flt_rec_t0;

int flt_port_read_sample(int8_t *values, flt_sample_label_t *label)
{
    if (flt_rec_state == 0) {
        size_t len = 0;
        const uint8_t *p = flt_port_data(&len);
        flt_rec_state = -1;
        if (p != NULL && flt_recording_parse(p, len, &flt_rec_source) == FLT_OK &&
            flt_rec_source.channels == FLT_APP_SAMPLE_CHANNELS &&
            flt_rec_source.target_kind == FLT_APP_TARGET_KIND &&
            flt_rec_source.n_targets == FLT_APP_N_TARGETS) {
            flt_rec_state = 1;
        }
        flt_rec_t0 = flt_port_millis();
    }
    if (flt_rec_state < 0) {
        return FLT_PORT_NO_SAMPLES;
    }
    if (flt_rec_next >= flt_rec_source.count) {
        return 0;
    }
    if (flt_rec_source.samples_per_second != 0u) {
        uint64_t elapsed = (uint32_t)(flt_port_millis() - flt_rec_t0);
        uint64_t due = elapsed * flt_rec_source.samples_per_second / 1000u;
        if ((uint64_t)flt_rec_next >= due) {
            return 0;
        }
    }
    if (flt_recording_sample(&flt_rec_source, flt_rec_next, values, label) != FLT_OK) {
        return 0; /* cannot happen: the index is below count and the pointers are the app's */
    }
    flt_rec_next += 1u;
    return 1;
}

#endif /* FLT_RECORDED_SENSOR_H */
