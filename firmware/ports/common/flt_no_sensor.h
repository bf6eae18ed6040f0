/* flt_no_sensor.h - flt_port_read_sample of port.h for a board without a sample source.
 *
 * Contract
 * - Defines (not just declares) flt_port_read_sample, answering FLT_PORT_NO_SAMPLES without
 *   touching its arguments: the device trains on its data blob (or, without one, reports that
 *   it has no data). Included by the arduino and esp-idf ports when FLT_APP_SENSOR is not
 *   defined; `fltiny build --sensor FILE` defines it and compiles the application's own
 *   flt_port_read_sample from FILE instead (docs/boards.md "Sensor hook").
 * - Include it from exactly one source file of a port (after port.h), never from a header.
 */
#ifndef FLT_NO_SENSOR_H
#define FLT_NO_SENSOR_H

#include "port.h"

#ifdef __cplusplus
extern "C" {
#endif

int flt_port_read_sample(int8_t *values, flt_sample_label_t *label)
{
    (void)values;
    (void)label;
    return FLT_PORT_NO_SAMPLES;
}

#ifdef __cplusplus
}
#endif

#endif /* FLT_NO_SENSOR_H */
