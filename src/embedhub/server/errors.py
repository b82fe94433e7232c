"""Every error leaves the server in OpenAI's format, with its status decided here and only here."""

from __future__ import annotations

import logging
import math

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from embedhub.accounts.errors import (
    AccessDeniedError,
    AccountExistsError,
    AccountNotFoundError,
    AuthenticationError,
    SignInThrottledError,
)
from embedhub.engine.hub import NoRerankerError
from embedhub.engine.queue import Overloaded, QueueStopped
from embedhub.errors import (
    EmbedhubError,
    InputTooLargeError,
    InputTooLongError,
    InvalidInputError,
    ModelLoadError,
    UnknownModelError,
    UnsupportedDimensionsError,
)
from embedhub.kb.chat import ChatEndpointError, ChatTimeoutError, ChatUnreachableError
from embedhub.kb.collection import CollectionExistsError, CollectionNotFoundError, ModelMismatchError
from embedhub.kb.folders import FolderNotAllowedError
from embedhub.kb.jobs import JobError
from embedhub.kb.loaders import ContentMismatchError, EmptyFileError, UnsupportedFileTypeError
from embedhub.kb.store.base import StoreConflictError, StoreUnavailableError
from embedhub.kb.uploads import UploadConflictError

logger = logging.getLogger(__name__)
ERRORS_DOC = {
    status: {"description": "OpenAI-format error"} for status in (400, 401, 403, 404, 413, 422, 429, 503)
}


class ApiError(Exception):
    """An HTTP-level error raised by routes and middleware (auth, size limits, readiness)."""

    def __init__(
        self, status: int, message: str, type_: str, code: str | None = None, param: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    error = {"message": message, "type": type_, "param": param, "code": code}
    try:
        return orjson.dumps({"error": error})
    except orjson.JSONEncodeError:
        # A message quoting client text with a lone surrogate cannot be UTF-8: escape it rather
        # than fail inside the error handler (which resets the connection).
        error["message"] = message.encode("utf-8", "backslashreplace").decode("utf-8")
        return orjson.dumps({"error": error})


def error_response(
    status: int, message: str, type_: str, code: str | None = None, param: str | None = None, headers=None
) -> Response:
    return Response(
        error_body(message, type_, code, param),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


# (status, type, code, param) for each domain error, most specific first.
_DOMAIN: list[tuple[type[Exception], int, str, str | None, str | None]] = [
    (InputTooLongError, 400, "invalid_request_error", "context_length_exceeded", "input"),
    (InputTooLargeError, 413, "invalid_request_error", "input_too_large", "input"),
    (UnsupportedDimensionsError, 400, "invalid_request_error", "invalid_dimensions", "dimensions"),
    (InvalidInputError, 400, "invalid_request_error", "invalid_input", "input"),
    (NoRerankerError, 404, "invalid_request_error", "reranker_not_loaded", "model"),
    (UnknownModelError, 404, "invalid_request_error", "model_not_found", "model"),
    (AuthenticationError, 401, "invalid_request_error", "unauthenticated", None),
    (AccessDeniedError, 403, "permission_error", "access_denied", None),
    (SignInThrottledError, 429, "rate_limit_error", "sign_in_throttled", None),
    (AccountNotFoundError, 404, "not_found_error", "account_not_found", None),
    (AccountExistsError, 409, "conflict_error", "account_exists", None),
    (CollectionNotFoundError, 404, "not_found_error", "collection_not_found", None),
    (CollectionExistsError, 409, "conflict_error", "collection_exists", None),
    (ModelMismatchError, 409, "conflict_error", "model_mismatch", None),
    (JobError, 409, "conflict_error", "job_state", None),
    (UploadConflictError, 409, "conflict_error", "file_exists", None),
    (StoreConflictError, 409, "conflict_error", "store_conflict", None),
    (StoreUnavailableError, 503, "service_unavailable", "store_unavailable", None),
    (FolderNotAllowedError, 403, "permission_error", "folder_not_allowed", None),
    (UnsupportedFileTypeError, 415, "invalid_request_error", "unsupported_file_type", None),
    (ContentMismatchError, 415, "invalid_request_error", "content_mismatch", None),
    (EmptyFileError, 400, "invalid_request_error", "empty_file", None),
    (Overloaded, 429, "server_overloaded", "queue_full", None),
    (QueueStopped, 503, "service_unavailable", "shutting_down", None),
    (ModelLoadError, 503, "service_unavailable", "model_unavailable", None),
    # the chat endpoint answers are written by: a gateway's statuses, never a 500 of ours
    (ChatTimeoutError, 504, "upstream_error", ChatTimeoutError.code, None),
    (ChatUnreachableError, 502, "upstream_error", ChatUnreachableError.code, None),
    (ChatEndpointError, 502, "upstream_error", ChatEndpointError.code, None),
    (EmbedhubError, 400, "invalid_request_error", None, None),
]


def _classify(error: EmbedhubError) -> tuple[int, str, str | None, str | None]:
    for kind, status, type_, code, param in _DOMAIN:
        if isinstance(error, kind):
            return status, type_, code, param
    raise error  # unreachable: EmbedhubError is the last entry


def status_of(error: EmbedhubError) -> int:
    """The HTTP status a domain error maps to (for per-item results such as rejected uploads)."""
    return _classify(error)[0]


#: FastAPI's detail for a body that is not UTF-8 or nests too deeply for the JSON parser
UNREADABLE_BODY = "There was an error parsing the body"
UNREADABLE_BODY_MESSAGE = (
    "There was an error parsing the body: the request body is not JSON this server can read (it must "
    "be UTF-8 text, nested at most a few hundred levels deep); send a JSON object"
)


def json_syntax_message(problem: dict, document: object) -> str:
    """A sentence for a body that is not JSON, with the line and column of the mistake (FastAPI
    reports it as a validation error at "loc": ("body", character offset))."""
    reason = str((problem.get("ctx") or {}).get("error") or "invalid syntax")
    reason = reason[:1].lower() + reason[1:]
    location = problem.get("loc", ())
    offset = location[-1] if location and isinstance(location[-1], int) else None
    where = ""
    if offset is not None:
        if isinstance(document, bytes | bytearray):
            document = bytes(document).decode("utf-8", "replace")
        if isinstance(document, str):
            line = document.count("\n", 0, offset) + 1
            column = offset - document.rfind("\n", 0, offset)
            where = f" at line {line} column {column} (character {offset + 1})"
        else:
            where = f" at character {offset + 1}"
    return (
        f"the request body is not valid JSON: {reason}{where}; check the quoting and commas there "
        "(or build the body with a JSON library) and send it as Content-Type: application/json"
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        if error.status in (429, 503):
            headers = {"Retry-After": "1"}
        return error_response(error.status, error.message, error.type, error.code, error.param, headers)

    @app.exception_handler(EmbedhubError)
    async def _domain_error(request: Request, error: EmbedhubError) -> Response:
        status, type_, code, param = _classify(error)
        headers = {"Retry-After": "1"} if status in (429, 503) else None
        if isinstance(error, SignInThrottledError):
            headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
        elif status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(status, str(error), type_, code, param, headers)

    @app.exception_handler(RequestValidationError)
    async def _schema_error(request: Request, error: RequestValidationError) -> Response:
        syntax = next((item for item in error.errors() if item.get("type") == "json_invalid"), None)
        if syntax is not None:
            return error_response(
                400, json_syntax_message(syntax, error.body), "invalid_request_error", "invalid_json"
            )
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            message = str(item.get("msg", "")).removeprefix("Value error, ")
            problems.append(f"{where or 'body'}: {message}")
        first = error.errors()[0].get("loc", ()) if error.errors() else ()
        param = str(first[1]) if len(first) > 1 else None
        return error_response(422, "; ".join(problems), "invalid_request_error", "invalid_schema", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        type_ = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        message = str(error.detail)
        if error.status_code == 400 and message == UNREADABLE_BODY:
            cause = error.__cause__
            if cause is not None and not isinstance(cause, ValueError | RecursionError):
                # not the body's content but its reading failed (the size limit, checked as the body
                # streams in, or a client gone): the middleware that raised it answers (413)
                raise cause
            message = UNREADABLE_BODY_MESSAGE
            if isinstance(cause, UnicodeDecodeError):
                message += f" (byte {cause.start} is not UTF-8)"
        # the headers the error carries (a 405's Allow) go out with it
        return error_response(error.status_code, message, type_, headers=error.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        logger.exception("unexpected error on %s", request.url.path)
        return error_response(500, "internal error; see the server log", "server_error")
