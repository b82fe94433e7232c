"""Backends by name: how a model's weights are run on this machine.

`Settings.backend` (EMBEDHUB_BACKEND, `--backend`) names one of `BACKENDS`; `auto` picks the
per-model default from `AUTO_BACKENDS` (the ONE place to change once the speed benchmark,
benchmarks/backends.py, has been run on the target machine); a single weights file (a .gguf) runs
with the one backend that reads such files. An unknown name, or a backend whose packages are
missing, is an error that lists the choices and the extra to install.

Quantised backends (int8) are accepted only after the accuracy gate (models/quality.py) has
compared them with float32 on a fixed multilingual text set; the result is cached per weights.
A variant that fails is refused: with an explicit `--backend` that is an error naming the
figures (the user asked for that backend, so silently running another would hide it); with
`auto` embedhub falls back to float32 torch and says so (auto promises a working default).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from tokenizers import Tokenizer

from embedhub.config import Settings
from embedhub.errors import ConfigurationError, ModelLoadError
from embedhub.models.allocator import keep_activations_on_heap
from embedhub.models.base import Encoder
from embedhub.models.loading import (
    ResolvedModel,
    _notice,
    load_tokenizer,
    model_folder,
    resolve,
)
from embedhub.models.registry import REGISTRY, ModelRegistry
from embedhub.models.spec import ModelSpec

AUTO = "auto"
FLOAT32 = "torch"

#: (spec, weights folder or file, tokenizer or None for backends whose file carries its own, settings)
BackendLoader = Callable[[ModelSpec, Path, Tokenizer | None, Settings], Encoder]


@dataclass(frozen=True)
class Backend:
    """One way to run weights. `requires` are the importable modules it needs, `extra` the pip
    extra that installs them; `quantised` backends must pass the accuracy gate. `file_suffix`
    set means the backend runs single weight files with that suffix (and only those), not model
    folders; `scheme` set means it runs model references with that prefix (`remote:`), no weights."""

    name: str
    description: str
    load: BackendLoader
    requires: tuple[str, ...] = ()
    extra: str | None = None
    quantised: bool = False
    file_suffix: str | None = None
    scheme: str | None = None

    @property
    def installed(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.requires)


def _torch_loader(dtype: str | None, int8: bool = False, name: str = "torch") -> BackendLoader:
    def load(spec: ModelSpec, folder: Path, tokenizer: Tokenizer, settings: Settings) -> Encoder:
        from embedhub.models.transformer import TransformersEncoder

        chosen = dtype or settings.dtype
        return TransformersEncoder(
            spec,
            folder,
            tokenizer,
            device=settings.device,
            dtype=chosen,
            int8=int8,
            backend=name if dtype or chosen == "float32" else f"{name} ({chosen})",
            max_batch_tokens=settings.max_batch_tokens,
            max_batch_size=settings.max_batch_size,
        )

    return load


def _onnx_loader(spec: ModelSpec, folder: Path, tokenizer: Tokenizer, settings: Settings) -> Encoder:
    from embedhub.models.onnx_runtime import OnnxEncoder, ensure_onnx_int8

    path = ensure_onnx_int8(spec, folder, settings)
    return OnnxEncoder(spec, folder, tokenizer, path, settings)


def _gguf_loader(spec: ModelSpec, path: Path, tokenizer: Tokenizer | None, settings: Settings) -> Encoder:
    from embedhub.models.gguf_file import load_gguf

    return load_gguf(spec, path, settings)


def _remote_loader(spec: ModelSpec, path: Path, tokenizer: Tokenizer | None, settings: Settings) -> Encoder:
    """Never reached: remote references load in `load_resolved`, local weights are refused by
    `_check_weights_fit`."""
    raise ConfigurationError(f"backend remote cannot run local weights ({spec.name})")


BACKENDS: Mapping[str, Backend] = MappingProxyType(
    {
        backend.name: backend
        for backend in (
            Backend(
                "torch",
                "torch, float32 weights (or Settings.dtype); the reference every other backend is "
                "checked against",
                _torch_loader(None),
            ),
            Backend(
                "torch-bf16",
                "torch, bfloat16 weights and matmuls (AVX-512 BF16), pooling in float32",
                _torch_loader("bfloat16", name="torch-bf16"),
            ),
            Backend(
                "torch-int8",
                "torch, int8 Linear weights per channel, activations quantised per token at run time",
                _torch_loader("float32", int8=True, name="torch-int8"),
                quantised=True,
            ),
            Backend(
                "onnx-int8",
                "ONNX Runtime, graph exported from the local folder, weights quantised to int8 per "
                "channel (cached on disk)",
                _onnx_loader,
                requires=("onnx", "onnxruntime", "onnxscript"),
                extra="onnx",
                quantised=True,
            ),
            # Not gated: a GGUF file has no float32 folder beside it to compare with; its
            # quantisation is the file's (tests compare converted files with torch).
            Backend(
                "gguf",
                "llama.cpp (llama-cpp-python) running a .gguf file (f32, f16, Q8_0, Q4_K_M ...); "
                "the file's own vocabulary, embedhub's Qwen3 framing",
                _gguf_loader,
                requires=("llama_cpp",),
                extra="gguf",
                file_suffix=".gguf",
            ),
            # Remote references load through models/remote.py (load_resolved); there are no
            # weights here to gate.
            Backend(
                "remote",
                "OpenAI-compatible /v1/embeddings endpoints elsewhere (vLLM, SGLang, TEI, Infinity, "
                "embedhub): --model remote:URL[,URL...]#MODEL; tokenised here, embedded there",
                _remote_loader,
                scheme="remote:",
            ),
        )
    }
)


def available_backends() -> list[str]:
    """Names of the backends whose packages are installed here."""
    return [name for name, backend in BACKENDS.items() if backend.installed]


def _choices() -> str:
    return ", ".join(
        [AUTO]
        + [
            name if backend.installed else f"{name} (needs pip install 'embedhub[{backend.extra}]')"
            for name, backend in BACKENDS.items()
        ]
    )


def get_backend(name: str) -> Backend:
    """The backend called `name`, installed; otherwise an error listing the choices."""
    backend = BACKENDS.get(name.strip().lower())
    if backend is None:
        raise ConfigurationError(f"unknown backend {name!r}; choose one of: {_choices()}")
    if not backend.installed:
        missing = [m for m in backend.requires if importlib.util.find_spec(m) is None]
        raise ConfigurationError(
            f"backend {backend.name!r} needs {', '.join(missing)}, which is not installed; "
            f"pip install 'embedhub[{backend.extra}]', or choose one of: {_choices()}"
        )
    return backend


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX). Elsewhere torch
    emulates it, slower than float32, so `auto` must not pick torch-bf16 there."""
    import torch

    cpu = torch.cpu
    return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())


def auto_backend(spec: ModelSpec) -> str:
    """The backend `auto` means for this model on this machine."""
    choice = spec.default_backend
    if choice == "torch-bf16" and not native_bfloat16():
        return FLOAT32
    return choice


def file_backend(path: Path) -> str | None:
    """The backend that runs a single weights file like `path` (None for a folder)."""
    suffix = path.suffix.lower()
    for name, backend in BACKENDS.items():
        if backend.file_suffix and path.is_file() and suffix == backend.file_suffix:
            return name
    return None


def _check_weights_fit(backend: Backend, resolved: ResolvedModel) -> None:
    """A file backend runs only its files; folder backends run only folders."""
    if backend.scheme:
        raise ConfigurationError(
            f"backend {backend.name} runs {backend.scheme}URL#MODEL references, and "
            f"{resolved.spec.name} is local weights; pass --model {backend.scheme}http://HOST:PORT/v1#MODEL, "
            "or choose another backend"
        )
    runs = file_backend(resolved.folder)
    if backend.file_suffix and runs != backend.name:
        raise ConfigurationError(
            f"backend {backend.name} runs {backend.file_suffix} files, and {resolved.spec.name} is "
            f"a model folder; pass a {backend.file_suffix} file with --model (docs/backends.md says "
            "how to convert a folder), or choose another backend"
        )
    if not backend.file_suffix and runs is not None:
        raise ConfigurationError(
            f"{resolved.folder.name} is a {resolved.folder.suffix} file, which only the {runs} backend "
            f"runs; use --backend {runs} or auto (backend {backend.name} runs model folders)"
        )


def _load_remote(resolved: ResolvedModel, settings: Settings, requested: str) -> Encoder:
    """A remote reference runs with the remote backend only (auto means it too)."""
    if requested not in (AUTO, "remote"):
        raise ConfigurationError(
            f"{resolved.reference} is a remote model, which only the remote backend runs; use "
            f"--backend remote or auto (backend {requested} runs local weights)"
        )
    from embedhub.models.remote import load_remote

    return load_remote(resolved.reference, settings)


def load_encoder(reference: str | None, settings: Settings, registry: ModelRegistry = REGISTRY) -> Encoder:
    """Resolve a model reference and load it with `settings.backend`."""
    return load_resolved(resolve(reference, settings, registry), settings)


def load_resolved(resolved: ResolvedModel, settings: Settings) -> Encoder:
    """Load resolved weights with `settings.backend`; quantised variants pass the gate first."""
    if resolved.source == "remote":
        return _load_remote(resolved, settings, settings.backend.strip().lower())
    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    requested = settings.backend.strip().lower()
    automatic = requested == AUTO
    if automatic:
        backend = get_backend(file_backend(resolved.folder) or auto_backend(resolved.spec))
    else:
        backend = get_backend(requested)
    _check_weights_fit(backend, resolved)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if settings.heap_activations:
        keep_activations_on_heap()
    if backend.file_suffix:
        return backend.load(resolved.spec, resolved.folder, None, settings)
    folder = model_folder(resolved, settings)
    encoder = backend.load(resolved.spec, folder, load_tokenizer(folder, resolved.spec, settings), settings)
    if not backend.quantised:
        return encoder
    from embedhub.models.quality import ensure_quality

    reference = _torch_loader("float32")
    report = ensure_quality(
        encoder,
        lambda: reference(resolved.spec, folder, load_tokenizer(folder, resolved.spec, settings), settings),
        folder,
        settings,
    )
    if report.passed:
        return encoder
    encoder.close()
    if not automatic:
        raise ModelLoadError(
            f"backend {backend.name} is too inaccurate for {resolved.spec.name}: {report.describe()}; "
            "use --backend torch or torch-bf16"
        )
    _notice(
        f"backend {backend.name} failed the accuracy gate for {resolved.spec.name} "
        f"({report.describe()}); running torch float32 instead"
    )
    return reference(resolved.spec, folder, load_tokenizer(folder, resolved.spec, settings), settings)
