"""Int8 Linear layers for the torch-int8 backend: int8 weights per output channel, activations
quantised per token at run time, the product in int32 by `torch._int_mm` (VNNI on x86).

Why not `torch.ao.quantization.quantize_dynamic`: measured on all-MiniLM-L6-v2 here it is faster
(~2.5x fp32) but quantises activations per TENSOR to 7-bit unsigned, and the outlier
dimensions of transformer activations then cost so much precision that the cosine to the fp32
vector fell to 0.95 (per-channel weights) or 0.76 (per-tensor): it cannot pass the accuracy
gate (embedhub.models.quality). Per-token activation scales keep the cosine above 0.99.

Speed, measured on the 2-core EPYC (AVX-512 VNNI / BF16), all-MiniLM-L6-v2, 32 x 256 tokens: the
int8 matmul itself is ~3x faster than float32, but in eager torch the per-call quantise /
dequantise passes over the activations cost about as much as it saves, so the whole forward runs
at roughly float32 speed (0.6-1.7x over noisy runs), while torch-bf16 runs 2-3.6x faster. This backend
is kept for memory (int8 weights) and as the accuracy-safe int8 path; prefer torch-bf16 for speed.
"""

from __future__ import annotations

import torch
from torch import nn

_LEVELS = 127.0
#: torch._int_mm wants more than 16 rows; smaller inputs are zero-padded up to this
_MIN_ROWS = 17


class Int8Linear(nn.Module):
    """y = x W^T + b with W in int8 (one scale per output row) and x in int8 (one scale per row)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / _LEVELS
        quantised = torch.round(weight / scale[:, None]).clamp(-_LEVELS, _LEVELS).to(torch.int8)
        # stored (out, in) and used transposed: _int_mm on CPU runs ~2x faster on this layout
        self.register_buffer("weight_int8", quantised.contiguous())
        self.register_buffer("weight_scale", scale)
        bias = linear.bias.detach().float() if linear.bias is not None else None
        self.register_buffer("bias", bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        shape = x.shape
        rows = x.reshape(-1, shape[-1]).float()
        scale = rows.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12).div_(_LEVELS)
        quantised = rows.div(scale).round_().to(torch.int8)
        count = quantised.shape[0]
        if count < _MIN_ROWS:
            quantised = nn.functional.pad(quantised, (0, 0, 0, _MIN_ROWS - count))
        product = torch._int_mm(quantised, self.weight_int8.t())[:count]
        out = product.to(torch.float32).mul_(scale).mul_(self.weight_scale)
        if self.bias is not None:
            out.add_(self.bias)
        return out.reshape(*shape[:-1], self.out_features).to(dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_linear_layers(model: nn.Module) -> int:
    """Replace every nn.Linear inside `model` in place; returns how many were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear(child))
                replaced += 1
    return replaced
