"""The Flower deployment of one run: a ``flower-superlink``, one ``flower-supernode`` per
gateway and the gateway services, started, watched and stopped by fltiny (``FlowerRun``); the
run's FAB, built in memory (``build_fab``: a pyproject.toml whose components are
fltiny.flower.apps), and its submission through the SuperLink's Control API (``StartRun``), so
no ``flwr run``: nothing rewrites a pyproject.toml or ``uv sync``s an environment."""

from __future__ import annotations

import hashlib
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fltiny.errors import ToolchainError, UsageError
from fltiny.flower.procs import (
    Proc,
    Procs,
    bin_dir,
    flower_binary,
    free_port,
    port_busy,
    wait_listening,
)
from fltiny.flower.service import GatewaySpec
from fltiny.flower.spec import SPEC_KEY

Say = Callable[[str], None]

FLOWER_BINARIES = ("flower-superlink", "flower-supernode", "flower-superexec", "flwr-serverapp",
                   "flwr-clientapp")
START_TIMEOUT_S = 60.0  # a SuperLink / SuperNode to listen
SERVICE_TIMEOUT_S = 180.0  # a gateway service to listen (it builds the host C for the replay)
QUERY_TIMEOUT_S = 30.0  # a new SuperNode to answer the ServerApp's QUERY (a ClientApp start)
MAX_RESTARTS = 5  # of one SuperNode in a run (a crash loop ends the run)

FAB_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fltiny-fleet"
version = "1.0.0"
description = "fltiny's round loop (ServerApp) and gateway bridges (ClientApp) on Flower"
dependencies = []  # the apps run in fltiny's environment (no runtime installation)

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "fltiny"

[tool.flwr.app.components]
serverapp = "fltiny.flower.apps:server_app"
clientapp = "fltiny.flower.apps:client_app"

[tool.flwr.app.config]
{key} = ""
"""


def build_fab() -> tuple[bytes, str]:
    """The run's FAB (bytes, sha256): a pyproject.toml naming fltiny.flower.apps."""
    import warnings

    from flwr.cli.build import build_fab_from_files

    with warnings.catch_warnings():  # flwr 1.41's FAB filter uses pathspec's old pattern name
        warnings.filterwarnings("ignore", "GitWildMatchPattern", DeprecationWarning)
        fab, _meta = build_fab_from_files(
            {"pyproject.toml": FAB_PYPROJECT.format(key=f'"{SPEC_KEY}"').encode()})
    return fab, hashlib.sha256(fab).hexdigest()


@dataclass
class SuperNode:
    gateway: int
    spec: Path
    proc: Proc
    port: int
    restarts: int = 0


class FlowerRun:
    """The Flower processes of one run (``start``, ``supervise``, ``stop``)."""

    def __init__(self, fdir: Path, superlink_port: int, say: Say, log: Say) -> None:
        self.fdir = fdir
        self.say, self.log = say, log
        self.marker = f"{fdir.resolve()}:{uuid.uuid4().hex[:12]}"
        env = dict(os.environ)
        env.update({"PATH": f"{bin_dir()}{os.pathsep}{env.get('PATH', '')}",
                    "FLWR_TELEMETRY_ENABLED": "0", "FLWR_HOME": str(fdir / "flwr-home"),
                    "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1",
                    # the superexecs look for a task to launch every second by default
                    "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.2"})
        self.procs = Procs(self.marker, env, log=log)
        self.requested_port = superlink_port
        self.superlink: Proc | None = None
        self.port = 0
        self.supernodes: list[SuperNode] = []
        self.services: list[Proc] = []
        self._client = None
        self.run_id = 0

    # ---- start ----
    def start_services(self, specs: list[tuple[GatewaySpec, Path]]) -> None:
        for spec, path in specs:
            self.services.append(self.procs.start(
                f"gateway service {spec.gateway}", [sys.executable, "-m", "fltiny.flower.service",
                                                    path], self.fdir / f"gateway-{spec.gateway}.log"))
        end = time.monotonic() + SERVICE_TIMEOUT_S
        for (spec, _), p in zip(specs, self.services, strict=True):
            while not Path(spec.ready_file).exists():
                if p.exited() is not None:
                    raise ToolchainError(f"gateway service {spec.gateway} exited with code "
                                         f"{p.exited()}: {p.tail()} (log: {p.log})")
                if time.monotonic() > end:
                    raise ToolchainError(f"gateway service {spec.gateway} did not start within "
                                         f"{SERVICE_TIMEOUT_S:g} s (log: {p.log})")
                time.sleep(0.1)

    def start_superlink(self) -> None:
        exe = flower_binary("flower-superlink")
        port = self.requested_port or free_port()
        if port_busy(port):
            raise UsageError(f"the Flower SuperLink cannot listen on 127.0.0.1:{port}: the port "
                             "is in use; pass another --superlink-port (0: a free one)")
        db = self.fdir / "superlink.db"
        self.superlink = self.procs.start("flower-superlink", [
            exe, "--insecure", "--host", "127.0.0.1", "--port", str(port), "--database", db,
            "--disable-runtime-dependency-installation"], self.fdir / "superlink.log")
        try:
            wait_listening(self.superlink, port, START_TIMEOUT_S, "the Flower SuperLink")
        except ToolchainError as exc:
            raise ToolchainError(f"{exc}; is port {port} free?") from None
        self.port = port
        self.say(f"Flower SuperLink on 127.0.0.1:{port} (insecure, loopback)")

    def _supernode(self, gateway: int, spec: Path) -> tuple[Proc, int]:
        exe = flower_binary("flower-supernode")
        port = free_port()
        p = self.procs.start(f"flower-supernode {gateway}", [
            exe, "--insecure", "--superlink", f"127.0.0.1:{self.port}", "--host", "127.0.0.1",
            "--port", str(port), "--node-config", f'gateway={gateway} spec="{spec}"'],
            self.fdir / f"supernode-{gateway}.log")
        wait_listening(p, port, START_TIMEOUT_S, f"the Flower SuperNode of gateway {gateway}")
        return p, port

    def start_supernodes(self, specs: list[Path]) -> None:
        for g, spec in enumerate(specs):
            p, port = self._supernode(g, spec)
            self.supernodes.append(SuperNode(g, spec, p, port))
        self.say(f"{len(specs)} Flower SuperNodes, one per gateway: "
                 + ", ".join(f"gateway {s.gateway} pid {s.proc.pid}" for s in self.supernodes))

    def submit(self, spec_path: Path) -> int:
        from flwr.common.serde import fab_to_proto, user_config_to_proto
        from flwr.proto.control_pb2 import StartRunRequest  # pylint: disable=E0611
        from flwr.supercore.fab import Fab

        fab, digest = build_fab()
        req = StartRunRequest(fab=fab_to_proto(Fab(digest, fab, {})),
                              override_config=user_config_to_proto({SPEC_KEY: str(spec_path)}))
        res = self._control().StartRun(req)
        if not res.HasField("run_id"):
            raise ToolchainError(f"the SuperLink did not start the Flower run (log: "
                                 f"{self.fdir / 'superlink.log'})")
        self.run_id = int(res.run_id)
        self.say(f"Flower run {self.run_id} submitted (FAB {digest[:12]}: fltiny.flower.apps)")
        return self.run_id

    def _control(self):
        """The Control API client (one per run, closed by ``stop``)."""
        from flwr.supercore.control.control_http_client import ControlHttpClient

        if self._client is None:
            self._client = ControlHttpClient.from_server_address(
                server_address=f"127.0.0.1:{self.port}", insecure=True, root_certificates=None,
                interceptors=[])
        return self._client

    def run_status(self) -> tuple[str, str, str]:
        from flwr.proto.control_pb2 import ListRunsRequest  # pylint: disable=E0611

        res = self._control().ListRuns(ListRunsRequest(run_id=self.run_id))
        st = res.run_dict[self.run_id].status
        return st.status, st.sub_status, st.details

    # ---- while it runs ----
    def supervise(self) -> None:
        """A SuperLink or gateway service that died ends the run; a SuperNode is started
        again (a new Flower node: the ServerApp asks it which gateway it is)."""
        assert self.superlink is not None
        if self.superlink.exited() is not None:
            raise ToolchainError(f"the Flower SuperLink exited with code {self.superlink.exited()}"
                                 f": {self.superlink.tail()} (log: {self.superlink.log})")
        for i, p in enumerate(self.services):
            if p.exited() is not None:
                raise ToolchainError(f"gateway service {i} exited with code {p.exited()}: "
                                     f"{p.tail()} (log: {p.log})")
        for sn in self.supernodes:
            code = sn.proc.exited()
            if code is None:
                continue
            how = f"signal {-code}" if code < 0 else f"code {code}"
            if sn.restarts >= MAX_RESTARTS:
                raise ToolchainError(f"the SuperNode of gateway {sn.gateway} exited with {how} "
                                     f"after {sn.restarts} restarts: {sn.proc.tail()} (log: "
                                     f"{sn.proc.log})")
            self.say(f"the SuperNode of gateway {sn.gateway} (pid {sn.proc.pid}) exited with "
                     f"{how}: starting it again")
            sn.proc, sn.port = self._supernode(sn.gateway, sn.spec)
            sn.restarts += 1

    def stop(self) -> None:
        try:
            if self._client is not None:
                self._client.close()
        except Exception as exc:  # noqa: BLE001 - the processes are stopped whatever happened
            self.log(f"closing the Control API client failed ({type(exc).__name__}): {exc}")
        finally:
            self._client = None
        killed = self.procs.stop()
        if killed:
            self.log(f"Flower processes that needed SIGKILL: {killed}")


def check_flower_binaries() -> None:
    for name in FLOWER_BINARIES:
        flower_binary(name)
