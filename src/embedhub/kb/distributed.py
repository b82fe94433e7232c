"""Ingestion on Ray: files are parsed, chunked and embedded by a pool of Ray actors, and written
by this process (the driver) through the same `DocumentWriter` the in-process `Ingestor` uses.

Who does what:
- The driver lists the files, reads each one and hashes it; an unchanged file (same content hash
  as its committed version) is skipped here, before any worker sees it. Changed files travel to
  the workers as bytes, in units of up to `UNIT_FILES` files / `UNIT_BYTES` bytes, so the workers
  need no access to the driver's disk.
- Each actor loads the collection's model once (`load_encoder` of the collection's model
  reference, the collection's binding checked) and runs `FileEmbedder.prepare` on the units it is
  given; a remote encoder's actors call its endpoints. `IN_FLIGHT_PER_ACTOR` units are queued per
  actor so it never waits for the driver.
- The driver commits what comes back, document by document, under the manifest's generation
  protocol (kb/manifest.py): a document is committed once, from the one result the driver
  accepted for it; a crash or a cancel leaves no half-written document.

A worker that dies (its process killed, its node lost) fails the units it held; their files are
submitted again, one file per unit (so a file that kills its worker takes only itself down), to
a new actor that replaces the dead one. A file whose worker died `ATTEMPTS` times is reported as
failed, like a file that does not parse. An exception raised inside a worker is not a file's fault
(parse errors are already per-file results): it stops the run with that error, as it would in
process, and the uncommitted generation is rolled back.

Ray is imported only here and only when a Ray ingest runs: `import embedhub` never imports it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from embedhub.config import Settings
from embedhub.errors import EmbedhubError
from embedhub.kb.collection import Collection, ModelMismatchError
from embedhub.kb.ingest import DocumentWriter, FileEmbedder, IngestReport, Progress, file_hash
from embedhub.kb.ocr import OcrOptions

#: files and bytes sent to an actor in one call (small files share a forward pass)
UNIT_FILES = 16
UNIT_BYTES = 8 * 1024 * 1024
#: calls queued per actor, so it starts the next unit while the driver writes the last one
IN_FLIGHT_PER_ACTOR = 2
#: tries of a file whose worker died under it before the file is reported as failed
ATTEMPTS = 3
#: seconds a cluster address has to accept a connection
CONNECT_TIMEOUT_SECONDS = 5.0
#: seconds to wait for a result before looking at the stop flag again
POLL_SECONDS = 0.5
RAY_MISSING = (
    "--ray needs Ray, which is not installed: pip install 'embedhub[ray]' (Ray must be the same "
    "version on the driver and on every node of the cluster)"
)
#: settings a worker never needs: not shipped to the cluster
_DRIVER_ONLY = {"api_keys": [], "chat_api_key": None, "milvus_token": None}


def import_ray():
    try:
        import ray
    except ImportError:
        raise EmbedhubError(RAY_MISSING) from None
    return ray


_connection_lock = threading.Lock()
_connection_users = 0
_connection_address: str | None = None


@contextlib.contextmanager
def loopback_only() -> Iterator:
    """While Ray processes start inside this block, they bind 127.0.0.1 and nothing else, and
    send no usage report: Ray otherwise takes the address the default route goes out of as the
    node's and listens on every interface. (Ray's switch for that is the one that turns multi-node
    clusters off, a single-node cluster is what `auto` starts.)"""
    import ray._private.ray_constants as ray_constants

    saved = {name: os.environ.get(name) for name in _LOOPBACK_ENVIRONMENT}
    saved_constant = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(_LOOPBACK_ENVIRONMENT)  # inherited by the processes Ray starts
    ray_constants.ENABLE_RAY_CLUSTER = False  # read by this process (imported before)
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_constant
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_LOOPBACK_ENVIRONMENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def _host_port(address: str) -> tuple[str, int]:
    """HOST and PORT of `HOST:PORT` or `ray://HOST:PORT` (a clear error for anything else)."""
    host, _, port = address.removeprefix("ray://").rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise EmbedhubError(
            f"--ray {address!r} is not a cluster address: use auto, HOST:PORT (the head's GCS, "
            "port 6379 by default) or ray://HOST:PORT (Ray Client, port 10001 by default)"
        )
    return host.strip("[]"), int(port)


def _connect(ray, address: str, settings: Settings) -> None:
    address = address.strip()
    try:
        if address == "auto":  # a local Ray for this run (Ray's own "auto" means: find a running one)
            with loopback_only(), warnings.catch_warnings():
                # Ray starts its processes with fork+exec; lancedb warns about the fork alone
                warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)
                ray.init(
                    address="local",
                    include_dashboard=False,
                    num_cpus=settings.ray_num_cpus,
                    log_to_driver=False,
                )
            return
        host, port = _host_port(address)
        try:  # a wrong address fails in seconds here; Ray itself retries for minutes
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS).close()
        except OSError as error:
            raise EmbedhubError(f"could not reach the Ray cluster at {address}: {error}") from None
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        with loopback_only() if loopback else contextlib.nullcontext():  # a cluster on this machine
            ray.init(address=address, log_to_driver=False)
    except EmbedhubError:
        raise
    except Exception as error:
        what = "start a local Ray" if address == "auto" else f"join the Ray cluster at {address}"
        raise EmbedhubError(f"could not {what}: {type(error).__name__}: {error}") from None


@contextlib.contextmanager
def ray_connection(address: str, settings: Settings, *, stay_connected: bool = False) -> Iterator:
    """Ray, connected for the duration: `auto` starts a local Ray (stopped at the end), an
    address joins that cluster (left running). A connection the caller opened before (a notebook,
    a test) is used as it is and left open; concurrent ingests share one connection.

    `stay_connected` (the server): the connection outlives the ingest and serves the next ones,
    as Ray's own drivers do; this process then stays on that cluster until it exits (Ray stops a
    local one at exit). A process that connected and disconnected a few times was seen to have its
    new actors destroyed at once by Ray (as children of a driver it took for dead)."""
    global _connection_users, _connection_address
    ray = import_ray()
    with _connection_lock:
        if _connection_address is None and ray.is_initialized():
            owned = False  # the caller's own connection
        else:
            owned = True
            if _connection_address is None:
                _connect(ray, address, settings)
                _connection_address = address
            elif address != _connection_address:
                raise EmbedhubError(
                    f"this process is connected to Ray at {_connection_address!r}; an ingest on "
                    f"{address!r} needs another process (restart the server to switch clusters)"
                )
            _connection_users += 1
    try:
        yield ray
    finally:
        if owned:
            with _connection_lock:
                _connection_users -= 1
                if _connection_users == 0 and not stay_connected:
                    ray.shutdown()
                    _connection_address = None


class IngestActor:
    """One model copy on the cluster (a Ray actor: `ray.remote` is applied when a run starts)."""

    def __init__(self) -> None:
        self.embedder: FileEmbedder | None = None
        self.load_error: str | None = None

    def load(
        self,
        model_reference: str,
        settings_values: dict,
        model: str,
        native_dimensions: int,
        chunking: tuple[int, int],
        dimensions: int,
    ) -> int:
        """Load the collection's model (once per actor); returns this worker's process id."""
        from embedhub.engine.cache import EmbeddingCache
        from embedhub.kb.chunking import ChunkingOptions
        from embedhub.models.backends import load_encoder

        try:
            encoder = load_encoder(model_reference, Settings(**settings_values))
            if encoder.spec.name != model or encoder.native_dims != native_dimensions:
                raise ModelMismatchError(
                    f"{model_reference} loads {encoder.spec.name} ({encoder.native_dims} dims) on this "
                    f"worker; the collection holds vectors of {model} ({native_dimensions} dims)"
                )
        except Exception as error:
            self.load_error = f"the model {model_reference} did not load on a Ray worker: {error}"
            raise EmbedhubError(self.load_error) from None
        cache = EmbeddingCache(64 * 1024 * 1024)  # in memory: repeated chunks within this actor's files
        ocr = OcrOptions.from_settings(Settings(**settings_values))
        self.embedder = FileEmbedder(encoder, ChunkingOptions(*chunking), dimensions, cache, ocr)
        return os.getpid()

    def prepare(self, files: list[tuple[str, str, bytes]]):
        if self.embedder is None:
            raise EmbedhubError(self.load_error or "the Ray worker has no model loaded")
        return self.embedder.prepare(files)

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Unit:
    files: list[tuple[str, str, bytes]] = field(default_factory=list)
    #: a retry after a worker died: runs alone on an idle actor, so a death is the file's own
    isolated: bool = False

    @property
    def weight(self) -> int:
        return IN_FLIGHT_PER_ACTOR if self.isolated else 1

    @property
    def size(self) -> int:
        return sum(len(data) for _, _, data in self.files)


class RayIngest:
    """Ingest files into a collection on Ray (see the module docstring).

    `address`: 'auto' (a local Ray for this run) or a cluster address; `actors`: model copies
    (default: the cluster's CPUs / `settings.ray_actor_cpus`). `actors` lists the live actor
    handles while files are ingested, `worker_pids` their process ids once their model loaded,
    `started` and `replaced` how many were started and how many replaced dead ones."""

    actor_class = IngestActor

    def __init__(
        self,
        collection: Collection,
        settings: Settings,
        progress: Progress | None = None,
        *,
        address: str | None = None,
        actors: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        stay_connected: bool = False,
    ) -> None:
        self.collection = collection
        self.stay_connected = stay_connected
        self.settings = settings
        self.address = address or settings.ray_address or "auto"
        self.actor_count = actors or settings.ray_actors
        self.writer = DocumentWriter(collection, progress, should_stop=should_stop)
        self.progress = self.writer.progress
        self.actors: list = []
        self.worker_pids: dict = {}
        self.started = 0
        self.replaced = 0

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        glob: str | None = None,
        sync: bool = False,
        exclude: Sequence[Path] = (),
    ) -> IngestReport:
        return self.writer.run(paths, glob, sync, self._distribute, exclude)

    # --- actors -------------------------------------------------------------------------------
    def _wanted_actors(self, ray) -> int:
        if self.actor_count:
            return self.actor_count
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return max(1, cpus // self.settings.ray_actor_cpus)

    def _start_actor(self, ray):
        config = self.collection.config
        remote = ray.remote(self.actor_class).options(
            num_cpus=self.settings.ray_actor_cpus,
            max_restarts=0,
            max_task_retries=0,
            scheduling_strategy="SPREAD",
        )
        actor = remote.remote()
        self.started += 1
        values = {**self.settings.model_dump(), **_DRIVER_ONLY, "threads": self.settings.ray_actor_cpus}
        load = actor.load.remote(
            config.model_reference,
            values,
            config.model,
            config.native_dimensions,
            (config.chunk_tokens, config.chunk_overlap),
            config.dimensions,
        )
        return actor, load

    # --- the driver loop ---------------------------------------------------------------------
    def _distribute(self, files: list[Path]) -> None:
        pending: deque[Path] = deque(files)
        first = self._next_unit(pending)
        if first is None:
            return  # every file unchanged (or unreadable): Ray is not even started
        with ray_connection(self.address, self.settings, stay_connected=self.stay_connected) as ray:
            self._feed(ray, pending, first)

    def _feed(self, ray, pending: deque[Path], first: _Unit) -> None:
        from ray.exceptions import GetTimeoutError, ObjectLostError, RayActorError, RayTaskError

        retries: deque[_Unit] = deque([first])
        attempts: dict[str, int] = {}
        in_flight: dict = {}  # object ref -> (actor, unit or None for a model load)
        busy: dict = {}  # actor -> units in flight
        wanted = self._wanted_actors(ray)
        load_deaths = 0
        self.actors = []
        try:
            while True:
                self.writer.check_stop()
                while True:  # keep every actor fed
                    unit = retries.popleft() if retries else self._next_unit(pending)
                    if unit is None:
                        break
                    actor = self._free_actor(ray, busy, wanted, in_flight, unit.weight)
                    if actor is None:
                        retries.appendleft(unit)
                        break
                    ref = actor.prepare.remote(unit.files)
                    in_flight[ref] = (actor, unit)
                    busy[actor] += unit.weight
                if not any(unit is not None for _, unit in in_flight.values()):
                    return  # nothing left to embed (only model loads may still be running)
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    actor, unit = in_flight.pop(ref)
                    try:
                        result = ray.get(ref)
                    except RayTaskError as error:
                        cause = error.cause if getattr(error, "cause", None) is not None else error
                        raise EmbedhubError(f"a Ray worker failed: {cause}") from None
                    except (RayActorError, ObjectLostError, GetTimeoutError) as error:
                        if unit is None:
                            load_deaths += 1
                            if load_deaths > wanted + 2:
                                raise EmbedhubError(
                                    f"Ray workers died {load_deaths} times while loading the model "
                                    f"{self.collection.config.model_reference} (out of memory?): {error}"
                                ) from None
                        self._replace(ray, actor, busy, in_flight)
                        if unit is not None:
                            self._retry(unit, attempts, retries, error)
                        continue
                    if unit is None:
                        self.worker_pids[actor] = result  # a model loaded
                        continue
                    if actor in busy:
                        busy[actor] -= unit.weight
                    self._write(unit, result)
        finally:
            for actor in self.actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)  # frees its CPUs; a cluster joined by address keeps running
            self.actors = []

    def _next_unit(self, pending: deque[Path]) -> _Unit | None:
        """The next changed files, read and hashed here; unchanged and unreadable ones are reported
        as they are met."""
        unit = _Unit()
        size = 0
        while pending and len(unit.files) < UNIT_FILES and size < UNIT_BYTES:
            path = pending.popleft()
            try:
                data = path.read_bytes()
            except OSError as error:
                self.writer.fail(path, None, f"cannot read the file: {error.strerror or error}")
                continue
            digest = file_hash(data)
            if self.writer.unchanged(path, digest):
                continue
            self.progress.stage(path, "embedding")
            unit.files.append((str(path), digest, data))
            size += len(data)
        return unit if unit.files else None

    def _free_actor(self, ray, busy: dict, wanted: int, in_flight: dict, weight: int):
        """The least busy actor with room for a unit of this weight, starting actors up to
        `wanted` as work appears (a re-run with nothing changed starts none); None when all are
        too full."""
        if len(self.actors) < wanted and all(count > 0 for count in busy.values()):
            actor, load = self._start_actor(ray)
            self.actors.append(actor)
            busy[actor] = 0
            in_flight[load] = (actor, None)
        actor = min(self.actors, key=lambda candidate: busy[candidate])
        return actor if busy[actor] + weight <= IN_FLIGHT_PER_ACTOR else None

    def _replace(self, ray, actor, busy: dict, in_flight: dict) -> None:
        """A dead actor: its other calls fail too (and are retried as they come back); a new actor
        takes its place."""
        if actor not in busy:
            return  # already replaced by an earlier failed call
        with contextlib.suppress(Exception):
            ray.kill(actor)
        del busy[actor]
        self.actors.remove(actor)
        new, load = self._start_actor(ray)
        self.actors.append(new)
        busy[new] = 0
        in_flight[load] = (new, None)
        self.replaced += 1

    def _retry(self, unit: _Unit, attempts: dict[str, int], retries: deque[_Unit], error: Exception) -> None:
        for path, digest, data in unit.files:
            attempts[path] = attempts.get(path, 0) + 1
            if attempts[path] >= ATTEMPTS:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                self.writer.fail(
                    Path(path),
                    digest,
                    f"{Path(path).name}: the Ray worker ingesting it died "
                    f"{attempts[path]} times (last: {reason})",
                )
            else:
                retries.append(_Unit([(path, digest, data)], isolated=True))

    def _write(self, unit: _Unit, result) -> None:
        prepared, computed = result
        report = self.writer.report
        report.embedded_chunks += computed
        report.cached_chunks += sum(len(document.chunks) for document in prepared) - computed
        for document in prepared:
            self.writer.write(document)
