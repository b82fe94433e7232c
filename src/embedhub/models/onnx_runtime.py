"""The onnx-int8 backend: the model exported to ONNX from its local folder, weights quantised to
int8 per channel, run by ONNX Runtime (MatMulInteger).

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
from embedhub.models.spec import ModelSpec
from embedhub.models.transformer import LocalEncoder, load_transformers_model, pool
from embedhub.models.variants import variant_dir

logger = logging.getLogger(__name__)
BACKEND = "onnx-int8"
FORMAT_VERSION = 3  # bump when the export or quantisation changes, so cached files are rebuilt
MODEL_FILE = "model.int8.onnx"
OPSET = 18
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

    from embedhub.models.transformer import read_json

    config = read_json(folder / "config.json")
    down = (int(config.get("intermediate_size", -1)), int(config.get("hidden_size", -1)))
    graph = onnx.load(str(source), load_external_data=False).graph
    shapes = {tensor.name: tuple(tensor.dims) for tensor in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and len(node.input) > 1 and shapes.get(node.input[1]) == down
    ]


def quantize_onnx(source: Path, out: Path, folder: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights, one scale per output channel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(out),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=_feed_forward_outputs(source, folder),
        use_external_data_format=_large(folder),
        # only weight MatMuls: quantising attention's activation x activation products
        # (scores, softmax x values) per tensor cost the most accuracy
        extra_options={"MatMulConstBOnly": True},
    )


def ensure_onnx_int8(spec: ModelSpec, folder: Path, settings: Settings) -> Path:
    """The quantised ONNX file for the weights in `folder`, built once (atomic rename)."""
    target = variant_dir(settings, spec.name, folder, BACKEND, FORMAT_VERSION)
    if (target / MODEL_FILE).exists():
        return target / MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        logger.info("exporting %s to ONNX int8 (once per weights) into %s", spec.name, target)
        export_onnx(folder, spec, staging / "model.onnx")
        quantize_onnx(staging / "model.onnx", staging / MODEL_FILE, folder)
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
            f"could not export {spec.name} to ONNX: {type(error).__name__}: {error}; "
            "use --backend torch-int8 or torch-bf16"
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

        from embedhub.models.transformer import read_json

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
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run_padded(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        (hidden,) = self.session.run(["last_hidden_state"], {"input_ids": input_ids, "attention_mask": mask})
        pooled = pool(torch.from_numpy(hidden).float(), torch.from_numpy(mask), self.spec.pooling)
        return pooled.numpy()

    def close(self) -> None:
        self.session = None
