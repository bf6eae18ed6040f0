"""Secure aggregation in the simulator (``fltiny simulate --secagg``): every simulated device
keeps a ``SecAggDevice`` (the runtime's secagg/client.c on its own state and device secret) and
the round's server is a ``fltiny.privacy.secagg.SecAggRound``; this module only carries the
payloads between them, in the protocol's order (docs/protocol.md "Secure aggregation"):

    BEGIN -> ADVERTISE, COHORT -> SHARES, SHARES (relayed), MASKED, UNMASK -> REVEAL

A device's values are its round delta (trained model minus the model it held, from the C round)
quantized by the C on the round's shared index set of K = the plain top-k count, so the masked
payload is K values of w bits (by default the narrowest of 8, 16 or 32 bits whose sum over the
cohort keeps the resolution of the plain payload's values). The aggregate the round loop
applies is the survivors' mean update on that index set (equal weights: example counts would be
individual data), decoded exactly from the masked sum. ``dropout``: a seeded share of each
round's devices drop after sending MASKED (they never answer UNMASK), the case Bonawitz's
double masking exists for.

Bytes: each secagg message is counted as the SECAGG frames that carry it on a device link
(frame type 11: the kind byte, then the payload, docs/protocol.md "Secure aggregation on the
device link"), in chunks of FLT_PROTO_MAX_CHUNK at the frame codec's worst-case wire size
(fltiny.native.proto.wire_size); ACKs are not counted (``fltiny run --secagg`` measures the
real link, ACKs and retransmissions included).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fltiny.native import proto
from fltiny.native import secagg as sa
from fltiny.privacy.secagg import SecAggRound, choose_bits


def wire_bytes(payload: bytes) -> int:
    payload = b"\0" + bytes(payload)  # the SECAGG kind byte
    c = proto.max_chunk()
    n = proto.chunk_count(len(payload), c)
    return sum(proto.wire_size(len(payload[i * c:(i + 1) * c])) for i in range(n))


@dataclass(frozen=True)
class SecureSum:
    """What the round loop aggregates in a secure round: the survivors' mean update."""

    mean: np.ndarray  # float32 [P], zero off the index set
    devices: tuple[int, ...]  # whose masked updates are in the sum
    dropped_before: tuple[int, ...]  # shared keys, no MASKED
    dropped_after: tuple[int, ...]  # MASKED, no REVEAL
    figures: dict = field(default_factory=dict)


@dataclass
class SecAggFleet:
    """The secure-aggregation side of a simulated fleet: one C client per device."""

    n_params: int
    k: int
    clip: float
    bits: int = 0  # w; 0: the narrowest that keeps the plain values' resolution (choose_bits)
    value_bits: int = 4  # the plain payload's value width (TRAIN's)
    dropout: float = 0.0
    seed: int = 0
    epoch: int = 1
    devices: dict[int, sa.SecAggDevice] = field(default_factory=dict)

    def round(self, rnd: int, deltas: Mapping[int, np.ndarray],
              plain_bytes: Mapping[int, int]) -> tuple[SecureSum, dict[int, dict]]:
        """One round over the devices of ``deltas`` (float32 [P] each). Returns the secure sum
        and per device its byte figures (``up``, ``down``, ``masked_payload``)."""
        index_seed = int(np.random.default_rng([self.seed, 4099, rnd]).integers(2**32))
        ids = sorted(deltas)
        w = self.bits or choose_bits(len(ids), self.value_bits)
        srv = SecAggRound(round=rnd, epoch=self.epoch, n_params=self.n_params, k=self.k,
                          clip=self.clip, index_seed=index_seed, w=w)
        up = dict.fromkeys(ids, 0)
        down = dict.fromkeys(ids, 0)
        begin = srv.begin_message()
        for d in ids:
            dev = self.devices.setdefault(d, sa.SecAggDevice(d))
            adv = dev.begin(begin)
            down[d] += wire_bytes(begin)
            up[d] += wire_bytes(adv)
            srv.advertise(d, adv)
        cohort = srv.cohort()
        for d in ids:
            shares = self.devices[d].cohort(cohort)
            down[d] += wire_bytes(cohort)
            up[d] += wire_bytes(shares)
            srv.take_shares(d, shares)
        rng = np.random.default_rng([self.seed, 8191, rnd])
        n_drop = int(round(self.dropout * len(ids)))
        after = set(rng.choice(ids, size=n_drop, replace=False).tolist()) if n_drop else set()
        masked_len = {}
        for d in ids:
            dev = self.devices[d]
            relay = srv.relay(d)
            dev.receive(relay)
            down[d] += wire_bytes(relay)
            p = dev.params()
            idx = sa.index_set(int(p["index_seed"]), int(p["round"]), self.n_params, int(p["k"]))
            q = sa.quantize(deltas[d], idx, float(p["scale"]), int(p["qmax"]))
            y = dev.masked(q)
            del q  # the device's quantized update goes nowhere but into its masked payload
            masked_len[d] = len(y)
            up[d] += wire_bytes(y)
            srv.take_masked(d, y)
        unmask = srv.unmask()
        for d in ids:
            if d in after:
                continue
            reveal = self.devices[d].unmask(unmask)
            down[d] += wire_bytes(unmask)
            up[d] += wire_bytes(reveal)
            srv.take_reveal(d, reveal)
        mean = srv.mean_delta()
        ratio = max(masked_len[d] / max(plain_bytes.get(d, 0), 1) for d in ids)
        figures = {"secagg": True, "cohort": len(ids), "t": srv.cohort_msg.t if srv.cohort_msg
                   else 0, "bits": w, "k": self.k, "dropped_after_masked": len(after),
                   "dropped_before_masked": len(srv.dropped), "masked_ratio": ratio,
                   "scale": srv.scale, "qmax": srv.cohort_msg.qmax if srv.cohort_msg else 0,
                   "index_seed": index_seed}
        per = {d: {"up": up[d], "down": down[d], "masked_payload": masked_len[d],
                   "plain_payload": int(plain_bytes.get(d, 0))} for d in ids}
        return SecureSum(mean, tuple(srv.survivors), tuple(srv.dropped), tuple(sorted(after)),
                         figures), per
