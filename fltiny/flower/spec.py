"""The run as files: what the engine hands the ServerApp (``RunSpec``, JSON; the Flower run's
``run_config`` names it), the gateways' data blobs (``save_blob`` / ``load_blob``, exact), and
the ServerApp's event stream back to the engine (``Events``: JSON lines, one per event)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fltiny.devices.data import DataBlob
from fltiny.experiment import DataSettings, RunOptions
from fltiny.server.config import RoundConfig, TrainParams

SPEC_KEY = "fltiny-spec"  # the run_config key of the Flower run: the RunSpec's path


def save_blob(blob: DataBlob, path: Path) -> None:
    arrays: dict[str, Any] = {"windows": blob.windows,
                              "meta": np.frombuffer(json.dumps({
                                  "device_id": blob.device_id, "input_scale": blob.input_scale,
                                  "input_zero_point": blob.input_zero_point,
                                  "model_hash": blob.model_hash.hex(),
                                  "n_test": blob.n_test}).encode(), np.uint8)}
    if blob.labels is not None:
        arrays["labels"] = blob.labels
    if blob.targets is not None:
        arrays["targets"] = blob.targets
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_blob(path: Path) -> DataBlob:
    with np.load(path, allow_pickle=False) as npz:
        a = {k: npz[k] for k in npz.files}
    m = json.loads(a["meta"].tobytes().decode())
    return DataBlob(int(m["device_id"]), a["windows"], a.get("labels"), a.get("targets"),
                    float(m["input_scale"]), int(m["input_zero_point"]),
                    bytes.fromhex(m["model_hash"]), int(m["n_test"]))


def options_json(opts: RunOptions) -> dict[str, Any]:
    """The settings the ServerApp needs (data, strategy, the round loop, out), JSON-able."""
    data = asdict(opts.data)
    data["bundle"] = None if opts.data.bundle is None else str(Path(opts.data.bundle).resolve())
    return {"data": data, "strategy": opts.strategy,
            "strategy_options": [list(kv) for kv in opts.strategy_options],
            "server": asdict(opts.server), "gateways": opts.gateways,
            "out": str(Path(opts.out).resolve()), "build_root": str(Path(opts.build_root).resolve()),
            "fleet": [list(x) for x in opts.fleet]}


def options_of(d: dict[str, Any]) -> RunOptions:
    data = dict(d["data"])
    data["bundle"] = None if data["bundle"] is None else Path(data["bundle"])
    server = dict(d["server"])
    train = TrainParams(**server.pop("train"))
    return RunOptions(data=DataSettings(**data), strategy=d["strategy"],
                      strategy_options=tuple((k, v) for k, v in d["strategy_options"]),
                      server=RoundConfig(**server, train=train), gateways=int(d["gateways"]),
                      out=Path(d["out"]), build_root=Path(d["build_root"]),
                      fleet=tuple((str(b), int(n)) for b, n in d["fleet"]))


@dataclass(frozen=True)
class RunSpec:
    options: dict[str, Any]  # options_json
    groups: list[list[int]]  # the device ids of each gateway
    events: str  # the Events file the ServerApp writes
    query_timeout_s: float  # how long the ServerApp waits for a new SuperNode's QUERY answer

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> RunSpec:
        return cls(**json.loads(Path(path).read_text()))


class Events:
    """The ServerApp's JSON-lines event file: "say" and "log" lines, "round" (RoundMetrics),
    "done", "error" (a one-line message)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, kind: str, **fields: Any) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"kind": kind, "t": time.time(), **fields}) + "\n")

    def read_from(self, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Complete lines after ``offset`` and the offset after them."""
        if not self.path.exists():
            return [], offset
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        lines = [json.loads(x) for x in data[:end].splitlines() if x.strip()]
        return lines, offset + end
