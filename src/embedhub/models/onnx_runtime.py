"""The onnx-int8 backend: the model exported to ONNX from its local folder, weights quantised to
int8 per channel, activations quantised per token at run time, run by ONNX Runtime
(MatMulInteger).

Why per token, and why the weight format follows the CPU (measured on the gate's texts, cosine
to float32, worst vector; docs/backends.md):
- ONNX Runtime's own dynamic quantisation gives the whole batch ONE activation scale
  (DynamicQuantizeLinear), so a row's precision depended on its neighbours: all-MiniLM-L6-v2
  failed the gate at 0.986. Each token gets its own symmetric scale here (max |x| / 127, zero
  point 128): MiniLM 0.993, multilingual-e5-small 0.999, the tiny Qwen3 0.998.
- u8 activations x s8 weights run on `vpmaddubsw` where the CPU has no VNNI (AVX2, AVX-512
  without VNNI): it adds pairs of products into 16 bits and saturates, and the gate failed at
  0.950 on an AVX2 CPU (reproduced under an emulated Haswell). u8 x u8 weights widen to 16 bits
  first and are exact there; VNNI's `vpdpbusd` is exact for u8 x s8 and 28% faster than u8 x u8.
  So the weights are s8 where `CpuInfo.vnni`, u8 elsewhere, and each format is its own variant.

Export uses `torch.onnx.export(dynamo=True)` on the transformers model itself (optimum would
need transformers < 4.58): batch and length are dynamic, the graph returns the last hidden
states and pooling runs here, from the attention mask, exactly as in the torch backend. The
legacy TorchScript exporter gave wrong BERT outputs with transformers 5 (max error ~1.8), so it
is not used. The quantised file is built once per weights in the variant folder
(models/variants.py) and renamed into place when complete; later loads reuse it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from embedhub.config import Settings
from embedhub.errors import ModelLoadError
from embedhub.models.cpu import detect_cpu
from embedhub.models.spec import ModelSpec
from embedhub.models.transformer import LocalEncoder, load_transformers_model, pool
from embedhub.models.variants import variant_dir

logger = logging.getLogger(__name__)
BACKEND = "onnx-int8"
FORMAT_VERSION = 4  # bump when the export or quantisation changes, so cached files are rebuilt
MODEL_FILE = "model.int8.onnx"
OPSET = 18
#: ONNX Runtime's MatMulInteger + Cast + Mul fusion reads the activation scale as one value per
#: tensor or column: with the per-token scales it gave cosine 0.71 on MiniLM. Kept unfused.
UNFUSED = ["MatMulIntegerToFloatFusion"]
#: zero point of the per-token u8 activations: symmetric codes 1..255 around it
ACTIVATION_ZERO_POINT = 128
#: protobuf files cannot exceed 2 GiB: bigger models keep their tensors in a side file
EXTERNAL_DATA_BYTES = 1 << 30


class _HiddenStates(torch.nn.Module):
    """input_ids, attention_mask -> last_hidden_state, with BERT's token types and positions
    made explicit (the graph must not bake them in for one shape)."""

    def __init__(self, model: torch.nn.Module, encoder_style: bool) -> None:
        super().__init__()
        self.model = model
        self.encoder_style = encoder_style

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        extra = {}
        if self.encoder_style:
            extra["token_type_ids"] = torch.zeros_like(input_ids)
            extra["position_ids"] = torch.cumsum(torch.ones_like(input_ids), dim=1) - 1
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state


def export_onnx(folder: Path, spec: ModelSpec, out: Path) -> None:
    """Export the float32 model in `folder` to `out` (dynamic batch and length)."""
    import warnings

    # eager attention: the exported sdpa decomposition spent most of its time in Where / IsNaN
    # nodes (ONNX Runtime profile of multilingual-e5-small: ~60% of the run)
    model = load_transformers_model(folder, attention="eager")
    wrapper = _HiddenStates(model, encoder_style=spec.architecture == "encoder").eval()
    sample = torch.randint(10, 1000, (2, 8), dtype=torch.long)
    mask = torch.ones_like(sample)
    mask[1, 6:] = 0
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    with warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (sample, mask),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length}),
            opset_version=OPSET,
            dynamo=True,
            external_data=_large(folder),
            verbose=False,
        )


def _large(folder: Path) -> bool:
    return sum(path.stat().st_size for path in folder.glob("*.safetensors")) > EXTERNAL_DATA_BYTES


def _feed_forward_outputs(source: Path, folder: Path) -> list[str]:
    """The MatMul nodes of the feed-forward down projection (weight intermediate x hidden).

    Their input is the activation function's output (GELU / SwiGLU), whose long positive tail
    loses the most precision under ONNX Runtime's per-tensor activation quantisation: on
    all-MiniLM-L6-v2 the worst cosine to float32 went 0.988 -> 0.991 by keeping them float32.
    """
    import onnx

    from embedhub.models.loading import read_json

    config = read_json(folder / "config.json")
    down = (int(config.get("intermediate_size", -1)), int(config.get("hidden_size", -1)))
    graph = onnx.load(str(source), load_external_data=False).graph
    shapes = {tensor.name: tuple(tensor.dims) for tensor in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and len(node.input) > 1 and shapes.get(node.input[1]) == down
    ]


def weight_format(settings: Settings) -> str:
    """`s8` where the CPU multiplies u8 x s8 without saturating (VNNI), `u8` elsewhere."""
    return "s8" if detect_cpu(settings.cpu_class).vnni else "u8"


def quantize_onnx(source: Path, out: Path, folder: Path, weights: str = "s8") -> None:
    """int8 MatMul weights, one scale per output channel (`weights` s8 or u8), then activations
    quantised per token (`per_token_activations`)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(out),
        per_channel=True,
        weight_type=QuantType.QInt8 if weights == "s8" else QuantType.QUInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=_feed_forward_outputs(source, folder),
        use_external_data_format=_large(folder),
        # only weight MatMuls: quantising attention's activation x activation products
        # (scores, softmax x values) per tensor cost the most accuracy
        extra_options={"MatMulConstBOnly": True},
    )
    per_token_activations(out, large=_large(folder))


def per_token_activations(path: Path, *, large: bool = False) -> None:
    """Replace each DynamicQuantizeLinear (one scale for the whole tensor) by per-token symmetric
    quantisation: scale = max(|x|) / 127 over the last axis, codes round(x / scale) + 128.

    The replacement keeps the three output names, so the quantiser's MatMulInteger (zero point
    now the constant 128) and its Mul by activation scale x weight scale (now [..., 1] x [N],
    broadcast) are untouched."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {
        "per_token_axes": np.array([-1], dtype=np.int64),
        "per_token_tiny": np.array(1e-12, dtype=np.float32),
        "per_token_levels": np.array(127.0, dtype=np.float32),
        "per_token_shift": np.array(float(ACTIVATION_ZERO_POINT), dtype=np.float32),
        "per_token_low": np.array(0.0, dtype=np.float32),
        "per_token_high": np.array(255.0, dtype=np.float32),
        "per_token_zero_point": np.array(ACTIVATION_ZERO_POINT, dtype=np.uint8),
    }
    nodes = []
    for node in graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        (source,) = node.input
        codes, scale, zero_point = node.output
        step = f"{source}_per_token"
        nodes += [
            helper.make_node("Abs", [source], [f"{step}_abs"]),
            helper.make_node("ReduceMax", [f"{step}_abs", "per_token_axes"], [f"{step}_max"], keepdims=1),
            helper.make_node("Max", [f"{step}_max", "per_token_tiny"], [f"{step}_range"]),
            helper.make_node("Div", [f"{step}_range", "per_token_levels"], [scale]),
            helper.make_node("Div", [source, scale], [f"{step}_scaled"]),
            helper.make_node("Round", [f"{step}_scaled"], [f"{step}_rounded"]),
            helper.make_node("Add", [f"{step}_rounded", "per_token_shift"], [f"{step}_shifted"]),
            helper.make_node(
                "Clip", [f"{step}_shifted", "per_token_low", "per_token_high"], [f"{step}_clipped"]
            ),
            helper.make_node("Cast", [f"{step}_clipped"], [codes], to=TensorProto.UINT8),
            helper.make_node("Identity", ["per_token_zero_point"], [zero_point]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    if large:
        onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save(model, str(path))


def ensure_onnx_int8(spec: ModelSpec, folder: Path, settings: Settings) -> Path:
    """The quantised ONNX file for the weights in `folder`, built once (atomic rename)."""
    weights = weight_format(settings)
    target = variant_dir(settings, spec.name, folder, f"{BACKEND}-{weights}", FORMAT_VERSION)
    if (target / MODEL_FILE).exists():
        return target / MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        logger.info("exporting %s to ONNX int8 (once per weights) into %s", spec.name, target)
        export_onnx(folder, spec, staging / "model.onnx")
        quantize_onnx(staging / "model.onnx", staging / MODEL_FILE, folder, weights)
        for path in staging.glob("model.onnx*"):
            path.unlink()  # the float32 export is only a step
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first: its file is as good as ours
            if not (target / MODEL_FILE).exists():
                raise
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(
            f"could not export {spec.name} to ONNX: {type(error).__name__}: {error}; use --backend "
            + ("torch-bf16" if detect_cpu(settings.cpu_class).native_bfloat16 else "torch")
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / MODEL_FILE


class OnnxEncoder(LocalEncoder):
    """Runs the int8 ONNX graph with ONNX Runtime; pooling as in the torch backend."""

    backend = BACKEND

    def __init__(
        self, spec: ModelSpec, folder: Path, tokenizer: Tokenizer, path: Path, settings: Settings
    ) -> None:
        import onnxruntime

        from embedhub.models.loading import read_json

        config = read_json(folder / "config.json")
        super().__init__(
            spec,
            folder,
            tokenizer,
            vocabulary_size=int(config.get("vocab_size", 0)),
            pad_id=config.get("pad_token_id"),
            max_batch_tokens=settings.max_batch_tokens,
            max_batch_size=settings.max_batch_size,
        )
        self.variant_folder = path.parent
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = settings.threads or 0
        options.inter_op_num_threads = 1
        # Spinning worker threads hold cores other work needs (see config.prefer_passive_openmp_waiting).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=UNFUSED
        )

    def run_padded(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        (hidden,) = self.session.run(["last_hidden_state"], {"input_ids": input_ids, "attention_mask": mask})
        pooled = pool(torch.from_numpy(hidden).float(), torch.from_numpy(mask), self.spec.pooling)
        return pooled.numpy()

    def close(self) -> None:
        self.session = None
