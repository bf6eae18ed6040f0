/* link_mqtt.h - the native board's MQTT-over-TLS link (libmosquitto): fltiny's frames as MQTT
 * messages, one frame per message, through a broker (docs/protocol.md "MQTT transport").
 *
 * Contract
 * - Depends on libmosquitto (Debian libmosquitto-dev, TLS through OpenSSL) and flt_ring.h.
 *   Compiled to a stub when FLT_NATIVE_MQTT is not defined (the native platform defines it when
 *   it finds mosquitto.h): flt_mqtt_open then says so and returns FLT_ERR_UNSUPPORTED.
 * - Single-threaded: the network loop runs only inside flt_mqtt_pump (and flt_mqtt_open), on
 *   the caller's thread; received messages go into the caller's ring from there. No lock.
 * - Framing: the device loop writes wire frames (COBS(raw frame) 0x00, docs/protocol.md).
 *   flt_mqtt_write collects bytes up to each 0x00 and publishes what came before it (if not
 *   empty) as one message on the up-topic, without the 0x00; bytes after the last 0x00 wait for
 *   the next call. A received message is pushed into the ring followed by 0x00, whole or not at
 *   all (a message that does not fit the ring's free space is dropped and counted in the
 *   ring's `dropped`: the sender's retransmission repairs it). The COBS encoding stays, so the
 *   protocol's receiver sees exactly the byte stream of a UART.
 * - Session: at boot the client connects once with a clean session (frames queued for an
 *   earlier boot would be replays), then stays on a persistent session (clean_session = 0,
 *   client id = user = the certificate's CN, `device-N`): frames the host publishes while the
 *   connection is down wait in the broker. It subscribes to fltiny/<id>/down (QoS 1) on every
 *   connection, publishes `online` (retained, QoS 1) on fltiny/<id>/status and leaves the
 *   will `offline` (retained) there.
 * - flt_mqtt_open: FLT_OK once connected and subscribed; FLT_ERR_ARG for a missing setting;
 *   FLT_ERR_STATE when the broker refuses or cannot be reached within cfg->connect_timeout_ms
 *   (a line on stderr names the reason). No allocation after open except libmosquitto's own.
 * - flt_mqtt_write: FLT_OK when every complete frame was handed to libmosquitto; FLT_ERR_STATE
 *   when the link is down (the frame is dropped: the outbox retransmits it); FLT_ERR_OVERSIZE
 *   for a frame longer than FLT_MQTT_FRAME_MAX (dropped).
 * - flt_mqtt_pump(timeout_ms): runs the network loop for up to timeout_ms (reads, PUBACKs,
 *   keepalive); after a lost connection it reconnects (at most every FLT_MQTT_RETRY_MS), so a
 *   broker restart or a network drop heals without the device loop noticing.
 */
#ifndef FLT_LINK_MQTT_H
#define FLT_LINK_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "core/flt_status.h"
#include "flt_ring.h"

#define FLT_MQTT_FRAME_MAX 1024u
#define FLT_MQTT_RETRY_MS 200u

typedef struct {
    const char *host;      /* broker address */
    int port;              /* broker TLS port */
    const char *client_id; /* the certificate's CN: device-N; also the topics' middle level */
    const char *ca_file;   /* the fleet's CA certificate (PEM): verifies the broker */
    const char *cert_file; /* the device's client certificate (PEM) */
    const char *key_file;  /* its private key (PEM) */
    int keepalive_s;       /* MQTT keepalive: the broker declares the device offline after 1.5x */
    uint32_t connect_timeout_ms;
} flt_mqtt_config_t;

/* Connects (module contract); rx receives the down-topic's frames. cfg's strings must outlive
 * the link. */
FLT_NODISCARD flt_status_t flt_mqtt_open(const flt_mqtt_config_t *cfg, flt_ring_t *rx);
FLT_NODISCARD flt_status_t flt_mqtt_write(const uint8_t *buf, size_t len);
void flt_mqtt_pump(uint32_t timeout_ms);
/* 1 while connected to the broker. */
int flt_mqtt_connected(void);

#endif /* FLT_LINK_MQTT_H */
