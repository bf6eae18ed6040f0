"""A gateway service: one gateway's bridge, alive for the whole run (``python -m
fltiny.flower.service SPEC``).

Flower starts a new ClientApp process for every message (``flwr-clientapp``: one task, then it
exits), but a gateway's bridge must outlive rounds: the protocol sessions, the sequence
numbers, and what the host knows of each device (the parameters it holds, its residual state)
are what the replay of every DELTA and the compressed GLOBAL deltas rest on. So the bridge
lives here, and the ClientApp hands each round to it over a loopback socket
(``multiprocessing.connection``: HMAC challenge with the run's key, then ``Envelope`` bytes,
no pickles). On a plant floor this is the gateway's service beside its SuperNode.

One request at a time, in order: a QUERY (``GatewayInfo``: which gateway, which devices), or
a ROUND (``RoundRequest`` in, ``GatewayReply`` out: the bridge's verified results of this
gateway's chosen devices and their exact pre-aggregate, fltiny.server.gateway.pre_aggregate).
When the ClientApp is gone before the reply (its SuperNode was killed), the round's results
are dropped here, as the round loop drops any late update: the devices' state stays known to
the bridge, so they rejoin the next round. SIGTERM closes every link and exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any

import numpy as np

from fltiny.flower.wire import QUERY, Envelope, GatewayInfo, GatewayReply, RoundRequest
from fltiny.server.gateway import pre_aggregate


@dataclass(frozen=True)
class EndpointSpec:
    """A board of the gateway: where it is and (emulation) its data blob for the replay."""

    device_id: int
    url: str
    board: str
    max_windows: int
    key: str  # hex
    blob: str | None  # path of the blob's .npz (fltiny.flower.spec.save_blob), None: no data


@dataclass(frozen=True)
class GatewaySpec:
    """What a gateway service is started with (JSON file)."""

    gateway: int
    bundle: str
    endpoints: tuple[EndpointSpec, ...]
    global_delta: bool
    down_topk: float
    down_bits: int
    send_chunk: int
    authkey_file: str
    ready_file: str  # written (atomically) with the service's port once it listens

    def save(self, path: Path) -> None:
        """Written readable by its owner only: it holds the boards' protocol keys."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an older file of the same name keeps its mode otherwise
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> GatewaySpec:
        d = json.loads(Path(path).read_text())
        d["endpoints"] = tuple(EndpointSpec(**e) for e in d["endpoints"])
        return cls(**d)


READ_TIMEOUT_S = 10.0  # a connection's handshake and request must arrive within this


def _limit_reads(conn: Connection, seconds: float) -> None:
    """Reads on ``conn`` fail with an OSError after ``seconds`` without data (SO_RCVTIMEO on
    its socket: Connection reads the descriptor directly, so a socket object's timeout would
    not apply)."""
    with socket.socket(fileno=os.dup(conn.fileno())) as sock:
        whole = int(seconds)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                        struct.pack("ll", whole, int((seconds - whole) * 1e6)))


def _say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


class GatewayService:
    def __init__(self, spec: GatewaySpec, log=_say) -> None:
        from fltiny.bridge.fleet import BridgeFleet, Endpoint
        from fltiny.devices.replay import HostRound
        from fltiny.export.bundle import Bundle
        from fltiny.flower.spec import load_blob
        from fltiny.run.runner import FiguredFleet

        self.spec = spec
        self.log = log
        self.hr = HostRound(Path(spec.bundle))
        eps = [Endpoint(e.device_id, e.url, load_blob(Path(e.blob)) if e.blob else None,
                        e.max_windows, bytes.fromhex(e.key), e.board)
               for e in spec.endpoints]
        self.bridge = BridgeFleet(eps, self.hr, model_hash=Bundle.load(Path(spec.bundle)).model_hash,
                                  global_delta=spec.global_delta, down_topk=spec.down_topk,
                                  down_bits=spec.down_bits, send_chunk=spec.send_chunk, log=log,
                                  replay_lock=threading.Lock())
        self.fleet = FiguredFleet(self.bridge)
        self.ids = sorted(e.device_id for e in spec.endpoints)

    def answer(self, env: Envelope) -> Envelope:
        if env.meta.get("kind") == QUERY:
            return GatewayInfo(self.spec.gateway, tuple(self.ids)).envelope()
        req = RoundRequest.of(env)
        t0 = time.perf_counter()
        mine = [d for d in req.devices if d in self.ids]
        self.fleet.devices()  # reopens broken links, takes new HELLOs (as the round loop does)
        results = self.fleet.run_round(req.round, mine, req.params, req.version, req.train,
                                       req.mu, req.deadline_s)
        g = self.spec.gateway
        results = sorted((replace(r, figures={**r.figures, "gateway": g}) for r in results),
                         key=lambda r: r.device_id)
        total = pre_aggregate(g, [r.update for r in results if r.update is not None])
        if total.weighted_sum.size == 0:
            total = replace(total, weighted_sum=np.zeros(self.hr.n_params, np.float64))
        seconds = time.perf_counter() - t0
        self.log(f"round {req.round}: {len(total.devices)} of {len(mine)} device(s) verified "
                 f"and summed ({total.examples} examples) in {seconds:.1f} s")
        return GatewayReply(g, tuple(results), total, seconds).envelope()

    def serve(self, listener: Listener, key: bytes) -> None:
        """Answers one connection at a time. A connection that fails the HMAC challenge, goes
        away or stays silent for READ_TIMEOUT_S is closed and the service goes on; so does one
        whose request fails (its devices miss that round, as with any lost reply)."""
        while True:
            try:
                conn: Connection = listener.accept()
            except OSError as exc:
                self.log(f"accepting a connection failed ({exc}): waiting for the next")
                continue
            try:
                _limit_reads(conn, READ_TIMEOUT_S)
                deliver_challenge(conn, key)
                answer_challenge(conn, key)
            except (AuthenticationError, EOFError, OSError) as exc:
                self.log(f"a connection failed the service's handshake ({type(exc).__name__}):"
                         " closed")
                conn.close()
                continue
            try:
                request = Envelope.from_bytes(conn.recv_bytes())
                reply = self.answer(request)
                conn.send_bytes(reply.to_bytes())
            except (EOFError, OSError) as exc:
                self.log(f"the ClientApp went away before the reply ({type(exc).__name__}: its "
                         "SuperNode stopped?): this round's results are dropped")
            except Exception as exc:  # noqa: BLE001 - one bad request must not end the gateway
                self.log(f"a request failed ({type(exc).__name__}: {exc}): no reply, its "
                         "devices miss this round")
            finally:
                conn.close()

    def close(self) -> None:
        self.bridge.close()


def main(argv: list[str]) -> int:
    spec = GatewaySpec.load(Path(argv[0]))
    _say(f"gateway {spec.gateway}: devices "
         + ", ".join(str(e.device_id) for e in spec.endpoints))
    service = GatewayService(spec)

    def _stop(_sig: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the engine may signal twice
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    key = Path(spec.authkey_file).read_bytes()
    try:
        # no authkey here: serve() runs the same HMAC challenge itself, with a read timeout,
        # so a client that fails or stalls it cannot stop or hang the service
        with Listener(("127.0.0.1", 0)) as listener:
            port = listener.address[1]
            ready = Path(spec.ready_file)
            tmp = ready.with_suffix(".tmp")
            tmp.write_text(str(port))
            os.replace(tmp, ready)
            _say(f"gateway {spec.gateway}: serving its ClientApp on 127.0.0.1:{port}")
            service.serve(listener, key)
    except KeyboardInterrupt:
        _say(f"gateway {spec.gateway}: stopped")
    finally:
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
