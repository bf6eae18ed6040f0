"""The Flower apps of ``fltiny run --engine flower`` (the FAB's components name these objects).

``server_app``: fltiny's own round loop (fltiny.server.rounds through
``Experiment.run_rounds``: sampling, validation, reputation, the strategy, the run store,
held-out evaluation) over ``FlowerFleet``; the run's settings come from the RunSpec its
``run_config`` names, its say / log lines and each round's metrics go to the spec's event
file, which the engine shows as they come.

``client_app``: one message, one gateway round. The node config of its SuperNode says which
gateway it is (``gateway``) and where that gateway's spec is (``spec``: the service's port
and key); it hands the message's ``RoundRequest`` (or QUERY) to the gateway service and
returns the service's answer (``GatewayReply``: the gateway's pre-aggregate and its devices'
verified results) as the reply Message.
"""

from __future__ import annotations

import traceback
from multiprocessing.connection import Client
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fltiny.flower.wire import Envelope

server_app = ServerApp()
client_app = ClientApp()


@server_app.main()
def _server(grid: Grid, context: Context) -> None:
    from fltiny.errors import FltinyError
    from fltiny.flower.spec import SPEC_KEY, Events, RunSpec

    spec = RunSpec.load(Path(str(context.run_config[SPEC_KEY])))
    events = Events(Path(spec.events))
    try:
        _serve(grid, spec, events)
    except FltinyError as exc:
        events.write("error", text=str(exc))
        raise
    except BaseException as exc:
        events.write("error", text=f"internal error in the ServerApp: {type(exc).__name__}: "
                     f"{exc}", trace=traceback.format_exc())
        raise
    events.write("done")


def _serve(grid: Grid, spec, events) -> None:
    from dataclasses import asdict

    from fltiny.experiment import Experiment
    from fltiny.flower.fleet import FlowerFleet
    from fltiny.flower.spec import options_of

    opts = options_of(spec.options)
    devices = sum(len(g) for g in spec.groups)
    exp = Experiment(opts, devices, say=lambda s: events.write("say", text=s),
                     log=lambda s: events.write("log", text=s))
    exp.evaluator  # noqa: B018 - held-out features before the rounds
    store = exp.open_store(resume=False)
    try:
        fleet = FlowerFleet(grid, spec.groups, spec.query_timeout_s,
                            log=lambda s: events.write("log", text=s))
        exp.run_rounds(fleet, store, progress=lambda m: events.write("round", metrics=asdict(m)))
    finally:
        store.close()


def _ask_gateway(message: Message, context: Context) -> Message:
    from fltiny.flower.service import GatewaySpec

    spec = GatewaySpec.load(Path(str(context.node_config["spec"])))
    port = int(Path(spec.ready_file).read_text())
    with Client(("127.0.0.1", port), authkey=Path(spec.authkey_file).read_bytes()) as conn:
        conn.send_bytes(Envelope.from_records(message.content).to_bytes())
        answer = Envelope.from_bytes(conn.recv_bytes())
    return Message(answer.to_records(), reply_to=message)


@client_app.query()
def _query(message: Message, context: Context) -> Message:
    return _ask_gateway(message, context)


@client_app.train()
def _train(message: Message, context: Context) -> Message:
    return _ask_gateway(message, context)
