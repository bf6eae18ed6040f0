"""The device<->host bridge: I/O, sessions as policy and fleet bookkeeping.

The protocol itself (frames, messages, receiver, outbox) is the C runtime's, bound in
fltiny.native; here:
- ``fltiny.bridge.link``: transports (TCP, pyserial)
- ``fltiny.bridge.session``: one session per peer around the C receiver and outbox
- ``fltiny.bridge.messages``: the message values (fltiny.native.messages)
- ``fltiny.bridge.fleet``: ``BridgeFleet``, the round loop's ``Fleet`` over boards
"""
