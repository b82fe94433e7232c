"""The permission matrix: every knowledge-base route x every kind of caller, generated from one
table (ROUTES). The routes are enumerated from the app itself, so a new route under
/v1/collections (or /v1/jobs) that is missing from the table fails `test_every_kb_route_is_in_the_table`.

Callers (accounts on, each with a key of their own): the collection's owner, a user it is shared
with as viewer, one it is shared with as editor (whose global role is only viewer: the share
decides), a user it is not shared with, an admin, a member of a group it is shared with as
viewer, and an anonymous caller. Expected outcomes follow from what the route needs (policy.py):
allowed, hidden (the answer of a missing collection), forbidden (403) or unauthenticated (401)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import _iter_included_route_candidates

from embedhub.accounts.store import AccountStore
from embedhub.server.app import create_app
from tests.kb.conftest import make_pdf
from tests.live_server import live_server

SHARED = "shared"
#: caller -> (global role, how the shared collection reaches them)
CALLERS = {
    "owner": ("editor", "owner"),
    "viewer": ("viewer", "viewer"),
    "editor": ("viewer", "editor"),
    "other": ("editor", None),
    "admin": ("admin", "admin"),
    "group_viewer": ("viewer", "viewer"),
    "anonymous": (None, None),
}
NEEDS = {
    "view": ("owner", "admin", "editor", "viewer"),
    "edit": ("owner", "admin", "editor"),
    "manage": ("owner", "admin"),
}
PASSWORD = "correct horse battery"


@dataclass
class World:
    url: str
    clients: dict[str, httpx.Client]
    folder: str
    counter: itertools.count

    def owner(self) -> httpx.Client:
        return self.clients["owner"]

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    def new_collection(self) -> str:
        """A collection of the owner's, shared as the fixture's shared one is."""
        name = self.unique("fresh")
        assert self.owner().post("/v1/collections", json={"name": name, "model": "tiny"}).status_code == 201
        share_like_shared(self.owner(), name)
        return name

    def upload(self, name: str, filename: str, data: bytes) -> dict:
        answer = self.owner().post(f"/v1/collections/{name}/files", files=[("files", (filename, data, "x"))])
        assert answer.status_code == 202, answer.text
        return wait_for_job(self.owner(), answer.json()["jobs"][0]["id"])

    def document(self, name: str, filename: str) -> str:
        documents = self.owner().get(f"/v1/collections/{name}/documents").json()["data"]
        return next(doc["doc_id"] for doc in documents if doc["name"] == filename)


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def share_like_shared(client: httpx.Client, name: str) -> None:
    for kind, member, role in (("user", "viewer", "viewer"), ("user", "editor", "editor"),
                               ("group", "readers", "viewer")):  # fmt: skip
        answer = client.put(
            f"/v1/collections/{name}/access/shares", json={"kind": kind, "name": member, "role": role}
        )
        assert answer.status_code == 200, answer.text


# --- the table: (method, path) -> (what it needs, how to make the request) -------------------
Request = tuple[str, dict]  # (concrete path, httpx keyword arguments)


def _doc_path(world: World, suffix: str = "") -> Request:
    return f"/v1/collections/{SHARED}/documents/{world.document(SHARED, 'paper.pdf')}{suffix}", {}


def _fresh_document(world: World) -> Request:
    filename = world.unique("gone") + ".md"
    world.upload(SHARED, filename, b"# Gone\n\nsoon deleted")
    return f"/v1/collections/{SHARED}/documents/{world.document(SHARED, filename)}", {}


def _shared_with_extra(world: World) -> Request:
    body = {"kind": "user", "name": "extra", "role": "viewer"}
    assert world.owner().put(f"/v1/collections/{SHARED}/access/shares", json=body).status_code == 200
    return f"/v1/collections/{SHARED}/access/shares/user/extra", {}


def _job(world: World, action: str) -> Request:
    job = world.upload(SHARED, world.unique("broken") + ".pdf", b"%PDF-1.4\nnot really a pdf")
    assert job["status"] == "failed"
    return f"/v1/jobs/{job['id']}/{action}" if action else f"/v1/jobs/{job['id']}", {}


def _failure(world: World, one: bool) -> Request:
    """A kept failure of the shared collection (an empty upload, refused before it was stored)."""
    filename = world.unique("empty") + ".txt"
    world.owner().post(f"/v1/collections/{SHARED}/files", files=[("files", (filename, b"", "x"))])
    failures = world.owner().get(f"/v1/collections/{SHARED}/failures").json()["data"]
    failure = next(f for f in failures if f["name"] == filename)
    return f"/v1/collections/{SHARED}/failures" + (f"/{failure['id']}" if one else ""), {}


ROUTES: dict[tuple[str, str], tuple[str, Callable[[World], Request]]] = {
    ("GET", "/v1/collections"): ("signed_in", lambda w: ("/v1/collections", {})),
    ("POST", "/v1/collections"): (
        "create",
        lambda w: ("/v1/collections", {"json": {"name": w.unique("new"), "model": "tiny"}}),
    ),
    ("GET", "/v1/collections/{name}"): ("view", lambda w: (f"/v1/collections/{SHARED}", {})),
    ("DELETE", "/v1/collections/{name}"): ("manage", lambda w: (f"/v1/collections/{w.new_collection()}", {})),
    ("GET", "/v1/collections/{name}/access"): ("view", lambda w: (f"/v1/collections/{SHARED}/access", {})),
    ("PUT", "/v1/collections/{name}/access/shares"): (
        "manage",
        lambda w: (
            f"/v1/collections/{SHARED}/access/shares",
            {"json": {"kind": "user", "name": "extra", "role": "viewer"}},
        ),
    ),
    ("DELETE", "/v1/collections/{name}/access/shares/{kind}/{member}"): ("manage", _shared_with_extra),
    ("POST", "/v1/collections/{name}/files"): (
        "edit",
        lambda w: (
            f"/v1/collections/{SHARED}/files",
            {"files": [("files", (w.unique("up") + ".md", b"# Up\n\nuploaded", "x"))]},
        ),
    ),
    ("POST", "/v1/collections/{name}/folders"): (
        "edit",
        lambda w: (f"/v1/collections/{SHARED}/folders", {"json": {"path": w.folder}}),
    ),
    ("GET", "/v1/collections/{name}/failures"): (
        "view",
        lambda w: (f"/v1/collections/{SHARED}/failures", {}),
    ),
    ("DELETE", "/v1/collections/{name}/failures"): ("edit", lambda w: _failure(w, one=False)),
    ("DELETE", "/v1/collections/{name}/failures/{failure_id}"): ("edit", lambda w: _failure(w, one=True)),
    ("GET", "/v1/collections/{name}/jobs"): ("view", lambda w: (f"/v1/collections/{SHARED}/jobs", {})),
    ("GET", "/v1/collections/{name}/events"): ("view", lambda w: (f"/v1/collections/{SHARED}/events", {})),
    ("GET", "/v1/collections/{name}/documents"): (
        "view",
        lambda w: (f"/v1/collections/{SHARED}/documents", {}),
    ),
    ("GET", "/v1/collections/{name}/documents/{doc_id}"): ("view", _doc_path),
    ("DELETE", "/v1/collections/{name}/documents/{doc_id}"): ("edit", _fresh_document),
    ("GET", "/v1/collections/{name}/documents/{doc_id}/file"): ("view", lambda w: _doc_path(w, "/file")),
    ("GET", "/v1/collections/{name}/documents/{doc_id}/pages/{page}.png"): (
        "view",
        lambda w: _doc_path(w, "/pages/1.png"),
    ),
    ("POST", "/v1/collections/{name}/search"): (
        "view",
        lambda w: (f"/v1/collections/{SHARED}/search", {"json": {"query": "quantum", "mode": "lexical"}}),
    ),
    ("POST", "/v1/collections/{name}/ask"): (
        "view",
        lambda w: (
            f"/v1/collections/{SHARED}/ask",
            {"json": {"question": "quantum?", "mode": "lexical", "stream": False}},
        ),
    ),
    ("GET", "/v1/jobs/{job_id}"): ("view", lambda w: _job(w, "")),
    ("POST", "/v1/jobs/{job_id}/cancel"): ("edit", lambda w: _job(w, "cancel")),
    ("POST", "/v1/jobs/{job_id}/retry"): ("edit", lambda w: _job(w, "retry")),
}


def kb_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in _iter_included_route_candidates(app.routes):
        path = getattr(route, "path", "")
        if path.startswith(("/v1/collections", "/v1/jobs")):
            found |= {(method, path) for method in route.methods - {"HEAD"}}
    return found


def expected(caller: str, need: str) -> str:
    role, level = CALLERS[caller]
    if role is None:
        return "unauthenticated"
    if need == "signed_in":
        return "allowed"
    if need == "create":
        return "allowed" if role in ("admin", "editor") else "forbidden"
    if level is None:
        return "hidden"
    return "allowed" if level in NEEDS[need] else "forbidden"


def outcome(answer: httpx.Response, path: str) -> str:
    """What an answer means. A hidden collection must answer exactly as a missing one: 404,
    `collection_not_found`, naming no collection the caller cannot see; a hidden job as a
    missing job (409, `no job`)."""
    if answer.status_code == 401:
        return "unauthenticated"
    if answer.status_code == 403:
        assert answer.json()["error"]["code"] == "access_denied", answer.text
        return "forbidden"
    if answer.status_code == 404 and answer.json()["error"]["code"] == "collection_not_found":
        message = answer.json()["error"]["message"]
        assert message.startswith(f"no collection named '{SHARED}'") or "fresh-" in message, message
        assert f"collections: {SHARED}" not in message and f", {SHARED}" not in message, message
        return "hidden"
    if path.startswith("/v1/jobs/") and answer.status_code == 409 and "no job" in answer.text:
        return "hidden"
    assert answer.status_code < 400 or "only queued or running" in answer.text, (path, answer.text)
    return "allowed"


@pytest.fixture(scope="module")
def world(settings, tiny_encoder, tmp_path_factory):
    home = tmp_path_factory.mktemp("permissions-home")
    folder = tmp_path_factory.mktemp("server-folder")
    (folder / "note.txt").write_text("a note on the server")
    store = AccountStore.for_home(home)
    store.add_group("readers")
    keys = {}
    for caller, (role, _) in CALLERS.items():
        if role is not None:
            store.add_user(caller, role, PASSWORD)
            keys[caller] = store.create_key(caller, "tests")["key"]
    store.add_user("extra", "viewer", PASSWORD)
    store.add_member("readers", "group_viewer")
    store.close()
    app = create_app(
        settings.model_copy(update={"home": home, "accounts": "on"}), encoders={"tiny": tiny_encoder}
    )
    with live_server(app, "/ready") as url:
        clients = {
            caller: httpx.Client(
                base_url=url,
                timeout=60,
                headers={"Authorization": f"Bearer {keys[caller]}"} if caller in keys else {},
            )
            for caller in CALLERS
        }
        world = World(url, clients, str(folder), itertools.count())
        owner = world.owner()
        assert owner.post("/v1/collections", json={"name": SHARED, "model": "tiny"}).status_code == 201
        share_like_shared(owner, SHARED)
        pdf = make_pdf(folder.parent / "paper.pdf", ["Quantum computing basics.", "Entanglement, page two."])
        assert world.upload(SHARED, "paper.pdf", pdf.read_bytes())["status"] == "done"
        world.app = app
        yield world
        for client in clients.values():
            client.close()


def test_every_kb_route_is_in_the_table(world):
    missing = kb_routes(world.app) - set(ROUTES)
    assert not missing, f"routes without a row in the permission table: {sorted(missing)}"
    assert not set(ROUTES) - kb_routes(world.app), "rows for routes that no longer exist"


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda route: f"{route[0]} {route[1]}")
@pytest.mark.parametrize("caller", list(CALLERS))
def test_permission_matrix(world, route, caller):
    method, _ = route
    need, prepare = ROUTES[route]
    path, arguments = prepare(world)
    client = world.clients[caller]
    if path.endswith("/events"):
        with client.stream(method, path, **arguments) as answer:
            if answer.status_code >= 400:
                answer.read()
            got = outcome(answer, path)
    else:
        got = outcome(client.request(method, path, **arguments), path)
    assert got == expected(caller, need), f"{caller} {method} {path}"


def test_listing_shows_only_visible_collections_with_owner_and_level(world):
    levels = {}
    for caller in ("owner", "viewer", "editor", "other", "admin", "group_viewer"):
        rows = world.clients[caller].get("/v1/collections").json()["data"]
        row = next((row for row in rows if row["name"] == SHARED), None)
        levels[caller] = row and row["you"]
        if row is not None:
            assert row["owner"] == "owner"
    assert levels == {"owner": "owner", "viewer": "viewer", "editor": "editor", "other": None,
                      "admin": "admin", "group_viewer": "viewer"}  # fmt: skip


def test_a_hidden_collection_answers_exactly_as_a_missing_one(world):
    other = world.clients["other"]
    hidden = other.get(f"/v1/collections/{SHARED}")
    missing = other.get("/v1/collections/no-such-thing")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == {
        "error": {
            **missing.json()["error"],
            "message": missing.json()["error"]["message"].replace("no-such-thing", SHARED),
        }
    }
    assert SHARED not in missing.text


def test_unsharing_hides_the_collection_again(world):
    name = world.new_collection()
    viewer = world.clients["viewer"]
    assert viewer.get(f"/v1/collections/{name}").status_code == 200
    access = world.owner().delete(f"/v1/collections/{name}/access/shares/user/viewer").json()
    assert {"kind": "user", "name": "viewer", "role": "viewer"} not in access["shares"]
    assert viewer.get(f"/v1/collections/{name}").status_code == 404
    assert viewer.post(f"/v1/collections/{name}/search", json={"query": "x"}).status_code == 404


def test_the_audit_log_records_changes_for_admins_only(world):
    name = world.new_collection()
    world.upload(name, "audited.md", b"# Audited\n\ntext")
    assert world.owner().delete(f"/v1/collections/{name}").status_code == 200
    entries = world.clients["admin"].get("/v1/audit", params={"limit": 50}).json()["data"]
    mine = [(entry["user"], entry["action"]) for entry in entries if entry["collection"] == name]
    assert ("owner", "create") in mine and ("owner", "share") in mine
    assert ("owner", "upload") in mine and ("owner", "drop") in mine
    older = world.clients["admin"].get("/v1/audit", params={"before": entries[-1]["id"]}).json()["data"]
    assert all(entry["id"] < entries[-1]["id"] for entry in older)
    for caller in ("owner", "viewer", "other"):
        assert world.clients[caller].get("/v1/audit").status_code == 404
    assert world.clients["anonymous"].get("/v1/audit").status_code == 401


def test_audit_pages_lose_nothing_when_entries_share_a_time(tmp_path, monkeypatch):
    """Paging by time skipped the entries of one clock tick that fell across a page edge."""
    import types

    import embedhub.accounts.store as store_module

    store = AccountStore.for_home(tmp_path)
    monkeypatch.setattr(store_module, "time", types.SimpleNamespace(time=lambda: 1_700_000_000.0))
    try:
        for index in range(7):
            store.record("owner", "upload", "same-tick", f"file{index}")
        seen, before = [], None
        while page := store.audit(3, before):
            seen += [entry["detail"] for entry in page]
            before = page[-1]["id"]
    finally:
        store.close()
    assert seen == [f"file{index}" for index in reversed(range(7))]
