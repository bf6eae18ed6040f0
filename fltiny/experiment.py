"""One federated experiment, shared by ``fltiny run`` (emulated boards) and ``fltiny simulate``
(the firmware's C in-process), and the public Python API::

    from fltiny.experiment import DataSettings, RoundConfig, SimConfig, TrainParams, export, simulate

    bundle = export("har-tiny")                        # build/har-tiny, trained when missing
    result = simulate(SimConfig(clients=4, data=DataSettings(bundle=bundle.path),
                                server=RoundConfig(rounds=2, train=TrainParams(epochs=1))))
    print(result.table())

Settings are frozen dataclasses, one per concept: ``DataSettings`` (dataset, model, bundle,
partition), ``RoundConfig`` (the server's loop) holding ``TrainParams`` (what each device is told),
and ``SimConfig`` / ``RunOptions`` for what differs between the two fleets. The CLI options of
both commands are built from these fields (fltiny/cli.py).

``Experiment`` assembles the pieces both fleets need: the checked ``Bundle`` (given, or
``workflow.ensure_bundle``), the device data, the strategy (refused before any work when the
fleet can never give it enough updates), the held-out evaluator, the run store and the report.
Nothing heavy is imported at module level: the CLI imports this module at start-up.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fltiny.data import DATASETS
from fltiny.errors import UsageError
from fltiny.outdir import check_out_dir
from fltiny.server.config import RoundConfig, TrainParams, check_knobs, knob
from fltiny.sim.byzantine import ATTACKS, byzantine_count
from fltiny.strategies import STRATEGIES

if TYPE_CHECKING:
    from fltiny.devices.data import DataBlob
    from fltiny.devices.replay import HostRound
    from fltiny.export.bundle import Bundle
    from fltiny.provision import PortDevice
    from fltiny.run.evaluate import HoldoutEvaluator
    from fltiny.server.rounds import Fleet, RoundMetrics
    from fltiny.server.store import RunStore
    from fltiny.strategies import Strategy

Say = Callable[[str], None]
PARTITIONS = ("auto", "natural", "grouped", "streams", "iid", "dirichlet")
DEFAULT_MODELS = {"hapt": "har-tiny", "thermostat": "thermo-small", "digits": "digits-tiny"}
ENGINES = ("local", "flower")  # fltiny run --engine: this process, or Flower (fltiny.flower)
AUTO_MODEL = "auto"  # --model auto: a model family per board (fltiny/run/families.py)


def _quiet(_message: str) -> None:
    pass


@dataclass(frozen=True)
class DataSettings:
    """Which model and data: the bundle, and how the fleet data is split across devices."""

    dataset: str = knob("hapt", "--dataset", "Dataset of the devices' data and of the held-out "
                        "evaluation.", choices=tuple(DATASETS))
    model: str | None = knob(None, "--model", "Zoo model (default: the dataset's: "
                             + ", ".join(f"{d} {m}" for d, m in DEFAULT_MODELS.items()) + "). "
                             "'fltiny run --model auto': each board gets the largest model "
                             "family of the dataset that fits its RAM and flash, one "
                             "federation per family in the run.")
    bundle: Path | None = knob(None, "--bundle", "Use this export bundle (fltiny export ... --out "
                               "DIR) instead of build/<model>, which is exported when missing.")
    partition: str = knob("auto", "--partition", "How the fleet data is split: auto (natural "
                          "when there are enough fleet users, else iid while every device gets "
                          "two windows, else streams), natural (one fleet user "
                          "per device; thermostat generates a home per device), grouped (every fleet "
                          "user on some device, whole, dealt round-robin), streams (each device a "
                          "contiguous stretch of one user's windows: more devices than users, "
                          "even than windows), iid, dirichlet.", choices=PARTITIONS)
    alpha: float = knob(0.5, "--alpha", "Dirichlet concentration (--partition dirichlet).",
                        low=0, low_open=True)

    def __post_init__(self) -> None:
        check_knobs(self)

    def model_name(self) -> str:
        if self.model == AUTO_MODEL:
            raise UsageError("--model auto chooses a model family per board: 'fltiny run "
                             "--fleet ...' only (emulated boards it builds firmware for)")
        name = self.model or DEFAULT_MODELS.get(self.dataset)
        if name is None:
            raise UsageError(f"no default model for dataset '{self.dataset}': pass --model")
        return name


def default_build_root() -> Path:
    return Path(os.environ.get("FLTINY_BUILD_DIR", "build"))


@dataclass(frozen=True)
class ExperimentSettings:
    """What ``fltiny run`` and ``fltiny simulate`` share."""

    data: DataSettings = field(default_factory=DataSettings)
    strategy: str = knob("feddyn", "--strategy", "Aggregation strategy (feddyn: FedAvg with "
                         "drift control, the default).",
                         choices=tuple(STRATEGIES))
    server: RoundConfig = field(default_factory=RoundConfig)
    gateways: int = knob(1, "--gateways", "Split the devices over this many gateway bridges "
                         "(contiguous blocks of device ids), each verifying its devices' "
                         "updates and forwarding their exact example-weighted sum: the same "
                         "FedAvg as one bridge (fedavg, fedprox, fedavgm, fedadam, feddyn; no "
                         "central DP).", low=1)
    # keyword options of the strategy (Python API), e.g. (("f", 3),) for Krum or
    # (("beta", 0.2),) for the trimmed mean; the CLI uses each strategy's defaults
    strategy_options: tuple[tuple[str, Any], ...] = ()
    secagg_dropout: float = knob(0.0, "--secagg-dropout", "With --secagg: share of each "
                                 "round's devices that drop after sending their masked update "
                                 "(they are sent no UNMASK; a seeded choice).", low=0, high=1,
                                 high_open=True)
    out: Path = Path("build/experiment")
    build_root: Path = field(default_factory=default_build_root)  # bundles, firmware cache

    def __post_init__(self) -> None:
        check_knobs(self)
        from fltiny.server.gateway import check_gateway_settings

        check_gateway_settings(self.gateways, self.strategy, self.server.private)
        if self.server.secagg:
            from fltiny.server.gateway import MEAN_STRATEGIES

            if self.strategy not in MEAN_STRATEGIES:
                raise UsageError(f"--secagg: {self.strategy} needs every device's own update, "
                                 "which secure aggregation hides; use --strategy "
                                 f"{', '.join(MEAN_STRATEGIES)}")
            if self.gateways > 1:
                raise UsageError("--secagg with --gateways is not supported: run one bridge")
        if self.secagg_dropout > 0 and not self.server.secagg:
            raise UsageError("--secagg-dropout needs --secagg")
        if self.server.private:  # before any work starts
            from fltiny.privacy.central import check_strategy_name

            check_strategy_name(self.strategy)

    @property
    def train(self) -> TrainParams:
        return self.server.train


@dataclass(frozen=True)
class SimConfig(ExperimentSettings):
    """``fltiny simulate``: N devices on the host build of the firmware's C."""

    clients: int = knob(15, "--clients", "Simulated devices.", low=1)
    churn: float = knob(0.0, "--churn", "Share of devices offline each round.", low=0, high=1,
                        high_open=True)
    max_windows: int | None = None  # per device (default: all of its data)
    dense_float: bool = False  # send the exact float32 delta instead of the int8 payload
    out: Path = knob(Path("build/simulate"), "--out", "Report directory (run store, metrics); "
                     "its run store starts afresh.")
    workers: int = knob(0, "--workers", "Processes that run the devices' rounds, each holding a "
                        "share of the devices (0: one per CPU core, at least 32 devices each). "
                        "Any number gives the same run, byte for byte.", low=0)
    # poisoning (fltiny/sim/byzantine.py): a seeded share of compromised devices and their attack
    byzantine: float = knob(0.0, "--byzantine", "Share of the devices that are Byzantine "
                            "(compromised for the whole run, a seeded choice; rounded to the "
                            "nearest device).", low=0, high=1, high_open=True)
    attack: str | None = knob(None, "--attack", "What the Byzantine devices do: sign-flip, "
                       "scale10 (x10), noise (Gaussian, the update's norm), label-flip (train on "
                       "flipped labels), model-replacement (a boosted update pulling the global "
                       "model to the attacker's), silent (sends nothing: what losing them "
                       "costs).", choices=ATTACKS)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data.model == AUTO_MODEL:
            self.data.model_name()  # refused: a simulation has no boards to size
        if self.server.secagg and (self.byzantine > 0 or self.dense_float):
            raise UsageError("--secagg masks the devices' own updates: drop --byzantine "
                             "(its attacks replace the plain payload)")
        if self.server.secagg:
            check_cohort_size(self.clients, self.server.fraction)
        if self.byzantine > 0 and self.attack is None:
            raise UsageError(f"--byzantine {self.byzantine:g} needs an --attack: one of "
                             f"{', '.join(ATTACKS)}")
        if self.attack is not None and self.byzantine <= 0:
            raise UsageError(f"--attack {self.attack} needs Byzantine devices: add e.g. "
                             "--byzantine 0.2")
        if self.workers > 1:
            for on, flag in ((self.server.secagg, "--secagg"), (self.byzantine > 0, "--byzantine"),
                             (self.gateways > 1, "--gateways")):
                if on:  # each needs every device's round in one process
                    raise UsageError(f"{flag} runs in one process: drop --workers "
                                     f"{self.workers} (or give --workers 1)")
        if self.byzantine > 0:
            byzantine_count(self.byzantine, self.clients)  # none or all: refused here
            if self.dense_float:
                raise UsageError("Byzantine devices attack the encoded payload: drop dense_float")


@dataclass(frozen=True)
class RunOptions(ExperimentSettings):
    """``fltiny run``: boards over the bridge. Either emulated boards it starts (``fleet``:
    QEMU / native, each with its data blob, every DELTA replayed), or boards that are already
    running, reached through ``ports`` or the boards of a ``fleet_file`` (flashed boards,
    ``fltiny emulate --pty``): the host holds none of their data, their updates are verified
    without replay (docs/boards.md, "Boards whose data the host never sees"). With ports or a
    fleet file, ``fleet`` is not used."""

    fleet: tuple[tuple[str, int], ...] = (("qemu-m4f", 4),)
    ports: tuple[str, ...] = ()  # serial ports (or link URLs) of running boards: --port
    fleet_file: Path | None = None  # a fleet file of running boards (fltiny.provision)
    port_board: str | None = None  # the board on every --port (None: as its HELLO says)
    record: Path | None = None  # the provisioning record (None: build_root/devices.toml)
    hello_timeout: float = knob(10.0, "--hello-timeout", "Seconds to wait for the HELLO of "
                                "each board given by --port or --fleet-file.", low=0,
                                low_open=True)
    global_delta: bool = knob(True, "--global-delta/--no-global-delta", "Send a compressed "
                              "GLOBAL delta when the device holds the previous version (else "
                              "always the full model).")
    send_chunk: int = knob(256, "--chunk", "Payload bytes per frame the host sends; smaller "
                           "chunks get through noisy serial lines (a 1% byte error rate needs "
                           "about 64).", low=16, high=256)
    resume: bool = knob(False, "--resume", "Continue the run in --out after a crash.")
    out: Path = knob(Path("reports/run"), "--out", "Report directory (metrics, plot, run store).")
    transport: str = knob("serial", "--transport", "How the emulated boards reach the host: "
                          "serial (a serial/TCP socket each) or mqtt (boards with an MQTT client, "
                          "native, through a TLS broker; the others stay on serial).",
                          choices=("serial", "mqtt"))
    broker_dir: Path | None = knob(None, "--broker-dir", "--transport mqtt: the fleet directory "
                                   "(certificates, broker configuration; default OUT/broker). A "
                                   "broker 'fltiny broker start --dir' left running there is "
                                   "used, else one is started for the run.")
    mqtt_url: str = knob("", "--mqtt-url", "--transport mqtt: your own broker "
                         "(mqtts://HOST:PORT) instead of starting mosquitto; its CA and the "
                         "host's and devices' certificates come from --broker-dir/pki.")
    # model families (fltiny/run/families.py): with --model auto or any board_models, each
    # board type runs its own model, one federation per model, reports side by side
    board_models: tuple[tuple[str, str], ...] = ()  # --board-model BOARD=MODEL: an override
    # --family MODEL[=DIR]: the candidates of --model auto (default: the dataset's zoo
    # families), each with its export bundle (None: build_root/<model>, exported when missing)
    families: tuple[tuple[str, Path | None], ...] = ()
    max_windows: int | None = None  # Python API: at most this many training windows a board
    engine: str = knob("local", "--engine", "What runs the fleet: local (this process, the "
                       "default) or flower (a Flower SuperLink and one SuperNode per gateway, "
                       "started and stopped by fltiny; needs --gateways G, G >= 2).",
                       choices=ENGINES)
    superlink_port: int = knob(0, "--superlink-port", "--engine flower: the SuperLink's port on "
                               "127.0.0.1 (0: a free one).", low=0, high=65535)
    ram_budget: str = knob("", "--ram-budget", "Emulated boards: build their firmware for a "
                           "part with this much RAM, e.g. 32k (fltiny build --ram-budget); the "
                           "run must not ask for round state the build leaves out (it says "
                           "which: --no-error-feedback, --no-personal, no FedDyn).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.server.secagg:
            check_secagg_options(self)
        if self.engine == "flower":
            check_flower_options(self)
        object.__setattr__(self, "fleet", tuple((str(b), int(n)) for b, n in self.fleet))
        ports = (self.ports,) if isinstance(self.ports, str) else self.ports
        object.__setattr__(self, "ports", tuple(str(p) for p in ports))
        if self.ports and self.fleet_file is not None:
            raise UsageError("give the boards with --port or with --fleet-file, not both")
        if not self.on_ports and (not self.fleet or any(n < 1 for _, n in self.fleet)):
            raise UsageError("the fleet needs at least one board of each kind named, e.g. "
                             "--fleet qemu-m4f=3,qemu-rv32=2")
        self.serial_devices()  # a malformed fleet file or a port named twice: refused here
        object.__setattr__(self, "board_models",
                           tuple((str(b), str(m)) for b, m in self.board_models))
        object.__setattr__(self, "families", tuple(
            (str(m), None if d is None else Path(d)) for m, d in self.families))
        if self.max_windows is not None and self.max_windows < 1:
            raise UsageError("max_windows must be at least 1")
        if self.ram_budget:
            from fltiny.build.project import parse_ram_budget

            parse_ram_budget(self.ram_budget)  # a malformed size: refused here
            if self.on_ports or self.per_board_models or self.engine != "local":
                raise UsageError("--ram-budget builds the emulated boards' firmware of one "
                                 "model with --engine local: drop --port / --fleet-file, "
                                 "--model auto / --board-model or --engine flower")
        if self.per_board_models:
            from fltiny.run.families import check_family_options

            check_family_options(self)
        elif self.families:
            raise UsageError("--family names the candidates of --model auto: add --model auto")

    @property
    def per_board_models(self) -> bool:
        """A model family per board type (--model auto, or a --board-model override)."""
        return self.data.model == AUTO_MODEL or bool(self.board_models)

    @property
    def on_ports(self) -> bool:
        """Running boards reached through ports (the host holds none of their data)."""
        return bool(self.ports) or self.fleet_file is not None

    def serial_devices(self) -> list[PortDevice]:
        """The running boards to drive (from ``ports`` or ``fleet_file``; empty otherwise)."""
        from fltiny.provision import PortDevice, check_unique, read_fleet_file

        if self.fleet_file is not None:
            return [d if d.board or not self.port_board else replace(d, board=self.port_board)
                    for d in read_fleet_file(Path(self.fleet_file))]
        devices = [PortDevice(p, self.port_board) for p in self.ports]
        check_unique(devices, "--port")
        return devices

    @property
    def devices(self) -> int:
        if self.on_ports:
            return len(self.serial_devices())
        return sum(n for _, n in self.fleet)


SECAGG_MAX_COHORT = 16  # FLT_SECAGG_MAX_COHORT (firmware/runtime/secagg/msg.h)


def check_cohort_size(devices: int, fraction: float) -> None:
    """UsageError when a round would ask more devices than one secure-aggregation cohort holds
    (a round with more would fail to mask, and the model would never change)."""
    per_round = math.ceil(devices * fraction)
    if per_round > SECAGG_MAX_COHORT:
        raise UsageError(f"--secagg: a round asks {per_round} devices, and one cohort holds at "
                         f"most {SECAGG_MAX_COHORT} (FLT_SECAGG_MAX_COHORT); use at most "
                         f"{SECAGG_MAX_COHORT} devices per round (--fraction) or fewer devices")


def check_secagg_options(opts: RunOptions) -> None:
    """UsageError (one line) for a ``--secagg`` run its boards or options cannot do: boards
    whose firmware leaves secure aggregation out (64 kB of RAM or less: FLT_APP_SECAGG 0,
    fltiny.build.project.secagg_fits), the Flower engine, MQTT boards."""
    if opts.engine != "local":
        raise UsageError("--secagg runs with --engine local (one bridge): drop --engine flower")
    if opts.transport != "serial":
        raise UsageError("--secagg runs over serial links: drop --transport mqtt")
    if opts.data.model == AUTO_MODEL or opts.board_models:
        raise UsageError("--secagg runs one federation: drop --model auto / --board-model")
    check_cohort_size(opts.devices, opts.server.fraction)
    if opts.on_ports:  # their firmware says whether it can in its HELLO (checked per round)
        return
    from fltiny.boards import get_board
    from fltiny.build.project import SECAGG_MIN_RAM, secagg_fits

    small = [name for name, _n in opts.fleet if not secagg_fits(get_board(name))]
    if small:
        raise UsageError(f"--secagg: {', '.join(small)} has {SECAGG_MIN_RAM // 1024} kB of RAM "
                         "or less and its firmware leaves secure aggregation out; use boards "
                         "with more RAM (qemu-m4f, qemu-rv32) or drop --secagg")


def check_flower_options(opts: RunOptions) -> None:
    """UsageError (one line, which option) for what ``--engine flower`` cannot run."""
    if opts.gateways < 2:
        raise UsageError("--engine flower runs one Flower SuperNode per gateway: add --gateways G "
                         "(G >= 2), e.g. --engine flower --gateways 2")
    refused = [(opts.on_ports, "--port / --fleet-file (running boards: its gateways start "
                               "emulated boards)"),
               (opts.resume, "--resume (a Flower run starts afresh)"),
               (opts.transport != "serial", f"--transport {opts.transport}"),
               (opts.per_board_models, "--model auto / --board-model (one federation per "
                                       "family)")]
    for bad, what in refused:
        if bad:
            raise UsageError(f"--engine flower does not support {what}: drop it, or run with "
                             "--engine local")


@dataclass
class ExperimentResult:
    """What an experiment produced: ``rounds`` holds one row per round from the run store
    (round 0 = the initial model; evaluation metrics by name, participants, bytes, seconds,
    note), ``metrics`` the rounds this process ran."""

    rounds: list[dict[str, Any]]
    metrics: list[RoundMetrics]
    summary: dict[str, Any]
    files: list[Path]
    store: Path
    partition: str
    seconds: float

    @property
    def initial(self) -> dict[str, float]:
        return self.evaluation(0)

    @property
    def final(self) -> dict[str, float]:
        return self.evaluation(-1)

    def evaluation(self, index: int) -> dict[str, float]:
        keys = self.summary.get("evaluation_keys", [])
        return {k: self.rounds[index][k] for k in keys if k in self.rounds[index]}

    def table(self) -> str:
        from fltiny.report.table import RoundTable

        return RoundTable.render(self.rounds)


def resolve_bundle(data: DataSettings, root: Path, say: Say = _quiet) -> Bundle:
    """The checked bundle: ``data.bundle`` when given (it must be this model's, when a model is
    named), else build/<model>, exported (and trained) when missing."""
    from fltiny.export.bundle import Bundle

    if data.bundle is not None:
        bundle = Bundle.load(Path(data.bundle))
        if data.model is not None and bundle.name != data.model:
            raise UsageError(f"--bundle {data.bundle} holds {bundle.name}, not --model "
                             f"{data.model}: drop --model or pass that model's bundle")
        return bundle
    from fltiny.workflow import ensure_bundle

    return Bundle.load(ensure_bundle(data.model_name(), data.dataset, say, root))


def choose_partition(requested: str, clients: int, fleet_groups: int,
                     fleet_samples: int | None = None) -> str:
    """auto: natural (one fleet user per device) when there are enough users, else iid while
    each device gets two of the ``fleet_samples`` windows, else streams (fltiny.data.partition:
    contiguous stretches of one user's windows)."""
    if requested == "auto":
        if clients <= fleet_groups:
            return "natural"
        return "iid" if fleet_samples is None or 2 * clients <= fleet_samples else "streams"
    if requested == "natural" and clients > fleet_groups:
        raise UsageError(f"natural partition has {fleet_groups} fleet devices (one per user); "
                         f"asked for {clients}: use --partition iid or dirichlet")
    return requested


def check_fleet_size(settings: ExperimentSettings, devices: int) -> None:
    """Refuse settings the fleet can never satisfy, before any work: a quorum larger than the
    devices asked per round, or a strategy needing more updates than that (Krum)."""
    from fltiny.server.rounds import device_mu
    from fltiny.strategies import make_strategy

    cfg = settings.server
    asked = max(1, int(round(cfg.fraction * devices)))
    strategy = make_strategy(settings.strategy, **dict(settings.strategy_options))
    if strategy.min_updates() > asked:
        raise UsageError(
            f"{settings.strategy} needs at least {strategy.min_updates()} updates per round, "
            f"the fleet gives at most {asked} ({devices} devices, --fraction {cfg.fraction:g}): "
            "use more devices or another --strategy (median, trimmed-mean)")
    device_mu(strategy, cfg.train)  # FedDyn with --mu 0 is refused here, before any work
    if cfg.min_fit > asked:
        raise UsageError(f"--min-fit {cfg.min_fit} can never be met: at most {asked} devices are "
                         "asked per round; lower --min-fit or add devices")


class Experiment:
    """The pieces of one experiment, built on first use (``bundle``, ``host``, ``evaluator``)."""

    def __init__(self, settings: ExperimentSettings, devices: int, say: Say = _quiet,
                 log: Say = _quiet, data_on_devices: bool = False,
                 slots: tuple[int, ...] | None = None, fleet_devices: int | None = None) -> None:
        check_fleet_size(settings, devices)
        self.settings = settings
        self.devices = devices
        # one federation of several in a fleet (fltiny/run/families.py): the data is split over
        # the whole fleet of ``fleet_devices`` and this experiment's devices hold ``slots``
        self.fleet_devices = devices if fleet_devices is None else fleet_devices
        self.slots = tuple(range(devices)) if slots is None else tuple(slots)
        if len(self.slots) != devices:
            raise ValueError("one fleet slot per device")
        self.data_on_devices = data_on_devices  # the host holds none of the devices' data
        self.say = say
        self.log = log
        self.out = Path(settings.out)
        self.store_path = self.out / "run.sqlite"
        self.t0 = time.perf_counter()
        check_out_dir(self.out)  # a bad --out is named before any work (nothing made yet)
        if settings.data.bundle is not None:
            self.bundle  # noqa: B018 - a given bundle is checked before any work

    @cached_property
    def bundle(self) -> Bundle:
        return resolve_bundle(self.settings.data, self.settings.build_root, self.say)

    @cached_property
    def host(self) -> HostRound:
        from fltiny.devices.replay import HostRound

        return HostRound(self.bundle.path)

    @cached_property
    def partition(self) -> str:
        from fltiny.data import load_dataset
        from fltiny.data.registry import fleet_groups

        if self.data_on_devices:
            return "on-device"  # each board holds its own data; the host never sees it
        name = self.settings.data.dataset
        n = self.fleet_devices
        groups = fleet_groups(name, n)
        samples = None if n <= groups else len(load_dataset(name).fleet().y)
        return choose_partition(self.settings.data.partition, n, groups, samples)

    def blobs(self, max_windows: int | None = None) -> list[DataBlob]:
        """One data blob per device (the same split for boards and simulated devices)."""
        from fltiny.devices.data import fleet_blobs

        d = self.settings.data
        self.say(f"data: {self.partition} partition of the {d.dataset} fleet, "
                 f"{self.fleet_devices} devices" + (f" ({self.devices} of them here)"
                                                   if self.devices != self.fleet_devices else ""))
        blobs = fleet_blobs(self.bundle.path, self.fleet_devices, dataset=d.dataset,
                            scheme=self.partition, alpha=d.alpha, seed=self.settings.train.seed,
                            max_windows=max_windows)
        return [blobs[i] for i in self.slots]

    @cached_property
    def evaluator(self) -> HoldoutEvaluator:
        from fltiny.run.evaluate import HoldoutEvaluator

        self.say("held-out evaluation: backbone features of the held-out windows (host build "
                 "of the C)")
        return HoldoutEvaluator.for_dataset(self.host, self.settings.data.dataset)

    def strategy(self) -> Strategy:
        from fltiny.strategies import make_strategy

        return make_strategy(self.settings.strategy, **dict(self.settings.strategy_options))

    def open_store(self, resume: bool) -> RunStore:
        """The run store in ``out``: continued with ``resume``, else it must not exist yet."""
        from fltiny.server.store import RunStore

        if self.store_path.exists() and not resume:
            raise UsageError(f"{self.store_path} exists: pass --resume to continue that run, "
                             "or choose another --out")
        if resume and not self.store_path.exists():
            self.say(f"no run store in {self.out}: starting a new run")
        self.out.mkdir(parents=True, exist_ok=True)
        return RunStore(self.store_path)

    def run_rounds(self, fleet: Fleet, store: RunStore,
                   progress: Callable[[RoundMetrics], None] = lambda _m: None
                   ) -> list[RoundMetrics]:
        """The round loop over ``fleet``: ``progress`` sees every round in the store (round 0,
        the initial model, and the rounds of an earlier process first), then each new one."""
        import numpy as np

        from fltiny.server.rounds import RoundMetrics, host_state, run_rounds, start_run

        strategy = self.strategy()
        initial = self.host.head.params.astype(np.float32)
        latest = store.latest()
        if latest is None:
            start_run(store, strategy, self.settings.server, initial, self.evaluator,
                      host_state(fleet))
        else:
            self.say(f"resuming after round {latest.round} from {self.store_path} (version "
                     f"{latest.version}, sha256 {latest.sha256[:12]})")
        for c in store.history():
            progress(RoundMetrics.from_checkpoint(c))
        return run_rounds(fleet, strategy, store, self.settings.server, initial,
                          self.evaluator, progress, self.log)

    def result(self, store: RunStore, metrics: list[RoundMetrics],
               summary: dict[str, Any] | None = None,
               rows: list[dict[str, Any]] | None = None) -> ExperimentResult:
        """Write the report (metrics.json, metrics.csv, metrics.png) next to the run store."""
        from fltiny.report import round_rows, write_report
        from fltiny.report.wire import WireFigures

        rows = rows if rows is not None else round_rows(store)
        s = self.settings
        info: dict[str, Any] = {
            "dataset": s.data.dataset, "model": self.bundle.name, "strategy": s.strategy,
            "partition": self.partition, "devices": self.devices,
            "head_params": self.bundle.head.n_params, "settings": jsonable(asdict(s)),
            "evaluation_keys": sorted({k for c in store.history()
                                       for k in c.metrics.get("evaluation", {})}),
        }
        head = store.latest_record()
        if head is not None:  # the audit chain's head: compare with 'fltiny audit --run DIR'
            info["audit_head"] = head[1]
        info.update(summary or {})
        if s.server.private:
            from fltiny.server.rounds import dp_noise

            eps = [r["epsilon"] for r in rows if "epsilon" in r]
            info["privacy"] = {"mechanism": "central DP-FedAvg (Poisson sampling, clipped "
                               "updates, Gaussian noise on the sum)",
                               "dp_clip": s.server.dp_clip, "dp_noise": dp_noise(s.server),
                               "dp_delta": s.server.dp_delta, "sampling_rate": s.server.fraction,
                               "epsilon": eps[-1] if eps else 0.0}
        if s.server.train.local_dp:
            from fltiny.server.rounds import ldp_noise

            eps = [r["ldp_epsilon"] for r in rows if "ldp_epsilon" in r]
            info["local_dp"] = {
                "mechanism": "local DP on each device (privacy/local_dp.h): the round update "
                             "clipped to L2 norm ldp_clip and Gaussian noise of standard "
                             "deviation ldp_noise x ldp_clip from the device's own secret, "
                             "before top-k; epsilon of the device with the most releases "
                             "(sensitivity 2 x clip, no sampling amplification)",
                "ldp_clip": s.server.train.ldp_clip, "ldp_noise": ldp_noise(s.server),
                "dp_delta": s.server.dp_delta, "epsilon": eps[-1] if eps else 0.0}
        if s.server.secagg:
            ratios = [r["masked_ratio"] for r in rows if r.get("masked_ratio") is not None]
            info["secagg"] = {
                "protocol": "secure aggregation (Bonawitz et al. 2017): pairwise and self masks "
                            "mod 2^w on a shared index set, Shamir t-of-n shares of each "
                            "device's round mask secret and self-mask seed for dropouts; "
                            "X25519, ChaCha20, HKDF-SHA256 in the runtime (secagg/)",
                "clip": s.server.secagg_clip, "bits": s.server.secagg_bits or "auto",
                "rounds": sum(1 for r in rows if r.get("secagg") == 1.0),
                "masked_ratio_max": max(ratios) if ratios else None}
        wire = WireFigures.of(rows, self.bundle.head.n_params)
        if wire is not None:
            info["wire"] = wire.summary()
        files = write_report(self.out, rows, info) + [self.store_path]
        return ExperimentResult(rows, metrics, info, files, self.store_path, self.partition,
                                time.perf_counter() - self.t0)


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


# ---- the public API ------------------------------------------------------------------------

def export(model: str, dataset: str | None = None, out: Path | None = None,
           progress: Say = _quiet) -> Bundle:
    """Train (when needed) and export a zoo model to ``out`` (default build/<model>); an
    existing export of the same model with the default settings is reused."""
    from fltiny.export.bundle import Bundle
    from fltiny.models import get_model
    from fltiny.workflow import ensure_bundle

    ds = dataset or get_model(model).dataset
    return Bundle.load(ensure_bundle(model, ds, progress, default_build_root(), out))


def simulate(config: SimConfig, progress: Callable[[RoundMetrics], None] = lambda _m: None,
             log: Say = _quiet) -> ExperimentResult:
    """``fltiny simulate`` from Python (see fltiny.sim.run.simulate)."""
    from fltiny.sim.run import simulate as sim

    return sim(config, progress=progress, log=log)


def run(options: RunOptions, progress: Callable[[RoundMetrics], None] = lambda _m: None,
        say: Say = _quiet, log: Say = _quiet) -> ExperimentResult:
    """``fltiny run`` from Python: emulated boards, or running boards on ports (see
    fltiny.run.runner.run)."""
    from fltiny.run.runner import run as run_boards

    return run_boards(options, progress=progress, say=say, log=log)


def run_families(options: RunOptions,
                 progress: Callable[[str, RoundMetrics], None] = lambda _f, _m: None,
                 say: Say = _quiet, log: Say = _quiet):
    """``fltiny run --model auto`` (or with --board-model) from Python: a model family per
    board, one federation per family in one run (see fltiny.run.families.run_families)."""
    from fltiny.run.families import run_families as run_fams

    return run_fams(options, progress=progress, say=say, log=log)


__all__ = ["DataSettings", "Experiment", "ExperimentResult", "ExperimentSettings", "RoundConfig",
           "RunOptions", "SimConfig", "TrainParams", "export", "run", "run_families", "simulate"]
