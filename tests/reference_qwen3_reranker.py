"""Qwen3-Reranker scoring written from its model card (huggingface.co/Qwen/Qwen3-Reranker-0.6B,
"Transformers Usage"), with plain transformers: the prompt strings, a fast tokenizer padding on the
left, truncation of the pair body to max_length minus the prefix and suffix, and P(yes) from the
last position's "yes" / "no" logits. Used only to check embedhub.models.reranker; it shares no
code with it (the strings are copied from the model card, not imported)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
TASK = "Given a web search query, retrieve relevant passages that answer the query"


def format_instruction(instruction: str | None, query: str, doc: str) -> str:
    if instruction is None:
        instruction = TASK
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


class ReferenceQwen3Reranker:
    def __init__(self, folder: Path, max_length: int = 8192) -> None:
        self.tokenizer = PreTrainedTokenizerFast(
            tokenizer_file=str(folder / "tokenizer.json"), padding_side="left", pad_token="<|endoftext|>"
        )
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
        self.token_false_id = self.tokenizer.convert_tokens_to_ids("no")
        self.token_true_id = self.tokenizer.convert_tokens_to_ids("yes")
        self.max_length = max_length
        self.prefix_tokens = self.tokenizer.encode(PREFIX, add_special_tokens=False)
        self.suffix_tokens = self.tokenizer.encode(SUFFIX, add_special_tokens=False)

    def process_inputs(self, pairs: list[str]):
        inputs = self.tokenizer(
            pairs,
            padding=False,
            truncation="longest_first",
            return_attention_mask=False,
            max_length=self.max_length - len(self.prefix_tokens) - len(self.suffix_tokens),
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = self.prefix_tokens + ele + self.suffix_tokens
        return self.tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=self.max_length)

    @torch.no_grad()
    def compute_logits(self, inputs) -> list[float]:
        batch_scores = self.model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, self.token_true_id]
        false_vector = batch_scores[:, self.token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        return batch_scores[:, 1].exp().tolist()

    def scores(self, query: str, documents: list[str], instruction: str | None = None) -> list[float]:
        pairs = [format_instruction(instruction, query, doc) for doc in documents]
        return self.compute_logits(self.process_inputs(pairs))
