"""Flower as the fleet engine (``fltiny run --engine flower --gateways G``).

Who runs where (docs/architecture.md "Flower as the fleet engine"):

- ``engine``: the ``fltiny run`` process. It builds the firmware, starts the emulated boards,
  and through ``deploy`` starts one gateway service per gateway, a ``flower-superlink`` and
  one ``flower-supernode`` per gateway (insecure, loopback, free ports), submits the Flower
  run through the SuperLink's Control API with a FAB built in memory (no ``flwr run``, no
  ``uv sync``), restarts a SuperNode that dies, and stops every process it started
  (``procs``).
- ``service``: a gateway service, one long-lived process per gateway. It holds that gateway's
  bridge (fltiny.bridge.fleet: sessions, verification, replay of every DELTA) and its exact
  pre-aggregate (fltiny.server.gateway.pre_aggregate), across rounds.
- ``apps``: the Flower ServerApp (fltiny's round loop, strategies, run store and held-out
  evaluation, over ``fleet.FlowerFleet``) and ClientApp (one message = one gateway round: it
  hands the round to its gateway service and returns the pre-aggregate as a Flower Message).
- ``wire``: the records both ends exchange (ArrayRecord / ConfigRecord).

Nothing here is imported on CLI start-up: flwr is imported only on the engine path.
"""
