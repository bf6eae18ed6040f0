"""A seeded generator of per-home thermostat logs (regression, non-IID by construction).

Each home has its own habits, drawn from its own seeded generator (``[seed, home]``, so a home's
log does not depend on how many homes are generated):

- a comfort temperature (19.5-23 C) and a night set-back (1-4 C) between bedtime
  (21:30-24:00) and wake-up (05:30-08:30, an hour later at weekends);
- 60% of homes are commuters: on weekdays the house is empty from 07:30-09:00 to
  16:30-18:30 and the set-point drops by 2-5 C;
- a climate (mean outdoor temperature -5..15 C, daily swing 3-8 C peaking at 15:00) and a
  sensitivity (0-0.15 C per C) with which the user raises the set-point when it is cold out;
- now and then (5% of hours) the user overrides the schedule by +-0.5..2 C.

One sample per hour, 21 days per home. Features (8, float32): sin and cos of the hour,
sin and cos of the weekday, weekend flag, outdoor temperature, indoor temperature (a
first-order lag towards the previous set-point), motion (occupancy with 5% flips).
Target: the set-point the user chose (C).

Split rule. Default scenario (40 homes): homes 1-10 factory, 11-35 fleet devices, 36-40 held
out. A larger fleet (``load(fleet=N)``, ``fltiny simulate --dataset thermostat --clients N``
with N > 25) keeps the factory homes 1-10 and the held-out homes 36-40 and adds fleet homes
41, 42, ... up to N fleet homes, one home per device: the held-out metric means the same at
every fleet size, and no fleet home is ever held out.

The hours of all homes are generated at once (numpy over [homes, hours]; the indoor lag is
one loop over the hours), about a second for 10,000 homes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from fltiny.data.base import Dataset, Scenario

FEATURES = (
    "hour-sin", "hour-cos", "weekday-sin", "weekday-cos",
    "weekend", "outdoor-c", "indoor-c", "motion",
)
N_HOMES = 40
FACTORY = tuple(range(1, 11))
FLEET = tuple(range(11, 36))
HOLDOUT = tuple(range(36, 41))
SCENARIO = Scenario(factory=FACTORY, fleet=FLEET, holdout=HOLDOUT)
_CHUNK = 1024  # homes generated together (bounds the float64 temporaries to ~40 MB)


def scenario(fleet: int = len(FLEET)) -> Scenario:
    """The split for ``fleet`` fleet homes (module docstring, "Split rule")."""
    extra = max(0, fleet - len(FLEET))
    homes = FLEET[:fleet] + tuple(range(N_HOMES + 1, N_HOMES + 1 + extra))
    return Scenario(factory=FACTORY, fleet=homes, holdout=HOLDOUT)


def _habits(homes: np.ndarray, hours: int, seed: int) -> dict[str, np.ndarray]:
    """Each home's habits and its hourly noise, from its own generator: [homes] and
    [homes, hours] arrays."""
    names = ("comfort", "setback", "wake", "sleep", "commuter", "away_from", "away_to",
             "away_drop", "climate", "swing", "sensitivity")
    scalars = {n: np.empty(len(homes)) for n in names}
    noise = {n: np.empty((len(homes), hours)) for n in
             ("outdoor", "setpoint", "override", "sign", "size", "flip", "indoor")}
    for i, home in enumerate(homes):
        rng = np.random.default_rng([seed, int(home)])
        h = rng.uniform([19.5, 1.0, 5.5, 21.5, 0.0, 7.5, 16.5, 2.0, -5.0, 3.0, 0.0],
                        [23.0, 4.0, 8.5, 24.0, 1.0, 9.0, 18.5, 5.0, 15.0, 8.0, 0.15])
        for n, v in zip(names, h, strict=True):
            scalars[n][i] = v
        noise["outdoor"][i] = rng.normal(0.0, 1.0, hours)
        noise["setpoint"][i] = rng.normal(0.0, 0.3, hours)
        noise["override"][i] = rng.random(hours)
        noise["sign"][i] = rng.random(hours)
        noise["size"][i] = rng.uniform(0.5, 2.0, hours)
        noise["flip"][i] = rng.random(hours)
        noise["indoor"][i] = rng.normal(0.0, 0.2, hours)
    scalars["commuter"] = scalars["commuter"] < 0.6
    return {**scalars, **noise}


def _homes(homes: np.ndarray, days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x float32 [homes * hours, 8] and y float32 [homes * hours], home by home in time order."""
    hours = days * 24
    h = _habits(homes, hours, seed)
    t = np.arange(hours)
    hour, weekday = t % 24, (t // 24) % 7
    weekend = weekday >= 5
    col = (lambda name: h[name][:, None])  # noqa: E731 - a [homes, 1] column of a habit
    outdoor = col("climate") + col("swing") * np.cos((hour - 15) / 24 * 2 * np.pi) + h["outdoor"]
    awake = (col("wake") + weekend) <= hour
    awake &= hour < col("sleep")
    away = col("commuter") & ~weekend & (col("away_from") <= hour) & (hour < col("away_to"))
    setpoint = (col("comfort") - np.where(awake, 0.0, col("setback"))
                - np.where(away, col("away_drop"), 0.0))
    setpoint += col("sensitivity") * (15.0 - outdoor) + h["setpoint"]
    setpoint += np.where(h["override"] < 0.05,
                         np.where(h["sign"] < 0.5, -1.0, 1.0) * h["size"], 0.0)
    motion = (awake & ~away) != (h["flip"] < 0.05)
    indoor = np.empty_like(setpoint)
    indoor[:, 0] = h["comfort"]
    for k in range(1, hours):  # the first-order lag towards the previous set-point
        prev = indoor[:, k - 1]
        indoor[:, k] = prev + 0.5 * (setpoint[:, k - 1] - prev) + h["indoor"][:, k - 1]
    shape = setpoint.shape
    x = np.stack([
        np.broadcast_to(np.sin(hour / 24 * 2 * np.pi), shape),
        np.broadcast_to(np.cos(hour / 24 * 2 * np.pi), shape),
        np.broadcast_to(np.sin(weekday / 7 * 2 * np.pi), shape),
        np.broadcast_to(np.cos(weekday / 7 * 2 * np.pi), shape),
        np.broadcast_to(weekend.astype(np.float64), shape),
        outdoor, indoor, motion.astype(np.float64),
    ], axis=-1).astype(np.float32)
    return x.reshape(-1, len(FEATURES)), setpoint.astype(np.float32).reshape(-1)


@lru_cache(maxsize=2)
def load(fleet: int = len(FLEET), days: int = 21, seed: int = 0) -> Dataset:
    """The homes of ``scenario(fleet)`` (factory, fleet and held-out homes), 21 days each."""
    sc = scenario(fleet)
    homes = np.asarray(sorted(sc.factory + sc.fleet + sc.holdout), dtype=np.int64)
    xs, ys = [], []
    for start in range(0, len(homes), _CHUNK):
        x, y = _homes(homes[start:start + _CHUNK], days, seed)
        xs.append(x)
        ys.append(y)
    return Dataset(
        name="thermostat",
        task="regression",
        x=np.concatenate(xs),
        y=np.concatenate(ys),
        groups=np.repeat(homes, days * 24),
        scenario=sc,
        channel_names=FEATURES,
        description="synthetic per-home thermostat logs, 8 features, set-point regression",
    )
