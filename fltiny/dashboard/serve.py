"""Serving the dashboard with uvicorn: in the foreground (``fltiny dashboard``) or on a
background thread beside a running aggregator (``fltiny run/simulate --dashboard``).

The listening socket is bound here first, so a port in use is a one-line UsageError before
uvicorn starts; port 0 picks a free one (``DashboardServer.url`` says which).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from pathlib import Path

from fltiny.errors import UsageError

DEFAULT_PORT = 8765


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use: pass another --dashboard-port / "
                             "--port (0 picks a free one)") from None
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}): pass another host "
                         "or port") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


class DashboardServer:
    """uvicorn serving ``make_app(run_dir)`` on an already bound socket."""

    def __init__(self, run_dir: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        import uvicorn

        from fltiny.dashboard.app import make_app

        self.sock = _bind(host, port)
        self.host, self.port = host, self.sock.getsockname()[1]
        config = uvicorn.Config(make_app(Path(run_dir)), log_level="warning", access_log=False,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def run(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C, SIGTERM)."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start(self) -> DashboardServer:
        """Serve on a daemon thread; returns once it accepts requests."""
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="fltiny-dashboard", daemon=True)
        self.thread.start()
        end = time.monotonic() + 10
        while not self.server.started and self.thread.is_alive() and time.monotonic() < end:
            time.sleep(0.02)
        if not self.server.started:
            raise UsageError(f"the dashboard did not start on {self.url}: rerun with -vv")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
