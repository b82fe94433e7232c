"""API keys, body-size limits and the bind-address policy."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from embedhub.accounts.keys import InvalidKeyError, MissingKeyError, check_shared_key
from embedhub.config import Settings, is_loopback
from embedhub.errors import EmbedhubError
from embedhub.server.errors import ApiError, error_body

OPEN_PATHS = frozenset({"/health", "/ready"})


def check_api_key(settings: Settings, authorization: str | None) -> None:
    """Raise 401 unless keys are off or the bearer token matches one (constant-time compare)."""
    try:
        check_shared_key(settings, authorization)
    except (MissingKeyError, InvalidKeyError) as error:
        raise ApiError(401, str(error), "invalid_request_error", "invalid_api_key") from None


def check_bind_policy(settings: Settings) -> None:
    """Refuse a non-loopback bind that nobody guards (no accounts, no API key) unless explicitly
    allowed. With accounts on, every request needs a signed-in user or a key, keys or not."""
    if is_loopback(settings.host) or settings.api_keys or settings.allow_public:
        return
    if settings.accounts_enabled:
        return
    raise EmbedhubError(
        f"refusing to serve on {settings.host} with accounts off and without an API key: anyone who "
        "can reach it could use it. Leave EMBEDHUB_ACCOUNTS at auto (or set it to on) so users sign "
        "in, add --api-key KEY (or EMBEDHUB_API_KEYS), or pass --allow-public if that is intended"
    )


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over the limit, by Content-Length or while streaming.
    Upload routes (paths ending in /files) get the larger upload limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.default_bytes = max_bytes
        self.upload_bytes = max_upload_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope.get("path", "").endswith("/files") else self.default_bytes
        await _Limited(self.app, limit)(scope, receive, send)


class _Limited:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = error_body(
            f"request body larger than the limit of {self.max_bytes} bytes; send fewer or smaller "
            "inputs or files per request",
            "invalid_request_error",
            "payload_too_large",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
