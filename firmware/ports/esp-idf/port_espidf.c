/* port_espidf.c - port.h on ESP-IDF 5.x (ESP32, ESP32-S3, ESP32-C3), built by PlatformIO's
 * espressif32 platform. tools/check-real-boards compiles it against IDF 5.5's headers (the C3
 * with a RISC-V gcc; no Xtensa compiler exists here, see docs/boards.md).
 *
 * - Link: with FLT_WIFI_SSID set, Wi-Fi station + a TCP server on FLT_WIFI_PORT: the device
 *   listens and the host connects (tcp://<device address>:<port>, as to the native board); the
 *   address is logged on the console (UART0), which carries no protocol in this mode. One host
 *   at a time; when it disconnects the device accepts the next. Without an SSID: UART0 at
 *   115200 baud through the UART driver (its ISR fills the driver's RX buffer; pump() moves
 *   bytes into our ring), with console and logs off UART0 (sdkconfig.defaults).
 *   With FLT_TRANSPORT_MQTT (`fltiny build --transport mqtt --mqtt-url ...`) the station does
 *   not listen: esp-mqtt connects to FLT_MQTT_URL over TLS (the fleet's CA verifies the broker,
 *   the device's certificate and key from include/fltiny_mqtt.h identify it) and carries one
 *   frame per message on fltiny/device-N/up and /down, QoS 1, with the retained status
 *   `online` and the will `offline` (docs/protocol.md "MQTT transport"). Clean sessions: a
 *   drop loses what the host published meanwhile and the protocol's retransmission repairs it.
 *   esp-mqtt's task is the producer of the RX ring; a spinlock guards push and pop (two
 *   cores), and an event bit wakes the device task.
 * - Waiting: uart_read_bytes / select() with the timeout: the FreeRTOS task blocks, the idle
 *   task lets the CPU sleep (light sleep if enabled in sdkconfig). A UART read asks only for
 *   what has arrived (flt_short_read.h): uart_read_bytes(n) waits for n bytes or the timeout.
 * - millis: esp_timer_get_time() / 1000.
 * - Checkpoint: one NVS blob (namespace "fltiny", key "ckpt"); nvs_set_blob + nvs_commit is
 *   atomic per entry (NVS writes the new entry before erasing the old one).
 * - Data: the blob compiled in (include/fltiny_data.h), or with `fltiny build --sensor FILE`
 *   the application's flt_port_read_sample (FILE) feeding the window store.
 * - Exit: esp_restart().
 * - The device loop runs in its own task (16 KiB stack); app_main returns.
 */
#include <stdint.h>
#include <string.h>

#include "driver/uart.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"
#include "freertos/task.h"
#include "lwip/netdb.h"
#include "lwip/sockets.h"
#include "nvs.h"
#include "nvs_flash.h"

#ifdef FLT_TRANSPORT_MQTT
#include "mqtt_client.h"
#endif

#include "flt_device.h"
#include "flt_embedded_data.h"
#include "flt_ring.h"
#include "flt_short_read.h"
#include "fltiny_config.h"
#include "port.h"
#ifdef FLT_TRANSPORT_MQTT
#include "fltiny_mqtt.h"
#endif
#ifndef FLT_APP_SENSOR
#include "flt_no_sensor.h" /* no sample source unless the build brings one */
#endif

#define TAG "fltiny"
#define UART_PORT UART_NUM_0
#define UART_RX_BUF 2048
#define WIFI_CONNECTED_BIT BIT0

static flt_ring_t rx_ring;
static int use_wifi;
static int sock = -1;
static EventGroupHandle_t wifi_events;
#define RX_READY_BIT BIT1

#ifdef FLT_TRANSPORT_MQTT
static esp_mqtt_client_handle_t mqtt;
static volatile int mqtt_connected;
static portMUX_TYPE rx_lock = portMUX_INITIALIZER_UNLOCKED;
static uint8_t mqtt_frame[1024];
static size_t mqtt_frame_len;
static int mqtt_frame_overflow;

/* esp-mqtt's task: one message = one frame, pushed whole (or dropped) followed by 0x00. A
 * message longer than esp-mqtt's buffer arrives in pieces (current_data_offset): frames are
 * at most ~300 bytes, below the default 1024-byte buffer. */
static void mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)base;
    esp_mqtt_event_handle_t ev = (esp_mqtt_event_handle_t)data;
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
        mqtt_connected = 1;
        (void)esp_mqtt_client_subscribe(mqtt, FLT_MQTT_DOWN_TOPIC, 1);
        (void)esp_mqtt_client_publish(mqtt, FLT_MQTT_STATUS_TOPIC, "online", 6, 1, 1);
        ESP_LOGI(TAG, "connected to %s as %s", FLT_MQTT_URL, FLT_MQTT_CLIENT_ID);
        break;
    case MQTT_EVENT_DISCONNECTED:
        mqtt_connected = 0;
        break;
    case MQTT_EVENT_DATA:
        if (ev->data_len > 0 && ev->current_data_offset == 0 &&
            ev->data_len == ev->total_data_len) {
            const size_t n = (size_t)ev->data_len;
            taskENTER_CRITICAL(&rx_lock);
            if ((size_t)flt_ring_space(&rx_ring) >= n + 1u) {
                for (size_t i = 0; i < n; ++i) {
                    (void)flt_ring_push(&rx_ring, (uint8_t)ev->data[i]);
                }
                (void)flt_ring_push(&rx_ring, 0u);
            } else {
                rx_ring.dropped = rx_ring.dropped + (uint32_t)n;
            }
            taskEXIT_CRITICAL(&rx_lock);
            xEventGroupSetBits(wifi_events, RX_READY_BIT);
        }
        break;
    default:
        break;
    }
}

static void mqtt_start(void)
{
    esp_mqtt_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.broker.address.uri = FLT_MQTT_URL;
    cfg.broker.verification.certificate = flt_mqtt_ca_pem;
    cfg.credentials.client_id = FLT_MQTT_CLIENT_ID;
    cfg.credentials.authentication.certificate = flt_mqtt_cert_pem;
    cfg.credentials.authentication.key = flt_mqtt_key_pem;
    cfg.session.keepalive = FLT_MQTT_KEEPALIVE_S;
    cfg.session.last_will.topic = FLT_MQTT_STATUS_TOPIC;
    cfg.session.last_will.msg = "offline";
    cfg.session.last_will.msg_len = 7;
    cfg.session.last_will.qos = 1;
    cfg.session.last_will.retain = 1;
    cfg.network.reconnect_timeout_ms = 500;
    mqtt = esp_mqtt_client_init(&cfg);
    ESP_ERROR_CHECK(mqtt == NULL ? ESP_FAIL : ESP_OK);
    ESP_ERROR_CHECK(esp_mqtt_client_register_event(mqtt, ESP_EVENT_ANY_ID, mqtt_event, NULL));
    xEventGroupWaitBits(wifi_events, WIFI_CONNECTED_BIT, pdFALSE, pdTRUE, portMAX_DELAY);
    ESP_ERROR_CHECK(esp_mqtt_client_start(mqtt));
}

/* Cuts the device loop's wire bytes at each 0x00 and publishes each frame (link_mqtt.h's rule). */
static flt_status_t mqtt_write(const uint8_t *buf, size_t len)
{
    flt_status_t st = FLT_OK;
    for (size_t i = 0; i < len; ++i) {
        if (buf[i] != 0u) {
            if (mqtt_frame_len < sizeof mqtt_frame) {
                mqtt_frame[mqtt_frame_len++] = buf[i];
            } else {
                mqtt_frame_overflow = 1;
            }
            continue;
        }
        if (mqtt_frame_len > 0u && st == FLT_OK) {
            if (mqtt_frame_overflow) {
                st = FLT_ERR_OVERSIZE;
            } else if (!mqtt_connected ||
                       esp_mqtt_client_publish(mqtt, FLT_MQTT_UP_TOPIC, (const char *)mqtt_frame,
                                               (int)mqtt_frame_len, 1, 0) < 0) {
                st = FLT_ERR_STATE; /* the outbox retransmits after the reconnect */
            }
        }
        mqtt_frame_len = 0;
        mqtt_frame_overflow = 0;
    }
    return st;
}
#endif

static void wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    if (base == WIFI_EVENT && (id == WIFI_EVENT_STA_START || id == WIFI_EVENT_STA_DISCONNECTED)) {
        xEventGroupClearBits(wifi_events, WIFI_CONNECTED_BIT);
        esp_wifi_connect();
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        const ip_event_got_ip_t *got = (const ip_event_got_ip_t *)data;
        ESP_LOGI(TAG, "listening on " IPSTR ":%u", IP2STR(&got->ip_info.ip),
                 (unsigned)FLT_WIFI_PORT);
        xEventGroupSetBits(wifi_events, WIFI_CONNECTED_BIT);
    }
}

static esp_err_t wifi_start(void)
{
    wifi_events = xEventGroupCreate();
    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    esp_netif_create_default_wifi_sta();
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    ESP_ERROR_CHECK(esp_wifi_init(&init));
    ESP_ERROR_CHECK(
        esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, wifi_event, NULL, NULL));
    ESP_ERROR_CHECK(
        esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, wifi_event, NULL, NULL));
    wifi_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    strncpy((char *)cfg.sta.ssid, FLT_WIFI_SSID, sizeof cfg.sta.ssid - 1);
    strncpy((char *)cfg.sta.password, FLT_WIFI_PASSWORD, sizeof cfg.sta.password - 1);
    ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
    ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &cfg));
    ESP_ERROR_CHECK(esp_wifi_start());
    return ESP_OK;
}

/* The listening socket, created once the station has an address (kept across host sessions). */
static int listen_fd = -1;

static int tcp_listen(void)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((uint16_t)FLT_WIFI_PORT);
    int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_IP);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Blocks until a host connects (after Wi-Fi is up); retries with backoff while it cannot listen. */
static int tcp_accept(void)
{
    uint32_t backoff = 250;
    for (;;) {
        xEventGroupWaitBits(wifi_events, WIFI_CONNECTED_BIT, pdFALSE, pdTRUE, portMAX_DELAY);
        if (listen_fd < 0) {
            listen_fd = tcp_listen();
        }
        if (listen_fd >= 0) {
            int fd = accept(listen_fd, NULL, NULL);
            if (fd >= 0) {
                int one = 1;
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                ESP_LOGI(TAG, "host connected");
                return fd;
            }
            close(listen_fd); /* the interface went away: listen again once it is back */
            listen_fd = -1;
        }
        ESP_LOGW(TAG, "cannot listen on port %u, retry in %u ms", (unsigned)FLT_WIFI_PORT,
                 (unsigned)backoff);
        vTaskDelay(pdMS_TO_TICKS(backoff));
        backoff = backoff < 8000u ? backoff * 2u : 8000u;
    }
}

flt_status_t flt_port_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);
    use_wifi = FLT_WIFI_SSID[0] != '\0';
#ifdef FLT_TRANSPORT_MQTT
    ESP_ERROR_CHECK(wifi_start());
    mqtt_start();
    return FLT_OK;
#endif
    if (use_wifi) {
        ESP_ERROR_CHECK(wifi_start());
        sock = tcp_accept();
        return FLT_OK;
    }
    uart_config_t cfg = {
        .baud_rate = 115200,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    ESP_ERROR_CHECK(uart_driver_install(UART_PORT, UART_RX_BUF, 0, 0, NULL, 0));
    ESP_ERROR_CHECK(uart_param_config(UART_PORT, &cfg));
    /* UART0 keeps its default pins (the USB-serial bridge); console, logs and the bootloader's
     * messages stay off it: sdkconfig.defaults of UART builds (fltiny/build/espidf.py). */
    return FLT_OK;
}

flt_status_t flt_port_write(const uint8_t *buf, size_t len)
{
#ifdef FLT_TRANSPORT_MQTT
    return mqtt_write(buf, len);
#endif
    if (!use_wifi) {
        return uart_write_bytes(UART_PORT, (const char *)buf, len) == (int)len ? FLT_OK
                                                                               : FLT_ERR_STATE;
    }
    while (len > 0u) {
        int n = send(sock, buf, len, 0);
        if (n <= 0) {
            close(sock);
            sock = tcp_accept(); /* the host's session retransmits what was lost */
            return FLT_ERR_STATE;
        }
        buf += n;
        len -= (size_t)n;
    }
    return FLT_OK;
}

static size_t uart_avail(void *ctx)
{
    size_t n = 0;
    (void)ctx;
    return uart_get_buffered_data_len(UART_PORT, &n) == ESP_OK ? n : 0u;
}

static int uart_read(void *ctx, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    (void)ctx;
    return uart_read_bytes(UART_PORT, buf, (uint32_t)len, pdMS_TO_TICKS(timeout_ms));
}

static void pump(uint32_t timeout_ms)
{
#ifdef FLT_TRANSPORT_MQTT
    /* esp-mqtt's task fills the ring: wait for its signal */
    xEventGroupWaitBits(wifi_events, RX_READY_BIT, pdTRUE, pdFALSE, pdMS_TO_TICKS(timeout_ms));
    return;
#endif
    uint8_t tmp[256];
    if (!use_wifi) {
        (void)flt_short_read(&rx_ring, tmp, sizeof tmp, uart_avail, uart_read, NULL, timeout_ms);
        return;
    }
    /* TCP: select() returns once any byte is there and recv() returns what has arrived */
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(sock, &rd);
    struct timeval tv = {(long)(timeout_ms / 1000u), (long)(timeout_ms % 1000u) * 1000L};
    if (select(sock + 1, &rd, NULL, NULL, &tv) <= 0) {
        return;
    }
    int n = recv(sock, tmp, sizeof tmp, 0);
    if (n <= 0) {
        close(sock);
        sock = tcp_accept();
        return;
    }
    for (int i = 0; i < n; ++i) {
        (void)flt_ring_push(&rx_ring, tmp[i]);
    }
}

int flt_port_read_byte(uint8_t *byte)
{
    if (flt_ring_empty(&rx_ring)) {
        pump(0);
    }
#ifdef FLT_TRANSPORT_MQTT
    taskENTER_CRITICAL(&rx_lock);
    const int got = flt_ring_pop(&rx_ring, byte);
    taskEXIT_CRITICAL(&rx_lock);
    return got;
#else
    return flt_ring_pop(&rx_ring, byte);
#endif
}

void flt_port_wait_event(uint32_t timeout_ms)
{
    if (flt_ring_empty(&rx_ring)) {
        pump(timeout_ms);
    }
}

uint32_t flt_port_millis(void)
{
    return (uint32_t)(esp_timer_get_time() / 1000);
}

flt_status_t flt_port_ckpt_read(uint8_t *buf, size_t cap, size_t *len)
{
    nvs_handle_t h;
    *len = 0;
    if (nvs_open("fltiny", NVS_READONLY, &h) != ESP_OK) {
        return FLT_ERR_STATE;
    }
    size_t n = cap;
    esp_err_t err = nvs_get_blob(h, "ckpt", buf, &n);
    nvs_close(h);
    if (err == ESP_ERR_NVS_INVALID_LENGTH) {
        return FLT_ERR_NOMEM;
    }
    if (err != ESP_OK) {
        return FLT_ERR_STATE;
    }
    *len = n;
    return FLT_OK;
}

flt_status_t flt_port_ckpt_write(const uint8_t *buf, size_t len)
{
    nvs_handle_t h;
    if (nvs_open("fltiny", NVS_READWRITE, &h) != ESP_OK) {
        return FLT_ERR_STATE;
    }
    esp_err_t err = nvs_set_blob(h, "ckpt", buf, len);
    if (err == ESP_OK) {
        err = nvs_commit(h);
    }
    nvs_close(h);
    return err == ESP_OK ? FLT_OK : FLT_ERR_STATE;
}

const uint8_t *flt_port_data(size_t *len)
{
    *len = FLT_EMBEDDED_DATA_LEN;
    return flt_embedded_data;
}

void flt_port_exit(int code)
{
    ESP_LOGE(TAG, "device loop ended with code %d; restarting", code);
    esp_restart();
}

uint32_t flt_port_free_ram(void)
{
    return (uint32_t)esp_get_free_heap_size();
}

uint32_t flt_port_rx_dropped(void)
{
    return rx_ring.dropped;
}

flt_status_t flt_port_boot_secret(uint8_t out[FLT_PORT_SECRET_SIZE])
{
    /* the hardware RNG (true random while the radio runs, else seeded by the bootloader's
     * entropy: ESP-IDF's esp_random documentation) */
    static uint8_t secret[FLT_PORT_SECRET_SIZE];
    static int ready;
    if (!ready) {
        esp_fill_random(secret, sizeof secret);
        ready = 1;
    }
    memcpy(out, secret, sizeof secret);
    return FLT_OK;
}

static void device_task(void *arg)
{
    (void)arg;
    flt_port_exit(flt_app_main(0, NULL));
}

void app_main(void)
{
    xTaskCreate(device_task, "fltiny", 16384, NULL, 5, NULL);
}
