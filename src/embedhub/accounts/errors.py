"""The accounts' domain errors; server/errors.py maps them to HTTP statuses."""

from __future__ import annotations

from embedhub.errors import EmbedhubError


class AuthenticationError(EmbedhubError):
    """No valid identity: a wrong password, an unknown or revoked key, an expired session (401)."""


class AccessDeniedError(EmbedhubError, PermissionError):
    """The caller may see the thing but not do this to it (403)."""


class SignInThrottledError(EmbedhubError):
    """Too many failed sign-ins for an account or from an address (429 with Retry-After)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccountNotFoundError(EmbedhubError, LookupError):
    """No user, group or key by that name (404)."""


class AccountExistsError(EmbedhubError):
    """A user or group by that name already exists (409)."""
