"""How command-line tools find a running `embedhub serve` for the same EMBEDHUB_HOME.

`serve` writes HOME/server.json (address, pid) while it runs; `embedhub kb search` reads it and,
when that server answers and reports the same home, searches through it instead of loading the
model again (seconds per call). Nothing here imports the web framework: it is files and httpx.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from embedhub.config import Settings

FILE_NAME = "server.json"


def _file(settings: Settings) -> Path:
    return settings.home / FILE_NAME


def local_url(host: str, port: int) -> str:
    """The address a client on this machine uses for a bind address."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def announced(settings: Settings):
    """Publish this process as the home's server for the duration of the block."""
    path = _file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"url": local_url(settings.host, settings.port), "pid": os.getpid()}
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(record))
    temporary.replace(path)
    try:
        yield record
    finally:
        with suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def auth_headers(settings: Settings, token: str | None = None) -> dict[str, str]:
    """The bearer header: `token` when given, else the caller's own key (`api_key`), else the first
    of the server's keys, else none."""
    key = token or settings.api_key or (settings.api_keys[0] if settings.api_keys else None)
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass(frozen=True)
class ServerProbe:
    """What looking for the home's server found: its URL when it answered for this home; `refused`
    when one runs for this home's file but refused our key (accounts on, and no or a wrong key)."""

    url: str | None
    address: str | None = None
    refused: bool = False
    #: the refusal's status: 401 (no key, or one the server does not know), 403 (a key it knows
    #: but may not do this)
    status: int | None = None


def probe_server(settings: Settings, timeout: float = 1.0, token: str | None = None) -> ServerProbe:
    """Look for a live server for this home (no file, a dead process, another home: none)."""
    try:
        record = json.loads(_file(settings).read_text())
        url, pid = str(record["url"]), int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return ServerProbe(None)
    if not _alive(pid):
        return ServerProbe(None)
    try:
        answer = httpx.get(f"{url}/v1/info", headers=auth_headers(settings, token), timeout=timeout)
        if answer.status_code in (401, 403):
            return ServerProbe(None, url, refused=True, status=answer.status_code)
        home = answer.json().get("home") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return ServerProbe(None)
    if not home or Path(home).resolve() != settings.home.resolve():
        return ServerProbe(None)
    return ServerProbe(url, url)


def find_server(settings: Settings, timeout: float = 1.0, token: str | None = None) -> str | None:
    """The URL of a live server for this home, or None (no file, dead process, other home)."""
    return probe_server(settings, timeout, token).url
