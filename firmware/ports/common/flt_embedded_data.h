/* flt_embedded_data.h - the local data blob compiled into the firmware (real boards).
 *
 * Contract
 * - fltiny renders include/fltiny_data.h for real boards: FLT_EMBEDDED_DATA_LEN and
 *   flt_embedded_data[] (a data blob, docs/boards.md "Data blob", 4-byte aligned) holding the
 *   partition of the board's device id. A port's flt_port_data returns it. Real sensors replace
 *   this with windows recorded on the device (same format, e.g. in a flash partition).
 * - Include from exactly one .c/.cpp file of the port.
 */
#ifndef FLT_EMBEDDED_DATA_H
#define FLT_EMBEDDED_DATA_H

#include "fltiny_data.h"

#endif /* FLT_EMBEDDED_DATA_H */
