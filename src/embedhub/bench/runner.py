"""Plan and run `embedhub bench`: one child process per (model, peer), the results as one table.

Order: the matmul-peak child first (it also counts every model's forward pass), then per model
sentence-transformers (the baseline every ratio divides by), Infinity (one child per engine),
and every embedhub backend asked for. A child that fails or times out is reported and the run
goes on; a peer that cannot run here (Infinity without its venv) is reported as skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedhub.bench.flops import PRECISION_OF, ForwardCost
from embedhub.bench.texts import TextSet, build_text_sets, read_corpus, synthetic_documents
from embedhub.config import Settings
from embedhub.errors import ConfigurationError, UnknownModelError
from embedhub.models.cpu import detect_cpu
from embedhub.models.spec import ModelSpec

BASELINE = "sentence-transformers"
INFINITY = "infinity"
PEERS = (BASELINE, INFINITY)
RANDOM_PREFIX = "random-qwen3-"
DEFAULT_MODELS = ("all-MiniLM-L6-v2", "multilingual-e5-small-q4", f"{RANDOM_PREFIX}0.6B")
DEFAULT_LENGTHS = (128, 512, 2048)
DEFAULT_BATCH_SIZES = (1, 32)
DEFAULT_INFINITY_ENGINES = ("torch", "optimum")
DEFAULT_CORPUS = Path("../shared/data/beir-scifact/corpus.jsonl")
#: Why Infinity's optimum engine is not run on Qwen3 (checked in infinity_emb's optimum embedder).
OPTIMUM_DECODER = (
    "Infinity's optimum engine feeds the ONNX graph only the tokenizer's outputs, and a Qwen3 "
    "(decoder) export also needs position_ids (infinity-emb 0.0.78 on the tiny Qwen3: 'Input "
    "position_ids is required by model but not provided')"
)
#: Files above this size (weights) are linked into a model view, smaller ones copied.
LINK_ABOVE_BYTES = 32 * 1024 * 1024
INFINITY_WORKER = Path(__file__).resolve().with_name("infinity_worker.py")
#: Special tokens a tokenizer.json-only folder is searched for, to write the tokenizer_config.json
#: sentence-transformers and Infinity need (AutoTokenizer cannot guess them).
SPECIAL_TOKENS = {
    "pad_token": ("<pad>", "[PAD]", "<|endoftext|>"),
    "unk_token": ("<unk>", "[UNK]"),
    "cls_token": ("<s>", "[CLS]"),
    "sep_token": ("</s>", "[SEP]"),
    "bos_token": ("<s>", "[CLS]"),
    "eos_token": ("</s>", "[SEP]", "<|endoftext|>"),
    "mask_token": ("<mask>", "[MASK]"),
}


@dataclass
class BenchOptions:
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    backends: list[str] | None = None  # None: the peers and every installed embedhub backend
    lengths: list[int] = field(default_factory=lambda: list(DEFAULT_LENGTHS))
    batch_sizes: list[int] = field(default_factory=lambda: list(DEFAULT_BATCH_SIZES))
    docs: int = 64
    seconds: float = 30.0
    infinity_python: Path | None = None
    infinity_engines: list[str] = field(default_factory=lambda: list(DEFAULT_INFINITY_ENGINES))
    threads: int | None = None
    timeout: float = 3600.0
    corpus: Path = DEFAULT_CORPUS
    command: str = ""


@dataclass
class BenchModel:
    """A model to measure: its name, what embedhub children load, and the folders peers load."""

    name: str
    reference: str
    folder: Path
    spec: ModelSpec
    view: Path | None = None  # a temporary copy for the peers (see model_view)
    text_sets: list[TextSet] = field(default_factory=list)
    requested: dict[int, list[int]] = field(default_factory=dict)  # length run -> lengths asked


def parse_positive_ints(value: str, option: str) -> list[int]:
    """'128,512' -> [128, 512]; anything else is an error naming the option."""
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        numbers = []
    if not numbers or any(number < 1 for number in numbers):
        raise ConfigurationError(f"{option} takes positive whole numbers separated by commas, not {value!r}")
    return sorted(set(numbers))


def split_names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def choose_backends(names: list[str] | None) -> list[str]:
    """The peers and embedhub backends to run, baseline first. An unknown name, or an embedhub
    backend that is not installed, is an error listing the choices."""
    from embedhub.models.backends import BACKENDS, available_backends, get_backend

    if names is None:  # backends that run this machine's weights (not remote endpoints)
        return [*PEERS, *(name for name in available_backends() if not BACKENDS[name].scheme)]
    choices = [*PEERS, *BACKENDS]
    chosen = []
    for name in names:
        key = name.strip().lower()
        if key not in choices:
            raise ConfigurationError(f"unknown backend {name!r} for bench; choose from: {', '.join(choices)}")
        if key in BACKENDS:
            get_backend(key)  # not installed: an error naming the extra
        if key not in chosen:
            chosen.append(key)
    return sorted(chosen, key=lambda key: (key != BASELINE, key != INFINITY))


def resolve_model(reference: str, settings: Settings) -> BenchModel:
    """A registry name, a local folder, or random-qwen3-SHAPE (built offline once, into the cache)."""
    from embedhub.models.loading import model_folder, resolve
    from embedhub.models.random_model import SHAPES, make_random_model

    if reference.lower().startswith(RANDOM_PREFIX):
        shape = next(
            (name for name in SHAPES if name.lower() == reference[len(RANDOM_PREFIX) :].lower()), None
        )
        if shape is None:
            raise UnknownModelError(f"unknown random model {reference!r}; choose one of: {_model_choices()}")
        folder = settings.cache_dir / "random-models" / f"qwen3-{shape}-seed0"
        if not (folder / "embedhub.json").exists():
            print(
                f"building the random-weight Qwen3 {shape} model in {folder} ...", file=sys.stderr, flush=True
            )
            make_random_model(shape, folder, seed=0, cache_dir=settings.cache_dir)
        reference = str(folder)
    try:
        resolved = resolve(reference, settings)
    except UnknownModelError as error:
        raise UnknownModelError(f"{error}; bench takes one of: {_model_choices()}") from None
    return BenchModel(resolved.spec.name, reference, model_folder(resolved, settings), resolved.spec)


def _model_choices() -> str:
    from embedhub.models.random_model import SHAPES
    from embedhub.models.registry import REGISTRY

    return ", ".join(
        [*REGISTRY.names(), *(f"{RANDOM_PREFIX}{shape}" for shape in SHAPES), "a local model folder"]
    )


def prepare_texts(model: BenchModel, documents: list[str], options: BenchOptions, settings: Settings) -> None:
    """One text set per distinct length the model can run; lengths above its maximum share it."""
    from embedhub.models.loading import load_tokenizer

    model.requested = {}
    for requested in options.lengths:
        model.requested.setdefault(min(requested, model.spec.max_tokens), []).append(requested)
    asked = [lengths[0] for lengths in model.requested.values()]
    tokenizer = load_tokenizer(model.folder, model.spec, settings)
    count = max(2, max(options.batch_sizes))
    model.text_sets = build_text_sets(documents, tokenizer, model.spec, asked, count)


def model_view(model: BenchModel, workdir: Path) -> Path:
    """A temporary copy of the model folder for the peers: weights linked, small files copied
    (Infinity writes files beside the model, which must never reach the real folder), plus, when
    the folder is not a sentence-transformers folder, the module files that give
    sentence-transformers and Infinity the pooling, normalisation and tokenizer embedhub uses."""
    from tokenizers import Tokenizer

    view = workdir / "peer-folders" / model.name
    view.mkdir(parents=True)
    for entry in model.folder.iterdir():
        if entry.is_file() and entry.stat().st_size < LINK_ABOVE_BYTES:
            shutil.copy2(entry, view / entry.name)
        elif entry.is_dir():
            shutil.copytree(entry, view / entry.name, symlinks=True)
        else:
            (view / entry.name).symlink_to(entry.resolve())
    tokenizer_config = view / "tokenizer_config.json"
    if tokenizer_config.exists():
        # transformers 5 writes "extra_special_tokens": [], which the transformers Infinity pins
        # (4.x) cannot read (it expects a mapping); an empty one means nothing either way.
        settings = json.loads(tokenizer_config.read_text(encoding="utf-8"))
        if settings.get("extra_special_tokens") == []:
            del settings["extra_special_tokens"]
            tokenizer_config.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    if (model.folder / "modules.json").exists():
        return view
    spec = model.spec
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    modules.append(
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
    )
    if spec.normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
        (view / "2_Normalize").mkdir()
    (view / "modules.json").write_text(json.dumps(modules, indent=2))
    (view / "1_Pooling").mkdir()
    pooling = {
        "word_embedding_dimension": spec.dimensions,
        "pooling_mode_cls_token": spec.pooling == "cls",
        "pooling_mode_mean_tokens": spec.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_lasttoken": spec.pooling == "last_token",
        "include_prompt": True,
    }
    (view / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    (view / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": spec.max_tokens, "do_lower_case": False})
    )
    if not (model.folder / "tokenizer_config.json").exists():
        tokenizer = Tokenizer.from_file(str(model.folder / "tokenizer.json"))
        config: dict[str, Any] = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": spec.max_tokens,
        }
        for role, candidates in SPECIAL_TOKENS.items():
            found = next((token for token in candidates if tokenizer.token_to_id(token) is not None), None)
            if found:
                config[role] = found
        (view / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return view


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child, offline, plus `extra`."""
    environment = dict(os.environ)
    environment.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **(extra or {}))
    return environment


def run_child(
    command: list[str], job: dict[str, Any], workdir: Path, name: str, timeout: float, env: dict[str, str]
) -> dict[str, Any]:
    """Run one child to completion (or its timeout); its result, or the reason there is none."""
    job_path, result_path, log_path = (
        workdir / f"{name}.{suffix}" for suffix in ("job.json", "result.json", "log")
    )
    job_path.write_text(json.dumps(job), encoding="utf-8")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, str(job_path), str(result_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

        def pump() -> None:  # keep the log, and show the per-cell lines as they come
            for line in process.stdout:
                log.write(line)
                if line.startswith(b"  length"):
                    print(line.decode(errors="replace"), end="", file=sys.stderr, flush=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            reader.join(5)
            return {"error": f"timed out after {timeout:.0f} s (--timeout)", "log_tail": _tail(log_path)}
        except BaseException:  # Ctrl-C: the child runs in its own session, so stop it too
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        reader.join(5)
    if not result_path.exists():
        return {
            "error": f"exited with status {process.returncode} without a result (killed, or out of memory?)",
            "log_tail": _tail(log_path),
        }
    result = json.loads(result_path.read_text(encoding="utf-8"))
    if "error" in result:
        result["log_tail"] = _tail(log_path)
    return result


def _tail(path: Path, characters: int = 2000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-characters:] if path.exists() else ""


def probe_infinity(python: Path | None) -> tuple[bool, str]:
    """Whether Infinity can run: (True, its version) or (False, the reason it is skipped)."""
    if python is None:
        return False, "no --infinity-python given (Infinity needs its own venv: docs/performance.md)"
    if not python.exists():
        return False, f"--infinity-python {python} does not exist"
    try:
        probe = subprocess.run(
            [
                str(python),
                "-c",
                "import infinity_emb, torch; print(infinity_emb.__version__, torch.__version__)",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env=child_environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"{python} could not run: {error}"
    if probe.returncode != 0:
        return False, f"infinity_emb does not import with {python}: {probe.stderr.strip()[-300:]}"
    return True, probe.stdout.strip()


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Everything: validate, build texts, run every child, assemble the report."""
    settings = Settings() if options.threads is None else Settings(threads=options.threads)
    backends = choose_backends(options.backends)
    if options.docs < 1 or options.seconds <= 0:
        raise ConfigurationError("--docs must be at least 1 and --seconds above 0")
    models: list[BenchModel] = []
    for reference in options.models:
        model = resolve_model(reference, settings)
        if all(model.name != other.name for other in models):  # the same model named twice
            models.append(model)
    started = dt.datetime.now().astimezone()
    load_before = os.getloadavg()
    documents = read_corpus(options.corpus)
    if documents is None:
        documents = synthetic_documents(200)
        source = f"synthetic English sentences ({options.corpus} is absent)"
        print(f"NOTICE: {source}", file=sys.stderr)
    else:
        source = f"BEIR SciFact corpus ({options.corpus}, {len(documents)} documents), concatenated"
    workdir = Path(tempfile.mkdtemp(prefix="embedhub-bench-"))
    runs: list[dict[str, Any]] = []
    try:
        for model in models:
            prepare_texts(model, documents, options, settings)
            if BASELINE in backends or INFINITY in backends:
                model.view = model_view(model, workdir)
        base_job = {
            "threads": settings.threads,
            "batch_sizes": options.batch_sizes,
            "docs": options.docs,
            "seconds": options.seconds,
        }
        worker = [sys.executable, "-m", "embedhub.bench.worker"]
        print("matmul peaks and forward-pass costs ...", file=sys.stderr, flush=True)
        peaks_job = {
            **base_job,
            "kind": "peaks",
            "peak_seconds": min(2.0, options.seconds),
            "cost_folders": {model.name: str(model.folder) for model in models},
        }
        peaks = run_child(worker, peaks_job, workdir, "peaks", options.timeout, child_environment())
        infinity_ready, infinity_note = (
            probe_infinity(options.infinity_python) if INFINITY in backends else (False, "")
        )
        for model in models:
            for backend in backends:
                runs.extend(
                    _run_peer(
                        model, backend, base_job, worker, workdir, options, infinity_ready, infinity_note
                    )
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finished = dt.datetime.now().astimezone()
    return assemble(options, models, backends, peaks, runs, source, started, finished, load_before)


def _run_peer(
    model: BenchModel,
    backend: str,
    base_job: dict[str, Any],
    worker: list[str],
    workdir: Path,
    options: BenchOptions,
    infinity_ready: bool,
    infinity_note: str,
) -> list[dict[str, Any]]:
    """The runs of one peer on one model (Infinity: one per engine)."""
    use_formatted = backend in PEERS
    text_sets = [
        {
            "length": text_set.length,
            "texts": list(text_set.formatted if use_formatted else text_set.texts),
            "tokens": list(text_set.tokens),
        }
        for text_set in model.text_sets
    ]
    job = {
        **base_job,
        "model": {
            "name": model.name,
            "reference": model.reference,
            "folder": str(model.folder),
            "view": str(model.view),
        },
        "text_sets": text_sets,
    }
    if backend == INFINITY:
        if not infinity_ready:
            return [
                {
                    "model": model.name,
                    "peer": INFINITY,
                    "backend": INFINITY,
                    "label": "Infinity",
                    "skipped": infinity_note,
                }
            ]
        return [_run_infinity(model, engine, job, workdir, options) for engine in options.infinity_engines]
    kind = BASELINE if backend == BASELINE else "embedhub"
    print(f"{model.name}: {backend} ...", file=sys.stderr, flush=True)
    result = run_child(
        worker,
        {**job, "kind": kind, "backend": backend},
        workdir,
        f"{model.name}-{backend}",
        options.timeout,
        child_environment(),
    )
    if "error" in result:
        print(f"  FAILED: {result['error']}", file=sys.stderr, flush=True)
    peer = "embedhub" if kind == "embedhub" else BASELINE
    label = f"embedhub {backend}" if kind == "embedhub" else "sentence-transformers fp32"
    return [{"model": model.name, "peer": peer, "backend": backend, "label": label, **result}]


def _run_infinity(
    model: BenchModel, engine: str, job: dict[str, Any], workdir: Path, options: BenchOptions
) -> dict[str, Any]:
    """One Infinity engine on one model; the optimum engine's ONNX graph is prepared first, in
    a child of its own."""
    run: dict[str, Any] = {
        "model": model.name,
        "peer": INFINITY,
        "backend": engine,
        "label": f"Infinity ({engine})",
    }
    if engine == "optimum" and model.spec.architecture == "decoder":
        return {**run, "skipped": OPTIMUM_DECODER}
    print(f"{model.name}: Infinity ({engine}) ...", file=sys.stderr, flush=True)
    cache = str(workdir / f"hf-cache-{model.name}-{engine}")  # Infinity writes its graphs here
    environment = child_environment(
        {
            "INFINITY_ANONYMOUS_USAGE_STATS": "0",
            "DO_NOT_TRACK": "1",
            "HF_HUB_CACHE": cache,
            "HUGGINGFACE_HUB_CACHE": cache,
        }
    )
    command = [str(options.infinity_python), str(INFINITY_WORKER)]
    name = f"{model.name}-infinity-{engine}"
    if engine == "optimum":
        prepared = run_child(
            command,
            {**job, "kind": "infinity-prepare"},
            workdir,
            f"{name}-prepare",
            options.timeout,
            environment,
        )
        if "error" in prepared:
            print(f"  FAILED: {prepared['error']}", file=sys.stderr, flush=True)
            return {**run, **prepared}
        run["onnx"] = prepared["onnx"]
    result = run_child(
        command, {**job, "kind": INFINITY, "engine": engine}, workdir, name, options.timeout, environment
    )
    if "error" in result:
        print(f"  FAILED: {result['error']}", file=sys.stderr, flush=True)
    return {**run, **result}


def precision_of(run: dict[str, Any]) -> str:
    """The matmul precision a run is measured against (sentence-transformers, Infinity: fp32)."""
    return PRECISION_OF.get(run["backend"], "fp32") if run["peer"] == "embedhub" else "fp32"


def assemble(
    options: BenchOptions,
    models: list[BenchModel],
    backends: list[str],
    peaks: dict[str, Any],
    runs: list[dict[str, Any]],
    source: str,
    started: dt.datetime,
    finished: dt.datetime,
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    """The JSON report: the run's context, every child's result, and one row per measured cell."""
    costs = {name: ForwardCost(**cost) for name, cost in peaks.get("forward_costs", {}).items()}
    peak_rates = peaks.get("peaks", {})
    baseline = {
        (run["model"], cell["length"], cell["batch_size"]): cell["docs_per_second"]
        for run in runs
        if run["peer"] == BASELINE
        for cell in run.get("cells", [])
    }
    infinity: dict[tuple[str, int, int], float] = {}
    for run in runs:
        for cell in run.get("cells", []) if run["peer"] == INFINITY else []:
            key = (run["model"], cell["length"], cell["batch_size"])
            infinity[key] = max(infinity.get(key, 0.0), cell["docs_per_second"])
    by_name = {model.name: model for model in models}
    settings = Settings()
    defaults = {model.name: default_backend(model.spec, settings) for model in models}
    rows = []
    for run in runs:
        for cell in run.get("cells", []):
            model = by_name[run["model"]]
            tokens_per_doc = cell["tokens"] / cell["docs"]
            key = (run["model"], cell["length"], cell["batch_size"])
            reference, fastest_infinity = baseline.get(key), infinity.get(key)
            precision = precision_of(run)
            cost = costs.get(run["model"])
            achieved = cost.flops(tokens_per_doc) * cell["docs_per_second"] if cost else None
            peak = peak_rates.get(precision)
            rows.append(
                {
                    "model": run["model"],
                    "peer": run["peer"],
                    "backend": run["backend"],
                    "label": run.get("label", run["backend"]),
                    "length": cell["length"],
                    "requested_lengths": model.requested.get(cell["length"], [cell["length"]]),
                    "capped_at_model_max": cell["length"] < max(model.requested.get(cell["length"], [0])),
                    "batch_size": cell["batch_size"],
                    "docs_per_second": round(cell["docs_per_second"], 3),
                    "tokens_per_second": round(cell["tokens_per_second"], 1),
                    "tokens_per_doc": round(tokens_per_doc, 1),
                    "ratio_to_sentence_transformers": _ratio(cell["docs_per_second"], reference),
                    "ratio_to_fastest_infinity": _ratio(cell["docs_per_second"], fastest_infinity),
                    "default_backend": run["peer"] == "embedhub" and run["backend"] == defaults[run["model"]],
                    "peak_rss_mb": cell["peak_rss_mb"],
                    "precision": precision,
                    "achieved_gflops": round(achieved / 1e9, 2) if achieved else None,
                    "share_of_peak": round(achieved / peak, 4) if achieved and peak else None,
                    "docs": cell["docs"],
                    "seconds": cell["seconds"],
                }
            )
    return {
        "command": options.command,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": peaks.get("torch"),
            "threads": peaks.get("threads"),
            "native_bfloat16": peaks.get("native_bfloat16"),
            # the CPU's class and flags decide the default backend: every report names them
            "cpu": detect_cpu(settings.cpu_class).as_dict(),
            "load_average_before": [round(value, 2) for value in load_before],
            "load_average_after": [round(value, 2) for value in os.getloadavg()],
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        },
        "options": {
            "models": options.models,
            "backends": backends,
            "lengths": options.lengths,
            "batch_sizes": options.batch_sizes,
            "docs": options.docs,
            "seconds": options.seconds,
            "infinity_python": str(options.infinity_python) if options.infinity_python else None,
            "infinity_engines": options.infinity_engines,
            "timeout": options.timeout,
        },
        "texts": source,
        "peaks": {
            "gflops": {name: round(rate / 1e9, 1) for name, rate in peak_rates.items()},
            "error": peaks.get("error"),
        },
        "models": {
            model.name: {
                "reference": model.reference,
                "folder": str(model.folder),
                "max_tokens": model.spec.max_tokens,
                "random_weights": model.spec.random_weights,
                "lengths": [
                    {
                        "length": text_set.length,
                        "requested": model.requested[text_set.length],
                        "tokens_per_text": round(sum(text_set.tokens) / len(text_set.tokens), 1),
                        "texts": len(text_set.texts),
                    }
                    for text_set in model.text_sets
                ],
                "forward_cost": costs[model.name].as_dict() if model.name in costs else None,
                "default_backend": defaults[model.name],
            }
            for model in models
        },
        "runs": [_run_summary(run) for run in runs],
        "rows": rows,
    }


def _ratio(value: float, reference: float | None) -> float | None:
    return round(value / reference, 3) if reference else None


def default_backend(spec: ModelSpec, settings: Settings | None = None) -> str:
    """The backend `auto` (the default of serve, ingestion and eval) picks for this model here."""
    from embedhub.models.backends import auto_backend

    return auto_backend(spec, settings)


def _run_summary(run: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "model",
        "peer",
        "backend",
        "label",
        "version",
        "gate",
        "load_seconds",
        "wall_seconds",
        "peak_rss_mb",
        "texts_with_other_token_counts",
        "onnx",
    )
    summary = {key: run[key] for key in keys if key in run}
    if "skipped" in run:
        summary["status"], summary["reason"] = "skipped", run["skipped"]
    elif "error" in run:
        summary["status"], summary["reason"] = "failed", run["error"]
        summary["log_tail"] = run.get("log_tail", "")
        summary["traceback"] = run.get("traceback", "")
    else:
        summary["status"] = "ok"
    return summary
