"""The dashboard's web app (Starlette): two pages, their JSON and the control actions.

Routes: ``/`` (the run), ``/device/{id}`` (one device's history), ``/api/run`` and
``/api/device/{id}`` (fltiny.dashboard.state, read fresh from the store on every request; the
pages poll them every second while the run goes on), ``POST /api/ctl`` (queue a control in the
store, as ``fltiny ctl`` does) and ``/static/*`` (the page's own CSS, JS and SVG code, shipped in
the package: the page loads nothing from any other host).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fltiny.dashboard import state
from fltiny.errors import FltinyError
from fltiny.server.controls import ACTIONS, DEVICE_ACTIONS
from fltiny.server.store import RunStore

STATIC = Path(__file__).parent / "static"
HEADERS = {"Cache-Control": "no-store",
           # the page may only load from this server (enforced by the browser too)
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:"}


def _error(exc: Exception, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=status, headers=HEADERS)


def make_app(run_dir: Path) -> Starlette:
    run_dir = Path(run_dir)

    async def index(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=HEADERS)

    async def device_page(_request: Request) -> Response:
        return FileResponse(STATIC / "device.html", headers=HEADERS)

    def api_run(_request: Request) -> Response:
        try:
            return JSONResponse(state.run_view(run_dir), headers=HEADERS)
        except FltinyError as exc:
            return _error(exc, 404)

    def api_device(request: Request) -> Response:
        try:
            return JSONResponse(state.device_view(run_dir, int(request.path_params["device_id"])),
                                headers=HEADERS)
        except FltinyError as exc:
            return _error(exc, 404)

    async def api_ctl(request: Request) -> Response:
        try:
            body = await request.json()
            action, target = str(body.get("action")), int(body.get("target"))
        except (ValueError, TypeError, AttributeError):
            return _error(ValueError("send {\"action\": ..., \"target\": N}"))
        if action not in ACTIONS:
            return _error(ValueError(f"unknown control '{action}': one of {', '.join(ACTIONS)}"))
        try:
            store = state.open_store(run_dir)
            try:
                if action == "rollback":
                    store.checkpoint_of_round(target)
                elif action in DEVICE_ACTIONS and target not in {
                        u["device_id"] for u in store.updates()}:
                    return _error(ValueError(f"device {target} has not taken part in this run"))
            finally:
                store.close()
            writer = RunStore(store.path)
            try:
                c = writer.add_control(action, target, origin="dashboard")
            finally:
                writer.close()
        except FltinyError as exc:
            return _error(exc)
        return JSONResponse({"queued": c.describe(), "seq": c.seq}, headers=HEADERS)

    routes = [
        Route("/", index),
        Route("/device/{device_id:int}", device_page),
        Route("/api/run", api_run),
        Route("/api/device/{device_id:int}", api_device),
        Route("/api/ctl", api_ctl, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)
