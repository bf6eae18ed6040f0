"""Round and training settings: one frozen dataclass per concept, each field declared once with
its default, its command-line flag, its help and its valid range (a ``Knob``).

The CLI builds ``fltiny run`` / ``fltiny simulate`` options from these fields (fltiny/cli.py,
``settings_options``), so a flag, its default and its range cannot drift apart, and the Python
API checks the same ranges in ``__post_init__``. No heavy imports: the CLI reads the defaults at
start-up.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any

from fltiny.errors import UsageError

if TYPE_CHECKING:
    from fltiny.bridge.messages import Train

U32_MAX = 0xFFFF_FFFF


@dataclass(frozen=True)
class Knob:
    """How one settings field appears on the command line and which values it accepts.

    ``low`` / ``high`` bound numbers (``*_open``: the bound itself is excluded); ``choices``
    lists the accepted strings. ``flag`` may be a boolean pair, ``--x/--no-x``.
    """

    flag: str
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def range_text(self) -> str:
        lo = "" if self.low is None else f"{self.low:g} {'<' if self.low_open else '<='} "
        hi = "" if self.high is None else f" {'<' if self.high_open else '<='} {self.high:g}"
        return f"{lo}x{hi}"

    def check(self, value: Any) -> None:
        """UsageError naming the flag when ``value`` is outside the knob's range or choices."""
        if value is None or isinstance(value, bool):
            return
        if self.choices and value not in self.choices:
            raise UsageError(f"{self.flag}: '{value}' is not one of {', '.join(self.choices)}")
        if not isinstance(value, int | float):
            return
        bad = (isinstance(value, float) and math.isnan(value)
               or self.low is not None and (value < self.low or self.low_open and value == self.low)
               or self.high is not None and (value > self.high
                                             or self.high_open and value == self.high))
        if bad:
            raise UsageError(f"{self.flag} {value:g} is out of range: it must satisfy "
                             f"{self.range_text()} (see --help)")


def knob(default: Any, flag: str, help: str, **limits: Any) -> Any:
    """A dataclass field with a default and its ``Knob`` (flag, help, range)."""
    meta = {"knob": Knob(flag, help, **limits)}
    if isinstance(default, list | dict | set):
        raise TypeError("knob defaults must be immutable")
    return field(default=default, metadata=meta)


def knob_of(f: Field) -> Knob | None:
    return f.metadata.get("knob")


def check_knobs(obj: Any) -> None:
    """Check every knob field of a settings dataclass (nested settings check themselves)."""
    for f in fields(obj):
        k = knob_of(f)
        if k is not None:
            k.check(getattr(obj, f.name))


def knob_fields(cls: type) -> list[tuple[Field, Knob]]:
    """Every knob field of a settings class and of the settings classes it nests, depth first."""
    out: list[tuple[Field, Knob]] = []
    for f in fields(cls):
        k = knob_of(f)
        if k is not None:
            out.append((f, k))
        elif f.default_factory is not MISSING and is_dataclass(f.default_factory):
            out += knob_fields(f.default_factory)  # type: ignore[arg-type]
    return out


def from_knobs(cls: type, values: dict[str, Any], **extra: Any) -> Any:
    """Build a settings dataclass from knob values by field name (``values`` as the CLI gives
    them), nested settings included; ``extra`` sets non-knob fields of the outer class."""
    kwargs: dict[str, Any] = dict(extra)
    for f in fields(cls):
        if f.name in kwargs:
            continue
        if knob_of(f) is not None:
            if f.name in values:
                kwargs[f.name] = values[f.name]
        elif f.default_factory is not MISSING and is_dataclass(f.default_factory):
            kwargs[f.name] = from_knobs(f.default_factory, values)  # type: ignore[arg-type]
    return cls(**kwargs)


@dataclass(frozen=True)
class TrainParams:
    """What a TRAIN message tells each device; ``message`` is the one place a TRAIN is built.

    Defaults measured by bench/fleet_learning.py (har-tiny with its float tail, 1,030 trained
    parameters, 15 HAPT fleet users one per device, FedDyn, 30 rounds, three factory seeds;
    docs/benchmarks.md "Fleet learning"): SGD lr 0.002 with momentum 0.9 for 5 local epochs,
    top-10 % int8 updates, each device serving its own local model. Ranges are the ones the
    firmware accepts.
    """

    epochs: int = knob(5, "--epochs", "Local epochs per round.", low=1, high=255)
    batch_size: int = knob(16, "--batch-size", "Local minibatch size.", low=1, high=0xFFFF)
    learning_rate: float = knob(0.002, "--lr", "Device SGD learning rate.", low=0, low_open=True)
    lr_decay: float = knob(1.0, "--lr-decay", "Per-round factor of the device learning rate: "
                           "round r trains with lr * lr_decay^(r-1).", low=0, high=1,
                           low_open=True)
    momentum: float = knob(0.9, "--momentum", "Device SGD momentum.", low=0, high=1,
                           high_open=True)
    mu: float | None = knob(None, "--mu", "Proximal coefficient on the devices: FedProx's mu, "
                            "FedDyn's alpha (default: the strategy's; fedprox and feddyn 0.01, the "
                            "others 0).", low=0)
    clip: float = knob(5.0, "--clip", "Gradient clipping norm on the device (0: none).", low=0)
    # har-tiny with its float tail: 103 of 1,030 parameters, a ~184-byte payload (22x)
    topk_fraction: float = knob(0.1, "--topk", "Share of head parameters a device sends per "
                                "round.", low=0, high=1, low_open=True)
    value_bits: int = knob(4, "--value-bits", "Width of the values a device sends (2..8 bits: "
                           "integers up to 2^(bits-1) - 1 times a scale; 8 is int8).",
                           low=2, high=8)
    error_feedback: bool = knob(True, "--error-feedback/--no-error-feedback",
                                "Keep what top-k held back and send it in later rounds.")
    seed: int = knob(0, "--seed", "Seed of the run: partition, sampling, churn and every "
                     "device's shuffles.", low=0, high=U32_MAX)
    personal: bool = knob(True, "--personal/--no-personal",
                          "Each device serves its own last local model (personalization) and "
                          "reports its accuracy on its personal test split.")
    select_served: bool = knob(False, "--select-served/--no-select-served",
                               "With --personal: each device holds the last quarter of its "
                               "training windows out of training and, after each round, serves "
                               "whichever of its local and the global model scores better on "
                               "them (TRAIN flag SELECT).")
    self_check: float = knob(0.0, "--self-check", "Device self-check after a new global "
                             "model: a device whose personal accuracy with it is more than this "
                             "below the factory model's (MAE: above) reverts to the factory "
                             "model and says so (0: off; in hundredths, TRAIN flags).",
                             low=0, high=1)
    ldp_clip: float = knob(0.0, "--ldp-clip", "Local differential privacy: each device clips "
                           "its round update to this L2 norm and adds Gaussian noise from a "
                           "secret only it holds, in C, before top-k (TRAIN flag LOCAL_DP; 0: "
                           "off). Such rounds replay only up to the noise.", low=0)
    ldp_noise: float = knob(0.0, "--ldp-noise", "Noise multiplier of local DP: the noise on "
                            "every coordinate has standard deviation this x --ldp-clip.", low=0)
    # set by the strategy (FedDyn): devices keep and use a drift-control state (TRAIN DRIFT)
    drift: bool = False

    def __post_init__(self) -> None:
        check_knobs(self)
        if self.ldp_clip > 0 and self.self_check > 0:
            raise UsageError("--self-check with local DP (--ldp-clip) is refused: the check's "
                             "ERROR would report the device's metrics without noise")
        if self.ldp_noise > 0 and self.ldp_clip == 0:
            raise UsageError("--ldp-noise needs --ldp-clip C, the L2 norm each device clips "
                             "its update to")

    @property
    def local_dp(self) -> bool:
        """Local DP is on (--ldp-clip; its noise from --ldp-noise or --ldp-epsilon)."""
        return self.ldp_clip > 0

    @property
    def check_hundredths(self) -> int:
        """The self-check drop as the TRAIN carries it (flags bits 16-23), rounded."""
        return int(round(self.self_check * 100))

    def message(self, round_: int, seed: int, mu: float | None = None) -> Train:
        """The TRAIN message of one device in ``round_``: ``seed`` is that device's seed
        (``fltiny.server.rounds.device_seed``), ``mu`` the proximal term when the caller
        resolved it (else ``self.mu``, else 0)."""
        from fltiny.bridge.messages import (
            TRAIN_BITS_SHIFT,
            TRAIN_CHECK_SHIFT,
            TRAIN_DRIFT,
            TRAIN_LOCAL_DP,
            TRAIN_NO_FEEDBACK,
            TRAIN_PERSONAL,
            TRAIN_SELECT,
            Train,
        )

        prox = mu if mu is not None else (self.mu or 0.0)
        flags = ((TRAIN_DRIFT if self.drift else 0) | (TRAIN_PERSONAL if self.personal else 0)
                 | (TRAIN_SELECT if self.personal and self.select_served else 0)
                 | (0 if self.error_feedback else TRAIN_NO_FEEDBACK)
                 | self.value_bits << TRAIN_BITS_SHIFT
                 | (TRAIN_LOCAL_DP if self.local_dp else 0)
                 | self.check_hundredths << TRAIN_CHECK_SHIFT)
        lr = self.learning_rate * self.lr_decay ** max(0, round_ - 1)
        return Train(round=round_, epochs=self.epochs, batch_size=self.batch_size,
                     learning_rate=lr, momentum=self.momentum,
                     prox_mu=float(prox), clip=self.clip, topk_fraction=self.topk_fraction,
                     seed=seed, flags=flags, ldp_clip=self.ldp_clip, ldp_noise=self.ldp_noise)


@dataclass(frozen=True)
class RoundConfig:
    """The server's round loop; ``train`` is what every device is told."""

    rounds: int = knob(10, "--rounds", "Federated rounds.", low=1)
    fraction: float = knob(1.0, "--fraction", "Share of available devices asked each round.",
                           low=0, high=1, low_open=True)
    min_fit: int = knob(1, "--min-fit", "Fewest accepted updates that change the model (fewer: "
                        "a round note, model unchanged).", low=1)
    deadline_s: float = knob(120.0, "--deadline", "Seconds a round waits for the devices' "
                             "updates (simulated devices answer at once).", low=0, low_open=True)
    # measured by bench/fleet_learning.py (new-down*, docs/benchmarks.md): top-10 % loses up
    # to 8.6 points held-out on one factory seed; top-25 % matches the dense int8 downlink's
    # accuracy at 37 % of its bytes
    down_topk: float = knob(0.25, "--down-topk", "Share of the parameters a device holding the "
                            "previous model is sent (a sparse int8 GLOBAL delta; what is not "
                            "sent stays queued: the host tracks what each device holds). 1.0: "
                            "every parameter.", low=0, high=1, low_open=True)
    down_bits: int = knob(4, "--down-bits", "Width of the values of a GLOBAL delta (2..8 bits).",
                          low=2, high=8)
    max_norm: float = float("inf")  # an absolute bound on an update's L2 norm (Python API)
    max_update_ratio: float = knob(10.0, "--max-update-norm", "Reject an update whose L2 norm "
                                   "exceeds this many times the global model's norm (at least "
                                   "1). Honest updates stay below 0.18 x with the defaults; "
                                   "the bound stops absurd ones (a tampered or broken device).",
                                   low=0, low_open=True)
    anomaly_threshold: float = knob(float("inf"), "--anomaly-threshold", "Reject an update "
                                    "whose robust z-score of its norm against the round's "
                                    "median exceeds this (every score is in the run store; "
                                    "noisy with few devices, so off by default).",
                                    low=0, low_open=True)
    # central differential privacy (fltiny.privacy.central: DP-FedAvg)
    dp_clip: float = knob(0.0, "--dp-clip", "Central differential privacy (DP-FedAvg): clip "
                          "each update to this L2 norm and add Gaussian noise to their sum; "
                          "devices are then Poisson-sampled at rate --fraction (0: off).", low=0)
    dp_noise: float | None = knob(None, "--dp-noise", "Noise multiplier of central DP: the "
                                  "sum's noise has standard deviation this x --dp-clip (give "
                                  "this or --dp-epsilon).", low=0)
    dp_epsilon: float | None = knob(None, "--dp-epsilon", "Target epsilon of central DP over "
                                    "the planned rounds: derives --dp-noise (dp-accounting's "
                                    "RDP accountant).", low=0, low_open=True)
    dp_delta: float = knob(1e-5, "--dp-delta", "Delta of the epsilon of central and local DP.",
                           low=0, high=1, low_open=True, high_open=True)
    ldp_epsilon: float | None = knob(None, "--ldp-epsilon", "Target epsilon of local DP for "
                                     "each device over the planned rounds: derives --ldp-noise "
                                     "(dp-accounting's RDP accountant; needs --ldp-clip).", low=0,
                                     low_open=True)
    reputation_threshold: float = knob(0.0, "--reputation-threshold", "Quarantine a device "
                                       "(weight 0 until 'fltiny ctl clear DEV') whose reputation, "
                                       "a moving average of its clean rounds (1 = always clean), "
                                       "falls below this; 0: never (fltiny.server.reputation).",
                                       low=0, high=1)
    canary: float = knob(0.0, "--canary", "Canary rollout: each new global model goes first to "
                         "this share of the devices (a stable cohort) and reaches the rest only "
                         "if their personal metric does not drop by more than --canary-drop; "
                         "else it is rolled back (fltiny.server.canary). 0: off.", low=0, high=1)
    canary_drop: float = knob(0.02, "--canary-drop", "Largest drop of the canaries' mean "
                              "personal accuracy (rise of their MAE) that still promotes a "
                              "model.", low=0)
    # secure aggregation (fltiny.privacy.secagg: Bonawitz et al. 2017, double masking)
    secagg: bool = knob(False, "--secagg", "Secure aggregation: each device masks its update "
                        "(quantized on a shared index set of the top-k size) so the server only "
                        "learns the exact sum; a third of the devices may drop after sending "
                        "(Shamir shares rebuild their masks). In 'fltiny simulate' and on boards "
                        "with more than 64 kB of RAM in 'fltiny run'. FedAvg-family "
                        "strategies, no central DP, gateways or canaries.")
    secagg_clip: float = knob(0.05, "--secagg-clip", "Secure aggregation: the bound on each "
                              "masked value (|delta| above it is clamped); the fixed-point scale "
                              "is qmax / this.", low=0, low_open=True)
    secagg_bits: int = knob(0, "--secagg-bits", "Secure aggregation: width of each masked "
                            "value on the wire (8, 16 or 32; 0: the narrowest whose sum over "
                            "the round's devices keeps the plain --value-bits resolution).",
                            low=0, high=32)
    train: TrainParams = field(default_factory=TrainParams)

    def __post_init__(self) -> None:
        check_knobs(self)
        if self.secagg_bits not in (0, 8, 16, 32):
            raise UsageError(f"--secagg-bits {self.secagg_bits}: use 8, 16 or 32 (0: auto)")
        if self.secagg and self.private:
            raise UsageError("--secagg and central DP (--dp-clip) do not mix: DP-FedAvg clips "
                             "each update, which the server never sees under secure aggregation; "
                             "drop one")
        if self.ldp_epsilon is not None and (self.train.ldp_clip == 0
                                             or self.train.ldp_noise > 0):
            raise UsageError("--ldp-epsilon needs --ldp-clip C and no --ldp-noise (it derives "
                             "the noise multiplier)")
        if self.train.local_dp and self.train.ldp_noise == 0 and self.ldp_epsilon is None:
            raise UsageError("--ldp-clip needs --ldp-noise Z (the noise multiplier) or "
                             "--ldp-epsilon E (a target epsilon per device over the planned "
                             "rounds)")
        if self.train.local_dp and (self.secagg or self.private):
            raise UsageError("--ldp-clip (local DP) with --secagg or central DP (--dp-clip) is "
                             "not supported: choose one protection")
        if self.secagg and self.canary > 0:
            raise UsageError("--secagg and --canary do not mix (the canaries' round is a "
                             "second cohort): drop one")
        noise_given = self.dp_noise is not None or self.dp_epsilon is not None
        if noise_given and self.dp_clip == 0:
            raise UsageError("--dp-noise / --dp-epsilon need --dp-clip C, the L2 norm each "
                             "update is clipped to")
        if self.dp_noise is not None and self.dp_epsilon is not None:
            raise UsageError("give --dp-noise or --dp-epsilon, not both")
        if self.dp_clip > 0 and not noise_given:
            raise UsageError("--dp-clip needs --dp-noise S (the noise multiplier) or "
                             "--dp-epsilon E (a target epsilon over the planned rounds)")

    @property
    def private(self) -> bool:
        """Central DP is on (--dp-clip)."""
        return self.dp_clip > 0

    @property
    def seed(self) -> int:
        """The run's seed (one field, ``train.seed``): device sampling uses it too."""
        return self.train.seed
