"""The device<->host bridge: wire protocol v1 (docs/protocol.md).

- ``fltiny.bridge.protocol``: frames (COBS, header, HMAC-SHA256 tag, CRC-32) and the
  ProtocolError hierarchy
- ``fltiny.bridge.messages``: the message dataclasses and their payload codecs
- ``fltiny.bridge.session``: the stream receiver and the retransmitting session
"""
