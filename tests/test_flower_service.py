"""The gateway service's loopback server (fltiny/flower/service.py ``GatewayService.serve``):
a client with the wrong key, one that hangs up during the HMAC challenge, one that stays
silent and a request that fails each cost only their own connection; the next client with
the run's key gets its answer. Real sockets and multiprocessing's own client; the service's
answer is stubbed (its bridge is tested with real boards in tests/test_run_flower.py)."""

from __future__ import annotations

import os
import socket
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

import pytest

from fltiny.flower import service as svc
from fltiny.flower.wire import QUERY, Envelope

KEY = os.urandom(32)


class _Stub(svc.GatewayService):
    def __init__(self) -> None:  # no bridge: answer() is what is under test's control
        self.lines: list[str] = []
        self.log = self.lines.append

    def answer(self, env: Envelope) -> Envelope:
        if env.meta.get("boom"):
            raise ValueError("a malformed request")
        return Envelope({"kind": QUERY, "echo": env.meta.get("n")})


@pytest.fixture()
def served(monkeypatch):
    monkeypatch.setattr(svc, "READ_TIMEOUT_S", 0.5)
    service = _Stub()
    listener = Listener(("127.0.0.1", 0))
    threading.Thread(target=service.serve, args=(listener, KEY), daemon=True).start()
    yield listener.address, service
    listener.close()


def _ask(address, n: int, **meta) -> Envelope:
    with Client(address, authkey=KEY) as conn:
        conn.send_bytes(Envelope({"n": n, **meta}).to_bytes())
        return Envelope.from_bytes(conn.recv_bytes())


def test_bad_clients_cost_only_their_connection(served):
    address, service = served
    assert _ask(address, 1).meta["echo"] == 1
    with pytest.raises(AuthenticationError):  # the wrong key: refused by the service
        with Client(address, authkey=b"not the key" * 3) as conn:
            conn.send_bytes(b"x")
            conn.recv_bytes()
    with socket.create_connection(address):  # hangs up during the challenge
        pass
    silent = socket.create_connection(address)  # says nothing: timed out, not a hang
    t0 = time.monotonic()
    assert _ask(address, 2).meta["echo"] == 2
    assert time.monotonic() - t0 < 5
    silent.close()
    with pytest.raises(EOFError):  # a request that fails: no reply, the service goes on
        _ask(address, 3, boom=True)
    assert _ask(address, 4).meta["echo"] == 4
    joined = "\n".join(service.lines)
    assert joined.count("failed the service's handshake") >= 3, joined
    assert "a request failed (ValueError: a malformed request)" in joined


def test_the_spec_file_holding_device_keys_is_private(tmp_path):
    spec = svc.GatewaySpec(0, "b", (svc.EndpointSpec(1, "tcp://x:1", "qemu-m4f", 8, "ab" * 32,
                                                     None),), True, 0.25, 4, 256, "k", "r")
    path = tmp_path / "gateway-0.json"
    path.write_text("old")
    path.chmod(0o644)
    spec.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert svc.GatewaySpec.load(path) == spec
