/* Arduino.h (test stub) - the slice of the Arduino API that firmware/ports/arduino/port_arduino.cpp
 * uses, declared as the real cores declare it, for compiling the port on the host and with
 * arm-none-eabi-g++ without a core (tests/test_port_serial.py).
 *
 * Contract
 * - `typedef uint8_t byte;` at global scope, as every Arduino core has it (a parameter named
 *   `byte` then shadows it: -Wshadow).
 * - Serial: available() / read() from a test-controlled queue, write() counts bytes, flush();
 *   millis() advances by one on every call (a clock that moves while the port polls), delay()
 *   and yield() advance it too. NVIC_SystemReset() exits with status 99.
 * - Not a core: no setup()/loop() driver; the test's main() calls the port's functions.
 */
#ifndef FLT_TEST_ARDUINO_H
#define FLT_TEST_ARDUINO_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef uint8_t byte;
typedef bool boolean;

extern uint32_t stub_now_ms;
extern const uint8_t *stub_rx;
extern size_t stub_rx_len;
extern uint32_t stub_rx_at_ms; /* bytes become available from this time on */
extern size_t stub_tx_count;

static inline uint32_t millis(void)
{
    return stub_now_ms++;
}

static inline void delay(uint32_t ms)
{
    stub_now_ms += ms;
}

static inline void yield(void)
{
}

static inline void NVIC_SystemReset(void)
{
    exit(99);
}

class StubSerial
{
  public:
    void begin(unsigned long baud)
    {
        (void)baud;
    }
    int available(void)
    {
        return stub_now_ms >= stub_rx_at_ms ? (int)stub_rx_len : 0;
    }
    int read(void)
    {
        if (available() <= 0) {
            return -1;
        }
        stub_rx_len--;
        return *stub_rx++;
    }
    size_t write(const uint8_t *buf, size_t len)
    {
        (void)buf;
        stub_tx_count += len;
        return len;
    }
    void flush(void)
    {
    }
    explicit operator bool() const
    {
        return true;
    }
};

extern StubSerial Serial;

#endif /* FLT_TEST_ARDUINO_H */
