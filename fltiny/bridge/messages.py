"""The protocol messages, under the name the round loop, the simulator and the run use.

The values and their C codecs live in fltiny.native.messages (one implementation: the
runtime's messages.c); this module only gives them their bridge-side import path.
"""

from fltiny.native.messages import (  # noqa: F401
    ACK_ACCEPTED,
    CLASSES,
    Ack,
    Delta,
    Disable,
    Error,
    Global,
    GlobalKind,
    Hello,
    Log,
    Message,
    MsgType,
    Nack,
    Secagg,
    SecaggKind,
    Status,
    Train,
    __getattr__,  # noqa: F401  (C constants: CAP_*, *_SIZE)
    decode_message,
    is_control,
)
