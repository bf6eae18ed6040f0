"""The binding's errors: a runtime status (flt_status_t) turned into a ``FltinyError``.

``ProtocolError`` carries the C status name (``status``) and what was being done
(``reason``); every failed protocol call of the binding raises it. ``PayloadError`` is the
same for the delta payload codec and the delta maths.
"""

from __future__ import annotations

from fltiny.errors import FltinyError
from fltiny.native.status import status_name


class ProtocolError(FltinyError):
    """Bytes or a peer that break the protocol; ``status`` names the C flt_status_t."""

    def __init__(self, reason: str, status: str = "FLT_ERR_FORMAT") -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{reason} ({status}); check the link, the device key and that "
                         "both ends run protocol version 3")


class NackError(ProtocolError):
    """The peer rejected a frame we sent (``code``: its flt_status_t)."""

    def __init__(self, seq: int, code: int) -> None:
        self.seq = seq
        self.code = code
        super().__init__(f"peer rejected frame seq {seq}: {status_name(code)}", status_name(code))


class DeliveryError(ProtocolError):
    """A message was not acknowledged after the configured retries (or nothing arrived)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "FLT_ERR_STATE")


class PayloadError(FltinyError):
    """A delta payload that does not decode, or delta maths the C refused."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(f"{message} ({status}); the payload is corrupt or from another version")
        self.status = status


def check(code: int, what: str) -> None:
    """Raises ProtocolError naming the status when a C call failed."""
    if code != 0:
        raise ProtocolError(f"{what} failed", status_name(code))
