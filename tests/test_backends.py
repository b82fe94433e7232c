"""Backends chosen by name: parity with float32, the Qwen3 rules on every backend, the accuracy
gate, the on-disk ONNX cache, and the errors that list the choices.

Tolerances (cosine to the float32 vector of the same input): torch-bf16 >= 0.999; the int8
backends >= 0.99 (the accuracy gate's own bar). Batch invariance (one text alone vs inside a
padded batch): torch and both int8 backends >= 0.9999 (int8 scales are per token, so a row never
sees its neighbours), torch-bf16 >= 0.999.

CPU classes (models/cpu.py): no verdict here depends on the machine's instruction set. The torch
bfloat16 / int8 backends are loaded as on a CPU that has their kernels (Settings.cpu_class), so
their arithmetic is checked everywhere (emulated kernels are slow, not wrong, and the tiny model
is small); onnx-int8 runs in the format of the detected class, and both formats are built and
gated on every machine (the u8 one is what AVX2 CPUs run, exact on any CPU).
"""

from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType

import httpx
import numpy as np
import pytest

from embedhub.config import Settings
from embedhub.errors import ConfigurationError, ModelLoadError
from embedhub.models import backends as backends_module
from embedhub.models import quality
from embedhub.models.backends import BACKENDS, Backend, available_backends, get_backend, load_encoder
from embedhub.models.cpu import CPU_CLASSES
from embedhub.models.spec import ENDOFTEXT_ID
from embedhub.server.app import create_app
from tests.live_server import live_server

PARITY = {"torch": 0.99999, "torch-bf16": 0.999, "torch-int8": 0.99, "onnx-int8": 0.99}
BATCH_INVARIANCE = {"torch": 0.9999, "torch-bf16": 0.999, "torch-int8": 0.9999, "onnx-int8": 0.9999}
#: a class whose CPUs have torch's bfloat16 and int8 kernels (see the module docstring)
NATIVE_KERNELS = "avx512-bf16"
# backends that run model folders (the gguf backend runs .gguf files: tests/test_gguf.py; the
# remote backend runs remote: references: tests/test_remote_backend.py)
INSTALLED = [
    name
    for name in BACKENDS
    if name in available_backends() and not BACKENDS[name].file_suffix and not BACKENDS[name].scheme
]
TEXTS = [
    "hello",
    "北京是中国的首都。",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "def add(a, b):\n    return a + b",
    "A much longer English sentence about retrieval, embeddings and quantisation " * 6,
]


def _with_backend(settings, name, **extra):
    return settings.model_copy(update={"backend": name, **extra})


def _as_on_native_kernels(settings, name):
    """Settings that load `name`; torch's bfloat16 / int8 backends as on a CPU with their kernels."""
    if BACKENDS[name].kernel:
        return _with_backend(settings, name, cpu_class=NATIVE_KERNELS)
    return _with_backend(settings, name)


@pytest.fixture(scope="module", params=INSTALLED)
def tiny_backend(request, tiny_model_dir, settings):
    return load_encoder(str(tiny_model_dir), _as_on_native_kernels(settings, request.param))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_every_backend_here_is_listed_and_torch_always_installed():
    assert set(BACKENDS) == {"torch", "torch-bf16", "torch-int8", "onnx-int8", "gguf", "remote"}
    assert available_backends()[0] == "torch"
    assert set(available_backends()) <= set(BACKENDS)


def test_unknown_backend_names_every_choice(tiny_model_dir, settings):
    with pytest.raises(ConfigurationError) as caught:
        load_encoder(str(tiny_model_dir), _with_backend(settings, "tensorrt"))
    message = str(caught.value)
    assert "'tensorrt'" in message
    for name in ("auto", *BACKENDS):
        assert name in message


def test_missing_packages_name_the_extra(monkeypatch):
    fake = Backend(
        "fancy", "needs a package", BACKENDS["torch"].load, requires=("no_such_module_x",), extra="x"
    )
    monkeypatch.setattr(backends_module, "BACKENDS", {**BACKENDS, "fancy": fake})
    with pytest.raises(ConfigurationError, match=r"no_such_module_x.*pip install 'embedhub\[x\]'"):
        get_backend("fancy")


def _default_backend(monkeypatch, name: str, classes: tuple[str, ...] = CPU_CLASSES) -> None:
    """Make every spec derived from a folder name `name` as its measured default on `classes`."""
    from embedhub.models import loading

    real = loading.spec_from_folder
    rule = MappingProxyType(dict.fromkeys(classes, name))
    monkeypatch.setattr(
        loading,
        "spec_from_folder",
        lambda *args, **kw: dataclasses.replace(real(*args, **kw), default_backends=rule),
    )


def test_auto_uses_the_models_default_backend_for_the_cpu_class(tiny_model_dir, settings, monkeypatch):
    _default_backend(monkeypatch, "torch")
    assert load_encoder(str(tiny_model_dir), _with_backend(settings, "auto")).backend == "torch"
    _default_backend(monkeypatch, "torch-bf16", classes=("avx512-bf16", "amx"))
    on_bf16 = load_encoder(str(tiny_model_dir), _with_backend(settings, "auto", cpu_class="amx"))
    assert on_bf16.backend == "torch-bf16"
    assert "measured default" in on_bf16.backend_reason and "CPU class amx" in on_bf16.backend_reason
    # a class the rule does not name runs float32
    on_avx2 = load_encoder(str(tiny_model_dir), _with_backend(settings, "auto", cpu_class="avx2"))
    assert on_avx2.backend == "torch"


def test_auto_runs_the_measured_backend_of_each_cpu_class():
    from embedhub.models.registry import ALL_MINILM_L6_V2, MULTILINGUAL_E5_SMALL_Q4, QWEN3_EMBEDDING_0_6B

    def auto(spec, cpu_class):
        return backends_module.auto_backend(spec, Settings(cpu_class=cpu_class))

    for cpu_class in ("avx512-bf16", "amx"):  # bfloat16 in hardware
        assert auto(MULTILINGUAL_E5_SMALL_Q4, cpu_class) == "torch-bf16"
        assert auto(ALL_MINILM_L6_V2, cpu_class) == "torch-bf16"
        assert auto(QWEN3_EMBEDDING_0_6B, cpu_class) == "torch-bf16"  # published in bfloat16
    onnx = "onnx-int8" if "onnx-int8" in available_backends() else "torch"
    for cpu_class in ("avx2-vnni", "avx512-vnni"):  # exact, fast int8 (VNNI); bfloat16 emulated
        assert auto(MULTILINGUAL_E5_SMALL_Q4, cpu_class) == onnx
        assert auto(ALL_MINILM_L6_V2, cpu_class) == onnx
        assert auto(QWEN3_EMBEDDING_0_6B, cpu_class) == "torch"
    for cpu_class in ("avx2", "avx512", "baseline"):  # neither: float32
        assert auto(MULTILINGUAL_E5_SMALL_Q4, cpu_class) == "torch"
        assert auto(ALL_MINILM_L6_V2, cpu_class) == "torch"
        assert auto(QWEN3_EMBEDDING_0_6B, cpu_class) == "torch"


def test_auto_runs_float32_when_the_measured_backend_is_not_installed(monkeypatch):
    from embedhub.models.registry import ALL_MINILM_L6_V2

    missing = dataclasses.replace(BACKENDS["onnx-int8"], requires=("no_such_module_x",))
    monkeypatch.setattr(backends_module, "BACKENDS", {**BACKENDS, "onnx-int8": missing})
    settings = Settings(cpu_class="avx512-vnni")
    assert backends_module.auto_backend(ALL_MINILM_L6_V2, settings) == "torch"
    assert "pip install 'embedhub[onnx]'" in backends_module.auto_reason(ALL_MINILM_L6_V2, settings)


SLOW_KERNELS = {"float32": 52.0, "bfloat16": 0.8, "int8": 1.1}  # measured on an AVX2 EPYC


@pytest.mark.parametrize("name", ["torch-bf16", "torch-int8"])
def test_torch_kernels_slower_than_float32_are_refused_with_the_figures(
    name, tiny_model_dir, settings, monkeypatch
):
    monkeypatch.setattr(backends_module, "kernel_speed", SLOW_KERNELS.__getitem__)
    with pytest.raises(ConfigurationError) as caught:
        load_encoder(str(tiny_model_dir), _with_backend(settings, name, cpu_class="avx2"))
    message = str(caught.value)
    kernel = BACKENDS[name].kernel
    assert f"backend {name} would be" in message and "slower than float32" in message
    assert f"{SLOW_KERNELS[kernel]:.1f}" in message and "52.0 GFLOP/s" in message
    assert "class avx2" in message and "--backend" in message


def test_torch_kernels_are_measured_only_where_the_class_lacks_them(tiny_model_dir, settings, monkeypatch):
    measured = []

    def speed(kernel):
        measured.append(kernel)
        return 100.0  # as fast as float32: allowed

    monkeypatch.setattr(backends_module, "kernel_speed", speed)
    load_encoder(str(tiny_model_dir), _with_backend(settings, "torch-bf16", cpu_class="amx"))
    assert measured == []
    encoder = load_encoder(str(tiny_model_dir), _with_backend(settings, "torch-bf16", cpu_class="avx512"))
    assert encoder.backend == "torch-bf16" and "bfloat16" in measured


def test_kernel_speed_measures_this_machine():
    float32 = backends_module.kernel_speed("float32")
    assert float32 > 0.5  # GFLOP/s: any CPU that runs these tests
    assert backends_module.kernel_speed("float32") == float32  # cached


def test_backend_parity_with_float32(tiny_backend, tiny_encoder):
    assert tiny_backend.backend in BACKENDS
    for kind in ("document", "query"):
        mine = tiny_backend.encode(TEXTS, kind=kind).vectors
        reference = tiny_encoder.encode(TEXTS, kind=kind).vectors
        assert mine.dtype == np.float32
        assert _cosines(mine, reference).min() >= PARITY[tiny_backend.backend]


def test_one_text_alone_equals_the_same_text_in_a_padded_batch(tiny_backend):
    batch = tiny_backend.encode(TEXTS).vectors
    for index, text in enumerate(TEXTS):
        alone = tiny_backend.encode([text]).vectors[0]
        assert float(alone @ batch[index]) >= BATCH_INVARIANCE[tiny_backend.backend], text


def test_model_inputs_end_with_exactly_one_endoftext(tiny_backend, monkeypatch):
    seen = []
    original = tiny_backend.run_padded

    def record(input_ids, mask):
        seen.append((input_ids.copy(), mask.copy()))
        return original(input_ids, mask)

    monkeypatch.setattr(tiny_backend, "run_padded", record)
    tiny_backend.encode([*TEXTS, "ends with the token itself <|endoftext|>"])
    rows = [ids[mask == 1] for input_ids, masks in seen for ids, mask in zip(input_ids, masks, strict=True)]
    assert len(rows) == len(TEXTS) + 1
    for row in rows:
        assert row[-1] == ENDOFTEXT_ID
        assert row[-2] != ENDOFTEXT_ID
        assert list(row).count(ENDOFTEXT_ID) == 1


def test_mrl_truncates_then_normalises(tiny_backend):
    full = tiny_backend.encode(TEXTS, normalize=False).vectors
    small = tiny_backend.encode(TEXTS, dimensions=32).vectors
    expected = full[:, :32] / np.linalg.norm(full[:, :32], axis=1, keepdims=True)
    np.testing.assert_allclose(small, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(small, axis=1), 1.0, atol=1e-5)


def test_query_and_document_differ(tiny_backend):
    query = tiny_backend.encode(["what is the capital of France"], kind="query").vectors[0]
    document = tiny_backend.encode(["what is the capital of France"], kind="document").vectors[0]
    assert float(query @ document) < 0.9999


@pytest.mark.parametrize("name", [n for n in INSTALLED if BACKENDS[n].quantised])
def test_gate_result_is_cached_beside_the_variant(name, tiny_model_dir, settings, monkeypatch):
    chosen = _as_on_native_kernels(settings, name)
    first = load_encoder(str(tiny_model_dir), chosen)
    assert first.backend == name
    assert "accuracy gate passed" in first.backend_reason
    cpu_class = chosen.cpu_class or backends_module.detect_cpu().cpu_class
    assert list((settings.cache_dir / "variants").glob(f"*{name}*/quality-v*-{cpu_class}.json"))

    def no_second_measurement(*args, **kwargs):
        raise AssertionError("the gate ran again although its result is cached")

    monkeypatch.setattr(quality, "compare", no_second_measurement)
    assert load_encoder(str(tiny_model_dir), chosen).backend == name


def test_a_failing_variant_is_refused_with_its_figures(tiny_model_dir, settings, monkeypatch):
    monkeypatch.setattr(quality.QualityReport, "passed", property(lambda self: False))
    with pytest.raises(ModelLoadError, match=r"torch-int8 is too inaccurate.*cosine to float32 min 0\.9"):
        load_encoder(str(tiny_model_dir), _as_on_native_kernels(settings, "torch-int8"))


def test_auto_falls_back_to_float32_when_its_variant_fails(tiny_model_dir, settings, monkeypatch, capsys):
    monkeypatch.setattr(quality.QualityReport, "passed", property(lambda self: False))
    _default_backend(monkeypatch, "torch-int8")
    encoder = load_encoder(str(tiny_model_dir), _with_backend(settings, "auto", cpu_class=NATIVE_KERNELS))
    assert encoder.backend == "torch"
    assert "failed the accuracy gate" in capsys.readouterr().err
    assert "failed the accuracy gate" in encoder.backend_reason


@pytest.mark.skipif("onnx-int8" not in INSTALLED, reason="pip install 'embedhub[onnx]'")
def test_onnx_file_is_reused_on_the_second_load(tiny_model_dir, settings, monkeypatch):
    from embedhub.models import onnx_runtime

    isolated = _with_backend(settings, "onnx-int8")
    first = load_encoder(str(tiny_model_dir), isolated)
    weights = onnx_runtime.weight_format(isolated)  # tests/test_cpu.py may have built the other one
    pattern = f"random-qwen3-tiny-onnx-int8-{weights}-v*/model.int8.onnx"
    (path,) = (settings.cache_dir / "variants").glob(pattern)
    written = path.stat().st_mtime_ns
    assert not list(path.parent.parent.glob(".*")), "a staging folder was left behind"

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the ONNX file is cached")

    monkeypatch.setattr(onnx_runtime, "export_onnx", no_export)
    second = load_encoder(str(tiny_model_dir), isolated)
    assert path.stat().st_mtime_ns == written
    np.testing.assert_allclose(second.encode(TEXTS).vectors, first.encode(TEXTS).vectors, atol=1e-6)


def test_int8_gate_passes_on_minilm(minilm_encoder, settings, monkeypatch):
    reports = []
    measure = quality.compare

    def keep(candidate, reference):
        reports.append(measure(candidate, reference))
        return reports[-1]

    monkeypatch.setattr(quality, "compare", keep)
    encoder = load_encoder("all-MiniLM-L6-v2", _as_on_native_kernels(settings, "torch-int8"))
    assert encoder.backend == "torch-int8"  # the gate ran while loading and let it through
    if reports:  # not cached from an earlier test in this session
        assert reports[0].min_cosine >= quality.MIN_COSINE, reports[0].describe()
        assert reports[0].neighbour_overlap >= quality.MIN_OVERLAP


def test_bf16_keeps_minilm_vectors(minilm_encoder, settings):
    encoder = load_encoder("all-MiniLM-L6-v2", _as_on_native_kernels(settings, "torch-bf16"))
    report = quality.compare(encoder, minilm_encoder)
    assert report.min_cosine >= 0.999, report.describe()


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in INSTALLED if BACKENDS[n].quantised])
def test_gate_passes_on_multilingual_e5(name, settings):
    reference = load_encoder("multilingual-e5-small-q4", _with_backend(settings, "torch"))
    encoder = load_encoder("multilingual-e5-small-q4", _as_on_native_kernels(settings, name))
    report = quality.compare(encoder, reference)
    assert report.passed, report.describe()


def test_model_card_and_metrics_name_the_backend_and_the_cpu_class(tiny_model_dir, settings):
    chosen = _as_on_native_kernels(settings, "torch-bf16")
    encoder = load_encoder(str(tiny_model_dir), chosen)
    app = create_app(chosen.model_copy(update={"cache_mb": 0}), encoders={"tiny": encoder})
    with live_server(app, "/ready") as url:
        card = httpx.get(url + "/v1/models").json()["data"][0]
        metrics = httpx.get(url + "/metrics").text
    assert card["backend"] == "torch-bf16"
    assert (
        card["backend_reason"].startswith("asked for") and "CPU class avx512-bf16" in card["backend_reason"]
    )
    assert 'embedhub_model_backend{backend="torch-bf16",model="random-qwen3-tiny"} 1.0' in metrics
    assert 'cpu_class="avx512-bf16"' in metrics and "embedhub_cpu_info{" in metrics


def test_cli_backend_flag_reaches_the_encoder_and_rejects_unknown_names(tiny_model_dir, tiny_encoder):
    from typer.testing import CliRunner

    from embedhub.cli import app

    runner = CliRunner()
    wrong = runner.invoke(app, ["embed", "hello", "--model", str(tiny_model_dir), "--backend", "nope"])
    assert wrong.exit_code == 2
    assert "unknown backend 'nope'" in wrong.output and "torch-bf16" in wrong.output
    bf16 = runner.invoke(
        app,
        ["embed", "hello", "--model", str(tiny_model_dir), "--backend", "torch-bf16", "--json"],
        env={"EMBEDHUB_CPU_CLASS": NATIVE_KERNELS},
    )
    assert bf16.exit_code == 0, bf16.output
    vector = np.array(json.loads(bf16.stdout)["data"][0]["embedding"], dtype=np.float32)
    assert float(vector @ tiny_encoder.encode(["hello"]).vectors[0]) >= PARITY["torch-bf16"]
    listed = runner.invoke(app, ["models", "list", "--json"], env={"EMBEDHUB_BACKEND": "torch-int8"})
    assert listed.exit_code == 0, listed.output
    payload = json.loads(listed.stdout)
    assert {row["backend"] for row in payload["models"]} == {"torch-int8"}
    assert "torch" in payload["backends"]
    assert payload["cpu"]["class"] == backends_module.detect_cpu().cpu_class
    human = runner.invoke(
        app, ["models", "list"], env={"EMBEDHUB_CPU_CLASS": "avx2", "EMBEDHUB_BACKEND": "auto"}
    )
    assert human.exit_code == 0, human.output
    assert "class avx2 (set by EMBEDHUB_CPU_CLASS)" in human.output
    assert "measured default for this class" in human.output
