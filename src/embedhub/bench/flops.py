"""The machine's matmul peaks and the arithmetic of one forward pass, for "share of peak".

A forward pass over one input of L tokens costs, in multiply-adds counted as 2 operations:

    2 * P * L                    every Linear layer of the transformer blocks (P = their weights;
                                 embeddings, which are looked up, and a BERT pooler, which sees
                                 one token, are left out)
  + 4 * layers * L^2 * A         attention: Q K^T and the weighted sum of V, each 2 * L^2 * A per
                                 layer, A = heads * head size (the full square: the kernels run
                                 a masked square for Qwen3's causal attention too)

Norms, activations, softmax and pooling are ignored (a few percent at most). A backend's share
of peak is that count times inputs per second, over the peak matmul rate of the precision its
matmuls use (float32, bfloat16, or int8 through torch._int_mm).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

#: The peak a backend's matmuls are measured against; backends not listed run float32.
PRECISION_OF = {"torch-bf16": "bf16", "torch-int8": "int8", "onnx-int8": "int8"}
MATMUL_SIZE = 2048


@dataclass(frozen=True)
class ForwardCost:
    """What a forward pass of one model costs per token, read from its config."""

    linear_parameters: int
    layers: int
    attention_width: int

    def flops(self, tokens: float) -> float:
        """Operations for one input of `tokens` tokens (see the module docstring)."""
        return 2.0 * self.linear_parameters * tokens + 4.0 * self.layers * tokens**2 * self.attention_width

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def forward_cost(folder: Path) -> ForwardCost:
    """Count the Linear weights of a model built on torch's meta device (no memory, no weights)."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(folder))
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    linear = sum(
        module.weight.numel()
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and "pooler" not in name
    )
    heads = int(config.num_attention_heads)
    head_size = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return ForwardCost(int(linear), int(config.num_hidden_layers), heads * head_size)


def measure_peaks(seconds: float, size: int = MATMUL_SIZE) -> dict[str, float]:
    """Operations per second of a square matmul in float32, bfloat16 and int8 (torch._int_mm),
    each timed for about `seconds` after one warm-up call."""
    import torch

    generator = torch.Generator().manual_seed(0)
    left = torch.randn(size, size, generator=generator)
    right = torch.randn(size, size, generator=generator)
    cases = {
        "fp32": (torch.mm, left, right),
        "bf16": (torch.mm, left.bfloat16(), right.bfloat16()),
        "int8": (
            torch._int_mm,
            torch.randint(-127, 128, (size, size), dtype=torch.int8, generator=generator),
            torch.randint(-127, 128, (size, size), dtype=torch.int8, generator=generator),
        ),
    }
    peaks = {}
    for name, (multiply, a, b) in cases.items():
        multiply(a, b)  # warm-up: thread pool, kernel selection
        calls, started = 0, time.perf_counter()
        while True:
            multiply(a, b)
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                break
        peaks[name] = 2.0 * size**3 * calls / elapsed
    return peaks
