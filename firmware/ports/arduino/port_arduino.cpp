/* port_arduino.cpp - port.h on the Arduino cores of the real Cortex-M boards (nRF52840 DK,
 * Nucleo-F446RE, Raspberry Pi Pico), through their official PlatformIO frameworks.
 *
 * - Link: `Serial` at 115200 baud (USB CDC on the Pico and nRF52840 DK's nRF USB, the ST-LINK
 *   virtual COM port on the Nucleo). The core's UART/USB interrupt fills the core's own buffer;
 *   flt_port_read_byte moves bytes from it into our ring (port.h's ISR->ring contract holds
 *   with the core's ISR as producer).
 * - Waiting: yield() (lets the USB stack and RTOS tasks run) and, where a periodic interrupt is
 *   known to bound the sleep, `wfi` until the next interrupt. Only STM32duino qualifies: its HAL
 *   tick is SysTick at 1 kHz. The nRF5 core PlatformIO uses for nrf52840_dk (arduino-nRF5,
 *   ARDUINO_ARCH_NRF5) keeps millis() with RTC1, whose one interrupt is the 24-bit counter's
 *   overflow every 512 s: a `wfi` there sleeps until a UART byte or 512 s, far past timeout_ms,
 *   and the host's retransmissions stall. The mbed core (rp2040) idles in its RTOS. Those cores
 *   poll millis() between yields (their delay() does the same).
 * - millis(): the core's. Checkpoint: none on these boards in this version (FLT_ERR_STATE: a
 *   reset restarts from the factory head and the host resyncs with a FULL GLOBAL).
 * - Data: the blob compiled in (include/fltiny_data.h), or with `fltiny build --sensor FILE`
 *   the application's flt_port_read_sample (FILE) feeding the window store.
 * - Exit: NVIC_SystemReset() through the core (there is nothing to exit to).
 * Everything portable (device loop, runtime, generated model) is C99 in src/app, src/runtime,
 * src/generated and compiles with arm-none-eabi-gcc without the Arduino core
 * (tests/test_build_real_boards.py).
 */
/* The cores' own headers are not -Wshadow clean (ArduinoCore-mbed 4.5's mbed_retarget.h and
 * Callback.h, ArduinoCore-API's Interrupts.h) and PlatformIO passes them with -I, not -isystem,
 * so build_src_flags' -Wshadow reaches them: it is off for this include only (GCC applies the
 * pragma by source location, so templates of these headers instantiated below stay exempt). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include <Arduino.h>
#pragma GCC diagnostic pop

extern "C" {
#include "flt_device.h"
#include "flt_embedded_data.h"
#include "flt_ring.h"
#include "fltiny_config.h"
#include "port.h"
#include "flt_no_storage.h" /* no persistent storage: the checkpoint functions */
#ifndef FLT_APP_SENSOR
#include "flt_no_sensor.h" /* no sample source unless the build brings one */
#endif
}

/* 1 where a periodic tick interrupt bounds a `wfi` (see "Waiting" above); never guessed from
 * __ARM_ARCH, which every one of these cores defines. */
#ifndef FLT_ARDUINO_WFI
#if defined(ARDUINO_ARCH_STM32)
#define FLT_ARDUINO_WFI 1
#else
#define FLT_ARDUINO_WFI 0
#endif
#endif

static flt_ring_t rx_ring;

static void pump(void)
{
    while (Serial.available() > 0) {
        int c = Serial.read();
        if (c < 0) {
            break;
        }
        (void)flt_ring_push(&rx_ring, (uint8_t)c);
    }
}

extern "C" flt_status_t flt_port_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    Serial.begin(115200);
    uint32_t start = millis();
    while (!Serial && (uint32_t)(millis() - start) < 3000u) {
        delay(10); /* USB CDC: wait (bounded) for the host to open the port */
    }
    return FLT_OK;
}

extern "C" flt_status_t flt_port_write(const uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t n = Serial.write(buf + done, len - done);
        if (n == 0) {
            yield();
        }
        done += n;
    }
    Serial.flush();
    return FLT_OK;
}

/* The parameter is not called `byte`: Arduino.h has `typedef uint8_t byte`, which -Wshadow flags.
 */
extern "C" int flt_port_read_byte(uint8_t *out)
{
    if (flt_ring_empty(&rx_ring)) {
        pump();
    }
    return flt_ring_pop(&rx_ring, out);
}

extern "C" void flt_port_wait_event(uint32_t timeout_ms)
{
    uint32_t start = millis();
    while ((uint32_t)(millis() - start) < timeout_ms) {
        pump();
        if (!flt_ring_empty(&rx_ring)) {
            return;
        }
        yield();
#if FLT_ARDUINO_WFI
        __asm__ volatile("wfi"); /* SysTick (1 kHz) or a UART byte wakes us */
#endif
    }
}

extern "C" uint32_t flt_port_millis(void)
{
    return millis();
}

extern "C" const uint8_t *flt_port_data(size_t *len)
{
    *len = FLT_EMBEDDED_DATA_LEN;
    return flt_embedded_data;
}

extern "C" void flt_port_exit(int code)
{
    (void)code;
    Serial.flush();
    NVIC_SystemReset();
    for (;;) {
    }
}

extern "C" uint32_t flt_port_free_ram(void)
{
    return 0u;
}

extern "C" uint32_t flt_port_rx_dropped(void)
{
    return rx_ring.dropped;
}

extern "C" flt_status_t flt_port_boot_secret(uint8_t out[FLT_PORT_SECRET_SIZE])
{
#if defined(ARDUINO_ARCH_ESP32)
    static uint8_t secret[FLT_PORT_SECRET_SIZE];
    static bool ready = false;
    if (!ready) {
        for (uint32_t i = 0; i < FLT_PORT_SECRET_SIZE; i += 4u) {
            const uint32_t r = esp_random(); /* the ESP32's hardware RNG */
            secret[i] = (uint8_t)r;
            secret[i + 1u] = (uint8_t)(r >> 8);
            secret[i + 2u] = (uint8_t)(r >> 16);
            secret[i + 3u] = (uint8_t)(r >> 24);
        }
        ready = true;
    }
    for (uint32_t i = 0; i < FLT_PORT_SECRET_SIZE; ++i) {
        out[i] = secret[i];
    }
    return FLT_OK;
#else
    (void)out; /* nRF52, STM32 and RP2040 TRNG drivers are not wired in yet */
    return FLT_ERR_UNSUPPORTED;
#endif
}

void setup()
{
    flt_port_exit(flt_app_main(0, NULL));
}

void loop()
{
}
