"""Collections ("knowledge bases"): a folder holding the store, the manifest, an embedding cache
and collection.json, which binds the collection to one model, its dimensions and its query
instruction. Every write and query checks the encoder against that binding."""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from embedhub.config import Settings
from embedhub.engine.cache import EmbeddingCache
from embedhub.errors import EmbedhubError, InvalidInputError
from embedhub.kb.chunking import CHUNKER_VERSION, ChunkingOptions
from embedhub.kb.lexical import ANALYZER_VERSION, Analyzer, chunk_terms
from embedhub.kb.manifest import Manifest
from embedhub.kb.store import Store, VectorIndexOptions, check_store, open_store
from embedhub.models.base import Encoder

if TYPE_CHECKING:
    from embedhub.models.facts import ModelFacts  # what `create` needs of a model: no weights

logger = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CONFIG_FILE = "collection.json"


class CollectionNotFoundError(EmbedhubError, LookupError):
    """No collection by that name."""


class CollectionExistsError(EmbedhubError):
    """A collection by that name already exists."""


class ModelMismatchError(EmbedhubError):
    """The encoder offered is not the one the collection's vectors were made with."""


@dataclass
class CollectionConfig:
    name: str
    model: str
    model_reference: str
    dimensions: int
    native_dimensions: int
    instruction: str | None
    #: the store engine (`embedhub.kb.store.STORES`); older collections read as lancedb
    store: str = "lancedb"
    store_folder: str = "store"
    #: where a server store lives (milvus: a server or cluster URI); None: in the store folder
    store_uri: str | None = None
    chunk_tokens: int = 400
    chunk_overlap: int = 48
    created_at: float = field(default_factory=time.time)
    description: str = ""
    #: the stemmer and stop words of the lexical index ("none": neither; Chinese is always jieba)
    lexical_language: str = "english"
    #: the analyzer version the stored terms were made with (a collection written before the
    #: field existed reads as 1); another version is re-analysed when the collection is opened
    lexical_version: int = ANALYZER_VERSION

    @property
    def chunking(self) -> ChunkingOptions:
        return ChunkingOptions(self.chunk_tokens, self.chunk_overlap)

    @property
    def analyzer(self) -> Analyzer:
        return Analyzer(self.lexical_language)


def rechunk_advice(name: str, paths: list[Path]) -> str | None:
    """What to run so documents chunked by an older chunker are chunked again: adding their
    folders again re-chunks exactly those files (unchanged files chunked by this version are
    skipped; identical chunks come from the embedding cache, not the model)."""
    if not paths:
        return None
    folders: list[Path] = []
    for folder in sorted({path.parent for path in paths}, key=lambda folder: len(folder.parts)):
        if not any(folder.is_relative_to(kept) for kept in folders):
            folders.append(folder)
    arguments = " ".join(shlex.quote(str(folder)) for folder in sorted(folders))
    return (
        f"{len(paths)} document(s) were chunked by an older chunker (this one is v{CHUNKER_VERSION}); "
        f"re-chunk them with: embedhub kb add {shlex.quote(name)} {arguments}"
    )


def query_instruction(encoder: Encoder | ModelFacts, instruction: str | None) -> str | None:
    """The instruction a collection's queries get: the model's retrieval default, one of its
    published task instructions by task name (`code`, `sts`, ...), or free text."""
    spec = encoder.spec
    if instruction is None:
        return spec.default_instruction()
    if not spec.supports_instructions:
        raise InvalidInputError(f"model {spec.name} is not instruction-aware; drop --instruction")
    if not instruction.strip():
        raise InvalidInputError("the instruction is empty; leave it out to use the model's default")
    named = {str(task): text for task, text in spec.instructions.items()}
    return named.get(instruction.strip().lower(), instruction)


class Collection:
    def __init__(
        self,
        folder: Path,
        config: CollectionConfig,
        cache: EmbeddingCache | None = None,
        store_token: str | None = None,
        index_options: VectorIndexOptions | None = None,
    ) -> None:
        self.folder = folder
        self.config = config
        self.store_token = store_token
        self.index_options = index_options or VectorIndexOptions()
        self.manifest = Manifest(folder / "manifest.sqlite")
        self.store: Store = self.open_store(config.store_folder, config.dimensions)
        self._own_cache = cache is None
        self.cache = cache or EmbeddingCache(64 * 1024 * 1024, folder / "embedding-cache.sqlite")
        self.recover()

    def open_store(self, store_folder: str, dimensions: int) -> Store:
        """The collection's store engine over one store folder (re-embedding opens a second)."""
        return open_store(
            self.config.store,
            self.folder / store_folder,
            dimensions,
            uri=self.config.store_uri,
            token=self.store_token,
            index_options=self.index_options,
        )

    def maintain_index(self, *, force: bool = False, rebuild: bool = False) -> bool:
        """Bring the ANN vector index up to date after writes were committed (see the store's
        `ensure_vector_index`: built past `Settings.ann_min_rows`, not on every small add)."""
        started = time.perf_counter()
        changed = self.store.ensure_vector_index(force=force, rebuild=rebuild)
        if changed:
            seconds = time.perf_counter() - started
            logger.info("collection %s: vector index updated in %.1f s", self.name, seconds)
        return changed

    @property
    def name(self) -> str:
        return self.config.name

    def recover(self) -> None:
        """Finish what an interrupted ingest left: drop uncommitted rows, redo pending cleanups."""
        pending = self.manifest.pending()
        for doc_id, generation in pending:
            self.store.delete_documents([doc_id], only_generation=generation)
        self.manifest.clear_pending(pending)
        for doc_id, keep in self.manifest.cleanups():
            self.store.delete_documents([doc_id], except_generation=keep)
            self.manifest.cleanup_done([doc_id])

    def reanalyze(self) -> int:
        """Recompute the lexical terms of every chunk from its stored text (after the analyzer
        changed), then rebuild the full-text index. Vectors are untouched."""
        analyzer = self.config.analyzer
        rewritten = self.store.rewrite_terms(lambda text, headings: chunk_terms(text, headings, analyzer))
        self.config.lexical_version = ANALYZER_VERSION
        return rewritten

    def check_encoder(self, encoder: Encoder) -> None:
        if encoder.spec.name != self.config.model or encoder.native_dims != self.config.native_dimensions:
            raise ModelMismatchError(
                f"collection {self.name!r} holds vectors of model {self.config.model} "
                f"({self.config.dimensions} dims); the encoder given is {encoder.spec.name} "
                f"({encoder.native_dims} dims). Use --model {self.config.model_reference}, or re-embed "
                f"the collection with `embedhub kb reembed {self.name} --model NEW`"
            )

    def info(self) -> dict:
        totals = self.manifest.totals()
        outdated = self.manifest.chunked_before(CHUNKER_VERSION)
        return {
            **asdict(self.config),
            **totals,
            "stored_chunks": self.store.count(),
            "vector_index": self.store.vector_index_info(),
            "folder": str(self.folder),
            "chunker_version": CHUNKER_VERSION,
            "outdated_chunking": len(outdated),
            "rechunk": rechunk_advice(self.name, [Path(record.path) for record in outdated]),
        }

    def close(self) -> None:
        self.store.close()
        self.manifest.close()
        if self._own_cache:
            self.cache.close()


class KnowledgeBase:
    """All collections under `Settings.home / "collections"`.

    Each collection keeps its own embedding cache file, unless `cache` is given: then every
    collection opened here shares it (the evaluation's throw-away collections share the run's)."""

    def __init__(self, settings: Settings, cache: EmbeddingCache | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.root = settings.home / "collections"
        self._open: dict[str, Collection] = {}

    def _folder(self, name: str) -> Path:
        if not _NAME.match(name):
            raise InvalidInputError(
                f"collection name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return self.root / name

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG_FILE).exists())

    def create(self, name: str, encoder: Encoder | ModelFacts, **options) -> Collection:
        """A new collection, opened (`define`'s arguments)."""
        config = self.define(name, encoder, **options)
        try:
            return self.get(config.name)
        except Exception:
            shutil.rmtree(self._folder(name), ignore_errors=True)  # a store that cannot open: no collection
            raise

    def define(
        self,
        name: str,
        encoder: Encoder | ModelFacts,
        *,
        model_reference: str,
        dimensions: int | None = None,
        instruction: str | None = None,
        chunk_tokens: int = 400,
        chunk_overlap: int = 48,
        description: str = "",
        lexical_language: str = "english",
        store: str = "lancedb",
        store_uri: str | None = None,
    ) -> CollectionConfig:
        """Write a new collection's configuration without opening it: the embedded store (LanceDB,
        whose import alone is about 2 s) makes its table at the first open; any other store is
        opened once here, so one that cannot be reached leaves no collection behind."""
        folder = self._folder(name)
        if (folder / CONFIG_FILE).exists():
            raise CollectionExistsError(
                f"collection {name!r} already exists; drop it first or pick another name"
            )
        size = encoder.spec.check_dimensions(dimensions)
        instruction = query_instruction(encoder, instruction)
        Analyzer(lexical_language)  # an unknown language fails before anything is created
        check_store(store, store_uri)
        framing = len(encoder.prefix_ids) + len(encoder.suffix_ids)
        room = encoder.max_tokens - framing - 24  # 24 tokens for the heading path embedded with a chunk
        options = ChunkingOptions(min(chunk_tokens, room), min(chunk_overlap, min(chunk_tokens, room) // 4))
        config = CollectionConfig(
            name=name,
            model=encoder.spec.name,
            model_reference=model_reference,
            dimensions=size,
            native_dimensions=encoder.native_dims,
            instruction=instruction,
            chunk_tokens=options.max_tokens,
            chunk_overlap=options.overlap_tokens,
            description=description,
            lexical_language=lexical_language,
            store=store,
            store_uri=store_uri,
        )
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / (CONFIG_FILE + ".tmp")
        temporary.write_text(json.dumps(asdict(config), indent=2, ensure_ascii=False))
        temporary.replace(folder / CONFIG_FILE)
        if store != "lancedb":
            try:
                self.get(name)
            except Exception:
                shutil.rmtree(folder, ignore_errors=True)  # a store that cannot open leaves no collection
                raise
        return config

    def get(self, name: str) -> Collection:
        if name in self._open:
            return self._open[name]
        folder = self._folder(name)
        path = folder / CONFIG_FILE
        if not path.exists():
            known = ", ".join(self.names()) or "none yet"
            raise CollectionNotFoundError(f"no collection named {name!r}; collections: {known}")
        stored = json.loads(path.read_text())
        stored.setdefault("lexical_version", 1)
        config = CollectionConfig(**stored)
        collection = Collection(
            folder,
            config,
            self.cache,
            store_token=self.settings.milvus_token,
            index_options=VectorIndexOptions.from_settings(self.settings),
        )
        if config.lexical_version != ANALYZER_VERSION:
            rows = collection.reanalyze()
            self.save_config(collection)
            logger.info(
                "collection %s: lexical terms of %d chunks re-analysed (analyzer v%d)",
                name,
                rows,
                ANALYZER_VERSION,
            )
        self._open[name] = collection
        return collection

    def save_config(self, collection: Collection) -> None:
        path = collection.folder / CONFIG_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(collection.config), indent=2, ensure_ascii=False))
        temporary.replace(path)

    def drop(self, name: str) -> None:
        collection = self.get(name)
        collection.store.destroy()
        collection.close()
        self._open.pop(name, None)
        shutil.rmtree(collection.folder)

    def close(self) -> None:
        for collection in self._open.values():
            collection.close()
        self._open.clear()
