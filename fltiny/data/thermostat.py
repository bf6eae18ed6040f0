"""A seeded generator of per-home thermostat logs (regression, non-IID by construction).

Each home has its own habits, drawn from its own seeded generator:

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
Target: the set-point the user chose (C). Default scenario: homes 1-10 factory, 11-35 fleet
devices, 36-40 held out.
"""

from __future__ import annotations

import numpy as np

from fltiny.data.base import Dataset, Scenario

FEATURES = (
    "hour-sin", "hour-cos", "weekday-sin", "weekday-cos",
    "weekend", "outdoor-c", "indoor-c", "motion",
)
N_HOMES = 40
SCENARIO = Scenario(
    factory=tuple(range(1, 11)), fleet=tuple(range(11, 36)), holdout=tuple(range(36, 41))
)


def _home(home: int, days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, home])
    comfort = rng.uniform(19.5, 23.0)
    setback = rng.uniform(1.0, 4.0)
    wake = rng.uniform(5.5, 8.5)
    sleep = rng.uniform(21.5, 24.0)
    commuter = rng.random() < 0.6
    away_from, away_to = rng.uniform(7.5, 9.0), rng.uniform(16.5, 18.5)
    away_drop = rng.uniform(2.0, 5.0)
    climate, swing = rng.uniform(-5.0, 15.0), rng.uniform(3.0, 8.0)
    sensitivity = rng.uniform(0.0, 0.15)

    xs, ys = [], []
    indoor = comfort
    for t in range(days * 24):
        hour, day = t % 24, t // 24
        weekday = day % 7
        weekend = weekday >= 5
        outdoor = climate + swing * np.cos((hour - 15) / 24 * 2 * np.pi) + rng.normal(0, 1.0)
        awake = (wake + (1.0 if weekend else 0.0)) <= hour < sleep
        away = commuter and not weekend and away_from <= hour < away_to
        setpoint = comfort - (0.0 if awake else setback) - (away_drop if away else 0.0)
        setpoint += sensitivity * (15.0 - outdoor) + rng.normal(0, 0.3)
        if rng.random() < 0.05:
            setpoint += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)
        motion = float((awake and not away) != (rng.random() < 0.05))
        xs.append([
            np.sin(hour / 24 * 2 * np.pi), np.cos(hour / 24 * 2 * np.pi),
            np.sin(weekday / 7 * 2 * np.pi), np.cos(weekday / 7 * 2 * np.pi),
            float(weekend), outdoor, indoor, motion,
        ])
        ys.append(setpoint)
        indoor += 0.5 * (setpoint - indoor) + rng.normal(0, 0.2)
    return np.asarray(xs, dtype=np.float32), np.asarray(ys, dtype=np.float32)


def load(homes: int = N_HOMES, days: int = 21, seed: int = 0) -> Dataset:
    xs, ys, gs = [], [], []
    for home in range(1, homes + 1):
        x, y = _home(home, days, seed)
        xs.append(x)
        ys.append(y)
        gs.append(np.full(len(y), home, dtype=np.int64))
    return Dataset(
        name="thermostat",
        task="regression",
        x=np.concatenate(xs),
        y=np.concatenate(ys),
        groups=np.concatenate(gs),
        scenario=SCENARIO,
        channel_names=FEATURES,
        description="synthetic per-home thermostat logs, 8 features, set-point regression",
    )
