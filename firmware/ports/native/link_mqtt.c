/* link_mqtt.c - the native board's MQTT-over-TLS link; contract in link_mqtt.h.
 *
 * Why libmosquitto: it is the Eclipse Mosquitto project's own client, maintained with the
 * broker, packaged by Debian (libmosquitto-dev) with TLS through OpenSSL, and it can run its
 * network loop on the caller's thread (mosquitto_loop), which keeps the port single-threaded
 * like the other ports. */
#include "link_mqtt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifdef FLT_NATIVE_MQTT

#include <mosquitto.h>

static struct mosquitto *mosq;
static const flt_mqtt_config_t *conf;
static flt_ring_t *ring;
static int socket_up;  /* the TCP/TLS connection exists (mosquitto_loop can run) */
static int connected;  /* CONNACK accepted */
static int subscribed; /* SUBACK of the down-topic */
static int refused_rc; /* CONNACK's refusal code, 0 when none */
static uint32_t last_try_ms;
static char up_topic[128];
static char down_topic[128];
static char status_topic[128];
static uint8_t frame[FLT_MQTT_FRAME_MAX];
static size_t frame_len;
static int frame_overflow;

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)obj;
    if (rc != 0) {
        refused_rc = rc;
        fprintf(stderr, "fltiny: the MQTT broker refused %s: %s\n", conf->client_id,
                mosquitto_connack_string(rc));
        return;
    }
    connected = 1;
    /* errors here show up as a lost connection in the next loop, which reconnects */
    (void)mosquitto_subscribe(m, NULL, down_topic, 1);
    (void)mosquitto_publish(m, NULL, status_topic, 6, "online", 1, true);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int count, const int *granted)
{
    (void)m;
    (void)obj;
    (void)mid;
    if (count >= 1 && granted[0] <= 2) {
        subscribed = 1;
    } else {
        fprintf(stderr, "fltiny: the MQTT broker refused the subscription to %s\n", down_topic);
    }
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    (void)obj;
    (void)rc;
    connected = 0;
    subscribed = 0;
    socket_up = 0;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    (void)m;
    (void)obj;
    if (ring == NULL || msg->payloadlen <= 0 || strcmp(msg->topic, down_topic) != 0) {
        return;
    }
    const size_t n = (size_t)msg->payloadlen;
    if ((size_t)flt_ring_space(ring) < n + 1u) {
        ring->dropped = ring->dropped + (uint32_t)n; /* whole or not at all (link_mqtt.h) */
        return;
    }
    const uint8_t *p = (const uint8_t *)msg->payload;
    for (size_t i = 0; i < n; ++i) {
        (void)flt_ring_push(ring, p[i]);
    }
    (void)flt_ring_push(ring, 0u);
}

/* (Re)creates the client with the given session kind: TLS, will, callbacks. */
static int client_setup(int clean)
{
    int rc = mosq == NULL ? ((mosq = mosquitto_new(conf->client_id, clean != 0, NULL)) == NULL
                                 ? MOSQ_ERR_NOMEM
                                 : MOSQ_ERR_SUCCESS)
                          : mosquitto_reinitialise(mosq, conf->client_id, clean != 0, NULL);
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_tls_set(mosq, conf->ca_file, NULL, conf->cert_file, conf->key_file, NULL);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_tls_opts_set(mosq, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_will_set(mosq, status_topic, 7, "offline", 1, true);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr,
                "fltiny: MQTT client setup failed: %s (are the certificate files %s, %s "
                "and %s readable?)\n",
                mosquitto_strerror(rc), conf->ca_file, conf->cert_file, conf->key_file);
        return -1;
    }
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_disconnect_callback_set(mosq, on_disconnect);
    mosquitto_message_callback_set(mosq, on_message);
    return 0;
}

/* Connects and waits until subscribed; 0 on success. */
static int connect_wait(uint32_t timeout_ms)
{
    const uint32_t start = now_ms();
    int rc = MOSQ_ERR_NO_CONN;
    connected = subscribed = refused_rc = 0;
    socket_up = 0;
    while (!subscribed && refused_rc == 0 && now_ms() - start < timeout_ms) {
        if (!socket_up) {
            rc = mosquitto_connect(mosq, conf->host, conf->port, conf->keepalive_s);
            socket_up = rc == MOSQ_ERR_SUCCESS;
            if (!socket_up) {
                sleep_ms(FLT_MQTT_RETRY_MS);
            }
            continue;
        }
        rc = mosquitto_loop(mosq, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            socket_up = 0;
            sleep_ms(FLT_MQTT_RETRY_MS);
        }
    }
    if (subscribed) {
        return 0;
    }
    if (refused_rc == 0) {
        fprintf(stderr,
                "fltiny: cannot reach the MQTT broker at %s:%d within %u ms (%s): is it "
                "running, and do its CA and this device's certificate match?\n",
                conf->host, conf->port, (unsigned)timeout_ms,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    }
    return -1;
}

flt_status_t flt_mqtt_open(const flt_mqtt_config_t *cfg, flt_ring_t *rx)
{
    if (cfg == NULL || rx == NULL || cfg->host == NULL || cfg->client_id == NULL ||
        cfg->ca_file == NULL || cfg->cert_file == NULL || cfg->key_file == NULL || cfg->port <= 0 ||
        cfg->port > 65535) {
        fprintf(stderr, "fltiny: --mqtt needs HOST:PORT, --mqtt-id, --mqtt-ca, --mqtt-cert and "
                        "--mqtt-key\n");
        return FLT_ERR_ARG;
    }
    conf = cfg;
    ring = rx;
    if ((size_t)snprintf(up_topic, sizeof up_topic, "fltiny/%s/up", cfg->client_id) >=
            sizeof up_topic ||
        (size_t)snprintf(down_topic, sizeof down_topic, "fltiny/%s/down", cfg->client_id) >=
            sizeof down_topic ||
        (size_t)snprintf(status_topic, sizeof status_topic, "fltiny/%s/status", cfg->client_id) >=
            sizeof status_topic) {
        fprintf(stderr, "fltiny: --mqtt-id %s is too long\n", cfg->client_id);
        return FLT_ERR_ARG;
    }
    (void)mosquitto_lib_init();
    /* a new boot starts a new session: drop whatever an earlier boot left queued */
    if (client_setup(1) != 0 || connect_wait(cfg->connect_timeout_ms) != 0) {
        return FLT_ERR_STATE;
    }
    (void)mosquitto_disconnect(mosq);
    (void)mosquitto_loop(mosq, 10, 1);
    if (client_setup(0) != 0 || connect_wait(cfg->connect_timeout_ms) != 0) {
        return FLT_ERR_STATE;
    }
    return FLT_OK;
}

flt_status_t flt_mqtt_write(const uint8_t *buf, size_t len)
{
    flt_status_t st = FLT_OK;
    for (size_t i = 0; i < len; ++i) {
        if (buf[i] != 0u) {
            if (frame_len < sizeof frame) {
                frame[frame_len++] = buf[i];
            } else {
                frame_overflow = 1;
            }
            continue;
        }
        flt_status_t s = FLT_OK;
        if (frame_overflow) {
            s = FLT_ERR_OVERSIZE;
        } else if (frame_len > 0u) {
            if (!connected) {
                s = FLT_ERR_STATE; /* dropped: the outbox retransmits after the reconnect */
            } else if (mosquitto_publish(mosq, NULL, up_topic, (int)frame_len, frame, 1, false) !=
                       MOSQ_ERR_SUCCESS) {
                s = FLT_ERR_STATE;
            }
        }
        if (st == FLT_OK) {
            st = s;
        }
        frame_len = 0;
        frame_overflow = 0;
    }
    return st;
}

void flt_mqtt_pump(uint32_t timeout_ms)
{
    if (!socket_up) {
        const uint32_t now = now_ms();
        if (now - last_try_ms >= FLT_MQTT_RETRY_MS) {
            last_try_ms = now;
            socket_up = mosquitto_reconnect(mosq) == MOSQ_ERR_SUCCESS;
        }
        if (!socket_up) {
            sleep_ms(timeout_ms < FLT_MQTT_RETRY_MS ? timeout_ms : FLT_MQTT_RETRY_MS);
            return;
        }
    }
    if (mosquitto_loop(mosq, (int)timeout_ms, 1) != MOSQ_ERR_SUCCESS) {
        socket_up = 0;
        connected = 0;
        subscribed = 0;
    }
}

int flt_mqtt_connected(void)
{
    return connected;
}

#else /* !FLT_NATIVE_MQTT: built without libmosquitto-dev */

flt_status_t flt_mqtt_open(const flt_mqtt_config_t *cfg, flt_ring_t *rx)
{
    (void)cfg;
    (void)rx;
    fprintf(stderr, "fltiny: this native firmware was built without libmosquitto-dev: install it "
                    "('make setup') and rebuild for --mqtt\n");
    return FLT_ERR_UNSUPPORTED;
}

flt_status_t flt_mqtt_write(const uint8_t *buf, size_t len)
{
    (void)buf;
    (void)len;
    return FLT_ERR_STATE;
}

void flt_mqtt_pump(uint32_t timeout_ms)
{
    struct timespec ts = {(time_t)(timeout_ms / 1000u), (long)(timeout_ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

int flt_mqtt_connected(void)
{
    return 0;
}

#endif
