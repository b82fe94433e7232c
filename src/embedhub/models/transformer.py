"""The torch backends: any Hugging Face encoder or decoder embedding model, pooled as its spec says.

One class serves BERT-style (mean / CLS) and Qwen3 (last-token) models: the only differences are
data in the ModelSpec and the framing ids, so there is no per-family subclass to drift apart.
Inputs are right-padded; pooling finds the last real token from the attention mask (not by token id), so
the pad id (the same 151643 as <|endoftext|> for Qwen3) never matters.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from embedhub.errors import ModelLoadError
from embedhub.models.base import Encoder, cuts_inside_words, framing
from embedhub.models.batching import plan_batches
from embedhub.models.spec import ModelSpec

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pool(hidden: torch.Tensor, mask: torch.Tensor, strategy: str) -> torch.Tensor:
    """Pool token states (batch, length, dims) into one vector per input."""
    if strategy == "last_token":
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = (positions * mask).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if strategy == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if strategy == "cls":
        return hidden[:, 0]
    raise ModelLoadError(f"unknown pooling {strategy!r}; choose last_token, mean or cls")


class LocalEncoder(Encoder):
    """What every in-process backend shares: the tokenizer framing, the pad id and the
    token-budget batch plan. Subclasses run one padded batch (`run_padded`)."""

    def __init__(
        self,
        spec: ModelSpec,
        folder: Path,
        tokenizer: Tokenizer,
        *,
        vocabulary_size: int,
        pad_id: int | None,
        max_batch_tokens: int = 16384,
        max_batch_size: int = 64,
    ) -> None:
        self.spec = spec
        self.folder = folder
        self.tokenizer = tokenizer
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.cuts_inside_words = cuts_inside_words(tokenizer)
        if spec.suffix_token_ids:
            self.prefix_ids, self.suffix_ids = (), tuple(spec.suffix_token_ids)
        else:
            self.prefix_ids, self.suffix_ids = framing(tokenizer)
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self._vocabulary_size = int(vocabulary_size)
        if pad_id is None:
            pad_id = tokenizer.token_to_id("[PAD]") or tokenizer.token_to_id("<pad>")
        self.pad_id = pad_id if pad_id is not None else (spec.suffix_token_ids or (0,))[0]

    @property
    def vocabulary_size(self) -> int:
        return self._vocabulary_size

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [
            encoding.ids for encoding in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ]

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self.tokenizer.id_to_token(i) for i in ids]

    def pad(self, batch: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Right-padded int64 ids and the attention mask (1 on real tokens)."""
        width = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return input_ids, mask

    @abstractmethod
    def run_padded(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pooled float32 vectors of one padded batch."""

    def embed_token_ids(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.zeros((len(batch), self.native_dims), dtype=np.float32)
        lengths = [len(ids) for ids in batch]
        for indices in plan_batches(lengths, self.max_batch_tokens, self.max_batch_size):
            out[indices] = self.run_padded(*self.pad([batch[i] for i in indices]))
        return out


def load_transformers_model(folder: Path, dtype: torch.dtype = torch.float32, attention: str = "sdpa"):
    """The Hugging Face model in a folder, in eval mode."""
    from transformers import AutoModel  # deferred: importing transformers costs seconds

    try:
        model = AutoModel.from_pretrained(str(folder), dtype=dtype, attn_implementation=attention)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot load model weights from {folder}: {error}") from error
    return model.eval()


class TransformersEncoder(LocalEncoder):
    """Runs a local Hugging Face model folder with torch.

    `dtype` is the weight and compute dtype (bfloat16 halves memory and, with AVX-512 BF16,
    runs the matmuls ~3x faster); pooling always runs in float32. `int8=True` swaps every
    Linear layer for an int8 one (embedhub.models.int8) after loading.
    """

    def __init__(
        self,
        spec: ModelSpec,
        folder: Path,
        tokenizer: Tokenizer,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        int8: bool = False,
        backend: str = "torch",
        max_batch_tokens: int = 16384,
        max_batch_size: int = 64,
    ) -> None:
        self.model = load_transformers_model(folder, _DTYPES[dtype])
        config = self.model.config
        super().__init__(
            spec,
            folder,
            tokenizer,
            vocabulary_size=int(config.vocab_size),
            pad_id=config.pad_token_id,
            max_batch_tokens=max_batch_tokens,
            max_batch_size=max_batch_size,
        )
        self.backend = backend
        self.device = torch.device(device)
        hidden = int(config.hidden_size)
        if hidden != spec.dimensions:
            raise ModelLoadError(
                f"{folder} has hidden size {hidden}, but model {spec.name} should have {spec.dimensions}"
            )
        if int8:
            from embedhub.models.int8 import quantize_linear_layers

            quantize_linear_layers(self.model)
        self.model.to(self.device)

    @torch.inference_mode()
    def run_padded(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        ids = torch.from_numpy(input_ids).to(self.device)
        attention = torch.from_numpy(mask).to(self.device)
        hidden = self.model(input_ids=ids, attention_mask=attention).last_hidden_state
        return pool(hidden.float(), attention, self.spec.pooling).cpu().numpy()
