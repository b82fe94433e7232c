"""The real client behind trusted reverse proxies: sign-in throttling and the audit log key on the
client's address, and behind a proxy every connection comes from the proxy.

Only a proxy in the `trusted_proxies` setting (addresses or CIDRs; none by default) is believed.
Its header (`X-Forwarded-For`, or RFC 7239 `Forwarded` with `proxy_header = forwarded`) is read
from the right: each proxy appends the address it was connected from, so the rightmost entry that
is not itself a trusted proxy is the client; entries further left were written by that client and
may be anything. Only one header is read: a proxy that appends to X-Forwarded-For passes a client's
own `Forwarded` header through unchanged, and believing that one would let anyone spoof.

Why not uvicorn's ProxyHeadersMiddleware (`forwarded_allow_ips`): it applies only when uvicorn
runs the app (not to the in-process test client or another ASGI server), its trust list comes from
uvicorn's own FORWARDED_ALLOW_IPS variable outside Settings and trusts 127.0.0.1 by default (any
local process could claim any address), it silently treats a mistyped entry as a literal host
name, and it does not read `Forwarded`. `embedhub serve` turns it off; this middleware is the one
place that decides."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED_SCHEMES = frozenset({"http", "https"})
MAX_HOPS = 64  # longer chains are cut from the left: the client is found from the right anyway


class TrustedProxies:
    """ASGI middleware: behind a trusted proxy, `scope["client"]` becomes the real client (and the
    scheme the one the proxy was reached by, so the session cookie keeps its Secure flag)."""

    def __init__(self, app: ASGIApp, networks: Sequence[IPNetwork], header: str = "x-forwarded-for") -> None:
        self.app = app
        self.networks = tuple(networks)
        self.header = header.lower()

    def trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.networks:
            peer = scope.get("client")
            if peer and self.trusted(peer[0]):
                hops, schemes = self._hops(scope.get("headers", ()))
                if hops:
                    scope = dict(scope, client=self.client_of(hops))
                    if schemes and schemes[-1] in FORWARDED_SCHEMES:
                        scheme = schemes[-1]
                        scope["scheme"] = (
                            scheme.replace("http", "ws") if scope["type"] == "websocket" else scheme
                        )
        await self.app(scope, receive, send)

    def _hops(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[list[str], list[str]]:
        """The forwarded-for entries, left to right, and the schemes the proxies were reached by."""
        values = [value.decode("latin-1") for name, value in headers if name.decode("latin-1") == self.header]
        if self.header == "forwarded":
            hops, schemes = parse_forwarded(", ".join(values))
        else:
            hops = [item.strip() for item in ",".join(values).split(",") if item.strip()]
            schemes = [
                value.decode("latin-1").strip().lower()
                for name, value in headers
                if name == b"x-forwarded-proto"
            ]
        return hops[-MAX_HOPS:], schemes

    def client_of(self, hops: list[str]) -> tuple[str, int]:
        """The rightmost entry that is not a trusted proxy; the leftmost when all are."""
        for hop in reversed(hops):
            host, port = split_host_port(hop)
            if not self.trusted(host):
                return host, port
        return split_host_port(hops[0])


def parse_forwarded(value: str) -> tuple[list[str], list[str]]:
    """RFC 7239: `for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"` -> the `for` values and the
    `proto` values, left to right. An element without `for` counts as an unknown hop."""
    hops, schemes = [], []
    for element in value.split(","):
        pairs = {}
        for pair in element.split(";"):
            key, equals, raw = pair.partition("=")
            if equals:
                pairs[key.strip().lower()] = raw.strip().strip('"')
        if not pairs:
            continue
        hops.append(pairs.get("for", "unknown"))
        if "proto" in pairs:
            schemes.append(pairs["proto"].lower())
    return hops, schemes


def split_host_port(hop: str) -> tuple[str, int]:
    """`1.2.3.4`, `1.2.3.4:5678`, `[::1]:5678` or `::1` -> (host, port or 0). Anything else (an
    RFC 7239 `unknown` or `_obfuscated` name) is kept as it is, cut to a sane length."""
    hop = hop.strip()[:100]
    if hop.startswith("["):
        host, _, rest = hop[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else 0
    if hop.count(":") == 1:
        host, _, port = hop.partition(":")
        return host, int(port) if port.isdigit() else 0
    return hop, 0
