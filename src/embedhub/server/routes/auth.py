"""Accounts over HTTP: sign-in and sign-out (a server-side session in an HttpOnly, SameSite=Strict
cookie, with a CSRF token the page echoes in X-CSRF-Token), the caller's own API keys, the users
and groups a share dialog offers, and the audit log for admins."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import JSONResponse, Response

from embedhub.accounts.errors import AuthenticationError, SignInThrottledError
from embedhub.accounts.policy import Principal
from embedhub.accounts.store import ACCOUNTS_OFF, AccountStore
from embedhub.errors import InvalidInputError
from embedhub.server.deps import AUTH, SESSION_COOKIE, PrincipalDep, SettingsDep, client_address, identify
from embedhub.server.errors import ERRORS_DOC, ApiError
from embedhub.server.schemas import KeyCreate, LoginRequest

WRONG_CREDENTIALS = "wrong user name or password"
router = APIRouter(prefix="/v1/auth", tags=["accounts"], responses=ERRORS_DOC)
accounts_router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["accounts"], responses=ERRORS_DOC)


def _store(request: Request) -> AccountStore:
    store = request.app.state.accounts
    if not store.enabled:
        raise InvalidInputError(ACCOUNTS_OFF)
    return store


@router.get("/me")
async def me(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict:
    """Whether accounts are on, who the caller is (null when not signed in) and the session's CSRF
    token (null without a session). Never 401: the web UI asks it to decide whether to show the
    sign-in page."""
    if not request.app.state.accounts.enabled:
        return {"accounts": False, "user": None, "csrf_token": None}
    try:
        principal, csrf = await asyncio.to_thread(identify, request, authorization)
    except (ApiError, AuthenticationError):
        return {"accounts": True, "user": None, "csrf_token": None}
    return {"accounts": True, "user": {"name": principal.label, "role": principal.role}, "csrf_token": csrf}


@router.post("/login")
async def login(body: LoginRequest, request: Request, settings: SettingsDep) -> JSONResponse:
    """Check the password and start a session (its cookie and its CSRF token). Unknown users and
    wrong passwords get the same 401; repeated failures per account and per address get 429 with
    Retry-After (EMBEDHUB_LOGIN_MAX_FAILURES, EMBEDHUB_LOGIN_WINDOW)."""
    store = _store(request)
    throttle = request.app.state.sign_in_throttle
    address = client_address(request)
    keys = (f"user:{body.username.lower()}", f"address:{address}")
    wait = throttle.retry_after(keys)
    if wait > 0:
        raise SignInThrottledError(
            f"too many failed sign-ins for this account or from this address; try again in {wait:.0f} s",
            wait,
        )
    user = await asyncio.to_thread(store.verify_password, body.username, body.password)
    if user is None:
        throttle.failed(keys)
        await asyncio.to_thread(store.record, body.username[:64], "sign_in_failed", None, "", address)
        raise AuthenticationError(WRONG_CREDENTIALS)
    throttle.succeeded(keys[0])
    await asyncio.to_thread(store.record, user.name, "sign_in", None, "", address)
    token, csrf = await asyncio.to_thread(store.create_session, user.name, settings.session_lifetime)
    response = JSONResponse({"user": user.public(), "csrf_token": csrf})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_lifetime,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", status_code=204, dependencies=AUTH)
async def logout(request: Request) -> Response:
    """End the session: deleted on the server, the cookie cleared."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await asyncio.to_thread(_store(request).delete_session, token)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


def _user_of(principal: Principal) -> str:
    if principal.kind != "user" or principal.name is None:
        raise InvalidInputError("API keys belong to users: sign in as a user to manage yours")
    return principal.name


@router.get("/keys", dependencies=AUTH)
async def list_keys(request: Request, principal: PrincipalDep) -> dict:
    """The caller's own keys (never their secrets)."""
    return {"data": _store(request).keys_of(_user_of(principal))}


@router.post("/keys", status_code=201, dependencies=AUTH)
async def create_key(body: KeyCreate, request: Request, principal: PrincipalDep) -> dict:
    """A new key of the caller's; `key` is shown this once (only its digest is kept). Send it as
    `Authorization: Bearer KEY` to any route, OpenAI-compatible ones included."""
    store = _store(request)
    created = store.create_key(_user_of(principal), body.name)
    store.record(
        principal.label, "create_key", None, f"{created['name']} ({created['id']})", principal.address
    )
    return created


@router.delete("/keys/{key_id}", status_code=204, dependencies=AUTH)
async def delete_key(key_id: str, request: Request, principal: PrincipalDep) -> Response:
    store = _store(request)
    store.delete_key(_user_of(principal), key_id)
    store.record(principal.label, "revoke_key", None, key_id, principal.address)
    return Response(status_code=204)


@accounts_router.get("/users")
async def list_users(request: Request, principal: PrincipalDep) -> dict:
    """Admins get every user with role and state; others the names of enabled users (to share
    with)."""
    users = request.app.state.accounts.users()
    if principal.is_admin:
        return {"data": [{"name": u.name, "role": u.role, "disabled": u.disabled} for u in users]}
    return {"data": [{"name": u.name} for u in users if not u.disabled]}


@accounts_router.get("/groups")
async def list_groups(request: Request) -> dict:
    return {"data": request.app.state.accounts.groups()}


@accounts_router.get("/audit")
async def audit(
    request: Request,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None, Query(description="Entries recorded before the entry of this id (the last id of a page).")
    ] = None,
) -> dict:
    """Who created, dropped, uploaded to, deleted from, shared and unshared which collection, and
    the admins' user changes; newest first (admins only: 404 to others)."""
    if not principal.is_admin:
        raise ApiError(404, "Not Found", "not_found_error")
    return {"data": request.app.state.accounts.audit(limit, before)}
