/* port_native.c - port.h as a Linux process: the firmware's link is a TCP connection or an
 * MQTT-over-TLS client of a broker (link_mqtt.h; both Wi-Fi stand-ins), its checkpoint a file,
 * its local data a file: a data blob, or a recording that the sensor hook replays
 * (flt_recorded_sensor.h).
 *
 * Command line:  firmware.elf (--listen-fd N | --listen HOST:PORT | --connect HOST:PORT |
 *                              --mqtt HOST:PORT --mqtt-id device-N --mqtt-ca F --mqtt-cert F
 *                              --mqtt-key F [--mqtt-keepalive S])
 *                             [--data FILE] [--state FILE]
 *   --listen-fd N   accept connections on the already listening socket N (what
 *                   fltiny.devices hands over, like QEMU's `-chardev socket,fd=N,server=on`);
 *   --listen H:P    bind and listen there; --connect H:P  connect out (like a Wi-Fi device);
 *   --mqtt H:P      connect to the broker there with TLS (CA, client certificate and key in
 *                   PEM files; the id is the certificate's CN), frames on fltiny/<id>/up and
 *                   fltiny/<id>/down (docs/protocol.md "MQTT transport"); keepalive default 30 s;
 *   --data FILE     the data blob or a recording (docs/boards.md "Data blob", "Recording"; told
 *                   apart by their magic); --state FILE  the checkpoint file (written to
 *                   FILE.tmp, then renamed: a crash leaves the old or the new one).
 * The process waits for the first connection before the device loop starts; when the peer
 * closes the connection it accepts (or reconnects) again. SIGPIPE is ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "flt_device.h"
#include "flt_ring.h"
#include "fltiny_config.h"
#include "link_mqtt.h"
#include "port.h"
#ifndef FLT_APP_SENSOR
#include "flt_recorded_sensor.h" /* the sensor hook: a recording given as --data */
#endif

static int listen_fd = -1;
static int conn_fd = -1;
static const char *connect_to;
static const char *state_path;
static uint8_t *data_buf;
static size_t data_len;
static flt_ring_t rx_ring;
static int use_mqtt;
static flt_mqtt_config_t mqtt = {NULL, 0, NULL, NULL, NULL, NULL, 30, 10000u};

static int split_host_port(const char *s, char *host, size_t cap, char **port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= cap) {
        return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (char *)(uintptr_t)(colon + 1);
    return 0;
}

static int open_tcp(const char *spec, int listening)
{
    char host[256];
    char *port = NULL;
    if (split_host_port(spec, host, sizeof host, &port) != 0) {
        return -1;
    }
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = listening ? AI_PASSIVE : 0;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (listening ? (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1) == 0)
                      : connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int establish(void)
{
    if (conn_fd >= 0) {
        close(conn_fd);
        conn_fd = -1;
    }
    if (listen_fd >= 0) {
        do {
            conn_fd = accept(listen_fd, NULL, NULL);
        } while (conn_fd < 0 && errno == EINTR);
    } else if (connect_to != NULL) {
        for (int tries = 0; tries < 50 && conn_fd < 0; ++tries) {
            conn_fd = open_tcp(connect_to, 0);
            if (conn_fd < 0) {
                struct timespec ts = {0, 100000000L};
                nanosleep(&ts, NULL);
            }
        }
    }
    if (conn_fd < 0) {
        return -1;
    }
    int one = 1;
    (void)setsockopt(conn_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

static int load_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return -1;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    *buf = (uint8_t *)malloc((size_t)n + 1u); /* malloc: 16-byte aligned, as the blob needs */
    if (*buf == NULL || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(*buf);
        *buf = NULL;
        return -1;
    }
    fclose(f);
    *len = (size_t)n;
    return 0;
}

flt_status_t flt_port_init(int argc, char **argv)
{
    const char *data_path = NULL;
    const char *listen_at = NULL;
    const char *mqtt_at = NULL;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen-fd") == 0) {
            listen_fd = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--listen") == 0) {
            listen_at = argv[i + 1];
        } else if (strcmp(argv[i], "--connect") == 0) {
            connect_to = argv[i + 1];
        } else if (strcmp(argv[i], "--data") == 0) {
            data_path = argv[i + 1];
        } else if (strcmp(argv[i], "--state") == 0) {
            state_path = argv[i + 1];
        } else if (strcmp(argv[i], "--mqtt") == 0) {
            use_mqtt = 1;
            mqtt_at = argv[i + 1];
        } else if (strcmp(argv[i], "--mqtt-id") == 0) {
            mqtt.client_id = argv[i + 1];
        } else if (strcmp(argv[i], "--mqtt-ca") == 0) {
            mqtt.ca_file = argv[i + 1];
        } else if (strcmp(argv[i], "--mqtt-cert") == 0) {
            mqtt.cert_file = argv[i + 1];
        } else if (strcmp(argv[i], "--mqtt-key") == 0) {
            mqtt.key_file = argv[i + 1];
        } else if (strcmp(argv[i], "--mqtt-keepalive") == 0) {
            mqtt.keepalive_s = atoi(argv[i + 1]);
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return FLT_ERR_ARG;
        }
    }
    if (listen_at != NULL) {
        listen_fd = open_tcp(listen_at, 1);
    }
    if (listen_fd < 0 && connect_to == NULL && !use_mqtt) {
        fprintf(stderr,
                "usage: %s (--listen-fd N | --listen HOST:PORT | --connect HOST:PORT | --mqtt "
                "HOST:PORT --mqtt-id ID --mqtt-ca F --mqtt-cert F --mqtt-key F) [--data FILE] "
                "[--state FILE]\n",
                argc > 0 ? argv[0] : "firmware");
        return FLT_ERR_ARG;
    }
    if (data_path != NULL && load_file(data_path, &data_buf, &data_len) != 0) {
        fprintf(stderr, "cannot read data file %s\n", data_path);
        return FLT_ERR_ARG;
    }
    if (use_mqtt) {
        static char mqtt_host[256];
        char *port = NULL;
        if (split_host_port(mqtt_at, mqtt_host, sizeof mqtt_host, &port) != 0 ||
            (mqtt.port = atoi(port)) <= 0) {
            fprintf(stderr, "--mqtt %s: expected HOST:PORT\n", mqtt_at);
            return FLT_ERR_ARG;
        }
        mqtt.host = mqtt_host;
        return flt_mqtt_open(&mqtt, &rx_ring);
    }
    return establish() == 0 ? FLT_OK : FLT_ERR_STATE;
}

flt_status_t flt_port_write(const uint8_t *buf, size_t len)
{
    if (use_mqtt) {
        return flt_mqtt_write(buf, len);
    }
    while (len > 0u) {
        ssize_t n = send(conn_fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return FLT_ERR_STATE;
        }
        buf += n;
        len -= (size_t)n;
    }
    return FLT_OK;
}

static void pump(int timeout_ms)
{
    if (use_mqtt) {
        flt_mqtt_pump((uint32_t)timeout_ms);
        return;
    }
    struct pollfd p;
    p.fd = conn_fd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, timeout_ms) <= 0) {
        return;
    }
    uint8_t tmp[512];
    ssize_t n = recv(conn_fd, tmp, sizeof tmp, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        if (establish() != 0) {
            flt_port_exit(0); /* the host is gone for good */
        }
        return;
    }
    for (ssize_t i = 0; i < n; ++i) {
        (void)flt_ring_push(&rx_ring, tmp[i]);
    }
}

int flt_port_read_byte(uint8_t *byte)
{
    if (flt_ring_empty(&rx_ring)) {
        pump(0);
    }
    return flt_ring_pop(&rx_ring, byte);
}

void flt_port_wait_event(uint32_t timeout_ms)
{
    if (flt_ring_empty(&rx_ring)) {
        pump((int)timeout_ms);
    }
}

uint32_t flt_port_millis(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

flt_status_t flt_port_ckpt_read(uint8_t *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (state_path == NULL) {
        return FLT_ERR_STATE;
    }
    FILE *f = fopen(state_path, "rb");
    if (f == NULL) {
        return FLT_ERR_STATE;
    }
    size_t n = fread(buf, 1, cap, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    if (more) {
        return FLT_ERR_NOMEM;
    }
    *len = n;
    return FLT_OK;
}

flt_status_t flt_port_ckpt_write(const uint8_t *buf, size_t len)
{
    if (state_path == NULL) {
        return FLT_ERR_UNSUPPORTED;
    }
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", state_path) >= sizeof tmp) {
        return FLT_ERR_ARG;
    }
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        return FLT_ERR_STATE;
    }
    int ok = fwrite(buf, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, state_path) != 0) {
        return FLT_ERR_STATE;
    }
    return FLT_OK;
}

const uint8_t *flt_port_data(size_t *len)
{
    *len = data_len;
    return data_buf;
}

void flt_port_exit(int code)
{
    exit(code);
}

uint32_t flt_port_free_ram(void)
{
    return 0u; /* unknown for a host process */
}

uint32_t flt_port_rx_dropped(void)
{
    return rx_ring.dropped;
}

flt_status_t flt_port_boot_secret(uint8_t out[FLT_PORT_SECRET_SIZE])
{
    static uint8_t secret[FLT_PORT_SECRET_SIZE];
    static int ready;
    if (!ready) {
        FILE *f = fopen("/dev/urandom", "rb");
        const size_t got = f != NULL ? fread(secret, 1u, sizeof secret, f) : 0u;
        if (f != NULL) {
            (void)fclose(f);
        }
        if (got != sizeof secret) {
            return FLT_ERR_UNSUPPORTED;
        }
        ready = 1;
    }
    memcpy(out, secret, sizeof secret);
    return FLT_OK;
}

int main(int argc, char **argv)
{
    return flt_app_main(argc, argv);
}
