"""What the ServerApp, the ClientApps and the gateway services exchange.

One round of one gateway is a ``RoundRequest`` (the global model, its version, the TRAIN
settings, the chosen devices) and a ``GatewayReply`` (the gateway's exact pre-aggregate
``GatewaySum``, and for each of its chosen devices the bridge's result: its verified payload,
example count, loss, squared norm and the bridge's figures). The top level keeps a flat run's
per-device validation, reputation and audit rows with these (fltiny.server.rounds), and adds
the gateways' sums (fltiny.server.gateway.apply_sums).

Both travel as an ``Envelope``: a JSON meta part, float arrays and raw bytes. Between the
ServerApp and a ClientApp it is a Flower ``RecordDict`` (``ConfigRecord`` "meta" with the
JSON, ``ArrayRecord`` "arrays", ``ConfigRecord`` "bytes" with the payloads as bytes values);
between a ClientApp and its gateway service (a local socket) an ``.npz`` without pickles.
Floats in the JSON round-trip exactly (``repr``), the arrays bit for bit.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fltiny.server.config import TrainParams
from fltiny.server.gateway import GatewaySum
from fltiny.server.rounds import DeviceResult
from fltiny.strategies.base import ClientUpdate

if TYPE_CHECKING:
    from flwr.app import RecordDict

QUERY = "query"  # a Flower message type of fltiny's: which gateway is this node, its devices
TRAIN = "train"  # Flower's message type for training: one gateway round


@dataclass
class Envelope:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        items = {f"a_{k}": v for k, v in self.arrays.items()}
        items.update({f"b_{k}": np.frombuffer(v, np.uint8) for k, v in self.blobs.items()})
        items["meta"] = np.frombuffer(json.dumps(self.meta).encode(), np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **items)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            items = {k: npz[k] for k in npz.files}
        meta = json.loads(items.pop("meta").tobytes().decode())
        return cls(meta, {k[2:]: v for k, v in items.items() if k.startswith("a_")},
                   {k[2:]: v.tobytes() for k, v in items.items() if k.startswith("b_")})

    def to_records(self) -> RecordDict:
        from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

        return RecordDict({
            "meta": ConfigRecord({"json": json.dumps(self.meta)}),
            "arrays": ArrayRecord({k: Array(np.ascontiguousarray(v))
                                   for k, v in self.arrays.items()}),
            "bytes": ConfigRecord(dict(self.blobs)),
        })

    @classmethod
    def from_records(cls, content: RecordDict) -> Envelope:
        meta = json.loads(str(content["meta"]["json"]))
        arrays = {k: a.numpy() for k, a in content["arrays"].items()}
        blobs = {k: bytes(v) for k, v in content["bytes"].items()}
        return cls(meta, arrays, blobs)


@dataclass(frozen=True)
class RoundRequest:
    """One round for the gateways: every chosen device (each gateway takes its own)."""

    round: int
    version: int
    devices: tuple[int, ...]
    params: np.ndarray  # float32: the global model
    train: TrainParams
    mu: float
    deadline_s: float

    def envelope(self) -> Envelope:
        return Envelope({"round": self.round, "version": self.version,
                         "devices": list(self.devices), "train": asdict(self.train),
                         "mu": self.mu, "deadline_s": self.deadline_s},
                        {"params": np.asarray(self.params, np.float32)})

    @classmethod
    def of(cls, env: Envelope) -> RoundRequest:
        m = env.meta
        return cls(int(m["round"]), int(m["version"]), tuple(int(d) for d in m["devices"]),
                   env.arrays["params"].astype(np.float32, copy=False), TrainParams(**m["train"]),
                   float(m["mu"]), float(m["deadline_s"]))


def _result_meta(r: DeviceResult) -> dict[str, Any]:
    u = r.update
    return {"device_id": r.device_id, "bytes_up": r.bytes_up, "bytes_down": r.bytes_down,
            "error": r.error, "personal_n": r.personal_n, "personal_metric": r.personal_metric,
            "figures": r.figures,
            "update": None if u is None else {"examples": u.num_examples, "loss": u.loss,
                                              "n_params": u.n_params, "sq_norm": u.sq_norm()}}


def _result_of(m: dict[str, Any], blobs: dict[str, bytes]) -> DeviceResult:
    dev = int(m["device_id"])
    u = m["update"]
    update = None
    if u is not None:
        update = ClientUpdate(dev, None, int(u["examples"]), float(u["loss"]),
                              payload=blobs[str(dev)], n_params=int(u["n_params"]),
                              sq_norm=float(u["sq_norm"]))
    return DeviceResult(dev, update, int(m["bytes_up"]), int(m["bytes_down"]), str(m["error"]),
                        int(m["personal_n"]), m["personal_metric"], dict(m["figures"]))


@dataclass(frozen=True)
class GatewayReply:
    """A gateway's round: its devices' results and the exact pre-aggregate of its accepted
    (bridge-verified) updates."""

    gateway: int
    results: tuple[DeviceResult, ...]
    sum: GatewaySum
    seconds: float = 0.0  # the gateway's round, as its service measured it

    def envelope(self) -> Envelope:
        blobs = {}
        for r in self.results:
            if r.update is not None:
                assert r.update.payload is not None, "the bridge forwards payload updates"
                blobs[str(r.device_id)] = r.update.payload
        return Envelope({"gateway": self.gateway, "seconds": self.seconds,
                         "results": [_result_meta(r) for r in self.results],
                         "examples": self.sum.examples, "summed": list(self.sum.devices)},
                        {"weighted_sum": self.sum.weighted_sum.astype(np.float64, copy=False)},
                        blobs)

    @classmethod
    def of(cls, env: Envelope) -> GatewayReply:
        m = env.meta
        g = int(m["gateway"])
        results = tuple(_result_of(r, env.blobs) for r in m["results"])
        total = GatewaySum(g, env.arrays["weighted_sum"].astype(np.float64, copy=False),
                           int(m["examples"]), tuple(int(d) for d in m["summed"]))
        return cls(g, results, total, float(m.get("seconds", 0.0)))


@dataclass(frozen=True)
class GatewayInfo:
    """A QUERY's answer: which gateway a SuperNode serves and its devices."""

    gateway: int
    devices: tuple[int, ...]

    def envelope(self) -> Envelope:
        return Envelope({"gateway": self.gateway, "devices": list(self.devices)})

    @classmethod
    def of(cls, env: Envelope) -> GatewayInfo:
        return cls(int(env.meta["gateway"]), tuple(int(d) for d in env.meta["devices"]))
