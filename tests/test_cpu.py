"""CPU classes (models/cpu.py) and the int8 formats that follow them (models/onnx_runtime.py).

The class comes from the flags Linux reports; the examples are real CPUs' flags (trimmed to the
ones that decide). The int8 checks run on every machine: per-token activation scales are checked
on a one-MatMul graph, both weight formats on the tiny Qwen3, and the AVX2 format on an emulated
AVX2 CPU (qemu's Haswell model: no AVX-512, no VNNI) where `qemu-x86_64` is installed (`make
test` installs it), so an AVX-512 machine proves what an AVX2 one runs.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from embedhub.config import Settings
from embedhub.errors import ConfigurationError
from embedhub.models import cpu as cpu_module
from embedhub.models.backends import BACKENDS, available_backends, load_encoder
from embedhub.models.cpu import CPU_CLASSES, CpuInfo, classify, detect_cpu, read_cpuinfo

ONNX = pytest.mark.skipif("onnx-int8" not in available_backends(), reason="pip install 'embedhub[onnx]'")

ZEN3 = "fpu sse2 avx f16c fma avx2 bmi2 sha_ni"  # AMD EPYC 7003: AVX2 only
ZEN4 = "avx2 fma avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 avx512vbmi"
SKYLAKE_SP = "avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl"
ICE_LAKE_SP = "avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512vbmi"
ALDER_LAKE = "avx2 fma avx_vnni"
SAPPHIRE_RAPIDS = "avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (ZEN3, "avx2"),
        (ALDER_LAKE, "avx2-vnni"),
        (SKYLAKE_SP, "avx512"),
        (ICE_LAKE_SP, "avx512-vnni"),
        (ZEN4, "avx512-bf16"),
        (SAPPHIRE_RAPIDS, "amx"),
        ("sse2 sse4_2 avx", "baseline"),
    ],
)
def test_cpu_class_from_flags(flags, expected):
    assert classify(frozenset(flags.split())) == expected


def test_only_bfloat16_classes_are_native_bfloat16_and_only_vnni_classes_are_exact_u8s8():
    info = {name: CpuInfo("x", frozenset(), name) for name in CPU_CLASSES}
    assert [name for name in CPU_CLASSES if info[name].native_bfloat16] == ["avx512-bf16", "amx"]
    assert [name for name in CPU_CLASSES if info[name].vnni] == [
        "avx2-vnni",
        "avx512-vnni",
        "avx512-bf16",
        "amx",
    ]


def test_cpuinfo_text_is_read_and_the_override_wins(monkeypatch):
    text = f"processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: {ZEN3}\n\nprocessor\t: 1\n"
    model, flags = read_cpuinfo(text)
    assert model == "AMD EPYC 7B13" and "avx2" in flags
    monkeypatch.setattr(cpu_module, "_detected", lambda: (model, flags))
    assert detect_cpu().cpu_class == "avx2" and not detect_cpu().vnni
    forced = detect_cpu("AVX512-BF16")
    assert forced.cpu_class == "avx512-bf16" and forced.overridden and forced.native_bfloat16
    assert "set by EMBEDHUB_CPU_CLASS" in forced.describe() and "AMD EPYC 7B13" in forced.describe()
    with pytest.raises(ConfigurationError, match=r"unknown CPU class 'avx3'.*avx2, avx2-vnni"):
        detect_cpu("avx3")


def test_this_machine_has_a_class():
    here = detect_cpu()
    assert here.cpu_class in CPU_CLASSES
    assert set(here.relevant_flags) <= set(cpu_module.RELEVANT_FLAGS)
    assert here.as_dict()["class"] == here.cpu_class


@ONNX
def test_activations_are_quantised_per_token(tmp_path):
    """Rows 10^6 apart in size keep their precision: with one scale per tensor (ONNX Runtime's
    own dynamic quantisation) the small rows quantised to zero."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from embedhub.models.onnx_runtime import UNFUSED, quantize_onnx

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((64, 48)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "one-matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", 48])],
        [numpy_helper.from_array(weight, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "f32.onnx")
    (tmp_path / "config.json").write_text("{}")
    rows = rng.standard_normal((4, 64)).astype(np.float32) * np.array(
        [[1e-3], [1.0], [1e3], [1e-3]], np.float32
    )
    expected = rows @ weight
    for weights in ("s8", "u8"):
        quantize_onnx(tmp_path / "f32.onnx", tmp_path / f"{weights}.onnx", tmp_path, weights)
        session = onnxruntime.InferenceSession(
            str(tmp_path / f"{weights}.onnx"), providers=["CPUExecutionProvider"], disabled_optimizers=UNFUSED
        )
        (got,) = session.run(None, {"x": rows})
        cosines = (
            np.sum(got * expected, axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
        )
        assert cosines.min() >= 0.999, (weights, cosines)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(expected, axis=1), rtol=0.02)


@ONNX
@pytest.mark.parametrize(("cpu_class", "weights"), [("avx2", "u8"), ("avx512-vnni", "s8")])
def test_each_cpu_class_gets_its_int8_format_and_both_pass_the_gate(
    cpu_class, weights, tiny_model_dir, tiny_encoder, settings
):
    """The u8 weights AVX2 CPUs run are exact on any CPU, so their gate is checked here on every
    machine; the s8 ones are what VNNI CPUs run (checked natively where the CPU has VNNI)."""
    chosen = settings.model_copy(update={"backend": "onnx-int8", "cpu_class": cpu_class})
    encoder = load_encoder(str(tiny_model_dir), chosen)
    assert encoder.variant_folder.name.startswith(f"random-qwen3-tiny-onnx-int8-{weights}-v")
    assert (encoder.variant_folder / f"quality-v1-{cpu_class}.json").is_file()
    if weights == "s8" and not detect_cpu().vnni:
        pytest.skip(f"s8 weights saturate without VNNI: this CPU is {detect_cpu().cpu_class}")
    texts = ["hello", "北京是中国的首都。", "def add(a, b):\n    return a + b"]
    mine, reference = encoder.encode(texts).vectors, tiny_encoder.encode(texts).vectors
    assert np.sum(mine * reference, axis=1).min() >= 0.99


@ONNX
@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="no qemu-x86_64 (`make test` installs it)")
def test_int8_on_an_emulated_avx2_cpu(tiny_model_dir, tiny_encoder, settings, tmp_path):
    """On an AVX2 CPU (qemu's Haswell) the u8 format reproduces float32, and the s8 format does
    not: its u8 x s8 products run on vpmaddubsw there, whose 16-bit sums saturate (the cause of
    the failure this format avoids; cosine 0.95 on the tiny Qwen3 at ONNX Runtime 1.32)."""
    from tests.emulated_cpu import TEXTS, run_emulated

    files = {}
    for cpu_class, weights in (("avx2", "u8"), ("avx512-vnni", "s8")):
        chosen = settings.model_copy(update={"backend": "onnx-int8", "cpu_class": cpu_class})
        files[weights] = load_encoder(str(tiny_model_dir), chosen).variant_folder / "model.int8.onnx"
    np.save(tmp_path / "reference.npy", tiny_encoder.encode(TEXTS).vectors)
    worst = run_emulated(tiny_model_dir, tmp_path / "reference.npy", [files["u8"], files["s8"]])
    assert worst[str(files["u8"])] >= 0.99, worst
    assert worst[str(files["s8"])] < 0.99, worst


def test_torch_backends_name_the_kernel_they_depend_on():
    assert BACKENDS["torch-bf16"].kernel == "bfloat16"
    assert BACKENDS["torch-int8"].kernel == "int8"
    assert all(BACKENDS[name].kernel is None for name in ("torch", "onnx-int8", "gguf", "remote"))


def test_settings_reads_the_cpu_class(monkeypatch):
    monkeypatch.setenv("EMBEDHUB_CPU_CLASS", "avx2")
    assert Settings().cpu_class == "avx2"
