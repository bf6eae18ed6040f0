"""The round loop: sample devices, collect their updates through a Fleet, validate,
aggregate, evaluate, checkpoint. Fleets are emulated boards over the bridge (``fltiny run``)
or the firmware's C runtime in-process (``fltiny simulate``); the loop does not care which.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fltiny.errors import FltinyError, StrategyError, UsageError
from fltiny.privacy.central import CentralDP, poisson_sample
from fltiny.server import reputation
from fltiny.server.audit import update_sha256
from fltiny.server.canary import CanaryGate, Verdict, judge
from fltiny.server.config import RoundConfig, TrainParams
from fltiny.server.controls import Control, FleetControls
from fltiny.server.gateway import aggregate_gateways, apply_sums
from fltiny.server.store import Checkpoint, DeviceRecord, RunStore, params_sha256
from fltiny.server.validate import validate_updates
from fltiny.strategies.base import ClientUpdate, Strategy

if TYPE_CHECKING:
    from fltiny.privacy.accountant import LocalAccountant, RunAccountant


@dataclass(frozen=True)
class DeviceResult:
    device_id: int
    update: ClientUpdate | None
    bytes_up: int = 0
    bytes_down: int = 0
    error: str = ""
    # the device's personal metric: its served model on its personal test split (the last 30 %
    # of its windows in time order, never trained on), measured on the device before training
    personal_n: int = 0
    personal_metric: float | None = None
    # what the fleet measured for this device (wire bytes, replay verdict, ...): stored with
    # the device's row in the run store (RunStore.updates()["figures"])
    figures: dict[str, Any] = field(default_factory=dict)
    # the TRAINs the device was sent this round: with local DP each may have produced a noised
    # release (a retried TRAIN after a resync trains again); the accountant counts them all
    releases: int = 1
    # the hash of the decoded update (fltiny.server.audit.update_sha256), when the fleet
    # computed it beside the device (a simulation worker); else the round loop computes it
    update_sha256: str | None = None


class Fleet(Protocol):
    def devices(self) -> list[int]:
        """Device ids that can take part now."""
        ...

    def run_round(self, round_: int, devices: Sequence[int], global_params: np.ndarray,
                  version: int, train: TrainParams, mu: float,
                  deadline_s: float) -> list[DeviceResult]:
        """Send the global model and TRAIN to each device; return what came back in time."""
        ...

    # optional: ``host_state() -> dict[int, DeviceRecord]``, what the host knows of each
    # device, written with every checkpoint (fltiny.bridge.fleet.BridgeFleet.host_state);
    # ``gateway_of(device_id) -> int``, a fleet of gateways whose sums the top level adds
    # (fltiny.server.gateway.GatewayFleet); ``gateway_sums(global_params, accepted) ->
    # list[GatewaySum]``, the sums gateways elsewhere forwarded (fltiny.flower.fleet)


def host_state(fleet: Fleet) -> dict[int, DeviceRecord] | None:
    """The fleet's per-device host state for the checkpoint being written, if it keeps one."""
    get = getattr(fleet, "host_state", None)
    return None if get is None else get()


@dataclass
class Collected:
    """What a round collected: the devices' results, and when a canary judged the model the
    round started from, the verdict and (rolled back) the model it restored."""

    results: list[DeviceResult]
    verdict: Verdict | None = None
    restored: Checkpoint | None = None


def collect_round(fleet: Fleet, gate: CanaryGate | None, rnd: int, available: Sequence[int],
                  chosen: Sequence[int], params: np.ndarray, current: Checkpoint,
                  trusted_now: bool, train: TrainParams, mu: float, config: RoundConfig,
                  lower_is_better: bool) -> Collected:
    """The devices' results of one round. Without a canary gate: every chosen device. With
    one (fltiny.server.canary): the canaries first, training without PERSONAL so that their
    personal metric is the model's; a candidate model whose canaries' metric dropped by more
    than the threshold is not sent to anyone else (the caller restores ``restored``), else
    the other chosen devices train on it too."""
    if gate is None:
        return Collected(fleet.run_round(rnd, chosen, params, current.version, train, mu,
                                         config.deadline_s))
    canaries = gate.cohort(available)
    rest = [d for d in chosen if d not in canaries]
    first = fleet.run_round(rnd, canaries, params, current.version,
                            replace(train, personal=False), mu, config.deadline_s)
    verdict = None
    if trusted_now:
        gate.observe_trusted(first, canaries)
    else:
        verdict = judge(current.version, first, gate.baseline, gate.threshold, lower_is_better)
        if not verdict.promoted:
            why = f"canary of version {current.version}, rolled back: {verdict.describe()}"
            return Collected([replace(r, update=None, error=r.error or why) for r in first],
                             verdict, gate.trusted)
        gate.promote(verdict, current)
    others = fleet.run_round(rnd, rest, params, current.version, train, mu, config.deadline_s)
    return Collected(list(first) + list(others), verdict)


def switch_training(fleet: Fleet, device_id: int, enabled: bool) -> dict[str, Any]:
    """Tells a device to stop or resume training when the fleet can (a bridge fleet sends
    DISABLE / ENABLE: ``set_training``); what happened goes into the control's audit record.
    A fleet without it (the simulator) only stops asking the device to train."""
    push = getattr(fleet, "set_training", None)
    if push is None:
        return {"delivered": False, "reason": "host-side only: this fleet has no device link"}
    return dict(push(device_id, enabled))


@dataclass(frozen=True)
class RoundMetrics:
    round: int
    version: int
    participants: int
    rejected: int
    bytes_up: int
    bytes_down: int
    seconds: float
    evaluation: dict[str, float]  # every held-out metric by name (the report prints them all)
    note: str = ""
    # the devices' personal metric this round (measured before their training, with the model
    # each served): personal_<metric> = mean over the devices that reported it,
    # personal_<metric>_worst = the worst device (lowest accuracy, highest MAE)
    personal: dict[str, float] = field(default_factory=dict)
    # central DP (fltiny.privacy): epsilon after this round at the run's dp_delta
    privacy: dict[str, float] = field(default_factory=dict)
    # canary rollout (fltiny.server.canary): the verdict on the candidate this round judged
    canary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_checkpoint(cls, c: Checkpoint) -> RoundMetrics:
        """The metrics a checkpoint recorded (round 0, the initial model: evaluation only)."""
        m = c.metrics
        return cls(c.round, c.version, int(m.get("participants", 0)), int(m.get("rejected", 0)),
                   int(m.get("bytes_up", 0)), int(m.get("bytes_down", 0)),
                   float(m.get("seconds", 0.0)), dict(m.get("evaluation", {})), c.note,
                   dict(m.get("personal", {})), dict(m.get("privacy", {})),
                   dict(m.get("canary", {})))


ANOMALY_LOG_LEVEL = reputation.ANOMALY_GOOD  # every score is in the store; these are printed


class RoundError(FltinyError):
    pass


def device_mu(strategy: Strategy, train: TrainParams) -> float:
    """The proximal coefficient the devices get: --mu when given, else the strategy's. A
    strategy with drift control (FedDyn: mu is its alpha) needs it above 0 (UsageError)."""
    mu = train.mu if train.mu is not None else strategy.proximal_mu
    if strategy.drift and not mu > 0:
        raise UsageError(f"{strategy.name} needs a proximal coefficient (its alpha) above 0, "
                         f"got --mu {mu:g}: drop --mu or pass e.g. --mu 0.01")
    return mu


def personal_summary(results: Sequence[DeviceResult], metric: str) -> dict[str, float]:
    """Mean and worst personal metric over the devices that reported one (empty if none)."""
    values = [r.personal_metric for r in results
              if r.personal_n > 0 and r.personal_metric is not None and not r.error]
    if not values:
        return {}
    worst = min(values) if metric == "accuracy" else max(values)
    return {f"personal_{metric}": float(np.mean(values)),
            f"personal_{metric}_worst": float(worst)}


def device_seed(base_seed: int, round_: int, device_id: int) -> int:
    """The TRAIN seed of one device in one round (u32): distinct shuffles per device and round,
    reproducible from the run's seed. Used by every fleet, emulated or simulated."""
    mixed = np.random.SeedSequence([base_seed, round_, device_id]).generate_state(1)[0]
    return int(mixed)


def sample_devices(available: Sequence[int], fraction: float, round_: int, seed: int) -> list[int]:
    if not available:
        return []
    count = max(1, int(round(fraction * len(available))))
    rng = np.random.default_rng([seed, round_])
    return sorted(rng.choice(sorted(available), size=min(count, len(available)),
                             replace=False).tolist())


def _local_dp(train: TrainParams, config: RoundConfig, done: int,
              fleet: Any) -> LocalAccountant | None:
    """Local DP's accountant (None: off). Resumed after ``done`` rounds: every device counts
    as having released in each of them and in the interrupted round after them (an upper
    bound on its epsilon)."""
    if not train.local_dp:
        return None
    from fltiny.privacy.accountant import LocalAccountant

    acc = LocalAccountant(train.ldp_noise, config.dp_delta)
    if done:
        acc.releases = dict.fromkeys(fleet.devices(), done + 1)
    return acc


def ldp_noise(config: RoundConfig) -> float:
    """Local DP's noise multiplier: --ldp-noise, or the one --ldp-epsilon needs for its rounds
    (rounded up to float32, what the TRAIN carries, so the epsilon stays within the target)."""
    if config.train.ldp_noise > 0:  # the float32 the TRAIN carries, which the device uses
        return float(np.float32(config.train.ldp_noise))
    from fltiny.privacy.accountant import local_noise_for

    z = local_noise_for(float(config.ldp_epsilon or 0.0), config.dp_delta, config.rounds)
    z32 = np.float32(z)
    return float(z32 if z32 >= z else np.nextafter(z32, np.float32(np.inf)))


def dp_noise(config: RoundConfig) -> float:
    """The run's noise multiplier: --dp-noise, or the one --dp-epsilon needs for its rounds."""
    from fltiny.privacy.accountant import noise_for

    if config.dp_noise is not None:
        return config.dp_noise
    return noise_for(float(config.dp_epsilon or 0.0), config.dp_delta, config.fraction,
                     config.rounds)


def _central_dp(strategy: Strategy, config: RoundConfig, done: int,
                log: Callable[[str], None]) -> tuple[CentralDP | None, RunAccountant | None]:
    """The round loop's central DP (``config.private``) and its accountant, resumed after
    ``done`` rounds; (None, None) without DP."""
    if not config.private:
        return None, None
    from fltiny.privacy.accountant import RunAccountant

    CentralDP.check_strategy(strategy)
    q = config.fraction
    z = dp_noise(config)
    log(f"central DP: updates clipped to L2 norm {config.dp_clip:g}, noise multiplier {z:.4g}, "
        f"devices Poisson-sampled at rate {q:g}, delta {config.dp_delta:g}; the noise is not "
        "reproducible")
    return CentralDP(config.dp_clip, z, q), RunAccountant(q, z, config.dp_delta, rounds=done)


@dataclass
class ControlPlane:
    """The controls in force during a run (quarantine, disable) and the devices' reputation,
    rebuilt from the store on start and resume; ``take`` applies the queued controls."""

    store: RunStore
    threshold: float = 0.0  # --reputation-threshold (0: no automatic quarantine)
    fleet: FleetControls = field(default_factory=FleetControls)
    scores: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        done = {seq for seq, _v in self.store.applied_controls()}
        self.fleet = FleetControls.of([c for c in self.store.controls() if c.seq in done])
        for row in self.store.updates():
            if row["reputation"] is not None:
                self.scores[row["device_id"]] = float(row["reputation"])

    def take(self) -> list[Control]:
        """The controls queued since the last round, applied to the fleet state."""
        pending = self.store.pending_controls()
        for c in pending:
            self.fleet.apply(c)
            if c.action == "clear":
                self.scores.pop(c.arg, None)  # a cleared device starts afresh
        return pending

    def score(self, device_id: int, validated: bool | None, anomaly: float | None) -> float:
        """The device's reputation after this round (``validated`` None: no update)."""
        s = self.scores.get(device_id, 1.0)
        if validated is not None:
            s = self.scores[device_id] = reputation.next_score(
                s, reputation.evidence(validated, anomaly))
        return s

    def demote(self, device_id: int) -> Control | None:
        """Queue a quarantine for a device whose reputation fell below the threshold: like an
        operator's control, it applies from the next round (and is audited there)."""
        if (self.threshold <= 0 or device_id in self.fleet.quarantined
                or self.scores.get(device_id, 1.0) >= self.threshold
                or any(c.arg == device_id and c.action == "quarantine"
                       for c in self.store.pending_controls())):
            return None
        return self.store.add_control("quarantine", device_id, origin="reputation")


def start_run(store: RunStore, strategy: Strategy, config: RoundConfig,
              initial_params: np.ndarray,
              evaluate: Callable[[np.ndarray], dict[str, float]],
              devices: dict[int, DeviceRecord] | None = None) -> Checkpoint:
    """Record the run's configuration and the initial model as version 0 (round 0), with the
    fleet's host state (``devices``) when it keeps one."""
    store.start({"rounds": asdict(config), "strategy": strategy.name})
    return store.save(0, initial_params, {}, {"evaluation": evaluate(initial_params)},
                      note="initial model", devices=devices)


def run_rounds(
    fleet: Fleet,
    strategy: Strategy,
    store: RunStore,
    config: RoundConfig,
    initial_params: np.ndarray,
    evaluate: Callable[[np.ndarray], dict[str, float]],
    progress: Callable[[RoundMetrics], None] = lambda _m: None,
    log: Callable[[str], None] = lambda _m: None,
) -> list[RoundMetrics]:
    """Run (or, when the store holds checkpoints, resume) the rounds up to ``config.rounds``.

    A round whose updates cannot be aggregated (fewer than ``config.min_fit``, fewer than the
    strategy can combine, or a StrategyError) leaves the model unchanged with a round note.
    Each round's checkpoint and its per-device rows are written in one transaction.
    """
    mu = device_mu(strategy, config.train)
    if strategy.drift:
        strategy.proximal_mu = mu  # FedDyn's server step uses the devices' alpha
    # what the strategy asks of the devices: its proximal term and drift control (FedDyn)
    train = replace(config.train, mu=mu, drift=strategy.drift)
    if train.local_dp:  # --ldp-epsilon: the noise its planned rounds need
        train = replace(train, ldp_noise=ldp_noise(config))
        log(f"local DP: each device clips its update to L2 norm {train.ldp_clip:g} and adds "
            f"noise of multiplier {train.ldp_noise:.4g} from its own secret; those payloads "
            "replay only up to the noise")
    need = max(1, config.min_fit)
    latest = store.latest()
    if latest is None:
        latest = start_run(store, strategy, config, initial_params, evaluate,
                           host_state(fleet))
    elif latest.round > 0:
        log(f"resuming after round {latest.round} (version {latest.version}, "
            f"sha256 {latest.sha256[:12]})")
    strategy.state = dict(latest.state)
    params, version = latest.params, latest.version
    plane = ControlPlane(store, config.reputation_threshold)
    dp, accountant = _central_dp(strategy, config, latest.round, log)
    local = _local_dp(train, config, latest.round, fleet)
    # a fleet of gateway bridges (fltiny.server.gateway): aggregate their exact pre-aggregates
    gateway_of = getattr(fleet, "gateway_of", None)
    secure_of = getattr(fleet, "secure_aggregate", None)
    if secure_of is not None and getattr(fleet, "secagg", None) is None:
        secure_of = None  # a fleet that can mask, in a run without --secagg
    gateway_sums = getattr(fleet, "gateway_sums", None)
    if gateway_of is not None and dp is not None:
        raise UsageError("central DP needs every device's update; gateways forward sums: run "
                         "DP without --gateways")
    gate = None
    if config.canary > 0:
        if dp is not None:
            raise UsageError("--canary and central DP do not mix (the canaries would take part "
                             "in every round, outside the Poisson sampling): drop one")
        gate = CanaryGate.from_store(store, config.canary, config.canary_drop, config.seed)
    current = latest
    for dev in sorted(plane.fleet.disabled):  # resumed: the devices boot enabled
        r = switch_training(fleet, dev, False)
        log(f"device {dev}: disabled by an earlier control: "
            f"{r.get('status') or r.get('reason')}")
    metrics: list[RoundMetrics] = []
    for rnd in range(latest.round + 1, config.rounds + 1):
        t0 = time.perf_counter()
        applied: list[dict[str, Any]] = []
        notes: list[str] = []
        trusted_now = gate is None or not gate.is_candidate(version)
        for c in plane.take():
            record = c.record()
            if c.action == "rollback":
                src = store.checkpoint_of_round(c.arg)
                params, strategy.state = src.params, dict(src.state)
                record["to_version"] = src.version
                if gate is not None:  # the operator's choice: trusted, no canary check
                    gate.trusted, trusted_now = src, True
                notes.append(f"rolled back to round {c.arg} (version {src.version}) by control "
                             f"#{c.seq}")
            elif c.action in ("disable", "enable"):
                record["device"] = switch_training(fleet, c.arg, c.action == "enable")
            log(f"round {rnd}: control {c.describe()} applied"
                + (f": {record['device'].get('status') or record['device'].get('reason')}"
                   if "device" in record else ""))
            applied.append(record)
        base = params
        available = [d for d in fleet.devices() if d not in plane.fleet.disabled]
        chosen = (poisson_sample(available, dp.q, dp.rng) if dp is not None
                  else sample_devices(available, config.fraction, rnd, config.seed))
        got = collect_round(fleet, gate, rnd, available, chosen, params, current, trusted_now,
                            train, mu, config, lower_is_better=current.metrics.get(
                                "evaluation", {}).get("accuracy") is None)
        results = got.results
        canary: dict[str, Any] = got.verdict.record() if got.verdict is not None else {}
        if got.verdict is not None:
            log(f"round {rnd}: {got.verdict.describe()}")
        if got.restored is not None:
            src = got.restored
            c = store.add_control("rollback", src.round, origin="canary")
            record = {**c.record(), "to_version": src.version, "canary": canary}
            applied.append(record)
            params, strategy.state = src.params, dict(src.state)
            base = params
            canary["to_version"] = src.version
            notes.append(f"canary rollback of version {version} to version {src.version} "
                         f"(control #{c.seq}): {got.verdict.describe() if got.verdict else ''}")
        updates = [r.update for r in results if r.update is not None]
        validated, verdicts = validate_updates(params, updates, config.max_norm,
                                               config.anomaly_threshold, config.max_update_ratio)
        by_device = {v.device_id: v for v in verdicts}
        # secure aggregation (fltiny.sim.secagg): no individual update, one exact masked sum
        secure = secure_of(rnd) if secure_of is not None else None
        rows = []
        for r in results:
            v = by_device.get(r.device_id)
            reason = r.error or (v.reason if v else "no update")
            ok = bool(v and v.accepted and not r.error)
            if secure_of is not None:
                ok = secure is not None and r.device_id in secure.devices and not r.error
                reason = r.error or ("in the masked sum" if ok else "not in the masked sum")
            score = plane.score(r.device_id, None if (r.error or v is None) else ok,
                                v.anomaly if v else None)
            held = plane.fleet.quarantine_reason(r.device_id)
            if ok and held:
                ok, reason = False, held
            if not ok:
                log(f"round {rnd}: device {r.device_id} rejected: {reason}")
            elif v and v.anomaly > ANOMALY_LOG_LEVEL:
                log(f"round {rnd}: device {r.device_id} anomaly score {v.anomaly:.1f}")
            rows.append({
                "device_id": r.device_id, "accepted": int(ok), "reason": reason,
                "bytes_up": r.bytes_up, "bytes_down": r.bytes_down,
                "num_examples": r.update.num_examples if r.update else 0,
                "loss": r.update.loss if r.update else None,
                "norm": v.norm if v else None, "anomaly": v.anomaly if v else None,
                "figures": ({**r.figures, "personal_n": r.personal_n,
                             "personal_metric": r.personal_metric}
                            if r.personal_n else r.figures),
                "reputation": score,
                "payload_sha256": (r.update_sha256 or update_sha256(r.update.delta)
                                   if r.update is not None else None),
            })
            c = plane.demote(r.device_id)
            if c is not None:
                log(f"round {rnd}: device {c.arg} reputation {score:.2f} below "
                    f"{config.reputation_threshold:g}: quarantined from the next round "
                    f"(control #{c.seq})")
        accepted = [u for u in validated if not plane.fleet.quarantine_reason(u.device_id)]
        n_accepted = len(secure.devices) if secure is not None else len(accepted)
        note = ""
        if got.restored is not None:
            note = ""  # nothing to aggregate: the canaries trained on the rolled-back model
        elif n_accepted < need:
            note = f"quorum not met ({n_accepted} of {config.min_fit}): model unchanged"
        elif secure is None and len(accepted) < strategy.min_updates():
            note = (f"{strategy.name} needs {strategy.min_updates()} updates, got "
                    f"{len(accepted)}: model unchanged")
        else:
            try:
                if secure is not None:
                    params = strategy.apply(params, secure.mean)
                elif dp is not None:
                    params = dp.aggregate(strategy, params, accepted, len(available))
                elif gateway_sums is not None:  # gateways elsewhere: the sums they forwarded
                    params = apply_sums(strategy, params, gateway_sums(params, accepted))
                elif gateway_of is not None:
                    params = aggregate_gateways(strategy, params, accepted, gateway_of)
                else:
                    params = strategy.aggregate(params, accepted)
            except StrategyError as exc:
                note = f"aggregation refused ({exc}): model unchanged"
        if note:
            log(f"round {rnd}: {note}")
        note = "; ".join([*notes, note] if note else notes)
        evaluation = evaluate(params)
        personal = personal_summary(results, "accuracy" if "accuracy" in evaluation else "mae")
        privacy = {"epsilon": accountant.spend()} if accountant is not None else {}
        if local is not None:  # the worst device's epsilon: every TRAIN a device was sent
            # counts, answered or not (its DELTA may have been released and lost, rejected or
            # late)
            privacy["ldp_epsilon"] = local.spend([r.device_id for r in results
                                                  for _ in range(max(1, r.releases))])
        if secure_of is not None:  # the round's protection, in the store, report and table
            privacy["secagg"] = 1.0 if secure is not None else 0.0
            if secure is not None:
                privacy["masked_ratio"] = float(secure.figures.get("masked_ratio", 0.0))
        seconds = time.perf_counter() - t0
        m = RoundMetrics(rnd, version + 1, n_accepted, len(results) - n_accepted,
                         sum(r.bytes_up for r in results), sum(r.bytes_down for r in results),
                         seconds, evaluation, note, personal, privacy, canary)
        ckpt = store.save(rnd, params, strategy.state, asdict(m), note, updates=rows,
                          controls=applied, base_sha256=params_sha256(base),
                          devices=host_state(fleet))
        version, current = ckpt.version, ckpt
        if gate is not None and got.restored is not None:
            gate.trusted = ckpt  # the restored model, saved as this round's version
        metrics.append(m)
        progress(m)
    return metrics
