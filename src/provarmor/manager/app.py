"""The manager's FastAPI application: :func:`create_app` wires the routes, the error format,
request metrics, the request body limit, ``/healthz``, ``/metrics`` and the OpenAPI pages
(``/docs``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from provarmor import __version__
from provarmor.manager.body_limit import BodyLimit, BodyTooLarge, too_large_response
from provarmor.manager.bus_commands import CommandSender
from provarmor.manager.command_queue import sweep_every
from provarmor.manager.console import mount_console
from provarmor.manager.deps import ApiError, ManagerContext
from provarmor.manager.detectors import DetectionKit, load_detection
from provarmor.manager.ingest import Ingestor, graph_opener
from provarmor.manager.metrics import ManagerMetrics
from provarmor.manager.rate_limit import load_rate_limit
from provarmor.manager.retention import Retention
from provarmor.manager.routes import ROUTERS
from provarmor.manager.settings import ManagerSettings, RetentionSettings
from provarmor.manager.store import FindingsStore
from provarmor.model.errors import StorageError
from provarmor.outputs.base import Output
from provarmor.outputs.files import AlertFile, IncidentFile

API_PREFIX = "/api/v1"
COMMAND_KEY_FILE = "command-signing.key"


def open_outputs(settings: ManagerSettings) -> list[Output]:
    """The outputs the settings ask for (``alerts_out``, ``incidents_out``), appending."""
    outputs: list[Output] = []
    if settings.alerts_out is not None:
        outputs.append(AlertFile(settings.alerts_out, format=settings.alert_format, append=True))
    if settings.incidents_out is not None:
        outputs.append(
            IncidentFile(settings.incidents_out, format=settings.incident_format, append=True)
        )
    return outputs


def build_context(
    settings: ManagerSettings, store: FindingsStore, *, kit: DetectionKit | None = None
) -> ManagerContext:
    kit = kit if kit is not None else load_detection(settings)
    ingestor = Ingestor(
        store,
        kit=kit,
        open_graph=graph_opener(
            database_url=settings.effective_database_url(), state_dir=settings.state_dir
        ),
        max_batch_events=settings.max_batch_events,
        keep_event_json=settings.keep_event_json,
        models_dir=settings.state_dir / "models",
        outputs=open_outputs(settings),
        checkpoints=settings.checkpoints,
    )
    metrics = ManagerMetrics()
    metrics.watch_checkpoints(ingestor.checkpoints)
    return ManagerContext(
        settings=settings,
        store=store,
        kit=kit,
        ingestor=ingestor,
        metrics=metrics,
        rate_limit=load_rate_limit(settings.response_policy),
        bus_commands=command_sender(settings),
    )


def command_sender(settings: ManagerSettings) -> CommandSender | None:
    """Cluster mode's command publisher, with the manager's signing key (made on first
    use in ``state_dir``), as the manager's bus user (``bus_credentials``); None without
    ``bus_url``."""
    if not settings.bus_url:
        return None
    from provarmor.bus.command_channel import CommandPublisher  # the fleet extra
    from provarmor.bus.credentials import Credentials
    from provarmor.bus.signing import SigningKey

    key = SigningKey.load_or_create(settings.state_dir / COMMAND_KEY_FILE)
    credentials = Credentials.load(settings.bus_credentials) if settings.bus_credentials else None
    return CommandSender(
        CommandPublisher(settings.bus_url, key, credentials=credentials, ca_file=settings.bus_ca)
    )


def create_app(
    settings: ManagerSettings,
    store: FindingsStore,
    *,
    kit: DetectionKit | None = None,
    retention: RetentionSettings | None = None,
) -> FastAPI:
    """The API over ``store``; ``kit`` (compiled rules, model) is loaded from ``settings``
    unless given (tests share one). ``retention``: run retention passes in the background
    while the app is served (between its startup and shutdown; ``app.state.retention``)."""
    context = build_context(settings, store, kit=kit)
    pruner = (
        Retention(retention, store, context.ingestor, metrics=context.metrics)
        if retention is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """While served: retention passes (when given) and the pending commands' sweep."""
        if pruner is not None:
            pruner.start()
        sweeper = asyncio.create_task(sweep_every(context))
        try:
            yield
        finally:
            sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await sweeper
            if pruner is not None:
                pruner.stop()

    app = FastAPI(
        title="ProvArmor manager",
        version=__version__,
        description="Agent enrolment and upload; hosts, events, alerts, incidents, graph.",
        docs_url=None,  # /docs is served by the console, from vendored files
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.retention = pruner
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    _add_error_handlers(app)
    # inside the metrics middleware (added after it), whose task group would wrap the error
    app.add_middleware(
        BodyLimit,
        default=settings.max_request_bytes,
        routes=[(f"{API_PREFIX}/agents/[^/]+/batches", settings.max_upload_bytes)],
    )
    _add_metrics(app, context)
    mount_console(app)
    return app


def _error(status: int, message: str, field: str = "") -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.message, exc.field)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        if not errors:
            return _error(400, "bad request")
        first = errors[0]
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        return _error(
            400, f"{'.'.join(location)}: {first.get('msg', 'invalid')}", ".".join(location)
        )

    async def store_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StorageError)
        return _error(503, f"store unavailable: {exc.message}")

    async def body_too_large(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BodyTooLarge)
        return too_large_response(exc.limit)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(BodyTooLarge, body_too_large)
    app.add_exception_handler(StorageError, store_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def _add_metrics(app: FastAPI, context: ManagerContext) -> None:
    latency = context.metrics.latency

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        latency.labels(
            method=request.method, route=path, status=f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Liveness: 200 while the service answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["service"])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
