"""A simulated fleet: every device's round runs through the firmware's own C runtime compiled
for the host (fltiny.devices.replay.HostRound = firmware/app/flt_round.c + the generated
backbone), so a simulated delta is byte for byte what a board with the same data, global
model, TRAIN message and device state sends. Devices get their data exactly as emulated boards
do (fltiny.devices.data.fleet_blobs), and keep their state between rounds (DeviceState: the
error-feedback residual, the drift-control state, the model they serve), as a board does once
its DELTA is acknowledged. Each result carries the device's personal metric (its served model
on its personal test split, before training), computed by the same C.

Downlink as on the bridge (fltiny.server.downlink): a device is sent the FULL model or a
sparse int8 GLOBAL delta and trains from what it then holds. Byte figures are the wire's
(fltiny.native.proto.WireCount: every message framed by the C encoder, with the ACKs).

Churn: each round a seeded ``churn`` share of the devices is offline and misses it.

Secure aggregation (``secagg``, fltiny.sim.secagg): each device's round delta goes into its
runtime secagg client instead of a DELTA; the fleet returns no individual update, and
``secure_aggregate(round)`` gives the round loop the exact unmasked mean (a round that cannot be
unmasked, e.g. too few devices answered UNMASK, has none: its devices' rows say why).

Byzantine devices (``adversary``, fltiny.sim.byzantine): a compromised device still runs the C
round, on its own data or on poisoned data, and sends the attack's payload (encoded by the C)
instead of its own; its row in the run store says so (figures ``byzantine``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from fltiny.bridge.messages import Delta, Error, Hello, Train
from fltiny.devices.data import DataBlob
from fltiny.devices.replay import DeviceState, HostRound
from fltiny.errors import FltinyError
from fltiny.native.accumulate import Accumulator, measure_payload
from fltiny.native.proto import WireCount
from fltiny.native.status import Status
from fltiny.server.audit import update_sha256
from fltiny.server.downlink import DEFAULT_BITS, DEFAULT_TOPK, Held, global_message
from fltiny.server.rounds import DeviceResult, TrainParams, device_seed
from fltiny.sim.adversary import Adversary
from fltiny.sim.secagg import SecAggFleet, SecureSum
from fltiny.strategies.base import ClientUpdate

_FLT_ERR_STATE = int(Status.ERR_STATE)


def online_devices(ids: Sequence[int], churn: float, seed: int, last_round: int) -> list[int]:
    """The devices of ``ids`` (sorted) online in the round after ``last_round``: each is offline
    with probability ``churn``, a draw seeded by the run's seed and the round."""
    if churn <= 0:
        return list(ids)
    rng = np.random.default_rng([seed, 7919, last_round + 1])
    online = rng.random(len(ids)) >= churn
    return [d for d, up in zip(ids, online, strict=True) if up]


def train_spec(train: TrainParams, round_: int, device_id: int, mu: float) -> Train:
    """The TRAIN message a device gets in ``round_`` (the seed differs per device and round)."""
    return train.message(round_, device_seed(train.seed, round_, device_id), mu)


@dataclass
class SimFleet:
    host: HostRound
    blobs: Sequence[DataBlob]
    churn: float = 0.0
    seed: int = 0
    dense_float: bool = False  # send the exact float32 delta instead of the int8 payload
    max_windows: int | None = None  # the boards' FLT_APP_MAX_WINDOWS (None: every window)
    states: dict[int, DeviceState] = field(default_factory=dict)
    payloads: dict[tuple[int, int], bytes] = field(default_factory=dict)
    keep_payloads: bool = False
    down_topk: float = DEFAULT_TOPK  # share of the parameters in a GLOBAL delta
    down_bits: int = DEFAULT_BITS  # width of its values
    key: bytes = bytes(32)  # the devices' frame key (only the byte counts depend on it)
    held: dict[int, Held] = field(default_factory=dict)
    wires: dict[int, WireCount] = field(default_factory=dict)
    adversary: Adversary | None = None  # Byzantine devices and their attack (None: all honest)
    secagg: SecAggFleet | None = None  # secure aggregation (fltiny.sim.secagg): masked updates

    def __post_init__(self) -> None:
        self._by_id = {b.device_id: b for b in self.blobs}
        self._meter = Accumulator(self.host.n_params)  # validates and measures payloads
        self._round = 0
        self._ldp_keys: dict[int, bytes] = {}  # local DP: each device's secret (TRAIN LOCAL_DP)
        self._ldp_nonces: dict[int, int] = {}

    def devices(self) -> list[int]:
        return online_devices(sorted(self._by_id), self.churn, self.seed, self._round)

    def run_round(self, round_: int, devices: Sequence[int], global_params: np.ndarray,
                  version: int, train: TrainParams, mu: float,
                  deadline_s: float) -> list[DeviceResult]:
        self._round = round_
        results = []
        if self.secagg is not None:  # the device's whole delta, quantized on the index set
            train = replace(train, error_feedback=False)
        deltas: dict[int, np.ndarray] = {}
        plain: dict[int, int] = {}
        for dev in devices:
            blob = self._by_id[dev]
            if self.adversary is not None:
                blob = self.adversary.data(blob)
            state = self.states.get(dev)
            wire = self.wires.get(dev)
            if wire is None:  # first contact: the device's HELLO
                wire = self.wires[dev] = WireCount(self.key, dev)
                wire.send(Hello("sim", 0, 0, bytes(8), 0, self.host.n_params, 0),
                          from_host=False)
            up0, down0 = wire.up, wire.down
            gmsg, held = global_message(global_params, version, self.held.get(dev),
                                        topk=self.down_topk, bits=self.down_bits)
            if gmsg is not None:
                wire.send(gmsg, from_host=True)
            self.held[dev] = held
            tmsg = train_spec(train, round_, dev, mu)
            wire.send(tmsg, from_host=True)
            if gmsg is not None and train.check_hundredths > 0:
                # the device's self-check of the GLOBAL it just applied (flt_device.h)
                sc = self.host.self_check(held.params, blob, tmsg, max_windows=self.max_windows)
                if sc.failed:  # reverted to the factory head: a FULL GLOBAL next round
                    self.held.pop(dev, None)
                    text = (f"self-check failed, serving the factory model: {sc.text()} "
                            "(per mille); send FULL")
                    wire.send(Error(_FLT_ERR_STATE, text), from_host=False)
                    results.append(DeviceResult(dev, None, bytes_up=wire.up - up0,
                                                bytes_down=wire.down - down0,
                                                error=f"device error: {text}",
                                                figures={**self._figures(dev),
                                                         "self_check": "simulated"}))
                    continue
            if self.adversary is not None and self.adversary.silent(dev):
                results.append(DeviceResult(dev, None, bytes_up=wire.up - up0,
                                            bytes_down=wire.down - down0,
                                            error="no DELTA (a silent Byzantine device)",
                                            figures=self._figures(dev)))
                continue
            key, nonce = self._ldp_secret(dev) if train.local_dp else (None, 0)
            out = self.host.run(held.params, blob, tmsg, state, max_windows=self.max_windows,
                                ldp_key=key, ldp_nonce=nonce)
            self.states[dev] = out.state
            if self.secagg is not None:  # masked below, with the round's other devices
                deltas[dev] = (out.params - held.params).astype(np.float32)
                plain[dev] = len(out.payload)
                results.append(DeviceResult(dev, None, bytes_up=wire.up - up0,
                                            bytes_down=wire.down - down0,
                                            personal_n=out.personal_n,
                                            personal_metric=out.personal_metric))
                continue
            if self.dense_float:  # its wire stand-in: a DELTA whose body is the float32 delta
                delta = (out.params - held.params).astype(np.float32)
                # (its first byte says payload version 3, so the DELTA message takes it)
                body = bytes([0x30]) + delta.tobytes()[1:]
                update = ClientUpdate(dev, delta, out.examples, out.mean_loss)
            else:  # the payload itself, validated and measured in C (never densified here)
                body = out.payload
                if self.adversary is not None:  # a Byzantine device's attack, encoded by the C
                    body = self.adversary.payload(dev, out.payload, out.params, held.params,
                                                  round_, devices, train.value_bits)
                update = ClientUpdate(dev, None, out.examples, out.mean_loss, payload=body,
                                      n_params=self.host.n_params,
                                      sq_norm=measure_payload(self._meter, body))
                if self.keep_payloads:
                    self.payloads[(round_, dev)] = body
            wire.send(Delta(round_, held.version, out.examples, out.mean_loss, body,
                            out.personal_n, out.personal_metric), from_host=False)
            results.append(DeviceResult(dev, update,
                                        bytes_up=wire.up - up0, bytes_down=wire.down - down0,
                                        personal_n=out.personal_n,
                                        personal_metric=out.personal_metric,
                                        figures=self._figures(dev),
                                        update_sha256=update_sha256(update.delta)))
        if self.secagg is not None:
            results = self._secure(round_, results, deltas, plain)
        return results

    def _secure(self, round_: int, results: list[DeviceResult], deltas: dict[int, np.ndarray],
                plain: dict[int, int]) -> list[DeviceResult]:
        assert self.secagg is not None
        self.last_secure = None
        if len(deltas) < 2:
            return [replace(r, error=r.error or "secure aggregation needs 2 or more devices")
                    for r in results]
        try:
            ss, per = self.secagg.round(round_, deltas, plain)
        except FltinyError as exc:  # the round cannot be unmasked: no update, model unchanged
            why = f"secure aggregation failed: {exc}"
            return [replace(r, error=r.error or why) for r in results]
        self.last_secure = ss
        out = []
        for r in results:
            f = per.get(r.device_id)
            if f is None:
                out.append(r)
                continue
            figures = {"secagg": True, "masked_payload": f["masked_payload"],
                       "plain_payload": f["plain_payload"],
                       "dropped_after_masked": r.device_id in ss.dropped_after}
            out.append(replace(r, bytes_up=r.bytes_up + f["up"],
                               bytes_down=r.bytes_down + f["down"], figures=figures))
        return out

    def _ldp_secret(self, dev: int) -> tuple[bytes, int]:
        """A simulated device's local-DP noise key (its boot secret, drawn once here as a board
        draws it from its TRNG; the round loop never sees it) and a nonce it has not used."""
        key = self._ldp_keys.get(dev)
        if key is None:
            key = self._ldp_keys[dev] = os.urandom(32)
        nonce = self._ldp_nonces.get(dev, 0)
        self._ldp_nonces[dev] = nonce + 1
        return key, nonce

    def secure_aggregate(self, round_: int) -> SecureSum | None:
        """The secure sum of ``round_`` (None: the round had no secure sum)."""
        ss = getattr(self, "last_secure", None)
        return ss if ss is not None and self._round == round_ else None

    def _figures(self, dev: int) -> dict[str, bool]:
        if self.adversary is None or dev not in self.adversary.devices:
            return {}
        return {"byzantine": True}
