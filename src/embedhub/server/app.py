"""The FastAPI app factory. Models load in the background after startup, so /health answers at
once and /ready (and the embedding routes, with 503) tell clients when the service can work."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from embedhub import __version__
from embedhub.access.discovery import announced
from embedhub.accounts.guard import CollectionGuard
from embedhub.accounts.store import AccountStore, NoAccounts
from embedhub.accounts.throttle import SignInThrottle
from embedhub.config import Settings, prefer_passive_openmp_waiting
from embedhub.engine.hub import EncoderFactory, ModelHub, RerankerFactory
from embedhub.engine.scheduled import ScheduledEncoder
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.jobs import JobManager
from embedhub.models.base import Encoder
from embedhub.models.reranker import Reranker
from embedhub.server.errors import install_error_handlers
from embedhub.server.methods import InterfaceFiles
from embedhub.server.metrics import Metrics
from embedhub.server.proxy import TrustedProxies
from embedhub.server.routes import auth, kb, openai, ops, rerank
from embedhub.server.security import BodySizeLimit

logger = logging.getLogger(__name__)
FIRST_ADMIN_HINT = (
    "accounts are on and no admin exists yet: create the first one on this machine with "
    "`embedhub users add NAME --role admin` (same EMBEDHUB_HOME), then sign in"
)
UI_FOLDER = Path(__file__).resolve().parents[1] / "ui" / "static"


def default_factory(settings: Settings) -> EncoderFactory:
    prefer_passive_openmp_waiting()
    from embedhub.models.allocator import keep_activations_on_heap
    from embedhub.models.backends import load_encoder

    if settings.heap_activations:
        # process-wide, and before the loading and queue threads start: a thread that allocated
        # before keeps its own arena, whose 64 MiB heaps send large blocks back to mmap
        keep_activations_on_heap()

    return lambda reference: load_encoder(reference, settings)


def default_reranker_factory(settings: Settings) -> RerankerFactory:
    from embedhub.models.reranker import load_reranker

    return lambda reference: load_reranker(reference, settings)


def create_app(
    settings: Settings,
    *,
    encoder_factory: EncoderFactory | None = None,
    encoders: dict[str, Encoder] | None = None,
    rerankers: dict[str, Reranker] | None = None,
    reranker_factory: RerankerFactory | None = None,
    load_in_background: bool = True,
) -> FastAPI:
    """Build the app. `encoders` (and `rerankers`, at most one) serve preloaded models (tests);
    otherwise models load from `settings` through `encoder_factory` / `reranker_factory`."""
    metrics = Metrics()
    hub = ModelHub(settings, on_batch=metrics.observe_batch)

    def encoder_for(model: str) -> Encoder:
        """Ingestion's encoder: the model's own queue and cache (see engine/scheduled.py). Resumed
        jobs can start before the models are loaded: wait for the loading to end first."""
        hub.wait()
        return ScheduledEncoder(hub.get(model), background=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.stopping.clear()  # a new start of the same app
        knowledge_base = KnowledgeBase(settings)
        app.state.knowledge_base = knowledge_base
        accounts = AccountStore.for_home(settings.home) if settings.accounts_enabled else NoAccounts()
        app.state.accounts = accounts
        app.state.guard = CollectionGuard(knowledge_base, accounts)
        app.state.sign_in_throttle = SignInThrottle(settings.login_max_failures, settings.login_window)
        if accounts.enabled and not accounts.has_admin():
            logger.warning(FIRST_ADMIN_HINT)
        app.state.jobs = JobManager(
            knowledge_base,
            encoder_for,
            workers=settings.ingest_workers,
            store_path=settings.home / "jobs.sqlite",
        )
        if encoders is not None:
            for reference, encoder in encoders.items():
                hub.add(reference, encoder)
            for reference, reranker in (rerankers or {}).items():
                hub.add_reranker(reference, reranker)
            hub.ready = True
        else:
            factory = encoder_factory or default_factory(settings)
            rerank_factory = reranker_factory or default_reranker_factory(settings)
            if load_in_background:
                hub.load_in_background(factory, rerank_factory)
            else:
                hub.load(factory, rerank_factory)
        app.state.jobs.resume()
        try:
            with announced(settings):  # `embedhub kb search` then asks this server
                yield
        finally:
            # running jobs stop at their next batch and roll back; queued ones resume next start
            app.state.stopping.set()
            app.state.jobs.close()
            knowledge_base.close()
            accounts.close()
            hub.close()

    app = FastAPI(
        title="embedhub",
        version=__version__,
        summary="OpenAI-compatible embeddings, exact for Qwen3-Embedding.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.hub = hub
    app.state.metrics = metrics
    #: the app's one shutdown flag (server/streaming.py): set by the lifespan at shutdown and, as
    #: soon as a stop signal arrives, by whoever runs the server (`embedhub serve`)
    app.state.stopping = threading.Event()
    install_error_handlers(app)
    app.include_router(openai.router)
    app.include_router(rerank.router)
    app.include_router(rerank.tei_router)
    app.include_router(ops.router)
    app.include_router(auth.router)
    app.include_router(auth.accounts_router)
    app.include_router(kb.router)
    _mount_api_docs(app)
    # last: the UI's files answer the paths no API route serves (and 405 a wrong method on one)
    app.mount("/", InterfaceFiles(directory=UI_FOLDER, html=True, router=app.router), name="ui")
    app.add_middleware(_RequestMetrics, metrics=metrics)
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes
    )
    # outermost: everything inside sees the real client behind a trusted reverse proxy
    app.add_middleware(TrustedProxies, networks=settings.trusted_proxies, header=settings.proxy_header)
    return app


def _mount_api_docs(app: FastAPI) -> None:
    """Swagger UI from the swagger-ui-bundle wheel: the docs page loads nothing from a CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount(
        "/_swagger", InterfaceFiles(directory=swagger_ui_path, router=app.router), name="swagger-assets"
    )

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="embedhub API",
            swagger_js_url="/_swagger/swagger-ui-bundle.js",
            swagger_css_url="/_swagger/swagger-ui.css",
            swagger_favicon_url="/_swagger/favicon-32x32.png",
        )


class _RequestMetrics:
    """Counts requests by route and status, errors by status class, and latency."""

    def __init__(self, app: Callable, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.errors.labels(_error_type(status)).inc()


def _error_type(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        422: "schema",
        429: "overloaded",
        503: "unavailable",
    }.get(status, "server_error" if status >= 500 else "client_error")


__all__ = ["create_app"]
