"""Rerankers for the search hook: a sentence-transformers cross-encoder, or Qwen3-Reranker.

Both load from a local folder (no hub here). Qwen3-Reranker is a causal LM judged by the
probability of "yes" over "no" after the model card's chat template; pairs are left-padded so the
last position is the answer slot for every row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embedhub.errors import ModelLoadError
from embedhub.models.spec import QWEN3_INSTRUCTIONS, Task

QWEN3_RERANK_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
QWEN3_RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


class CrossEncoderReranker:
    def __init__(self, folder: Path, batch_size: int = 16) -> None:
        from sentence_transformers import CrossEncoder

        self.name = folder.name
        self.model = CrossEncoder(str(folder), device="cpu")
        self.batch_size = batch_size

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        scores = self.model.predict([(query, p) for p in passages], batch_size=self.batch_size)
        return [float(s) for s in np.asarray(scores).reshape(-1)]


class Qwen3Reranker:
    def __init__(
        self, folder: Path, instruction: str | None = None, max_tokens: int = 8192, batch_size: int = 8
    ):
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.name = folder.name
        self.instruction = instruction or QWEN3_INSTRUCTIONS[Task.RETRIEVAL]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
        self.yes = self.tokenizer.token_to_id("yes")
        self.no = self.tokenizer.token_to_id("no")
        if self.yes is None or self.no is None:
            raise ModelLoadError(f"{folder} has no 'yes'/'no' tokens: not a Qwen3-Reranker tokenizer")
        self.prefix = self.tokenizer.encode(QWEN3_RERANK_PREFIX, add_special_tokens=False).ids
        self.suffix = self.tokenizer.encode(QWEN3_RERANK_SUFFIX, add_special_tokens=False).ids
        self.max_tokens = max_tokens
        self.batch_size = batch_size

    def pair_ids(self, query: str, passage: str) -> list[int]:
        body = f"<Instruct>: {self.instruction}\n<Query>: {query}\n<Document>: {passage}"
        ids = self.tokenizer.encode(body, add_special_tokens=False).ids
        room = self.max_tokens - len(self.prefix) - len(self.suffix)
        return [*self.prefix, *ids[:room], *self.suffix]

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        torch = self.torch
        scores: list[float] = []
        pad = self.tokenizer.token_to_id("<|endoftext|>") or 0
        for start in range(0, len(passages), self.batch_size):
            batch = [self.pair_ids(query, p) for p in passages[start : start + self.batch_size]]
            width = max(map(len, batch))
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, sequence in enumerate(batch):
                ids[row, width - len(sequence) :] = torch.tensor(sequence)
                mask[row, width - len(sequence) :] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits[:, -1, :]
            pair = torch.stack([logits[:, self.no], logits[:, self.yes]], dim=1).float()
            scores.extend(torch.softmax(pair, dim=1)[:, 1].tolist())
        return scores


def load_reranker(reference: str):
    """A reranker from a local folder: Qwen3 (causal LM) or a sentence-transformers cross-encoder."""
    folder = Path(reference).expanduser()
    if not (folder / "config.json").exists():
        raise ModelLoadError(
            f"reranker {reference!r} is not a local model folder; pass the folder of a cross-encoder or of "
            "Qwen3-Reranker-0.6B/4B/8B"
        )
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") == "qwen3":
        return Qwen3Reranker(folder)
    return CrossEncoderReranker(folder)
