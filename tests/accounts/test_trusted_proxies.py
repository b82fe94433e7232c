"""The real client behind a trusted reverse proxy: its forwarded-for header is believed only from
a trusted address, two clients behind one proxy are throttled separately, and the audit log names
the client. The "proxy" is a client bound to a trusted 127.x address that sets the header itself."""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest

from embedhub.accounts.store import AccountStore
from embedhub.config import Settings
from embedhub.errors import ConfigurationError
from embedhub.server.app import create_app
from embedhub.server.proxy import TrustedProxies, parse_forwarded
from tests.live_server import live_server

PASSWORD = "correct horse battery"
PROXY = "127.0.3.1"  # in the trusted 127.0.3.0/24
UNTRUSTED = "127.0.4.1"


@pytest.fixture(scope="module")
def server(settings, tiny_encoder, tmp_path_factory):
    home = tmp_path_factory.mktemp("proxy-home")
    store = AccountStore.for_home(home)
    for name, role in (("root", "admin"), ("dana", "editor")):
        store.add_user(name, role, PASSWORD)
    store.close()
    configured = settings.model_copy(
        update={
            "home": home,
            "accounts": "on",
            "login_window": 60.0,
            "trusted_proxies": Settings(trusted_proxies="127.0.3.0/24").trusted_proxies,
        }
    )
    app = create_app(configured, encoders={"tiny": tiny_encoder})
    with live_server(app, "/ready") as url:
        yield app, url


def connect(url: str, address: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, transport=httpx.HTTPTransport(local_address=address))


def login(client: httpx.Client, name: str, password: str, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    body = {"username": name, "password": password}
    return client.post("/v1/auth/login", json=body, headers=headers).status_code


def test_two_clients_behind_one_trusted_proxy_are_throttled_separately(server):
    app, url = server
    with connect(url, PROXY) as proxy:
        for attempt in range(5):
            assert login(proxy, f"guess{attempt}", "wrong", "203.0.113.1") == 401
        assert login(proxy, "root", PASSWORD, "203.0.113.1") == 429
        # the colleague behind the same proxy is not slowed down by the guesser's typos
        assert login(proxy, "root", PASSWORD, "203.0.113.2") == 200
    failures = [entry for entry in app.state.accounts.audit(200) if entry["action"] == "sign_in_failed"]
    assert {entry["address"] for entry in failures if entry["user"].startswith("guess")} == {"203.0.113.1"}
    signed_in = [entry for entry in app.state.accounts.audit(200) if entry["action"] == "sign_in"]
    assert signed_in[0]["address"] == "203.0.113.2"


def test_a_header_from_an_untrusted_address_is_ignored(server):
    """A client that claims another address in each request is still counted as itself."""
    app, url = server
    with connect(url, UNTRUSTED) as spoofer:
        for attempt in range(5):
            assert login(spoofer, f"spoof{attempt}", "wrong", f"198.51.100.{attempt}") == 401
        assert login(spoofer, "dana", PASSWORD, "198.51.100.77") == 429
    addresses = {
        entry["address"] for entry in app.state.accounts.audit(200) if entry["user"].startswith("spoof")
    }
    assert addresses == {UNTRUSTED}


def test_the_client_is_the_rightmost_untrusted_entry_and_is_audited(server):
    """Entries left of the client were written by the client (anything); trusted hops are skipped."""
    app, url = server
    with connect(url, PROXY) as proxy:
        chain = "6.6.6.6, 192.0.2.44, 127.0.3.9"  # forged, the client, an inner trusted proxy
        answer = proxy.post(
            "/v1/auth/login",
            json={"username": "dana", "password": PASSWORD},
            headers={"X-Forwarded-For": chain},
        )
        assert answer.status_code == 200
        created = proxy.post(
            "/v1/auth/keys",
            json={"name": "laptop"},
            headers={"X-Forwarded-For": chain, "X-CSRF-Token": answer.json()["csrf_token"]},
        )
        assert created.status_code == 201, created.text
    entries = app.state.accounts.audit(200)
    assert next(entry for entry in entries if entry["action"] == "create_key")["address"] == "192.0.2.44"
    assert next(entry for entry in entries if entry["action"] == "sign_in")["address"] == "192.0.2.44"


def _client_seen(networks: list[str], headers: list[tuple[bytes, bytes]], header: str = "x-forwarded-for"):
    seen = {}

    async def app(scope, receive, send):
        seen.update(client=scope["client"], scheme=scope["scheme"])

    middleware = TrustedProxies(app, [ipaddress.ip_network(n) for n in networks], header)
    scope = {"type": "http", "client": ("10.0.0.5", 4000), "scheme": "http", "headers": headers}
    asyncio.run(middleware(scope, None, None))
    return seen["client"], seen["scheme"]


def test_no_trusted_proxy_by_default_means_headers_are_ignored():
    assert Settings().trusted_proxies == []
    headers = [(b"x-forwarded-for", b"192.0.2.1"), (b"x-forwarded-proto", b"https")]
    assert _client_seen([], headers) == (("10.0.0.5", 4000), "http")
    assert _client_seen(["10.0.1.0/24"], headers) == (("10.0.0.5", 4000), "http")
    assert _client_seen(["10.0.0.0/24"], headers) == (("192.0.2.1", 0), "https")


def test_several_header_lines_and_all_trusted_hops():
    headers = [(b"x-forwarded-for", b"192.0.2.1, 10.0.0.7"), (b"x-forwarded-for", b"10.0.0.8:5555")]
    assert _client_seen(["10.0.0.0/24"], headers)[0] == ("192.0.2.1", 0)
    # every hop a trusted proxy: the leftmost is the best knowledge of the client
    assert _client_seen(["10.0.0.0/24"], [(b"x-forwarded-for", b"10.0.0.9, 10.0.0.7")])[0] == ("10.0.0.9", 0)


def test_rfc_7239_forwarded_is_read_only_when_chosen():
    headers = [
        (b"forwarded", b'for="[2001:db8::17]:4711";proto=https, for=10.0.0.7'),
        (b"x-forwarded-for", b"198.51.100.1"),
    ]
    assert _client_seen(["10.0.0.0/24"], headers, "forwarded") == (("2001:db8::17", 4711), "https")
    # the default reads X-Forwarded-For only: a client's own Forwarded header is never believed
    assert _client_seen(["10.0.0.0/24"], headers)[0] == ("198.51.100.1", 0)
    assert parse_forwarded("for=unknown;by=10.0.0.1, proto=http") == (["unknown", "unknown"], ["http"])


def test_a_mistyped_trusted_proxy_is_refused_with_the_expected_form():
    with pytest.raises(ConfigurationError, match="addresses or CIDRs"):
        Settings(trusted_proxies="10.0.0.1,nginx")
    assert [str(n) for n in Settings(trusted_proxies='["10.0.0.1", "fd00::/8"]').trusted_proxies] == [
        "10.0.0.1/32",
        "fd00::/8",
    ]
