"""The MQTT broker of a fleet: identities, configuration and the mosquitto process.

- ``fltiny.broker.pki``: a CA per fleet, the broker's certificate, one client certificate per
  device and one for the host (the ``cryptography`` package)
- ``fltiny.broker.topics``: topic names and the client identity of each device
- ``fltiny.broker.mosquitto``: mosquitto.conf and the ACL file, the broker process (start, wait
  until it serves TLS, stop)

Everything lives in one fleet directory (never committed); docs/protocol.md "MQTT transport"
has the topic layout, QoS, retained and session choices.
"""
