"""Typed dependencies: the hub, settings and metrics live on `app.state` (no import-time globals).

They are `async def` because none of them blocks: FastAPI runs a plain `def` dependency on its
thread pool, a thread hand-off per dependency per request.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, Header, Request

from embedhub.accounts.errors import AuthenticationError
from embedhub.accounts.guard import CollectionGuard
from embedhub.accounts.keys import matches_api_key
from embedhub.accounts.policy import LOCAL, SERVICE, Principal, user_principal
from embedhub.accounts.roles import Need
from embedhub.accounts.store import AccountStore
from embedhub.config import Settings
from embedhub.engine.hub import ModelHub
from embedhub.kb.collection import Collection, KnowledgeBase
from embedhub.kb.jobs import JobManager
from embedhub.server.errors import ApiError
from embedhub.server.metrics import Metrics
from embedhub.server.security import check_api_key

SESSION_COOKIE = "embedhub_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIGN_IN = "sign in, or send 'Authorization: Bearer KEY' (a key of yours or the server's)"


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


def client_address(request: Request) -> str:
    """The client's address: behind a trusted reverse proxy, the real client (server/proxy.py)."""
    return request.client.host if request.client else "unknown"


def identify(request: Request, authorization: str | None) -> tuple[Principal, str | None]:
    """Who makes the request (accounts on), and the session's CSRF token when it came with the
    session cookie. A bearer key wins over a cookie; 401 when there is neither or it is invalid.

    The key travels in the Authorization header only: a key in the query string ends up in access
    logs, browser history and Referer headers (the web UI fetches events, pages and files itself)."""
    settings: Settings = request.app.state.settings
    store: AccountStore = request.app.state.accounts
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        if matches_api_key(settings, token):
            return SERVICE, None
        user = store.user_for_key(token)
        if user is None:
            raise ApiError(
                401,
                "invalid API key (unknown, revoked, or its user is disabled)",
                "invalid_request_error",
                "invalid_api_key",
            )
        return user_principal(user), None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = store.session(cookie)
        if found is not None:
            user, csrf = found
            return user_principal(user), csrf
        raise AuthenticationError(f"your session has expired or was ended; {SIGN_IN}")
    raise AuthenticationError(f"not signed in: {SIGN_IN}")


async def authenticate(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller of every protected route: with accounts off, today's shared-key check and the one
    local user; with accounts on, a user (session cookie or their key) or the shared keys' service
    identity. A cookie-authenticated unsafe request must echo the session's CSRF token."""
    settings: Settings = request.app.state.settings
    if not settings.accounts_enabled:
        check_api_key(settings, authorization)
        return LOCAL
    principal, csrf = identify(request, authorization)
    principal = replace(principal, address=client_address(request))
    if csrf is not None and request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            message = f"missing or wrong {CSRF_HEADER} header: send the csrf_token of GET /v1/auth/me"
            raise ApiError(403, message, "permission_error", "csrf_failed")
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def get_guard(request: Request) -> CollectionGuard:
    return request.app.state.guard


@dataclass(frozen=True)
class Allowed:
    """A collection the caller may use for the route's purpose, with their access level."""

    collection: Collection
    level: str
    principal: Principal


def collection_access(need: Need):
    """The dependency of every route under /v1/collections/{name}: the collection, if the caller
    may `need` (view | edit | manage) it; 404 when hidden (as for a missing one), 403 when
    visible but not allowed (policy.py)."""

    async def dependency(name: str, request: Request, principal: PrincipalDep) -> Allowed:
        collection, level = request.app.state.guard.open(principal, name, need)
        return Allowed(collection, level, principal)

    return dependency


async def get_knowledge_base(request: Request) -> KnowledgeBase:
    return request.app.state.knowledge_base


async def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
HubDep = Annotated[ModelHub, Depends(get_hub)]
ReadyHubDep = Annotated[ModelHub, Depends(get_ready_hub)]
AUTH = [Depends(authenticate)]
GuardDep = Annotated[CollectionGuard, Depends(get_guard)]
Viewable = Annotated[Allowed, Depends(collection_access(Need.VIEW))]
Editable = Annotated[Allowed, Depends(collection_access(Need.EDIT))]
Manageable = Annotated[Allowed, Depends(collection_access(Need.MANAGE))]
KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_knowledge_base)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
