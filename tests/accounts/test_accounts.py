"""Accounts: sign-in and sign-out, the session cookie and its CSRF token, expiry, throttled
guessing (per account and per address), per-user keys on the OpenAI routes, disabled users, the
shared keys as a service identity, the bind policy, the CLI, and loopback staying as it was."""

from __future__ import annotations

import json
import time
from contextlib import closing

import httpx
import pytest
from typer.testing import CliRunner

from embedhub.accounts.store import AccountStore
from embedhub.accounts.throttle import SignInThrottle
from embedhub.config import Settings
from embedhub.errors import EmbedhubError
from embedhub.server.app import create_app
from embedhub.server.security import check_bind_policy
from tests.live_server import live_server

PASSWORD = "correct horse battery"
WINDOW = 2.0


@pytest.fixture(scope="module")
def server(settings, tiny_encoder, tmp_path_factory):
    home = tmp_path_factory.mktemp("accounts-home")
    store = AccountStore.for_home(home)
    for name, role in (("alice", "editor"), ("bob", "viewer"), ("root", "admin"), ("carol", "editor")):
        store.add_user(name, role, PASSWORD)
    store.close()
    configured = settings.model_copy(
        update={"home": home, "accounts": "on", "login_window": WINDOW, "api_keys": ["shared-service-key"]}
    )
    app = create_app(configured, encoders={"tiny": tiny_encoder})
    with live_server(app, "/ready") as url:
        yield app, url


def client_from(url: str, address: str = "127.0.0.1") -> httpx.Client:
    """A client whose requests come from `address` (any 127.x address reaches the loopback bind)."""
    return httpx.Client(base_url=url, timeout=60, transport=httpx.HTTPTransport(local_address=address))


def sign_in(url: str, name: str, address: str = "127.0.0.1") -> tuple[httpx.Client, str]:
    client = client_from(url, address)
    answer = client.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return client, answer.json()["csrf_token"]


def test_sign_in_sets_a_strict_http_only_cookie(server):
    app, url = server
    with client_from(url, "127.0.0.10") as client:
        assert client.get("/v1/auth/me").json() == {"accounts": True, "user": None, "csrf_token": None}
        answer = client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
        assert answer.status_code == 200 and answer.json()["user"] == {"name": "alice", "role": "editor"}
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("embedhub_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/" in cookie and f"Max-Age={app.state.settings.session_lifetime}" in cookie
        assert "Secure" not in cookie  # plain http here; https requests get Secure
        me = client.get("/v1/auth/me").json()
        assert (
            me["user"] == {"name": "alice", "role": "editor"}
            and me["csrf_token"] == answer.json()["csrf_token"]
        )


def test_wrong_password_and_unknown_user_get_the_same_401(server):
    _, url = server
    with client_from(url, "127.0.0.11") as client:
        wrong = client.post("/v1/auth/login", json={"username": "alice", "password": "not it at all"})
        unknown = client.post("/v1/auth/login", json={"username": "nobody", "password": "not it at all"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


def test_cookie_changes_need_the_csrf_token_and_keys_do_not(server):
    _, url = server
    client, csrf = sign_in(url, "alice", "127.0.0.12")
    with closing(client):
        refused = client.post("/v1/collections", json={"name": "csrf-test", "model": "tiny"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        wrong = client.post("/v1/collections", json={"name": "csrf-test", "model": "tiny"},
                            headers={"X-CSRF-Token": "forged"})  # fmt: skip
        assert wrong.status_code == 403
        assert client.get("/v1/collections").status_code == 200  # reading needs no token
        created = client.post("/v1/collections", json={"name": "csrf-test", "model": "tiny"},
                              headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert created.status_code == 201 and created.json()["owner"] == "alice"
        key = client.post("/v1/auth/keys", json={"name": "script"}, headers={"X-CSRF-Token": csrf}).json()[
            "key"
        ]
    # a bearer key is not sent by browsers on their own: no CSRF token needed
    keyed = httpx.post(url + "/v1/collections", json={"name": "csrf-keyed", "model": "tiny"},
                       headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert keyed.status_code == 201 and keyed.json()["owner"] == "alice"


def test_sessions_expire(server):
    app, url = server
    client, _ = sign_in(url, "carol", "127.0.0.13")
    store = app.state.accounts
    with closing(client):
        assert client.get("/v1/collections").status_code == 200
        lifetime = app.state.settings.session_lifetime
        store.clock = lambda: time.time() + lifetime + 1
        try:
            expired = client.get("/v1/collections")
            assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
            assert client.get("/v1/auth/me").json()["user"] is None
        finally:
            store.clock = time.time


def test_sign_out_ends_the_session_on_the_server(server):
    _, url = server
    client, csrf = sign_in(url, "carol", "127.0.0.14")
    with closing(client):
        stolen = client.cookies.get("embedhub_session")
        assert client.post("/v1/auth/logout").status_code == 403  # a change like any other: CSRF
        answer = client.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 204 and 'embedhub_session=""' in answer.headers["set-cookie"]
        assert client.get("/v1/auth/me").json()["user"] is None
    replayed = httpx.get(url + "/v1/collections", cookies={"embedhub_session": stolen})
    assert replayed.status_code == 401


def _fail(client: httpx.Client, name: str) -> httpx.Response:
    return client.post("/v1/auth/login", json={"username": name, "password": "wrong guess here"})


def test_guessing_a_password_is_throttled_per_account_and_recovers(server):
    _, url = server
    # each attempt from another address: only the account's own counter can trip
    for attempt in range(5):
        with client_from(url, f"127.0.1.{attempt + 1}") as client:
            assert _fail(client, "bob").status_code == 401
    with client_from(url, "127.0.1.99") as client:
        throttled = client.post("/v1/auth/login", json={"username": "bob", "password": PASSWORD})
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
        assert throttled.json()["error"]["code"] == "sign_in_throttled"
        time.sleep(WINDOW + 0.2)
        assert (
            client.post("/v1/auth/login", json={"username": "bob", "password": PASSWORD}).status_code == 200
        )


def test_guessing_across_accounts_is_throttled_per_address(server):
    _, url = server
    with client_from(url, "127.0.2.1") as guesser, client_from(url, "127.0.2.2") as colleague:
        for attempt in range(5):
            assert _fail(guesser, f"someone{attempt}").status_code == 401
        assert (
            guesser.post("/v1/auth/login", json={"username": "root", "password": PASSWORD}).status_code == 429
        )
        # the account itself is not locked: the same user from another address signs in
        assert (
            colleague.post("/v1/auth/login", json={"username": "root", "password": PASSWORD}).status_code
            == 200
        )
        time.sleep(WINDOW + 0.2)
        assert (
            guesser.post("/v1/auth/login", json={"username": "root", "password": PASSWORD}).status_code == 200
        )


def test_throttle_backs_off_exponentially_up_to_the_window():
    now = [0.0]
    throttle = SignInThrottle(max_failures=3, window=10.0, clock=lambda: now[0])
    keys = ("user:x",)
    for _ in range(3):
        assert throttle.retry_after(keys) == 0
        throttle.failed(keys)
    assert throttle.retry_after(keys) == 1.0
    now[0] += 1.0
    throttle.failed(keys)
    assert throttle.retry_after(keys) == 2.0
    for _ in range(6):
        throttle.failed(keys)
    assert throttle.retry_after(keys) == 10.0  # capped by the window
    now[0] += 10.5
    assert throttle.retry_after(keys) == 0  # forgotten after the window


def test_user_keys_work_with_the_openai_client_until_revoked(server):
    from openai import AuthenticationError, OpenAI

    _, url = server
    client, csrf = sign_in(url, "bob", "127.0.0.15")
    with closing(client):
        created = client.post("/v1/auth/keys", json={"name": "laptop sdk"}, headers={"X-CSRF-Token": csrf})
        assert created.status_code == 201
        key = created.json()
        assert key["key"].startswith("ehk_") and key["name"] == "laptop sdk"
        sdk = OpenAI(base_url=url + "/v1", api_key=key["key"], max_retries=0)
        vectors = sdk.embeddings.create(model="tiny", input=["hello", "world"])
        assert len(vectors.data) == 2
        listed = client.get("/v1/auth/keys").json()["data"]
        mine = next(row for row in listed if row["id"] == key["id"])
        assert "key" not in mine and key["key"].startswith(mine["prefix"]) and mine["last_used"] is not None
        # someone else cannot revoke it
        other, other_csrf = sign_in(url, "carol", "127.0.0.16")
        with closing(other):
            assert (
                other.delete(f"/v1/auth/keys/{key['id']}", headers={"X-CSRF-Token": other_csrf}).status_code
                == 404
            )
        assert client.delete(f"/v1/auth/keys/{key['id']}", headers={"X-CSRF-Token": csrf}).status_code == 204
        with pytest.raises(AuthenticationError):
            sdk.embeddings.create(model="tiny", input="hello")
    assert httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": "x"}).status_code == 401
    assert httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": "x"},
                      headers={"Authorization": "Bearer ehk_made_up"}).status_code == 401  # fmt: skip


def test_a_disabled_user_cannot_sign_in_and_their_keys_stop(server):
    app, url = server
    store = app.state.accounts
    store.add_user("dave", "editor", PASSWORD)
    key = store.create_key("dave", "job")["key"]
    session, _ = sign_in(url, "dave", "127.0.0.17")
    headers = {"Authorization": f"Bearer {key}"}
    with closing(session):
        assert httpx.get(url + "/v1/collections", headers=headers).status_code == 200
        store.set_disabled("dave", True)
        assert httpx.get(url + "/v1/collections", headers=headers).status_code == 401
        assert session.get("/v1/collections").status_code == 401
    with client_from(url, "127.0.0.18") as client:
        refused = client.post("/v1/auth/login", json={"username": "dave", "password": PASSWORD})
        assert refused.status_code == 401
    store.set_disabled("dave", False)
    assert httpx.get(url + "/v1/collections", headers=headers).status_code == 200


def test_the_shared_key_is_an_admin_equivalent_service_identity(server):
    _, url = server
    headers = {"Authorization": "Bearer shared-service-key"}
    client, csrf = sign_in(url, "alice", "127.0.0.19")
    with closing(client):
        client.post(
            "/v1/collections", json={"name": "alice-private", "model": "tiny"}, headers={"X-CSRF-Token": csrf}
        )
    rows = httpx.get(url + "/v1/collections", headers=headers).json()["data"]
    assert {"name": "alice-private", "you": "admin", "owner": "alice"}.items() <= next(
        row for row in rows if row["name"] == "alice-private"
    ).items()
    me = httpx.get(url + "/v1/auth/me", headers=headers).json()
    assert me["user"] == {"name": "api-key", "role": "admin"} and me["csrf_token"] is None
    # users listing: everything for admins, names only for others
    full = httpx.get(url + "/v1/users", headers=headers).json()["data"]
    assert {"name": "alice", "role": "editor", "disabled": False} in full
    names = httpx.get(url + "/v1/users", headers={"Authorization": f"Bearer {_key_of(url, 'bob')}"}).json()[
        "data"
    ]
    assert {"name": "alice"} in names and all(set(row) == {"name"} for row in names)


def _key_of(url: str, name: str) -> str:
    client, csrf = sign_in(url, name, "127.0.0.20")
    with closing(client):
        return client.post("/v1/auth/keys", json={"name": "t"}, headers={"X-CSRF-Token": csrf}).json()["key"]


def test_viewers_may_not_create_collections(server):
    _, url = server
    client, csrf = sign_in(url, "bob", "127.0.0.21")
    with closing(client):
        refused = client.post(
            "/v1/collections", json={"name": "bobs", "model": "tiny"}, headers={"X-CSRF-Token": csrf}
        )
    assert refused.status_code == 403 and "viewers may not create" in refused.json()["error"]["message"]


def test_loopback_keeps_accounts_off(settings, tiny_encoder, tmp_path):
    assert not Settings(host="127.0.0.1").accounts_enabled and Settings(host="0.0.0.0").accounts_enabled
    assert not Settings(host="0.0.0.0", accounts="off").accounts_enabled
    assert Settings(host="127.0.0.1", accounts="on").accounts_enabled
    app = create_app(settings.model_copy(update={"home": tmp_path}), encoders={"tiny": tiny_encoder})
    with live_server(app, "/ready") as url:
        assert httpx.get(url + "/v1/auth/me").json() == {"accounts": False, "user": None, "csrf_token": None}
        created = httpx.post(url + "/v1/collections", json={"name": "plain", "model": "tiny"})
        assert (
            created.status_code == 201
            and created.json()["owner"] is None
            and created.json()["you"] == "admin"
        )
        assert httpx.get(url + "/v1/collections/plain/access").json() == {
            "owner": None,
            "shares": [],
            "you": "admin",
        }
        assert httpx.post(url + "/v1/auth/login", json={"username": "a", "password": "b"}).status_code == 400
    assert not (tmp_path / "accounts.sqlite").exists()


def test_public_bind_is_allowed_with_accounts_and_refused_without():
    check_bind_policy(Settings(host="0.0.0.0"))  # accounts auto: on
    with pytest.raises(EmbedhubError, match="accounts off"):
        check_bind_policy(Settings(host="0.0.0.0", accounts="off"))
    check_bind_policy(Settings(host="0.0.0.0", accounts="off", api_keys=["k"]))


def test_cli_manages_users_groups_shares_and_shows_the_audit(tmp_path, monkeypatch, settings, tiny_encoder):
    from embedhub.cli import app
    from embedhub.kb.collection import KnowledgeBase

    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path))
    runner = CliRunner()

    def run(*arguments, stdin=None):
        result = runner.invoke(app, list(arguments), input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    run("users", "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    run("users", "add", "erin", "--role", "viewer", stdin=f"{PASSWORD}\n{PASSWORD}\n")  # asked twice
    duplicate = runner.invoke(app, ["users", "add", "erin", "--password-stdin"], input=PASSWORD + "\n")
    assert duplicate.exit_code == 2 and "already exists" in duplicate.output
    short = runner.invoke(app, ["users", "add", "fred", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 8" in short.output
    run("users", "role", "erin", "editor")
    run("users", "disable", "erin")
    users = json.loads(run("users", "list", "--json"))["users"]
    assert {(u["name"], u["role"], u["disabled"]) for u in users} == {
        ("root", "admin", False),
        ("erin", "editor", True),
    }
    assert "erin: editor (disabled)" in run("users", "list")
    run("users", "enable", "erin")
    run("users", "reset-password", "erin", "--password-stdin", stdin="another long one\n")
    store = AccountStore.for_home(tmp_path)
    assert store.verify_password("erin", "another long one") is not None
    run("groups", "add", "team")
    run("groups", "add-member", "team", "erin")
    assert json.loads(run("groups", "list", "--json")) == {"groups": [{"name": "team", "members": ["erin"]}]}
    run("groups", "remove-member", "team", "erin")
    assert "team: (no members)" in run("groups", "list")

    KnowledgeBase(Settings(home=tmp_path)).create("old", tiny_encoder, model_reference="tiny")
    assert "owner (none: admins only)" in run("kb", "access", "old")
    run("kb", "chown", "old", "root")
    shared = json.loads(run("kb", "share", "old", "--group", "team", "--role", "editor", "--json"))
    assert shared["owner"] == "root" and shared["shares"] == [
        {"kind": "group", "name": "team", "role": "editor"}
    ]
    run("kb", "unshare", "old", "--group", "team")
    actions = [entry["action"] for entry in json.loads(run("audit", "--json", "--limit", "5"))["entries"]]
    assert actions[:3] == ["unshare", "share", "chown"]
    assert "cli add_user: root as admin" in run("audit")


def test_the_cookie_is_secure_over_https(settings, tiny_encoder, tmp_path, caplog):
    from fastapi.testclient import TestClient

    store = AccountStore.for_home(tmp_path)
    store.add_user("alice", "editor", PASSWORD)
    store.close()
    app = create_app(
        settings.model_copy(update={"home": tmp_path, "accounts": "on"}), encoders={"tiny": tiny_encoder}
    )
    with TestClient(app, base_url="https://testserver") as client:
        answer = client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert answer.status_code == 200 and "Secure" in answer.headers["set-cookie"]
    # no admin yet: the start says how to create the first one
    assert "embedhub users add NAME --role admin" in caplog.text
