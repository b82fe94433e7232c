"""The set of served models: loading (in the background), names and aliases, lookup, readiness."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from embedhub.config import Settings
from embedhub.engine.cache import EmbeddingCache
from embedhub.engine.queue import BatchObserver
from embedhub.engine.reranking import RerankService
from embedhub.engine.service import EmbeddingService, ServiceLimits
from embedhub.errors import UnknownModelError
from embedhub.models.base import Encoder
from embedhub.models.reranker import Reranker

logger = logging.getLogger(__name__)
EncoderFactory = Callable[[str], Encoder]
RerankerFactory = Callable[[str], Reranker]
HOW_TO_SERVE_A_RERANKER = (
    "start the server with a reranker: `embedhub serve --reranker Qwen3-Reranker-0.6B` (weights in a "
    "folder listed in EMBEDHUB_MODEL_DIRS) or `--reranker FOLDER` (a Qwen3-Reranker or a "
    "sentence-transformers cross-encoder folder); or set EMBEDHUB_RERANKER"
)


class NoRerankerError(UnknownModelError):
    """A rerank was asked of a server that serves no reranker (or another one than named)."""


class ModelHub:
    """Served models by request name. `ready` turns true once every model is loaded and warm."""

    def __init__(self, settings: Settings, on_batch: BatchObserver | None = None) -> None:
        self.settings = settings
        self.on_batch = on_batch
        self.services: dict[str, EmbeddingService] = {}
        self.reranker: RerankService | None = None
        self._reranker_names: set[str] = set()
        self._names: dict[str, str] = {}
        self.ready = False
        self.load_error: Exception | None = None
        self._thread: threading.Thread | None = None

    @property
    def limits(self) -> ServiceLimits:
        s = self.settings
        return ServiceLimits(s.max_batch_tokens, s.max_batch_size, s.max_queue_items, s.max_input_tokens)

    def add(self, reference: str, encoder: Encoder) -> EmbeddingService:
        """Serve an already loaded encoder under its name, its aliases and the reference given."""
        cache = None
        if self.settings.cache_mb > 0 or self.settings.cache_on_disk:
            path = None
            if self.settings.cache_on_disk:
                path = self.settings.cache_dir / f"embeddings-{encoder.spec.name.replace('/', '--')}.sqlite"
            cache = EmbeddingCache(int(self.settings.cache_mb * 1024 * 1024), path)
        service = EmbeddingService(encoder, self.limits, cache, self.on_batch)
        service.start()
        name = encoder.spec.name
        self.services[name] = service
        for key in (name, reference, encoder.spec.hub_id, *encoder.spec.aliases):
            if key:
                self._names.setdefault(key.lower(), name)
        for alias, target in self.settings.aliases.items():
            if target.lower() in self._names and self._names[target.lower()] == name:
                self._names[alias.lower()] = name
        return service

    def add_reranker(self, reference: str, reranker: Reranker) -> RerankService:
        """Serve a loaded reranker (one per server) under its name, aliases and the reference."""
        service = RerankService(reranker, self.limits, self.on_batch)
        service.start()
        self.reranker = service
        spec = reranker.spec
        self._reranker_names = {
            key.lower() for key in (spec.name, reference, spec.hub_id, *spec.aliases) if key
        }
        return service

    def get_reranker(self, name: str | None = None) -> RerankService:
        """The served reranker; `name`, when given, must be one of its names."""
        if self.reranker is None:
            raise NoRerankerError(f"this server has no reranker loaded; {HOW_TO_SERVE_A_RERANKER}")
        if name is not None and name.lower() not in self._reranker_names:
            raise NoRerankerError(
                f"reranker {name!r} is not served here; the served reranker is {self.reranker.name!r}"
            )
        return self.reranker

    def reranker_aliases(self) -> list[str]:
        if self.reranker is None:
            return []
        return sorted(key for key in self._reranker_names if key != self.reranker.name.lower())

    def get(self, name: str) -> EmbeddingService:
        served = self._names.get(name.lower())
        if served is None:
            raise UnknownModelError(
                f"model {name!r} is not served here; served models: {', '.join(self.names()) or 'none yet'}"
            )
        return self.services[served]

    def names(self) -> list[str]:
        return list(self.services)

    def aliases_of(self, name: str) -> list[str]:
        return sorted(key for key, target in self._names.items() if target == name and key != name.lower())

    def load(self, factory: EncoderFactory, reranker_factory: RerankerFactory | None = None) -> None:
        """Load, serve and warm every configured model and the reranker, if any (blocking)."""
        references = self.settings.serve_models or [self.settings.model]
        try:
            for reference in references:
                service = self.add(reference, factory(reference))
                service.warm_up()
            if self.settings.reranker and reranker_factory is not None:
                self.add_reranker(self.settings.reranker, reranker_factory(self.settings.reranker)).warm_up()
            self.ready = True
        except Exception as error:
            self.load_error = error
            logger.exception("model loading failed")

    def load_in_background(
        self, factory: EncoderFactory, reranker_factory: RerankerFactory | None = None
    ) -> None:
        self._thread = threading.Thread(
            target=self.load, args=(factory, reranker_factory), name="embedhub-load", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        self.wait(timeout=60)
        for service in self.services.values():
            service.stop()
        if self.reranker is not None:
            self.reranker.stop()
        self.ready = False
