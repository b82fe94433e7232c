"""Typed dependencies: the hub, settings and metrics live on `app.state` (no import-time globals)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from embedhub.config import Settings
from embedhub.engine.hub import ModelHub
from embedhub.server.errors import ApiError
from embedhub.server.metrics import Metrics
from embedhub.server.security import check_api_key


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_hub(request: Request) -> ModelHub:
    return request.app.state.hub


def get_ready_hub(request: Request) -> ModelHub:
    hub: ModelHub = request.app.state.hub
    if not hub.ready:
        if hub.load_error is not None:
            raise ApiError(
                503, f"model loading failed: {hub.load_error}", "service_unavailable", "model_unavailable"
            )
        raise ApiError(503, "models are still loading; retry shortly", "service_unavailable", "not_ready")
    return hub


def require_api_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    check_api_key(request.app.state.settings, authorization)


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
HubDep = Annotated[ModelHub, Depends(get_hub)]
ReadyHubDep = Annotated[ModelHub, Depends(get_ready_hub)]
AUTH = [Depends(require_api_key)]
