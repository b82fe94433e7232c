"""Which CPU this is, as the classes that decide how a model should run on it.

The same wheel of torch or ONNX Runtime runs different kernels on different x86-64 CPUs, and the
differences are not small (measured, 2 threads): where bfloat16 is native (AVX-512 BF16, AMX)
torch's bfloat16 matmuls are ~4x float32; on an AVX2-only CPU they are emulated at under 1
GFLOP/s against ~50 for float32, and `torch._int_mm` runs at ~1 GOP/s. Without VNNI, ONNX
Runtime multiplies u8 x s8 with `vpmaddubsw`, whose 16-bit pair sums saturate (the onnx-int8
gate failed at cosine 0.95 there), while VNNI's `vpdpbusd` does not. So `auto` chooses per class
(ModelSpec.default_backends), the int8 export chooses its weight format by `vnni`, and gate
results are kept per class.

The classes, each implying the ones before it in practice:
- `baseline`: no AVX2 (or not x86-64);
- `avx2`: AVX2 + FMA (Intel Haswell .. Comet Lake, AMD Zen 1-3);
- `avx2-vnni`: AVX-VNNI without AVX-512 (Intel Alder Lake and later client CPUs);
- `avx512`: AVX-512 without VNNI (Intel Skylake-SP/X);
- `avx512-vnni`: AVX-512 with VNNI, no bfloat16 (Intel Cascade Lake, Ice Lake);
- `avx512-bf16`: AVX-512 with native bfloat16 (AMD Zen 4/5, Intel Cooper Lake);
- `amx`: AMX tiles with bfloat16 (Intel Sapphire Rapids and later).

`Settings.cpu_class` (EMBEDHUB_CPU_CLASS) makes embedhub treat the CPU as another class: the
decisions above follow it, the kernels the libraries run do not (pair it with torch's
ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA to stand in for an older CPU when measuring).
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

from embedhub.errors import ConfigurationError

CPU_CLASSES: tuple[str, ...] = (
    "baseline",
    "avx2",
    "avx2-vnni",
    "avx512",
    "avx512-vnni",
    "avx512-bf16",
    "amx",
)
VNNI_CLASSES = frozenset({"avx2-vnni", "avx512-vnni", "avx512-bf16", "amx"})
BFLOAT16_CLASSES = frozenset({"avx512-bf16", "amx"})
#: the flags that decide the class, in the order they are shown
RELEVANT_FLAGS: tuple[str, ...] = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuInfo:
    """This machine's CPU: its model name, the relevant flags it reports, and its class (the
    detected one, or `Settings.cpu_class` when that is set: then `overridden` is True)."""

    model: str
    flags: frozenset[str]
    cpu_class: str
    overridden: bool = False

    @property
    def vnni(self) -> bool:
        """int8 dot products into 32 bits without 16-bit saturation (VNNI or AMX)."""
        return self.cpu_class in VNNI_CLASSES

    @property
    def native_bfloat16(self) -> bool:
        """bfloat16 matmuls in hardware (AVX-512 BF16 or AMX)."""
        return self.cpu_class in BFLOAT16_CLASSES

    @property
    def relevant_flags(self) -> list[str]:
        return [flag for flag in RELEVANT_FLAGS if flag in self.flags]

    def describe(self) -> str:
        """One line for logs, `models list` and benchmark reports."""
        flags = " ".join(self.relevant_flags) or "none of " + " ".join(RELEVANT_FLAGS)
        chosen = f"{self.cpu_class} (set by EMBEDHUB_CPU_CLASS)" if self.overridden else self.cpu_class
        return f"{self.model}: class {chosen}; flags {flags}"

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "class": self.cpu_class,
            "class_overridden": self.overridden,
            "flags": self.relevant_flags,
            "vnni": self.vnni,
            "native_bfloat16": self.native_bfloat16,
        }


def classify(flags: frozenset[str] | set[str]) -> str:
    """The class of a CPU reporting `flags` (Linux /proc/cpuinfo names)."""
    if {"amx_tile", "amx_bf16"} <= flags:
        return "amx"
    if "avx512f" in flags:
        if "avx512_bf16" in flags:
            return "avx512-bf16"
        return "avx512-vnni" if "avx512_vnni" in flags else "avx512"
    if "avx2" in flags and "fma" in flags:
        return "avx2-vnni" if "avx_vnni" in flags else "avx2"
    return "baseline"


def read_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """The model name and flags of the first processor in /proc/cpuinfo's text."""
    model, flags = None, frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags":
            flags = frozenset(value.split())
            break
    return model or platform.processor() or platform.machine() or "unknown CPU", flags


@functools.lru_cache(maxsize=1)
def _detected() -> tuple[str, frozenset[str]]:
    try:
        return read_cpuinfo(CPUINFO.read_text(encoding="utf-8", errors="replace"))
    except OSError:  # not Linux: ask torch which kernels it dispatches to
        import torch

        capability = torch.backends.cpu.get_cpu_capability().lower()
        flags = {"avx512": {"avx512f", "avx2", "fma"}, "avx2": {"avx2", "fma"}}.get(capability, set())
        return platform.processor() or platform.machine() or "unknown CPU", frozenset(flags)


def detect_cpu(override: str | None = None) -> CpuInfo:
    """This CPU, classified; `override` (Settings.cpu_class) replaces the detected class."""
    model, flags = _detected()
    if override:
        name = override.strip().lower()
        if name not in CPU_CLASSES:
            raise ConfigurationError(
                f"unknown CPU class {override!r} (EMBEDHUB_CPU_CLASS); "
                f"choose one of: {', '.join(CPU_CLASSES)}"
            )
        return CpuInfo(model, flags, name, overridden=True)
    return CpuInfo(model, flags, classify(flags))
