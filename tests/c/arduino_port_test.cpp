/* arduino_port_test.cpp - the Arduino port (firmware/ports/arduino/port_arduino.cpp) on the host
 * against tests/c/arduino_stub/Arduino.h: flt_port_wait_event honours its timeout with no byte
 * arriving and returns soon after one does; bytes come out of the ring in order. The stub's
 * millis() advances on every call. Exits non-zero on a mismatch (tests/test_port_serial.py). */
#include <stdio.h>

#include "Arduino.h"

extern "C" {
#include "flt_device.h"
#include "port.h"
}

uint32_t stub_now_ms;
const uint8_t *stub_rx;
size_t stub_rx_len;
uint32_t stub_rx_at_ms = 0xffffffffu;
size_t stub_tx_count;
StubSerial Serial;

extern "C" int flt_app_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int failures;

static void check(const char *what, bool ok)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    failures += ok ? 0 : 1;
}

int main(void)
{
    static const uint8_t frame[5] = {0x00, 0x11, 0x22, 0x33, 0x00};
    check("init", flt_port_init(0, NULL) == FLT_OK);

    uint32_t t0 = stub_now_ms;
    flt_port_wait_event(50);
    uint32_t slept = stub_now_ms - t0;
    printf("  no byte: wait_event(50) took %u ms\n", (unsigned)slept);
    check("timeout honoured without a byte", slept >= 50u && slept < 60u);

    stub_rx = frame;
    stub_rx_len = sizeof frame;
    stub_rx_at_ms = stub_now_ms + 10u;
    t0 = stub_now_ms;
    flt_port_wait_event(1000);
    slept = stub_now_ms - t0;
    printf("  byte at +10 ms: wait_event(1000) took %u ms\n", (unsigned)slept);
    check("returns once a byte is there", slept >= 10u && slept < 20u);

    uint8_t b = 0;
    bool order = true;
    for (size_t i = 0; i < sizeof frame; ++i) {
        order = order && flt_port_read_byte(&b) == 1 && b == frame[i];
    }
    check("bytes in order", order);
    check("then nothing", flt_port_read_byte(&b) == 0);

    check("write", flt_port_write(frame, sizeof frame) == FLT_OK && stub_tx_count == sizeof frame);
    int8_t sample[4] = {0};
    flt_sample_label_t label;
    check("no sample source", flt_port_read_sample(sample, &label) == FLT_PORT_NO_SAMPLES);
    return failures ? 1 : 0;
}
