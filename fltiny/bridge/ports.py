"""Boards that are already running, reached through a port: who they are, from their HELLO.

A board announces itself with HELLO, retransmitted every 400 ms until a host acknowledges it
(firmware/app/flt_device.c), in frames that carry its device id and are authenticated with its
key. ``probe`` opens the port, reads frames until one is an authenticated HELLO from a device
(one of the candidate keys verifies its tag, through the runtime's own
``flt_cobs_decode`` / ``flt_proto_frame_decode``) and returns the device id, the key that
verified it, the decoded HELLO and the open link. It acknowledges nothing: the bridge's
session takes the next retransmission of that HELLO and answers it.

A board that already answered an earlier host says no HELLO until it is asked: when none
comes within ``POKE_AFTER_S`` and the device id behind a key is known (a fleet file, the
provisioning record of ``fltiny flash``), the probe sends that device an authenticated STATUS
request with sequence numbers 2 and 1. A running board refuses at least one of them as a
replay and announces itself again (a HELLO whose ``host_seq`` is the last host sequence
number it accepted: the bridge's session continues above it). A board still waiting for its
first host is never asked: it repeats its HELLO anyway (docs/protocol.md, "Re-announce").

What a probe cannot see it says in one line (``UsageError``): a port that does not exist or
does not open, a port where nothing arrives, frames no known key authenticates, a board that
sends but no HELLO (it already said HELLO to an earlier host and waits for that one: reset it).

A resumed run (``fltiny run --resume``) knows the board it drove on each port from its run
store (``Known``: device id, which key, its HELLO): a board that outlived the killed host says
no new HELLO, so the probe listens briefly (``RESUME_LISTEN_S``) and, unless a HELLO comes (the
board rebooted), re-attaches it (``Probe.reattached``); the bridge then restores the host's
state of it (fltiny.bridge.fleet ``BridgeFleet.restore``). Frames of another device on that
port are refused in one line.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fltiny.bridge.link import Link, open_link
from fltiny.errors import UsageError
from fltiny.native import messages as m
from fltiny.native.errors import ProtocolError
from fltiny.native.proto import FLAG_FROM_HOST, Header, decode_wire, encode_frame

PROBE_BUFFER = 4096  # bytes kept while waiting for a frame delimiter (a frame is <= 300)
RESUME_LISTEN_S = 1.5  # a resumed run's wait for a HELLO from a board it knows (3 retransmissions)
POKE_AFTER_S = 1.5  # a new run's wait for a HELLO before it asks a running board for one


def key_id(key: bytes) -> str:
    """Names a device key without revealing it (the run store keeps no keys)."""
    return hashlib.sha256(b"fltiny-key-id" + bytes(key)).hexdigest()[:16]


@dataclass
class Probe:
    port: str
    device_id: int
    key: bytes
    hello: m.Hello
    link: Link
    reattached: bool = False  # no new HELLO: the board a resumed run's store knows (Known)


@dataclass(frozen=True)
class Known:
    """The board a resumed run drove on a port, from its run store."""

    device_id: int
    key_id: str
    hello: m.Hello


@dataclass(frozen=True)
class Credential:
    """A device id and the key it authenticates with (a fleet file's or the provisioning
    record's): what the probe needs to ask a running board to say HELLO again."""

    device_id: int
    key: bytes = field(repr=False)  # never print a key


def poke_frames(cred: Credential) -> bytes:
    """Two authenticated STATUS requests to ``cred``'s device, sequence numbers 2 then 1: a
    board whose receiver accepted host numbers before refuses at least one as a replay and
    says HELLO again (a first-time board answers STATUS and keeps waiting for a HELLO ACK)."""
    body = m.Status("hello?").encode()
    return b"".join(
        encode_frame(Header(m.MsgType.STATUS, cred.device_id, seq, payload_len=len(body),
                            flags=FLAG_FROM_HOST), body, cred.key)
        for seq in (2, 1))


def is_device_path(port: str) -> bool:
    """A filesystem path (``/dev/ttyUSB0``, ``/dev/pts/3``), not a URL or host:port."""
    return port.startswith("/") or port.startswith("./")


def open_port(port: str, timeout: float = 5.0) -> Link:
    """The link to ``port`` (UsageError naming it when it does not exist or does not open)."""
    if is_device_path(port) and not os.path.exists(port):
        raise UsageError(f"--port {port} does not exist: is the board connected (or the "
                         "'fltiny emulate --pty' process running)? 'python -m "
                         "serial.tools.list_ports' lists the serial ports")
    try:
        return open_link(port, timeout=timeout)
    except ConnectionError as exc:
        raise UsageError(f"--port {port}: {exc}") from None


def probe(port: str, keys: Sequence[bytes], timeout: float,
          opener: Callable[[str], Link] = open_port, known: Known | None = None,
          pokes: Sequence[Credential] = ()) -> Probe:
    """Wait up to ``timeout`` seconds for an authenticated HELLO on ``port`` (module
    docstring; with ``known``, a resumed run's board: briefly, then re-attach it; ``pokes``:
    the devices that may be there, asked for a HELLO when none comes); the link stays open in
    the result, and is closed on failure."""
    link = opener(port)
    try:
        return _read_hello(port, link, keys, timeout, known, pokes)
    except BaseException:
        link.close()
        raise


def _reattach(port: str, link: Link, keys: Sequence[bytes], known: Known) -> Probe:
    key = next((k for k in keys if key_id(k) == known.key_id), None)
    if key is None:
        raise UsageError(f"--port {port}: the run being resumed authenticated device "
                         f"{known.device_id} there with a key none of the known keys is: give "
                         "its key in a fleet file (--fleet-file) or the provisioning record")
    return Probe(port, known.device_id, key, known.hello, link, reattached=True)


def _read_hello(port: str, link: Link, keys: Sequence[bytes], timeout: float,
                known: Known | None = None, pokes: Sequence[Credential] = ()) -> Probe:
    buf = b""
    frames = unauthenticated = others = 0
    start = time.monotonic()
    end = start + (timeout if known is None else min(timeout, RESUME_LISTEN_S))
    poked = known is not None or not pokes
    while time.monotonic() < end:
        if not poked and time.monotonic() - start >= POKE_AFTER_S:
            poked = True
            try:
                link.send(b"".join(poke_frames(c) for c in pokes))
            except ConnectionError as exc:
                raise UsageError(f"--port {port}: the link failed while asking the board "
                                 f"for its HELLO: {exc}") from None
        try:
            data = link.receive()
        except ConnectionError as exc:
            raise UsageError(f"--port {port}: the link failed while waiting for HELLO: "
                             f"{exc}") from None
        if not data:
            continue
        *complete, buf = (buf + data).split(b"\x00")
        buf = buf[-PROBE_BUFFER:]
        for raw in complete:
            if not raw:
                continue  # the delimiters a sender may put before a frame
            frames += 1
            frame, key = _authenticate(raw, keys)
            if frame is None:
                unauthenticated += 1
                continue
            h = frame.header
            if known is not None and h.device_id != known.device_id:
                raise UsageError(f"--port {port}: device {h.device_id} answers there, the run "
                                 f"being resumed drove device {known.device_id} on it: give "
                                 "the same boards on the same ports, or start a new run "
                                 "(another --out)")
            if (h.type == m.MsgType.HELLO and not h.flags & FLAG_FROM_HOST
                    and h.chunk_count == 1):
                try:
                    hello = m.Hello.decode(frame.payload)
                except ProtocolError as exc:
                    raise UsageError(f"--port {port}: the board's HELLO does not decode "
                                     f"({exc.status}): is it running fltiny firmware of this "
                                     "version?") from None
                return Probe(port, h.device_id, key, hello, link)
            others += 1
    if known is not None:  # no new HELLO: the board outlived the host being resumed
        return _reattach(port, link, keys, known)
    ask = (" (it was asked for one: is the device id or key in the fleet file or the "
           "provisioning record right?)" if pokes else
           "; fltiny asks a running board for a new HELLO when it knows its device id: give it "
           "in a fleet file (--fleet-file) or flash the board with 'fltiny flash'")
    if frames == 0:
        raise UsageError(
            f"--port {port}: no HELLO within {timeout:g} s (nothing arrived): is a board with "
            "fltiny firmware running on it? A board says HELLO after it boots until a host "
            f"answers, and one that already answered an earlier run waits{ask}; or reset it "
            "(or restart 'fltiny emulate'), or raise --hello-timeout")
    if others:
        raise UsageError(
            f"--port {port}: the board sends frames but no HELLO within {timeout:g} s: it "
            f"already said HELLO to an earlier run{ask}; or reset it (or restart 'fltiny "
            "emulate')")
    raise UsageError(
        f"--port {port}: {unauthenticated} frame(s) within {timeout:g} s, none authenticated "
        "by a known key (FLT_ERR_AUTH or a corrupted line): give the board's key in a fleet "
        "file, or flash it with 'fltiny flash' (which records its key)")


def _authenticate(raw: bytes, keys: Sequence[bytes]):
    for key in keys:
        try:
            return decode_wire(raw, key), key
        except ProtocolError:
            continue
    return None, b""


def probe_all(ports: Sequence[str], keys: Sequence[Sequence[bytes]], timeout: float,
              opener: Callable[[str], Link] = open_port,
              known: dict[str, Known] | None = None,
              pokes: Sequence[Sequence[Credential]] | None = None) -> list[Probe]:
    """``probe`` every port at once (a silent port costs one timeout, not one each); the
    first failure in port order is raised after every link is closed. ``known``: a resumed
    run's boards by port; ``pokes``: per port, the devices that may be there."""
    if not ports:
        return []
    known = known or {}
    pokes = pokes if pokes is not None else [()] * len(ports)
    with ThreadPoolExecutor(max_workers=len(ports), thread_name_prefix="fltiny-probe") as ex:
        futures = [ex.submit(probe, p, k, timeout, opener, known.get(p), c)
                   for p, k, c in zip(ports, keys, pokes, strict=True)]
        results: list[Probe] = []
        failure: BaseException | None = None
        for f in futures:
            try:
                results.append(f.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the cleanup
                failure = failure or exc
    if failure is not None:
        for r in results:
            r.link.close()
        raise failure
    return results
