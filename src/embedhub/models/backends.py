"""Backends by name: how a model's weights are run on this machine.

`Settings.backend` (EMBEDHUB_BACKEND, `--backend`) names one of `BACKENDS`; `auto` picks the
model's measured default for this CPU class (ModelSpec.default_backends, models/cpu.py); a single
weights file (a .gguf) runs with the one backend that reads such files. An unknown name, or a
backend whose packages are missing, is an error that lists the choices and the extra to install.
Every loaded encoder says which backend runs it and why (`Encoder.backend_reason`).

torch's bfloat16 and int8 kernels are fast only where the CPU has them (AVX-512 BF16 / AMX, VNNI);
elsewhere they run 50-100x slower than float32 without a word. So on such a CPU torch-bf16 and
torch-int8 are measured first (`kernel_speed`, a fraction of a second) and refused with the
figures when they are slower than float32 (`check_kernels`).

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
from embedhub.models.cpu import CpuInfo, detect_cpu
from embedhub.models.loading import (
    ResolvedModel,
    client_tokenizer,
    load_tokenizer,
    model_folder,
    resolve,
)
from embedhub.models.notices import notice
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
    #: the torch kernel it depends on ("bfloat16", "int8"): measured where the CPU class lacks it
    kernel: str | None = None

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
                kernel="bfloat16",
            ),
            Backend(
                "torch-int8",
                "torch, int8 Linear weights per channel, activations quantised per token at run time",
                _torch_loader("float32", int8=True, name="torch-int8"),
                quantised=True,
                kernel="int8",
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


def native_bfloat16(settings: Settings | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX). Elsewhere torch
    emulates it, slower than float32, so `auto` must not pick torch-bf16 there."""
    return detect_cpu(settings.cpu_class if settings else None).native_bfloat16


def auto_backend(spec: ModelSpec, settings: Settings | None = None) -> str:
    """The backend `auto` means for this model on this machine: the spec's choice for this CPU
    class, or float32 torch when that backend's packages are not installed here."""
    choice = spec.default_backend(detect_cpu(settings.cpu_class if settings else None).cpu_class)
    backend = BACKENDS.get(choice)
    return choice if backend is not None and backend.installed else FLOAT32


def auto_reason(spec: ModelSpec, settings: Settings | None = None) -> str:
    """Why `auto` runs `auto_backend(spec)` here, in words."""
    cpu = detect_cpu(settings.cpu_class if settings else None)
    measured = spec.default_backend(cpu.cpu_class)
    chosen = auto_backend(spec, settings)
    if chosen != measured:
        extra = BACKENDS[measured].extra if measured in BACKENDS else None
        return (
            f"auto: {measured} is the measured default for {cpu.cpu_class} CPUs, but its packages are "
            f"not installed (pip install 'embedhub[{extra}]'); running {chosen}"
        )
    return f"auto: the measured default for {spec.name} on this CPU class"  # _explained names it


#: a kernel slower than this share of float32 is refused (the ones it guards are 50-100x slower
#: where they are emulated, and 4-9x faster where they are native)
SLOW_KERNEL_RATIO = 0.5
_kernel_speeds: dict[str, float] = {}


def kernel_speed(kernel: str) -> float:
    """Measured matmul throughput here, in G(FL)OP/s, of 'float32', 'bfloat16' or 'int8' torch
    kernels (256 x 256 products for ~0.1 s on one thread, so other work on the cores does not
    decide the verdict; cached for the process)."""
    if kernel in _kernel_speeds:
        return _kernel_speeds[kernel]
    import time

    import torch

    size = 256
    if kernel == "int8":
        left = torch.randint(-127, 127, (size, size), dtype=torch.int8)
        right = torch.randint(-127, 127, (size, size), dtype=torch.int8)
        product = torch._int_mm
    else:
        dtype = torch.bfloat16 if kernel == "bfloat16" else torch.float32
        left, right = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        product = torch.matmul
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        product(left, right)  # warm-up: kernel selection, first-touch
        runs, started = 0, time.perf_counter()
        while runs < 3 or (time.perf_counter() - started < 0.1 and runs < 200):
            product(left, right)
            runs += 1
        elapsed = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    _kernel_speeds[kernel] = 2 * size**3 * runs / elapsed / 1e9
    return _kernel_speeds[kernel]


def check_kernels(backend: Backend, cpu: CpuInfo) -> None:
    """Refuse a torch backend whose kernels this CPU lacks when they measure slower than float32
    (so it is never silently 50x slower); nothing is measured where the CPU class has them."""
    if backend.kernel is None:
        return
    native = cpu.native_bfloat16 if backend.kernel == "bfloat16" else cpu.vnni
    if native:
        return
    speed, reference = kernel_speed(backend.kernel), kernel_speed("float32")
    if speed >= SLOW_KERNEL_RATIO * reference:
        return
    unit = "GOP/s" if backend.kernel == "int8" else "GFLOP/s"
    faster = "onnx-int8" if cpu.vnni and BACKENDS["onnx-int8"].installed else FLOAT32
    raise ConfigurationError(
        f"backend {backend.name} would be {reference / max(speed, 1e-9):.0f}x slower than float32 on "
        f"this CPU ({cpu.describe()}): torch's {backend.kernel} matmuls measured {speed:.1f} {unit} "
        f"here against {reference:.1f} GFLOP/s for float32, because the CPU has no "
        f"{'AVX-512 BF16 or AMX' if backend.kernel == 'bfloat16' else 'VNNI'} instructions; use "
        f"--backend {faster} (or auto, which picks by CPU class)"
    )


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
    from embedhub.models.remote import RemoteEncoder, describe_remote

    model = describe_remote(resolved.reference, settings)
    return RemoteEncoder(model, client_tokenizer(model.spec, settings), settings)


def load_encoder(reference: str | None, settings: Settings, registry: ModelRegistry = REGISTRY) -> Encoder:
    """Resolve a model reference and load it with `settings.backend`."""
    return load_resolved(resolve(reference, settings, registry), settings)


def load_resolved(resolved: ResolvedModel, settings: Settings) -> Encoder:
    """Load resolved weights with `settings.backend`; quantised variants pass the gate first. The
    encoder tokenises at most `settings.max_input_chars` of one input to find its cut."""
    encoder = _load_resolved(resolved, settings)
    encoder.max_tokenised_chars = settings.max_input_chars
    return encoder


def _load_resolved(resolved: ResolvedModel, settings: Settings) -> Encoder:
    if resolved.source == "remote":
        encoder = _load_remote(resolved, settings, settings.backend.strip().lower())
        return _explained(encoder, "a remote: reference runs on its endpoint", detect_cpu(settings.cpu_class))
    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    requested = settings.backend.strip().lower()
    automatic = requested == AUTO
    cpu = detect_cpu(settings.cpu_class)
    if automatic and file_backend(resolved.folder):
        backend = get_backend(file_backend(resolved.folder))
        reason = f"auto: the only backend that runs {resolved.folder.suffix} files"
    elif automatic:
        backend = get_backend(auto_backend(resolved.spec, settings))
        reason = auto_reason(resolved.spec, settings)
    else:
        backend = get_backend(requested)
        reason = "asked for (EMBEDHUB_BACKEND / --backend)"
    _check_weights_fit(backend, resolved)
    check_kernels(backend, cpu)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if settings.heap_activations:
        keep_activations_on_heap()
    if backend.file_suffix:
        return _explained(backend.load(resolved.spec, resolved.folder, None, settings), reason, cpu)
    folder = model_folder(resolved, settings)
    encoder = backend.load(resolved.spec, folder, load_tokenizer(folder, resolved.spec, settings), settings)
    if not backend.quantised:
        return _explained(encoder, reason, cpu)
    from embedhub.models.quality import ensure_quality

    reference = _torch_loader("float32")
    report = ensure_quality(
        encoder,
        lambda: reference(resolved.spec, folder, load_tokenizer(folder, resolved.spec, settings), settings),
        folder,
        settings,
    )
    if report.passed:
        return _explained(encoder, f"{reason}; accuracy gate passed ({report.describe()})", cpu)
    encoder.close()
    if not automatic:
        alternative = "torch-bf16" if cpu.native_bfloat16 else FLOAT32
        raise ModelLoadError(
            f"backend {backend.name} is too inaccurate for {resolved.spec.name} on this CPU "
            f"({cpu.cpu_class}): {report.describe()}; use --backend {alternative} or auto"
        )
    message = (
        f"backend {backend.name} failed the accuracy gate for {resolved.spec.name} "
        f"({report.describe()}); running torch float32 instead"
    )
    notice(message)
    fallback = reference(resolved.spec, folder, load_tokenizer(folder, resolved.spec, settings), settings)
    return _explained(fallback, f"auto: {message}", cpu)


def _explained(encoder: Encoder, reason: str, cpu: CpuInfo) -> Encoder:
    """Record on the encoder why its backend serves, and on which CPU class."""
    encoder.backend_reason = f"{reason}; CPU class {cpu.cpu_class}"
    return encoder
