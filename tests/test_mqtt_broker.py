"""The fleet's broker as fltiny configures it (mosquitto on loopback, a random free port, started
and stopped by the test): who gets in (a certificate of the fleet's CA, TLS 1.2+) and who does
not (another CA, no certificate, anonymous plain MQTT, TLS 1.1); what the ACL lets device A do
on device B's topics; and the one-line errors of bad broker input."""

from __future__ import annotations

import os
import shutil
import ssl

import pytest
from mqtt_support import Client

from fltiny.broker import topics
from fltiny.broker.mosquitto import Broker
from fltiny.broker.pki import ensure_pki
from fltiny.errors import UsageError


@pytest.fixture(autouse=True)
def _mosquitto_installed():
    if shutil.which("mosquitto") is None and not os.access("/usr/sbin/mosquitto", os.X_OK):
        pytest.fail("mosquitto is not installed: run make setup", pytrace=False)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    fleet = tmp_path_factory.mktemp("fleet")
    b = Broker(fleet).start()
    ensure_pki(fleet, [1, 2])
    yield b
    b.stop()
    assert not b.running()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    return ensure_pki(tmp_path_factory.mktemp("other-fleet"), [1])


def _client(broker, ident=None, **kw) -> Client:
    pki = broker.pki
    return Client(broker.host, broker.port, pki.ca, ident.cert if ident else None,
                  ident.key if ident else None, **kw)


def test_a_device_certificate_of_the_fleet_ca_gets_in(broker):
    c = _client(broker, broker.pki.device(1), client_id="device-1")
    try:
        assert c.connect()
    finally:
        c.close()


@pytest.mark.parametrize("who", ["other-ca", "no-certificate", "anonymous-plain", "tls-1.1"])
def test_the_broker_refuses(broker, other_ca, who):
    if who == "other-ca":  # a valid certificate, signed by another fleet's CA
        c = Client(broker.host, broker.port, broker.pki.ca, other_ca.device(1).cert,
                   other_ca.device(1).key, client_id="device-1")
    elif who == "no-certificate":
        c = _client(broker, None, client_id="device-1")
    elif who == "anonymous-plain":  # no TLS at all: there is no plain-text listener
        c = Client(broker.host, broker.port, None, tls=False, client_id="anon")
    else:
        c = _client(broker, broker.pki.device(1), client_id="device-1",
                    max_tls=ssl.TLSVersion.TLSv1_1)
    try:
        assert not c.connect(timeout=1.0)
    finally:
        c.close()


def test_acl_keeps_each_device_on_its_own_topics(broker):
    pki = broker.pki
    host = _client(broker, pki.host, client_id="test-host")
    a = _client(broker, pki.device(1), client_id="device-1")
    b = _client(broker, pki.device(2), client_id="device-2")
    try:
        assert host.connect() and a.connect() and b.connect()
        host.subscribe(f"{topics.PREFIX}/+/up")
        mid_b = b.subscribe(topics.down_topic(2))
        mid_a_on_b = a.subscribe(topics.down_topic(2))  # granted, but nothing is delivered
        assert host.wait(lambda: len(host.subacks) == 1) and b.wait(lambda: mid_b in b.subacks)
        assert a.wait(lambda: mid_a_on_b in a.subacks)
        own = a.publish(topics.up_topic(1), b"from A")
        forged = a.publish(topics.up_topic(2), b"A pretending to be B")
        status = a.publish(topics.status_topic(2), b"offline")
        assert a.wait(lambda: {own, forged, status} <= set(a.pubacks))
        assert a.pubacks[own] == "Success"
        assert a.pubacks[forged] == a.pubacks[status] == "Not authorized"
        host.publish(topics.down_topic(2), b"for B only")
        assert b.wait(lambda: (topics.down_topic(2), b"for B only") in b.messages)
        assert host.wait(lambda: (topics.up_topic(1), b"from A") in host.messages)
        assert (topics.up_topic(2), b"A pretending to be B") not in host.messages
        assert not any(t == topics.down_topic(2) for t, _ in a.messages)  # read ACL
        # a device cannot write another's down-topic either
        down = a.publish(topics.down_topic(2), b"A to B")
        assert a.wait(lambda: down in a.pubacks) and a.pubacks[down] == "Not authorized"
    finally:
        for c in (host, a, b):
            c.close()


def test_hub_errors_are_one_line(broker, other_ca, tmp_path):
    from fltiny.bridge.mqtt import MqttHub, MqttSettings, parse_mqtt_url
    from fltiny.broker.mosquitto import free_port

    pki = broker.pki
    ok = MqttSettings(broker.host, broker.port, pki.ca, pki.host.cert, pki.host.key)
    hub = MqttHub(ok).start()
    hub.close()
    cases = [
        (MqttSettings(broker.host, free_port(), pki.ca, pki.host.cert, pki.host.key),
         "cannot reach the MQTT broker"),
        (MqttSettings(broker.host, broker.port, pki.ca, other_ca.host.cert, other_ca.host.key),
         "did not accept the host"),
        (MqttSettings(broker.host, broker.port, other_ca.ca, pki.host.cert, pki.host.key),
         "TLS with the MQTT broker"),
        (MqttSettings(broker.host, broker.port, tmp_path / "nope.crt", pki.host.cert,
                      pki.host.key), "does not exist"),
    ]
    for settings, words in cases:
        with pytest.raises(UsageError, match=words) as err:
            MqttHub(settings, connect_timeout=1.0).start()
        assert "\n" not in str(err.value)
    for url in ("mqtt://127.0.0.1:1883", "http://x", "mqtts://", "mqtts://h:99999"):
        with pytest.raises(UsageError, match="mqtt"):
            parse_mqtt_url(url)
    assert parse_mqtt_url("mqtts://broker.local") == ("broker.local", 8883)


def test_cli_broker_start_stop(cli, tmp_path):
    fleet = tmp_path / "fleet"
    code, out, err = cli("broker", "start", "--dir", fleet, "--port", "0", "--devices", "2")
    try:
        assert code == 0, err
        assert "mosquitto running on mqtts://127.0.0.1:" in out
        assert (fleet / "pki" / "device-2.crt").is_file()
        assert oct((fleet / "pki" / "device-2.key").stat().st_mode & 0o777) == "0o600"
        code, _, err = cli("broker", "start", "--dir", fleet, "--port", "0")
        assert code == 2 and "already running" in err
    finally:
        code, out, _ = cli("broker", "stop", "--dir", fleet)
    assert code == 0 and "stopped" in out
    code, _, err = cli("broker", "stop", "--dir", fleet)
    assert code == 2 and err.startswith("error: no broker is running")


@pytest.mark.parametrize("args, words", [
    (["--transport", "mqtt", "--fleet", "qemu-m4f=1"], "none of the boards (qemu-m4f) has an MQTT"),
    (["--mqtt-url", "mqtts://127.0.0.1:1"], "need --transport mqtt"),
    (["--transport", "mqtt", "--port", "/dev/ttyUSB9"], "--transport mqtt applies"),
])
def test_run_refuses_bad_mqtt_options(cli, args, words, tmp_path):
    code, _, err = cli("run", *args, "--out", tmp_path / "r")
    assert code == 2, err
    assert words in err and len(err.strip().splitlines()) == 1
