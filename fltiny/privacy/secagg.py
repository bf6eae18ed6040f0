"""Secure aggregation at the server: Bonawitz et al. 2017 ("Practical Secure Aggregation for
Privacy-Preserving Machine Learning", CCS 2017) with double masking and Shamir-shared recovery,
over the devices' quantized values on a shared index set (docs/protocol.md "Secure
aggregation").

The server's part of a round, as ``SecAggRound``, message by message:

1. ``advertise``: each device's ADVERTISE (its session channel key and its round mask key);
2. ``cohort``: the COHORT every advertised device gets (ids, keys, t, K, the index seed, the
   fixed-point scale, qmax and the value width w);
3. ``take_shares`` / ``relay``: each device's SHARES (boxes sealed to each peer, opaque here);
   U2 = the devices whose SHARES arrived; each gets the boxes addressed to it by U2;
4. ``take_masked``: MASKED y_u = q_u + PRG(b_u) + sum_v +-PRG(k_uv) mod 2^w, from U2;
   U3 = the devices whose MASKED arrived, D = U2 - U3 (dropped before masking);
5. ``unmask`` / ``take_reveal``: UNMASK names U3 and D; each responder's REVEAL carries its
   shares of b_v for v in U3 and of s_u for u in D (never both for one device);
6. ``result``: sum_{U3} y - sum_{U3} PRG(b_v) + the masks of each dropped u with U3 (its s_u
   rebuilt from t shares and checked against the mask key it advertised) = sum_{U3} q_v mod
   2^w, read as a signed w-bit integer: exactly the plain sum of the same quantized updates.

What the server holds is only what it receives: masked values, sealed boxes, the shares the
protocol reveals, public keys. ``received`` keeps every payload (the tests inspect it). A
single y_u is uniformly distributed given q_u as long as one pairwise or self mask of u stays
unknown, which the device enforces (client.h: it reveals b or s of a peer, never both).
The server needs crypto only to undo masks; it calls the same C as the devices (fltiny.native:
Shamir recovery, X25519, the mask and self-mask generators), one implementation.

Threat model: an honest-but-curious server and devices that follow the protocol (Bonawitz's
semi-honest setting); the server must tell every device the same U3 and D (the malicious-server
consistency round of the paper is not implemented). Devices drop at any step: with t shares
needed, a round decodes while at least t + 1 of U3 answer UNMASK (t shares of each survivor's
b from the others, and of each dropped device's s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fltiny.errors import FltinyError
from fltiny.native import crypto as cr
from fltiny.native import secagg as sa

DEFAULT_BITS = 16  # w: the masked values' width on the wire


class SecAggError(FltinyError):
    """A secure-aggregation round that cannot go on (the message says which step and why)."""


def default_threshold(n: int) -> int:
    """t for a cohort of n: a majority of each device's n - 1 peers, floor((n - 1) / 2) + 1.
    With n >= 6, floor(n / 3) devices dropping after MASKED still leave t + 1 responders."""
    return (n - 1) // 2 + 1


def choose_bits(n: int, value_bits: int) -> int:
    """The narrowest w of 8, 16, 32 whose sum of n values keeps at least the resolution of the
    plain payload's ``value_bits``-bit values (qmax 2^(b-1) - 1): n * qmax < 2^(w-1)."""
    q = 2 ** ((value_bits or 8) - 1) - 1
    for w in (8, 16, 32):
        if n * q < 2 ** (w - 1):
            return w
    raise SecAggError(f"{n} devices of {value_bits}-bit values do not fit 32-bit sums")


def qmax_for(n: int, w: int) -> int:
    """The largest |q| with n * qmax < 2^(w-1): the sum of n values cannot wrap."""
    return min((2 ** (w - 1) - 1) // n, 2**24)


@dataclass
class SecAggRound:
    round: int
    epoch: int
    n_params: int
    k: int  # K: values per device (the shared index set's size)
    clip: float  # |delta| bound per value: scale = qmax / clip
    index_seed: int
    w: int = DEFAULT_BITS
    t: int | None = None  # None: default_threshold(n)
    received: list[tuple[int, str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._adv: dict[int, sa.Advertise] = {}
        self._boxes: dict[int, dict[int, bytes]] = {}  # recipient -> sender -> box
        self._u2: set[int] = set()
        self._y: dict[int, np.ndarray] = {}
        self._reveals: dict[int, list[tuple[int, int, bytes]]] = {}
        self.cohort_msg: sa.Cohort | None = None

    # 1. ADVERTISE
    def begin_message(self) -> bytes:
        return sa.encode_begin(self.epoch, self.round)

    def advertise(self, device_id: int, payload: bytes) -> None:
        self.received.append((device_id, "ADVERTISE", bytes(payload)))
        adv = sa.decode_advertise(payload)
        if (adv.epoch, adv.round) != (self.epoch, self.round):
            raise SecAggError(f"device {device_id}: ADVERTISE of epoch {adv.epoch} round "
                              f"{adv.round}, expected {self.epoch} / {self.round}")
        self._adv[device_id] = adv

    # 2. COHORT
    def cohort(self) -> bytes:
        ids = sorted(self._adv)
        n = len(ids)
        if not 2 <= n <= sa.max_cohort():
            raise SecAggError(f"round {self.round}: {n} devices advertised keys; secure "
                              f"aggregation needs 2..{sa.max_cohort()} (FLT_SECAGG_MAX_COHORT)")
        t = self.t if self.t is not None else default_threshold(n)
        if not (1 <= t < n and 2 * t > n - 1):
            raise SecAggError(f"round {self.round}: threshold t = {t} for {n} devices; it must "
                              f"be a majority of each device's peers, {default_threshold(n)}.."
                              f"{n - 1} (the devices refuse a smaller one)")
        qmax = qmax_for(n, self.w)
        if qmax < 1:
            raise SecAggError(f"w = {self.w} bits cannot hold the sum of {n} devices")
        self.scale = float(np.float32(qmax / self.clip))
        self.cohort_msg = sa.Cohort(self.round, self.epoch, self.index_seed, self.k, self.scale,
                                    qmax, t, self.w,
                                    tuple(sa.Member(i, self._adv[i].chan_pk, self._adv[i].mask_pk)
                                          for i in ids))
        return sa.encode_cohort(self.cohort_msg)

    @property
    def index(self) -> np.ndarray:
        return sa.index_set(self.index_seed, self.round, self.n_params, self.k)

    # 3. SHARES
    def take_shares(self, device_id: int, payload: bytes) -> None:
        self.received.append((device_id, "SHARES", bytes(payload)))
        rnd, entries = sa.decode_shares(payload)
        members = self._members()
        if rnd != self.round or device_id not in members:
            raise SecAggError(f"device {device_id}: SHARES of round {rnd} from outside the cohort")
        if sorted(to for to, _box in entries) != sorted(members - {device_id}):
            raise SecAggError(f"device {device_id}: SHARES must address every other member")
        for to, box in entries:
            self._boxes.setdefault(to, {})[device_id] = box
        self._u2.add(device_id)

    def relay(self, device_id: int) -> bytes:
        """The SHARES a member of U2 gets: the boxes U2 sealed to it, named by sender."""
        got = self._boxes.get(device_id, {})
        return sa.encode_shares(self.round, sorted((src, box) for src, box in got.items()
                                                   if src in self._u2 and src != device_id))

    # 4. MASKED
    def take_masked(self, device_id: int, payload: bytes) -> None:
        self.received.append((device_id, "MASKED", bytes(payload)))
        rnd, w, values = sa.decode_masked(payload)
        if device_id not in self._u2:
            raise SecAggError(f"device {device_id}: MASKED without its SHARES (not in U2)")
        if rnd != self.round or w != self.w or values.size != self.k:
            raise SecAggError(f"device {device_id}: MASKED of round {rnd}, {values.size} values "
                              f"of {w} bits; expected round {self.round}, {self.k} x {self.w}")
        self._y[device_id] = values

    # 5. UNMASK
    @property
    def survivors(self) -> list[int]:
        return sorted(self._y)

    @property
    def dropped(self) -> list[int]:
        return sorted(self._u2 - set(self._y))

    def unmask(self) -> bytes:
        assert self.cohort_msg is not None
        if len(self._y) < self.cohort_msg.t:
            raise SecAggError(f"round {self.round}: {len(self._y)} masked inputs, fewer than "
                              f"t = {self.cohort_msg.t}: the round cannot be unmasked")
        return sa.encode_unmask(self.round, self.survivors, self.dropped)

    def take_reveal(self, device_id: int, payload: bytes) -> None:
        self.received.append((device_id, "REVEAL", bytes(payload)))
        rnd, entries = sa.decode_reveal(payload)
        if rnd != self.round or device_id not in self._y:
            raise SecAggError(f"device {device_id}: REVEAL of round {rnd} from a non-survivor")
        self._reveals[device_id] = entries

    # 6. the sum
    def _members(self) -> set[int]:
        assert self.cohort_msg is not None
        return {m.id for m in self.cohort_msg.members}

    def _recover(self, owner: int, kind: int) -> bytes:
        co = self.cohort_msg
        assert co is not None
        xs, shares = [], []
        for responder in sorted(self._reveals):
            for i, k, share in self._reveals[responder]:
                if i == owner and k == kind and responder != owner:
                    xs.append(co.x_of(responder))
                    shares.append(share)
        what = "self-mask seed" if kind == sa.KIND_SELF else "mask secret"
        if len(shares) < co.t:
            raise SecAggError(f"round {self.round}: {len(shares)} shares of device {owner}'s "
                              f"{what}, need t = {co.t}: the round cannot be decoded")
        return sa.shamir_recover(xs[:co.t], shares[:co.t])

    def result(self) -> np.ndarray:
        """The exact sum of the survivors' quantized values (int64, length K)."""
        co = self.cohort_msg
        assert co is not None
        mod = 1 << self.w
        total = np.zeros(self.k, dtype=np.uint64)
        for v in self.survivors:
            total += self._y[v]
        zero = np.zeros(self.k, dtype=np.uint32)
        for v in self.survivors:  # remove the self masks
            total += (-sa.self_mask(self._recover(v, sa.KIND_SELF), zero, True).astype(np.int64)
                      % mod).astype(np.uint64)
        keys = {m.id: m.mask_pk for m in co.members}
        for u in self.dropped:  # remove the pairwise masks of each dropped device with U3
            s_u = self._recover(u, sa.KIND_MASK)
            if cr.x25519_public(s_u) != keys[u]:
                raise SecAggError(f"round {self.round}: the shares of device {u}'s mask secret "
                                  "do not rebuild the key it advertised (a wrong share)")
            peers = [(v, cr.x25519_shared(s_u, keys[v])) for v in self.survivors]
            total += cr.secagg_mask(u, self.round, peers, zero).astype(np.uint64)
        total %= mod
        signed = total.astype(np.int64)
        return np.where(signed >= mod // 2, signed - mod, signed)

    def mean_delta(self) -> np.ndarray:
        """The survivors' mean update, dense float32 over n_params (zero off the index set)."""
        out = np.zeros(self.n_params, dtype=np.float32)
        out[self.index] = (self.result() / (self.scale * len(self.survivors))).astype(np.float32)
        return out
