"""The web UI's files, mounted at "/" after every API route, and the 405 a wrong method deserves.

Starlette answers 405 (with Allow) only when no route matches a path fully; the UI mount at "/"
matches every path, so without this a GET of POST /v1/embeddings was a 404 "Not Found" and a POST
of an unknown path a 405. Here: a path an API route serves, asked with a method it does not
answer, is 405 with the methods it does answer in Allow; a UI file asked with anything but
GET/HEAD is 405 too; any other path stays 404.
"""

from __future__ import annotations

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

FILE_METHODS = ("GET", "HEAD")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(router: Router, scope: Scope) -> list[str]:
    """The methods the API answers on this path (empty: no route serves it). Each method is asked
    of the routes in turn (FastAPI's included routers report a match, not their methods)."""
    # inside the mount at "/" the path is relative to it; the routes match the app's own path
    base = {**scope, "root_path": scope.get("app_root_path", "")}
    routes = [route for route in router.routes if not isinstance(route, Mount)]  # folders answer alone
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**base, "method": method})[0] is Match.FULL for route in routes)
    ]


def not_allowed(scope: Scope, allowed: list[str]) -> HTTPException:
    return HTTPException(
        405,
        f"{scope['method']} is not allowed on {scope['path']}; it answers {', '.join(allowed)}",
        headers={"Allow": ", ".join(allowed)},
    )


class InterfaceFiles(StaticFiles):
    """StaticFiles for the UI that knows the API's routes (`router`), to tell 405 from 404."""

    def __init__(self, *, router: Router, **options) -> None:
        super().__init__(**options)
        self.router = router

    async def get_response(self, path: str, scope: Scope) -> Response:
        allowed = allowed_methods(self.router, scope)
        if allowed:
            raise not_allowed(scope, allowed)
        if scope["method"] not in FILE_METHODS:
            if not await self._is_file(path):
                raise HTTPException(404, "Not Found")
            raise not_allowed(scope, list(FILE_METHODS))
        return await super().get_response(path, scope)

    async def _is_file(self, path: str) -> bool:
        """A path GET would serve: a file, or a folder with an index.html (html mode)."""
        _, found = await anyio.to_thread.run_sync(self.lookup_path, path)
        if found is not None and not found.st_mode & 0o040000:
            return True
        if found is not None or path in ("", "."):
            _, index = await anyio.to_thread.run_sync(self.lookup_path, f"{path}/index.html".lstrip("./"))
            return index is not None
        return False
