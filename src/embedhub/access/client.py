"""A client of the running `embedhub serve` for this EMBEDHUB_HOME, for the tools that work beside it
(`embedhub kb search`, `embedhub mcp`): found through discovery.py, authenticated with the first
configured key, errors turned into domain errors carrying the server's own message. Like
discovery.py it is httpx only: nothing here imports the web framework."""

from __future__ import annotations

from typing import Any

import httpx

from embedhub.access.discovery import auth_headers, find_server
from embedhub.config import Settings
from embedhub.errors import EmbedhubError


class ServerUnavailableError(EmbedhubError):
    """The server did not answer, or answered 503 (its model is still loading)."""


class ServerRequestError(EmbedhubError):
    """The server answered with an error status; the message is the server's."""

    def __init__(self, message: str, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        #: the error's `code` in the answer (e.g. "access_denied", "folder_not_allowed")
        self.code = code


class ServerClient:
    def __init__(
        self, url: str, settings: Settings, timeout: float = 120.0, token: str | None = None
    ) -> None:
        self.url = url
        self.settings = settings
        self.timeout = timeout
        #: a caller's own key to send instead of the configured one (the MCP tools act as the
        #: user who called them, so the server applies that user's access)
        self.token = token

    @classmethod
    def for_home(cls, settings: Settings, token: str | None = None) -> ServerClient | None:
        """The client of the live server for `settings.home`, or None when none runs."""
        url = find_server(settings, token=token)
        return None if url is None else cls(url, settings, token=token)

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        files: list | None = None,
        data: dict | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer of one request (None for an empty body); `files` and `data`
        send a multipart form (uploads) instead of `json`."""
        try:
            answer = httpx.request(
                method,
                self.url + path,
                json=json,
                files=files,
                data=data,
                headers=auth_headers(self.settings, self.token),
                timeout=timeout or self.timeout,
            )
        except httpx.HTTPError as error:
            raise ServerUnavailableError(f"embedhub serve at {self.url} did not answer ({error})") from None
        if answer.status_code == 503:
            raise ServerUnavailableError(
                f"embedhub serve at {self.url} is still loading its model; try again in a few seconds"
            )
        try:
            body = answer.json() if answer.content else None
        except ValueError:
            body = None
        if answer.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            message, code = error.get("message"), error.get("code")
            raise ServerRequestError(
                message or f"server answered {answer.status_code}", answer.status_code, code
            )
        return body
