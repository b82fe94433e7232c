"""Typed dependencies: the hub, settings and metrics live on `app.state` (no import-time globals).

They are `async def` because none of them blocks: FastAPI runs a plain `def` dependency on its
thread pool, a thread hand-off per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from embedhub.config import Settings
from embedhub.engine.hub import ModelHub
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.jobs import JobManager
from embedhub.server.errors import ApiError
from embedhub.server.metrics import Metrics
from embedhub.server.security import check_api_key


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_hub(request: Request) -> ModelHub:
    return request.app.state.hub


async def get_ready_hub(request: Request) -> ModelHub:
    hub: ModelHub = request.app.state.hub
    if not hub.ready:
        if hub.load_error is not None:
            raise ApiError(
                503, f"model loading failed: {hub.load_error}", "service_unavailable", "model_unavailable"
            )
        raise ApiError(503, "models are still loading; retry shortly", "service_unavailable", "not_ready")
    return hub


async def require_api_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    # The key travels in the Authorization header only: a key in the query string ends up in access
    # logs, browser history and Referer headers (the web UI fetches events, pages and files itself).
    check_api_key(request.app.state.settings, authorization)


async def get_knowledge_base(request: Request) -> KnowledgeBase:
    return request.app.state.knowledge_base


async def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
HubDep = Annotated[ModelHub, Depends(get_hub)]
ReadyHubDep = Annotated[ModelHub, Depends(get_ready_hub)]
AUTH = [Depends(require_api_key)]
KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_knowledge_base)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
