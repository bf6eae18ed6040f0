"""``fltiny run``: federated rounds on emulated boards over the bridge (fltiny.run.runner),
with held-out evaluation through the device's C (fltiny.run.evaluate)."""
