"""Load-test `embedhub serve` against the offline encoder and peer servers, in one run.

What it does, in order (never two measured things at the same time: the machine has few cores):

1. Loads a fixed sample of real documents (BEIR SciFact, ``title + " " + text``; a seeded sample of
   ``--sample`` documents) or, when the data folder is absent, synthetic sentences (with a notice).
2. Offline reference: ``load_encoder(model)`` in this process, ``encoder.encode(batch, truncate=True)``
   over the sample in batches of 32, timing every batch. Each scenario's offline docs/s is computed
   for exactly the texts that scenario sends. The encoder is measured before the servers and again
   after them; the ratio uses the mean of the two, and the drift between them is reported.
3. For each server (embedhub, the naive sentence-transformers app, Infinity): start it as a
   subprocess on 127.0.0.1 with a free port, wait for it to be ready, warm it up, then run the
   scenarios: N concurrent clients (1, 8, 32, 64) sending (a) one text per request and (b) batches of
   32 texts per request to POST /v1/embeddings. Clients are asyncio tasks sharing one
   httpx.AsyncClient; each takes the next request from a shared list until none is left (closed loop).
   Every scenario sends the same texts (a prefix of the sample, repeated when longer than it).
4. Prints a Markdown table (docs/s, ratio to the offline encoder, p50 / p99 latency per request),
   writes it to ``--doc`` and all numbers as JSON to ``--out``.

The embedding cache of embedhub is off (EMBEDHUB_CACHE_MB=0), as is Infinity's disk cache, so every
request does the work. Every loop is bounded: a fixed number of requests per scenario and a deadline
(``--scenario-timeout``) after which no new request starts.

    python benchmarks/serve_load.py --out /tmp/serve_load.json \\
        --infinity-python /tmp/infinity-venv/bin/python

The data is research data (see shared/data/*/SOURCE.txt): it is read, never copied.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from embedhub.bench.runner import probe_infinity

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "beir-scifact" / "corpus.jsonl"
NAIVE_SERVER = Path(__file__).resolve().parent / "peers" / "naive_st_server.py"
HOST = "127.0.0.1"
BATCH = 32
PEER_NAMES = ("embedhub", "naive", "infinity")
PEER_TITLES = {
    "embedhub": "embedhub",
    "naive": "naive (sentence-transformers + FastAPI)",
    "infinity": "Infinity (infinity-emb, torch engine)",
}

# ---------------------------------------------------------------- texts


def load_texts(path: Path, sample: int, field_name: str, seed: int = 0) -> tuple[list[str], str]:
    """A seeded sample of SciFact documents, or synthetic sentences when the file is absent."""
    if not path.exists():
        print(f"NOTICE: {path} is absent; using {sample} synthetic sentences instead of real documents.")
        rng = random.Random(seed)
        words = ["cell", "protein", "gene", "expression", "patients", "study", "results", "model"]
        words += ["increased", "reduced", "analysis", "response", "treatment", "risk", "effect", "mice"]
        texts = [" ".join(rng.choice(words) for _ in range(rng.randint(40, 220))) for _ in range(sample)]
        return texts, f"{sample} synthetic sentences (40-220 words; SciFact not found at {path})"
    docs = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if field_name == "title":
                text = row.get("title", "")
            else:
                text = f"{row.get('title', '')} {row.get('text', '')}"
            if text.strip():
                docs.append(text.strip())
    chosen = sorted(random.Random(seed).sample(range(len(docs)), min(sample, len(docs))))
    what = "title" if field_name == "title" else 'title + " " + text'
    return [docs[i] for i in chosen], (
        f"{len(chosen)} BEIR SciFact corpus documents ({what}), seeded sample (seed {seed}) of {len(docs)}"
    )


def scenario_texts(texts: Sequence[str], total: int) -> list[str]:
    """The first `total` texts of the sample, wrapping around when `total` is longer."""
    return [texts[i % len(texts)] for i in range(total)]


# ---------------------------------------------------------------- offline reference


@dataclass
class OfflineRun:
    batch_seconds: list[float]
    tokens: list[int]

    def seconds_for(self, total: int) -> float:
        """Time the offline encoder took for the first `total` texts of the (wrapped) sample."""
        full, rest = divmod(total // BATCH, len(self.batch_seconds))
        return full * sum(self.batch_seconds) + sum(self.batch_seconds[:rest])

    @property
    def docs_per_second(self) -> float:
        return len(self.batch_seconds) * BATCH / sum(self.batch_seconds)


class OfflineEncoder:
    """embedhub's encoder in this process: the reference the servers are compared with."""

    def __init__(self, model: str, home: Path) -> None:
        from embedhub.config import Settings
        from embedhub.models.backends import load_encoder

        self.encoder = load_encoder(model, Settings(home=home, cache_mb=0))
        spec = self.encoder.spec
        self.info = {"name": spec.name, "max_tokens": self.encoder.max_tokens, "dimensions": spec.dimensions}

    def measure(self, texts: Sequence[str]) -> OfflineRun:
        """One timed pass over the texts in batches of 32 (after one untimed warm-up batch)."""
        self.encoder.encode(list(texts[:BATCH]), truncate=True)
        seconds, tokens = [], []
        for start in range(0, len(texts), BATCH):
            chunk = list(texts[start : start + BATCH])
            began = time.perf_counter()
            result = self.encoder.encode(chunk, truncate=True)
            seconds.append(time.perf_counter() - began)
            tokens.append(result.prompt_tokens)
        return OfflineRun(seconds, tokens)


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Peer:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    embeddings_path: str
    model: str
    extra_body: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


def model_folder(model: str, home: Path) -> Path:
    """The local weights folder of a model reference, as embedhub resolves it."""
    from embedhub.config import Settings
    from embedhub.models.loading import resolve

    return resolve(model, Settings(home=home, cache_mb=0)).folder


# The environment the servers get: this process's own, as it was before main() changed anything.
ORIGINAL_ENV = dict(os.environ)


def base_env(home: Path) -> dict[str, str]:
    env = dict(ORIGINAL_ENV)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        EMBEDHUB_HOME=str(home),
        EMBEDHUB_CACHE_MB="0",
        # Infinity reports anonymous usage statistics unless told not to; nothing leaves this machine.
        INFINITY_ANONYMOUS_USAGE_STATS="0",
        DO_NOT_TRACK="1",
    )
    return env


def make_peer(name: str, args: argparse.Namespace, home: Path, served_name: str) -> tuple[Peer | None, str]:
    """The peer's launch description, or None and the reason it is skipped."""
    port = free_port()
    env = base_env(home)
    if name == "embedhub":
        embedhub_cli = Path(sys.executable).with_name("embedhub")
        command = [str(embedhub_cli)] if embedhub_cli.exists() else [sys.executable, "-m", "embedhub.cli"]
        command += ["serve", "--model", args.model, "--host", HOST, "--port", str(port)]
        return Peer(name, command, env, port, "/ready", "/v1/embeddings", served_name, {"truncate": True}), ""
    folder = model_folder(args.model, home)
    if name == "naive":
        command = [sys.executable, str(NAIVE_SERVER), "--model-path", str(folder)]
        command += ["--name", served_name, "--port", str(port)]
        return Peer(name, command, env, port, "/ready", "/v1/embeddings", served_name), ""
    if name == "infinity":
        python = Path(args.infinity_python) if args.infinity_python else None
        usable, detail = probe_infinity(python)
        if not usable:
            return None, detail
        command = [str(python), "-m", "infinity_emb.cli", "v2", "--model-id", str(folder)]
        command += ["--served-model-name", served_name, "--engine", "torch", "--device", "cpu"]
        command += ["--no-vector-disk-cache", "--host", HOST, "--port", str(port)]
        return Peer(name, command, env, port, "/health", "/embeddings", served_name), detail
    raise ValueError(name)


def start(peer: Peer, log_dir: Path, timeout: float) -> float:
    """Start the server and wait for its ready route to answer 200; returns seconds to ready."""
    peer.log_path = log_dir / f"{peer.name}.log"
    log = peer.log_path.open("wb")
    began = time.perf_counter()
    peer.process = subprocess.Popen(
        peer.command, env=peer.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    deadline = began + timeout
    with httpx.Client(timeout=5) as client:
        while time.perf_counter() < deadline:
            if peer.process.poll() is not None:
                raise RuntimeError(f"{peer.name} exited with {peer.process.returncode}; see {peer.log_path}")
            try:
                if client.get(peer.base_url + peer.ready_path).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    raise RuntimeError(f"{peer.name} not ready after {timeout:.0f} s; see {peer.log_path}")


def stop(peer: Peer) -> None:
    process = peer.process
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


# ---------------------------------------------------------------- load


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (Linux /proc; 0 elsewhere)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    pids = [pid]
    try:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    pids.append(int(entry.name))
    except OSError:
        pass
    for one in pids:
        try:
            stat = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(stat[11]) + int(stat[12])) / tick
    return total


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class ScenarioResult:
    peer: str
    mode: str  # "single" | "batch32"
    clients: int
    texts: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: list[str]
    cut_short: bool
    server_cpu: float = 0.0  # cores: server CPU seconds / wall seconds
    client_cpu: float = 0.0
    embedhub_batches: dict[str, float] | None = None

    @property
    def docs_per_second(self) -> float:
        done = len(self.latencies) * (1 if self.mode == "single" else BATCH)
        return done / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run_scenario(
    peer: Peer, mode: str, clients: int, texts: Sequence[str], deadline_seconds: float
) -> ScenarioResult:
    per_request = 1 if mode == "single" else BATCH
    bodies = []
    for start_index in range(0, len(texts), per_request):
        chunk = list(texts[start_index : start_index + per_request])
        body = {"model": peer.model, "input": chunk[0] if mode == "single" else chunk, **peer.extra_body}
        bodies.append(orjson.dumps(body))
    latencies: list[float] = []
    errors: list[str] = []
    next_index = 0
    cut_short = False
    url = peer.base_url + peer.embeddings_path
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"content-type": "application/json"}
    server_cpu = process_cpu_seconds(peer.process.pid) if peer.process else 0.0
    client_cpu = own_cpu_seconds()
    began = time.perf_counter()
    deadline = began + deadline_seconds

    async with httpx.AsyncClient(timeout=httpx.Timeout(900.0, connect=30.0), limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index, cut_short
            while next_index < len(bodies):
                if time.perf_counter() > deadline:
                    cut_short = True
                    return
                body = bodies[next_index]
                next_index += 1
                sent = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError as error:
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                elapsed = time.perf_counter() - sent
                if response.status_code != 200:
                    errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    continue
                data = orjson.loads(response.content)["data"]
                if len(data) != per_request:
                    errors.append(f"{len(data)} embeddings for {per_request} inputs")
                    continue
                latencies.append(elapsed)

        await asyncio.gather(*(worker() for _ in range(clients)))
    seconds = time.perf_counter() - began
    server_cpu = (process_cpu_seconds(peer.process.pid) if peer.process else 0.0) - server_cpu
    client_cpu = own_cpu_seconds() - client_cpu
    return ScenarioResult(
        peer.name,
        mode,
        clients,
        len(texts),
        len(bodies),
        seconds,
        latencies,
        errors,
        cut_short,
        server_cpu / seconds,
        client_cpu / seconds,
    )


def scrape_batches(peer: Peer) -> dict[str, float]:
    """embedhub's forward-pass counters from /metrics (count, inputs, model seconds)."""
    values = {}
    text = httpx.get(peer.base_url + "/metrics", timeout=30).text
    for line in text.splitlines():
        for key, metric in (
            ("passes", "embedhub_batch_items_count"),
            ("items", "embedhub_batch_items_sum"),
            ("model_seconds", "embedhub_batch_seconds_sum"),
        ):
            if line.startswith(metric + " "):
                values[key] = float(line.split()[1])
    return values


def run_one(
    peer: Peer, mode: str, clients: int, texts: Sequence[str], args: argparse.Namespace
) -> ScenarioResult:
    """One scenario, with embedhub's own forward-pass counters when the peer is embedhub."""
    before = scrape_batches(peer) if peer.name == "embedhub" else None
    result = asyncio.run(run_scenario(peer, mode, clients, texts, args.scenario_timeout))
    extra = ""
    if before is not None:
        after = scrape_batches(peer)
        delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
        delta["busy_fraction"] = delta.get("model_seconds", 0.0) / result.seconds
        delta["mean_batch"] = delta.get("items", 0.0) / max(delta.get("passes", 0.0), 1.0)
        result.embedhub_batches = delta
        extra = f", model busy {delta['busy_fraction']:.0%}, {delta['mean_batch']:.1f} inputs/pass"
    print(
        f"  {mode:7s} clients={clients:3d}: {result.docs_per_second:7.1f} docs/s, "
        f"p50 {fmt_ms(result.percentile(0.5))} ms, p99 {fmt_ms(result.percentile(0.99))} ms, "
        f"{len(result.errors)} errors, CPU cores: server {result.server_cpu:.2f} "
        f"client {result.client_cpu:.2f}{extra}",
        flush=True,
    )
    if result.errors:
        print(f"    first error: {result.errors[0]}")
    return result


def warm_up(peer: Peer, texts: Sequence[str]) -> None:
    with httpx.Client(timeout=300) as client:
        for body in (
            {"model": peer.model, "input": texts[0], **peer.extra_body},
            {"model": peer.model, "input": list(texts[:8]), **peer.extra_body},
        ):
            response = client.post(peer.base_url + peer.embeddings_path, json=body)
            if response.status_code != 200:
                raise RuntimeError(
                    f"{peer.name} warm-up answered {response.status_code}: {response.text[:300]}"
                )


# ---------------------------------------------------------------- report


def fmt_ms(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    return f"{seconds * 1000:,.0f}"


Rates = dict[tuple[str, str, int], float]  # (peer, mode, clients) -> offline docs/s


def markdown_table(results: list[ScenarioResult], offline_rate: Rates) -> str:
    lines = [
        "| server | inputs per request | clients | requests | docs/s | ratio to offline | p50 ms | p99 ms "
        "| server CPU (cores) | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        ratio = ratio_of(result, offline_rate)
        note = " (cut short)" if result.cut_short else ""
        lines.append(
            f"| {PEER_TITLES[result.peer]} | {'1' if result.mode == 'single' else BATCH} | {result.clients} "
            f"| {len(result.latencies)}/{result.requests}{note} | {result.docs_per_second:.1f} | {ratio:.2f} "
            f"| {fmt_ms(result.percentile(0.5))} | {fmt_ms(result.percentile(0.99))} "
            f"| {result.server_cpu:.2f} | {len(result.errors)} |"
        )
    return "\n".join(lines)


def ratio_of(result: ScenarioResult, offline_rate: Rates) -> float:
    rate = offline_rate.get((result.peer, result.mode, result.clients), 0.0)
    return result.docs_per_second / rate if rate else float("nan")


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="Model reference (embedhub's --model).")
    parser.add_argument("--out", type=Path, required=True, help="Write all numbers here as JSON.")
    parser.add_argument(
        "--doc", type=Path, default=None, help="Write the Markdown report here (e.g. docs/performance.md)."
    )
    parser.add_argument(
        "--infinity-python", default=None, help="Python of a venv with infinity-emb[server,torch]."
    )
    parser.add_argument(
        "--peers", default=",".join(PEER_NAMES), help="Comma list of embedhub,naive,infinity."
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="BEIR corpus.jsonl to take texts from."
    )
    parser.add_argument(
        "--texts",
        choices=("docs", "titles"),
        default="docs",
        help="docs: title + text; titles: short inputs.",
    )
    parser.add_argument("--sample", type=int, default=1024, help="Documents in the fixed sample.")
    parser.add_argument("--clients", default="1,8,32,64", help="Comma list of concurrent client counts.")
    parser.add_argument("--single-texts", type=int, default=256, help="Texts per single-text scenario.")
    parser.add_argument(
        "--batch-texts",
        type=int,
        default=512,
        help="Texts per batch scenario (raised to clients x 32, so every client sends at least one request).",
    )
    parser.add_argument(
        "--scenario-timeout", type=float, default=300.0, help="No new request after this (s)."
    )
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="Seconds to wait for a server.")
    parser.add_argument("--keep-logs", action="store_true", help="Keep the temp folder with server logs.")
    args = parser.parse_args(argv)
    for name in ("sample", "single_texts", "batch_texts"):
        value = getattr(args, name)
        if value < BATCH or value % BATCH:
            parser.error(f"--{name.replace('_', '-')} must be a positive multiple of {BATCH}")
    args.peer_list = [name.strip() for name in args.peers.split(",") if name.strip()]
    unknown = set(args.peer_list) - set(PEER_NAMES)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from {PEER_NAMES}")
    args.client_list = [int(count) for count in args.clients.split(",")]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    # The offline reference runs embedhub's encoder as `embedhub serve` runs it: OpenMP threads
    # wait passively (set by the server's model factory unless the environment says otherwise).
    # Set before torch loads; the peers get the environment as it was.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    started_at = dt.datetime.now().astimezone()
    load_before = os.getloadavg()
    field_name = "title" if args.texts == "titles" else "doc"
    texts, text_note = load_texts(args.data, args.sample, field_name)
    print(f"texts: {text_note}")

    workdir = Path(tempfile.mkdtemp(prefix="embedhub-serve-load-"))
    home = workdir / "home"
    home.mkdir()

    def total_for(mode: str, clients: int) -> int:
        base = args.single_texts if mode == "single" else args.batch_texts
        return base if mode == "single" else max(base, clients * BATCH)

    print(f"offline encoder ({args.model}) ...", flush=True)
    offline = OfflineEncoder(args.model, home)
    model_info = offline.info
    offline_runs = [offline.measure(texts)]
    loads = [os.getloadavg()]
    print(f"  {offline_runs[-1].docs_per_second:.1f} docs/s over {len(texts)} texts, load {loads[-1][0]:.2f}")

    results: list[ScenarioResult] = []
    peers_info: dict[str, dict[str, Any]] = {}
    offline_rate: dict[tuple[str, str, int], float] = {}
    for name in args.peer_list:
        peer, note = make_peer(name, args, home, model_info["name"])
        if peer is None:
            print(f"SKIP {name}: {note}")
            peers_info[name] = {"skipped": note}
            continue
        info: dict[str, Any] = {"command": " ".join(peer.command), "version": note}
        peers_info[name] = info
        print(f"{name}: starting on {peer.base_url} ...", flush=True)
        try:
            info["ready_seconds"] = round(start(peer, workdir, args.ready_timeout), 1)
            warm_up(peer, texts)
            for mode in ("single", "batch32"):
                for clients in args.client_list:
                    results.append(
                        run_one(peer, mode, clients, scenario_texts(texts, total_for(mode, clients)), args)
                    )
        except Exception as error:
            info["failed"] = f"{type(error).__name__}: {error}"
            print(f"FAILED {name}: {info['failed']}")
            if peer.log_path and peer.log_path.exists():
                print(peer.log_path.read_text(errors="replace")[-2000:])
        finally:
            stop(peer)
        # The offline reference again, right after this server: each server is compared with the
        # mean of the offline runs just before and just after it, so slow drifts in the machine's
        # load weigh on both sides alike.
        print("offline encoder ...", flush=True)
        offline_runs.append(offline.measure(texts))
        loads.append(os.getloadavg())
        around = offline_runs[-2:]
        print(f"  {around[-1].docs_per_second:.1f} docs/s, load {loads[-1][0]:.2f}")
        info["offline_docs_per_second_around"] = [round(run.docs_per_second, 2) for run in around]
        info["load_average_around"] = [round(load[0], 2) for load in loads[-2:]]
        for mode in ("single", "batch32"):
            for clients in args.client_list:
                total = total_for(mode, clients)
                seconds = statistics.mean(run.seconds_for(total) for run in around)
                offline_rate[(name, mode, clients)] = total / seconds

    table = markdown_table(results, offline_rate)
    print()
    print(table)
    finished_at = dt.datetime.now().astimezone()
    load_after = os.getloadavg()
    tokens_mean = sum(offline_runs[0].tokens) / len(texts)
    summary = {
        "started": started_at.isoformat(timespec="seconds"),
        "finished": finished_at.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "omp_wait_policy_offline": os.environ.get("OMP_WAIT_POLICY"),
            "omp_wait_policy_peers": ORIGINAL_ENV.get("OMP_WAIT_POLICY", "(unset: libgomp default)"),
        },
        "model": model_info,
        "texts": text_note,
        "mean_tokens_per_text": round(tokens_mean, 1),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(sys.argv[1:] if argv is None else argv)]),
        "offline": {
            "docs_per_second": [round(run.docs_per_second, 2) for run in offline_runs],
            "load_average": [round(load[0], 2) for load in loads],
            "batch_seconds": [run.batch_seconds for run in offline_runs],
        },
        "peers": peers_info,
        "scenarios": [
            {
                "peer": r.peer,
                "mode": r.mode,
                "clients": r.clients,
                "texts": r.texts,
                "requests": r.requests,
                "completed": len(r.latencies),
                "seconds": round(r.seconds, 3),
                "docs_per_second": round(r.docs_per_second, 2),
                "offline_docs_per_second": round(offline_rate[(r.peer, r.mode, r.clients)], 2),
                "ratio": round(ratio_of(r, offline_rate), 3),
                "p50_ms": round(r.percentile(0.5) * 1000, 1),
                "p99_ms": round(r.percentile(0.99) * 1000, 1),
                "errors": r.errors[:5],
                "error_count": len(r.errors),
                "cut_short": r.cut_short,
                "server_cpu_cores": round(r.server_cpu, 2),
                "client_cpu_cores": round(r.client_cpu, 2),
                "embedhub_batches": r.embedhub_batches,
            }
            for r in results
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON: {args.out}")
    if args.keep_logs:
        print(f"server logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.doc:
        write_doc(args.doc, render_doc(summary, table, results, offline_rate))
        print(f"Markdown: {args.doc}")
    return 0


DOC_BEGIN = "<!-- serve_load.py results: begin -->"
DOC_END = "<!-- serve_load.py results: end -->"


def write_doc(path: Path, section: str) -> None:
    """Replace the results section between the markers, keeping the hand-written text around it."""
    block = f"{DOC_BEGIN}\n{section}{DOC_END}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if DOC_BEGIN in text and DOC_END in text:
        head, rest = text.split(DOC_BEGIN, 1)
        tail = rest.split(DOC_END, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "# Performance\n\n") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def render_doc(
    summary: dict[str, Any],
    table: str,
    results: list[ScenarioResult],
    offline_rate: Rates,
) -> str:
    machine = summary["machine"]
    lines = [
        "## Results",
        "",
        f"- Date: {summary['started']} to {summary['finished']}",
        f"- Machine: {machine['cpus']} CPU cores, no GPU "
        f"({machine['platform']}, Python {machine['python']}); "
        f"load average before {machine['load_average_before']}, after {machine['load_average_after']}",
        f"- Model: {summary['model']['name']} ({summary['model']['dimensions']} dims, inputs cut at "
        f"{summary['model']['max_tokens']} tokens)",
        f"- Texts: {summary['texts']}; {summary['mean_tokens_per_text']} tokens per text on average "
        "as embedded (after truncation)",
        "- Offline encoder (embedhub's encoder in the benchmark process, batches of "
        f"{BATCH}, same texts), measured before the first server and after each: "
        + ", ".join(f"{rate} docs/s" for rate in summary["offline"]["docs_per_second"])
        + " (load average then: "
        + ", ".join(str(load) for load in summary["offline"]["load_average"])
        + ")",
        f"- Command: `python {summary['command']}`",
        "",
        table,
        "",
    ]
    embedhub = [r for r in results if r.peer == "embedhub" and r.clients == 32]
    for result in embedhub:
        ratio = ratio_of(result, offline_rate)
        kind = "single texts" if result.mode == "single" else f"batches of {BATCH}"
        verdict = "met" if ratio >= 0.8 else "NOT met"
        lines.append(f"- Target ratio >= 0.8 with 32 clients, {kind}: {ratio:.2f}, {verdict}.")
    skipped = {name: info for name, info in summary["peers"].items() if "skipped" in info or "failed" in info}
    for name, info in skipped.items():
        lines.append(f"- {PEER_TITLES[name]}: not measured ({info.get('skipped') or info.get('failed')}).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
