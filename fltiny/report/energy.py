"""Energy per device-round, ESTIMATED from datasheet figures and measured instruction counts
(issue 18; docs/boards.md "Energy per round (estimate)").

    instructions  I = n * c_infer * MACs_backbone                 (backbone over the n windows)
                    + epochs * n * c_train * MACs_head_train      (head training, every epoch)
                    + c_delta * P                                 (delta compress + payload)
    CPU           E_cpu  = I / f * I_active * V,   t_cpu = I / f
    link          E_link = up * e_tx + down * e_rx,  e = I_link * V * bits_per_byte / bit_rate
                  (I_link: the chip's current while the bytes move; for a UART the firmware waits
                  on, the CPU's active current)

n is the windows a device trains on in a round, MACs come from the model (fltiny.bench.macs), P
is the trained parameters. The coefficients c (MEASURED) are instructions per MAC and per
parameter that bench/ontarget_cost.py measured under QEMU on an emulated core. Without the
feature cache (kept when the board's RAM allows it) the backbone runs again at every epoch.
Each real board names the emulated core that stands in for it and has its datasheet figures
([power] of its board file, fltiny.boards.Power).

QEMU counts instructions, not cycles: at one cycle per instruction the CPU time and energy are
LOWER BOUNDS (flash wait states, multi-cycle loads, multiplies, FPU and soft-float calls add
cycles). The link energy is airtime (or UART time) only: a radio's association, beacons,
protocol overhead and idle listening, and the sleep current between rounds, are not counted.
Nothing here is a measurement of a board: the result is an estimate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fltiny.boards import Board, load_boards
from fltiny.errors import UsageError


@dataclass(frozen=True)
class CoreCost:
    """Instructions an emulated core ran per unit of work on one model (bench/ontarget_cost.py):
    per backbone int8 MAC (the round's feature pass per window / the backbone's MACs), per head
    training MAC (the marginal training cost of a sample minus its feature pass / the head's
    float MACs of a sample) and per trained parameter (delta compress + payload encode)."""

    board: str  # the emulated board measured
    model: str  # the model measured ("lower bound": the smallest coefficients of the board's)
    backbone_macs: int  # the measured model's MACs (a bundle with the same MACs is that model)
    head_train_macs: int
    head_params: int
    insn_per_backbone_mac: float
    insn_per_head_train_mac: float
    insn_per_delta_param: float


# bench/ontarget_cost.py --boards qemu-m3 qemu-m4f qemu-m7 qemu-rv32 --models har-tiny har-small
# --n 64 on b51087b (2026-12-02: the armv7em and rv32 conv kernels, 32-bit requantization, the
# fused training loops; the qemu-m3/m4f/rv32 rows: bench/results/ontarget_cost_energy.json;
# tests/test_energy.py derives these from that file and checks the formula against each round).
COST_SOURCE = ("bench/ontarget_cost.py on b51087b, 64 windows, 1 epoch "
               "(bench/results/ontarget_cost_energy.json)")
MEASURED: tuple[CoreCost, ...] = (
    CoreCost("qemu-m3", "har-tiny", 7680, 41248, 1030, 34.99, 58.96, 279.7),
    CoreCost("qemu-m4f", "har-tiny", 7680, 41248, 1030, 12.14, 3.44, 152.2),
    CoreCost("qemu-rv32", "har-tiny", 7680, 41248, 1030, 20.36, 130.53, 357.6),
    CoreCost("qemu-m3", "har-small", 179200, 2624, 1254, 18.36, 74.77, 267.0),
    CoreCost("qemu-m4f", "har-small", 179200, 2624, 1254, 5.32, 5.07, 151.0),
    CoreCost("qemu-rv32", "har-small", 179200, 2624, 1254, 5.46, 162.66, 345.6),
)
MEASURED_BOARDS = tuple(dict.fromkeys(c.board for c in MEASURED))


def core_cost(board: str, work: RoundWork) -> CoreCost:
    """The coefficients for ``work`` on an emulated core: the measured model's when the work's
    MACs and parameters are that model's, else per coefficient the smallest the core measured
    (bigger layers amortise more loop overhead per MAC: the estimate then stays a lower bound
    for the models measured, and is one for any model at least as overhead-heavy)."""
    rows = [c for c in MEASURED if c.board == board]
    if not rows:
        raise UsageError(f"no measured instruction counts for '{board}' (measured: "
                         f"{', '.join(MEASURED_BOARDS)}); measure it with bench/ontarget_cost.py")
    for c in rows:
        if (c.backbone_macs, c.head_train_macs, c.head_params) == (
                work.backbone_macs, work.head_train_macs, work.head_params):
            return c
    return CoreCost(board, "lower bound", 0, 0, 0, min(c.insn_per_backbone_mac for c in rows),
                    min(c.insn_per_head_train_mac for c in rows),
                    min(c.insn_per_delta_param for c in rows))


@dataclass(frozen=True)
class Battery:
    name: str
    mah: float
    volts: float

    @property
    def millijoules(self) -> float:
        return self.mah * 3.6 * self.volts * 1000.0  # mAh -> C (x 3.6), x V -> J, -> mJ


# A coin cell cannot source much more than ~15 mA; boards drawing more get a Li-ion cell.
COIN_CELL = Battery("CR2032 coin cell (220 mAh, 3.0 V)", 220.0, 3.0)
LI_ION = Battery("1000 mAh Li-ion cell (3.7 V)", 1000.0, 3.7)
COIN_CELL_MAX_MA = 15.0


@dataclass(frozen=True)
class RoundWork:
    """What a device computes in one round."""

    backbone_macs: int  # int8 MACs of one backbone inference
    head_train_macs: int  # float MACs of one training sample (forward + backward)
    head_params: int  # trained parameters (the delta's length)
    n_features: int  # backbone outputs per window (the feature cache's row)
    windows: int  # windows the device trains on
    epochs: int  # local epochs
    feature_cache: bool = True  # features computed once a round (else at every epoch)

    @classmethod
    def of_bundle(cls, bundle: Path, windows: int, epochs: int) -> RoundWork:
        from fltiny.bench.macs import backbone_macs, head_train_macs
        from fltiny.export.bundle import read_bundle

        _manifest, head, backbone = read_bundle(Path(bundle))
        return cls(sum(o.macs for o in backbone_macs(backbone)),
                   head_train_macs(head.layers)["total"], head.n_params, head.layers[0].n_in,
                   windows, epochs)

    def on(self, board: Board, windows: int | None = None) -> RoundWork:
        """This work on ``board`` (its windows, and whether its RAM holds the feature cache:
        fltiny.build.project.feature_cache_fits, the rule the firmware is built with)."""
        from fltiny.build.project import feature_cache_fits

        n = windows if windows is not None else board.max_windows
        return replace(self, windows=n, feature_cache=feature_cache_fits(
            board, board.max_windows, self.n_features))

    def instructions(self, cost: CoreCost) -> float:
        passes = 1 if self.feature_cache else self.epochs  # backbone runs per window
        return (passes * self.windows * cost.insn_per_backbone_mac * self.backbone_macs
                + self.epochs * self.windows * cost.insn_per_head_train_mac * self.head_train_macs
                + cost.insn_per_delta_param * self.head_params)


@dataclass(frozen=True)
class RoundEnergy:
    """One board's estimated energy for one device-round (mJ), with the figures behind it."""

    board: str  # the real board whose datasheet figures are used
    counts_of: str  # the emulated board whose instruction counts stand in
    instructions: float
    clock_hz: int
    active_ma: float
    supply_v: float
    approximate: bool  # a datasheet figure of the board is approximate (its source says why)
    transport: str
    uj_per_byte_up: float
    uj_per_byte_down: float
    bytes_up: float | None = None  # None: not known (fltiny build)
    bytes_down: float | None = None

    @property
    def cpu_s(self) -> float:
        return self.instructions / self.clock_hz

    @property
    def cpu_mj(self) -> float:
        return self.cpu_s * self.active_ma * self.supply_v  # s x mA x V = mJ

    @property
    def link_mj(self) -> float | None:
        if self.bytes_up is None or self.bytes_down is None:
            return None
        return (self.bytes_up * self.uj_per_byte_up + self.bytes_down * self.uj_per_byte_down) / 1000

    @property
    def total_mj(self) -> float:
        return self.cpu_mj + (self.link_mj or 0.0)

    @property
    def battery(self) -> Battery:
        return COIN_CELL if self.active_ma <= COIN_CELL_MAX_MA else LI_ION

    def rounds_per_battery(self) -> int:
        return int(self.battery.millijoules // self.total_mj) if self.total_mj > 0 else 0

    def cpu_text(self) -> str:
        return (f"CPU {self.cpu_mj:.1f} mJ ({self.instructions / 1e6:.1f} M instructions, "
                f"{self.counts_of}'s counts, at {self.clock_hz / 1e6:g} MHz: {self.cpu_s:.2f} s "
                f"at {self.active_ma:g} mA, {self.supply_v:g} V)")

    def link_text(self) -> str:
        # a radio is charged for its airtime alone (association, beacons, idle listening not)
        via = self.transport + ("" if self.transport == "uart" else ", airtime only")
        if self.link_mj is None:
            return (f"link {self.uj_per_byte_up:.3g} uJ per byte sent, {self.uj_per_byte_down:.3g}"
                    f" uJ per byte received over {via} (1 kB each way: "
                    f"{1.024 * (self.uj_per_byte_up + self.uj_per_byte_down):.2f} mJ)")
        return (f"link {self.link_mj:.2f} mJ ({self.bytes_up:.0f} B up, {self.bytes_down:.0f} B "
                f"down over {via})")

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_mj": self.cpu_mj, "cpu_s": self.cpu_s,
                "link_mj": self.link_mj, "total_mj": self.total_mj}

    @classmethod
    def from_summary(cls, d: dict[str, Any]) -> RoundEnergy:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


def link_energy(board: Board, transport: str) -> tuple[float, float]:
    """(uJ per byte sent, uJ per byte received) over one of the board's links."""
    p = board.power
    if p is None or transport not in p.links:
        raise UsageError(f"board '{board.name}' has no energy figures for link '{transport}' "
                         "(docs/boards.md \"Energy per round (estimate)\")")
    lk = p.links[transport]
    per = lk.seconds_per_byte * p.supply_v * 1000.0  # s x V x mA -> mJ; x 1000 -> uJ per mA
    return (per * (lk.tx_ma or p.active_ma), per * (lk.rx_ma or p.active_ma))


def estimate(board: Board, work: RoundWork, transport: str, bytes_up: float | None = None,
             bytes_down: float | None = None) -> RoundEnergy:
    """A real board's estimate for one round of ``work`` (as given: ``RoundWork.on`` fits it
    to the board) over ``transport``."""
    p = board.power
    if p is None:
        raise UsageError(f"board '{board.name}' has no datasheet figures ([power] in its board "
                         "file): emulated boards have none")
    cost = core_cost(p.instructions_from, work)
    up, down = link_energy(board, transport)
    return RoundEnergy(board.name, cost.board, work.instructions(cost), board.clock_hz,
                       p.active_ma, p.supply_v, p.approximate, transport, up, down, bytes_up,
                       bytes_down)


def stand_ins(emulated: str, boards: dict[str, Board] | None = None) -> list[Board]:
    """The real boards whose instruction counts come from the emulated board ``emulated``."""
    boards = boards if boards is not None else load_boards()
    return [b for b in boards.values() if b.power and b.power.instructions_from == emulated]


def default_transport(board: Board, wifi: bool = False) -> str:
    """The link a build talks over: Wi-Fi when the build has one (--wifi-ssid), else the UART."""
    return "wifi-tcp" if wifi and "wifi-tcp" in board.transports else "uart"


DOC = 'docs/boards.md "Energy per round (estimate)"'
HEAD = f"energy per round (estimate, a lower bound; {DOC})"


def build_lines(board: Board, bundle: Path, *, epochs: int, wifi: bool = False) -> list[str]:
    """What `fltiny build --board X` prints: the estimate for a round over the board's
    max_windows at ``epochs`` local epochs (a round's bytes are in the run report)."""
    what = f"{board.max_windows} windows, {epochs} local epochs"
    if board.power is None:
        if board.name not in MEASURED_BOARDS:
            return [f"{HEAD}: not available: '{board.name}' is emulated, with no datasheet "
                    "figures and no measured instruction counts"]
        work = RoundWork.of_bundle(bundle, board.max_windows, epochs)
        insns = work.on(board).instructions(core_cost(board.name, work)) / 1e6
        as_real = [f"{r.name} {estimate(r, work.on(r), 'uart').cpu_mj:.1f} mJ"
                   for r in stand_ins(board.name)]
        return [f"{HEAD}: no datasheet, an emulated board: {insns:.1f} M instructions a round "
                f"({what})" + (f"; the CPU of the real boards its counts stand in for: "
                               f"{', '.join(as_real)} (fltiny build --board ...)" if as_real else "")]
    e = estimate(board, RoundWork.of_bundle(bundle, board.max_windows, epochs).on(board),
                 default_transport(board, wifi))
    note = "; approximate datasheet figures, see their sources" if e.approximate else ""
    return [f"{HEAD}, {what}{note}:",
            f"  {e.cpu_text()}; {e.link_text()}",
            f"  a {e.battery.name} holds ~{e.rounds_per_battery():,} such rounds (CPU only)"]


@dataclass(frozen=True)
class DeviceRound:
    """One device-round of a run, as the run store has it."""

    board: str
    transport: str
    round: int
    examples: int
    bytes_up: int
    bytes_down: int


def run_energy(rounds: Iterable[DeviceRound], bundle: Path, epochs: int) -> list[dict[str, Any]]:
    """The estimate per board of a run (the run report's "energy"): for each board, the mean
    examples and wire bytes of its device-rounds that trained (rounds 2+ when there are any:
    round 1 also carries the HELLO and the full model); a real board with its own figures, an
    emulated board as each real board its counts stand in for, or the reason there is none."""
    boards = load_boards()
    by_board: dict[str, list[DeviceRound]] = {}
    for r in rounds:
        if r.examples > 0:
            by_board.setdefault(r.board, []).append(r)
    for name, rs in by_board.items():  # the steady state: round 1 also carries the full model
        by_board[name] = [r for r in rs if r.round > 1] or rs
    out: list[dict[str, Any]] = []
    for name, rs in by_board.items():
        n = len(rs)
        windows = round(sum(r.examples for r in rs) / n)
        up = sum(r.bytes_up for r in rs) / n
        down = sum(r.bytes_down for r in rs) / n
        transport = max({r.transport for r in rs}, key=[r.transport for r in rs].count)
        b = boards.get(name)
        targets = [b] if b is not None and b.power else stand_ins(name, boards)
        if not targets:
            out.append({"board": name, "device_rounds": n, "available": False,
                        "reason": "no datasheet figures: no real board's estimate uses the "
                                  "instruction counts of this board"})
            continue
        work = RoundWork.of_bundle(bundle, windows, epochs)
        for real in targets:
            tr = transport if real.power and transport in real.power.links else "uart"
            e = estimate(real, work.on(real, windows), tr, up, down)
            out.append({"board": name, "device_rounds": n, "available": True, "windows": windows,
                        "epochs": epochs, "estimate": e.summary()})
    return out


def run_lines(entries: list[dict[str, Any]]) -> list[str]:
    """The run summary's lines for ``run_energy``'s entries."""
    if not entries:
        return []
    lines = [f"energy per device-round (estimate, a lower bound; {DOC}):"]
    for d in entries:
        if not d["available"]:
            lines.append(f"  {d['board']}: not available ({d['reason']})")
            continue
        e = RoundEnergy.from_summary(d["estimate"])
        who = d["board"] if d["board"] == e.board else f"{d['board']} as {e.board}"
        approx = ", approximate datasheet figures" if e.approximate else ""
        lines.append(f"  {who}: {e.total_mj:.1f} mJ = {e.cpu_text()} + {e.link_text()}"
                     f" ({d['windows']} windows, {d['epochs']} epochs{approx})")
    return lines
