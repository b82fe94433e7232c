"""Random-weight Qwen3 embedding models and rerankers, built offline, for tests and speed measurements.

The `tiny` shape (2 layers, hidden 64) with the real 151,669-token vocabulary runs in
milliseconds and exercises every Qwen3 rule; the `0.6B` and `4B` shapes have exactly the real
models' compute cost. Their vectors are MEANINGLESS: the folder's embedhub.json and every report
that uses one say so.
"""

from __future__ import annotations

import json
from pathlib import Path

from embedhub.errors import InvalidInputError
from embedhub.models.qwen_tokenizer import VOCAB_SIZE, load_qwen_tokenizer, save_tokenizer_files
from embedhub.models.spec import ENDOFTEXT_ID

SHAPES: dict[str, dict] = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 head_dim=16, intermediate_size=128),
    "0.6B": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                 head_dim=128, intermediate_size=3072),
    "4B": dict(hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
               head_dim=128, intermediate_size=9728),
}  # fmt: skip
RANDOM_WARNING = "random weights: vectors are meaningless; use only for tests and speed measurements"


def make_random_model(shape: str, out: Path, *, seed: int = 0, cache_dir: Path | None = None) -> Path:
    """Write a loadable random-weight Qwen3 embedding model folder to `out`."""
    from transformers import Qwen3Model

    _write_random_qwen3(Qwen3Model, shape, out, seed=seed, max_positions=32768)
    save_tokenizer_files(load_qwen_tokenizer(cache_dir), out)
    marker = {
        "name": f"random-qwen3-{shape}",
        "random_weights": True,
        "shape": shape,
        "seed": seed,
        "warning": RANDOM_WARNING,
        "description": f"random-weight Qwen3 embedding model, {shape} shape ({RANDOM_WARNING})",
    }
    (out / "embedhub.json").write_text(json.dumps(marker, indent=2))
    return out


def make_random_reranker(shape: str, out: Path, *, seed: int = 0, cache_dir: Path | None = None) -> Path:
    """Write a loadable random-weight Qwen3-Reranker folder (a Qwen3 causal LM) to `out`.

    Its scores are MEANINGLESS; it exercises the prompt, truncation, padding and the yes/no head."""
    from tokenizers import processors
    from transformers import Qwen3ForCausalLM

    _write_random_qwen3(Qwen3ForCausalLM, shape, out, seed=seed, max_positions=40960)
    tokenizer = load_qwen_tokenizer(cache_dir)
    # Qwen3's own tokenizer adds no special token (only Qwen3-Embedding's appends <|endoftext|>);
    # the reranker's prompt frames every pair itself.
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    save_tokenizer_files(tokenizer, out)
    warning = RANDOM_WARNING.replace("vectors are", "scores are")
    marker = {
        "name": f"random-qwen3-reranker-{shape}",
        "kind": "reranker",
        "random_weights": True,
        "shape": shape,
        "seed": seed,
        "warning": warning,
        "description": f"random-weight Qwen3-Reranker, {shape} shape ({warning})",
    }
    (out / "embedhub.json").write_text(json.dumps(marker, indent=2))
    return out


def _write_random_qwen3(model_class, shape: str, out: Path, *, seed: int, max_positions: int) -> None:
    """A Qwen3 model of `shape` with seeded random weights, saved to `out` (weights and config)."""
    import torch
    from transformers import Qwen3Config

    if shape not in SHAPES:
        raise InvalidInputError(f"unknown shape {shape!r}; choose one of: {', '.join(SHAPES)}")
    config = Qwen3Config(
        vocab_size=VOCAB_SIZE,
        max_position_embeddings=max_positions,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=ENDOFTEXT_ID,
        eos_token_id=ENDOFTEXT_ID,
        pad_token_id=ENDOFTEXT_ID,
        **SHAPES[shape],
    )
    torch.manual_seed(seed)
    model = model_class(config).eval()
    if shape == "tiny":
        # Default init (std 0.02) makes a 2-layer model nearly input-independent after the final
        # norm (and a reranker's P(yes) near 0.5 for every pair); larger weights give distinct
        # outputs so parity tests can fail when they should.
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.dim() > 1:
                    parameter.normal_(0.0, 0.2)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
