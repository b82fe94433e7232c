"""The shared API keys (`Settings.api_keys`): whether a bearer token is one of them. Pure
functions with no web framework, so both front ends (the HTTP server, the MCP server over HTTP)
check keys the same way and turn a refusal into their own 401."""

from __future__ import annotations

import hmac

from embedhub.accounts.errors import AuthenticationError
from embedhub.config import Settings

MISSING_KEY = "missing API key: send 'Authorization: Bearer KEY'"
INVALID_KEY = "invalid API key"


class MissingKeyError(AuthenticationError):
    """No bearer token where one is required."""


class InvalidKeyError(AuthenticationError):
    """A bearer token that matches no key."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def matches_api_key(settings: Settings, token: str) -> bool:
    """Whether `token` is one of the shared keys (constant-time compare against each)."""
    given = token.encode("utf-8", "surrogatepass")
    return any(hmac.compare_digest(given, key.encode()) for key in settings.api_keys)


def check_shared_key(settings: Settings, authorization: str | None) -> None:
    """Refuse (MissingKeyError / InvalidKeyError) unless keys are off or the bearer token matches."""
    if not settings.api_keys:
        return
    token = bearer_token(authorization)
    if token is None:
        raise MissingKeyError(MISSING_KEY)
    if not matches_api_key(settings, token):
        raise InvalidKeyError(INVALID_KEY)
