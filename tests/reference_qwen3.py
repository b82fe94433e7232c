"""An independent float64 numpy forward pass of a Qwen3 embedding model, written from the Qwen3
architecture (RMSNorm, q/k norms, RoPE, grouped-query causal attention, SwiGLU), reading the
safetensors file directly. Used only to check the torch backend: it shares no code with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def _rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


class ReferenceQwen3:
    def __init__(self, folder: Path) -> None:
        self.config = json.loads((folder / "config.json").read_text())
        raw = load_file(str(folder / "model.safetensors"))
        self.weights = {key.removeprefix("model."): value.astype(np.float64) for key, value in raw.items()}

    def last_token_vector(self, ids: list[int]) -> np.ndarray:
        c, w = self.config, self.weights
        heads, kv_heads, head_dim = (
            c["num_attention_heads"],
            c["num_key_value_heads"],
            c["head_dim"],
        )
        eps = c["rms_norm_eps"]
        theta = c.get("rope_theta") or c.get("rope_parameters", {}).get("rope_theta", 1e6)
        length = len(ids)
        h = w["embed_tokens.weight"][ids]
        inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
        angles = np.arange(length)[:, None] * inv_freq[None, :]
        cos = np.cos(np.concatenate([angles, angles], axis=-1))[:, None, :]
        sin = np.sin(np.concatenate([angles, angles], axis=-1))[:, None, :]
        causal = np.triu(np.full((length, length), -np.inf), k=1)
        for layer in range(c["num_hidden_layers"]):
            p = f"layers.{layer}."
            x = _rms_norm(h, w[p + "input_layernorm.weight"], eps)
            q = (x @ w[p + "self_attn.q_proj.weight"].T).reshape(length, heads, head_dim)
            k = (x @ w[p + "self_attn.k_proj.weight"].T).reshape(length, kv_heads, head_dim)
            v = (x @ w[p + "self_attn.v_proj.weight"].T).reshape(length, kv_heads, head_dim)
            q = _rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = _rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            group = heads // kv_heads
            k = np.repeat(k, group, axis=1)
            v = np.repeat(v, group, axis=1)
            scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(head_dim) + causal
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            attended = np.einsum("hqk,khd->qhd", scores, v).reshape(length, heads * head_dim)
            h = h + attended @ w[p + "self_attn.o_proj.weight"].T
            x = _rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
            gate = x @ w[p + "mlp.gate_proj.weight"].T
            up = x @ w[p + "mlp.up_proj.weight"].T
            h = h + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
        h = _rms_norm(h, w["norm.weight"], eps)
        return h[-1]
