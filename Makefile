# Two entry points: `make run` and `make test`. Both install into .venv when needed.
# torch==2.13.0 (the local CPU build) goes in first, so nothing pulls a multi-GB CUDA build.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0
SYSTEM_PYTHON ?= python3
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1

.PHONY: install install-gguf test-gguf browser emulator ocr-tools run test test-slow test-clients install-clients lint format clean

# The first run installs about 3 GB into .venv (torch's CPU build is 0.75 GB of it) and takes
# several minutes; pip runs quietly, so each step says what it is doing and that it happens once.
$(STAMP): pyproject.toml
	@echo "embedhub: installing into $(VENV) (once: about 3 GB, several minutes; later runs start at once)"
	@test -x $(PYTHON) || $(SYSTEM_PYTHON) -m venv $(VENV)
	@echo "embedhub: [1/3] pip"
	@$(PYTHON) -m pip install -q --upgrade pip
	@echo "embedhub: [2/3] torch $(TORCH_VERSION), CPU build (the largest download)"
	@$(PYTHON) -m pip install -q torch==$(TORCH_VERSION)
	@echo "embedhub: [3/3] embedhub and its dependencies (the offline default model is one of them)"
	@$(PYTHON) -m pip install -q -e '.[dev]'
	@touch $(STAMP)
	@echo "embedhub: installed"

install: $(STAMP)

run: install
	@echo "embedhub: starting the server, knowledge base and web UI (Ctrl-C stops it)"
	$(VENV)/bin/embedhub serve

# Debian's Chromium for the UI tests (Playwright drives it; its own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian chromium for the browser tests"; \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
		|| echo "could not install chromium (not root?): the browser tests will be skipped"; }

# qemu's user-mode emulator for tests/test_cpu.py: it runs the int8 code on an emulated AVX2 CPU
# (no AVX-512, no VNNI), so every machine checks what AVX2 machines run.
emulator:
	@command -v qemu-x86_64 >/dev/null 2>&1 || { \
		echo "installing Debian qemu-user for the emulated-CPU test"; \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user) >/dev/null \
		|| echo "could not install qemu-user (not root?): the emulated-CPU test will be skipped"; }

# Debian's tesseract (with Chinese and English data) for the OCR tests that compare engines, and a
# CJK font the tests draw Chinese pages with (the pip-installed rapidocr engine needs neither).
ocr-tools:
	@{ command -v tesseract >/dev/null 2>&1 && fc-list :lang=zh | grep -q .; } || { \
		echo "installing Debian tesseract-ocr (chi_sim, eng) and fonts-noto-cjk for the OCR tests"; \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q tesseract-ocr \
			tesseract-ocr-chi-sim tesseract-ocr-eng fonts-noto-cjk) >/dev/null \
		|| echo "could not install tesseract / fonts-noto-cjk (not root?): those OCR tests will be skipped"; }

lint: install
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

test: install browser emulator ocr-tools lint
	$(VENV)/bin/pytest -q

test-slow: install
	$(VENV)/bin/pytest -q -m slow

# The gguf backend (llama.cpp through llama-cpp-python). PyPI carries its source only, so pip
# compiles llama.cpp here. It is NOT part of `make test`: one build of 0.3.36 with the flags below
# took 23 minutes (1,371 s wall) on this 2-core machine while other work shared it, too long for
# the README's test command. `make install-gguf` installs it once into the venv; after that
# `make test` runs tests/test_gguf.py too (they skip, naming this target, without it), and
# .ci/run builds it and runs `make test-gguf` after `make test`.
# Flags: one portable build for every x86-64 CPU embedhub is run on (GGML_NATIVE=OFF, so the
# library does not follow whichever CPU compiled it): AVX2, FMA, F16C and BMI2, which every
# x86-64 CPU of the last decade has (Intel Haswell, AMD Zen and later). ggml's int8 (Q8_0) and
# Q4_K dot products have AVX2 kernels. The earlier build named AVX-512 (VNNI, BF16) and stopped
# with "illegal instruction" on AVX2-only CPUs, which are common. A build for this CPU
# only: `make install-gguf GGUF_CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF"`.
# LLAVA_BUILD=OFF skips the multimodal library, which embeddings do not use. The sdist is kept:
# llama.cpp's convert_hf_to_gguf.py (used by tests/test_gguf.py and docs/backends.md) ships
# inside it. --no-cache-dir: pip would otherwise reuse a wheel it built earlier with other flags.
LLAMA_CPP_VERSION ?= 0.3.36
GGUF_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DLLAVA_BUILD=OFF
LLAMA_CPP_SRC := $(VENV)/share/llama-cpp-python
GGUF_STAMP := $(VENV)/.installed-gguf-$(LLAMA_CPP_VERSION)

$(GGUF_STAMP): | $(STAMP)
	mkdir -p $(LLAMA_CPP_SRC)
	$(PYTHON) -m pip download -q --no-deps --no-binary :all: llama-cpp-python==$(LLAMA_CPP_VERSION) -d $(LLAMA_CPP_SRC)
	@echo "compiling llama.cpp (about 20 minutes on 2 busy cores); log: $(LLAMA_CPP_SRC)/build.log"
	CMAKE_ARGS="$(GGUF_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PYTHON) -m pip install -v --no-cache-dir \
		$(LLAMA_CPP_SRC)/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz > $(LLAMA_CPP_SRC)/build.log 2>&1 \
		|| { tail -40 $(LLAMA_CPP_SRC)/build.log; exit 1; }
	$(PYTHON) -m pip install -q -e '.[dev,gguf]'
	rm -rf $(VENV)/share/llama.cpp && mkdir -p $(VENV)/share/llama.cpp
	tar -xzf $(LLAMA_CPP_SRC)/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz -C $(VENV)/share/llama.cpp \
		--strip-components=3 llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/convert_hf_to_gguf.py \
		llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/conversion \
		llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/gguf-py
	touch $(GGUF_STAMP)

install-gguf: $(GGUF_STAMP)

# The gguf backend's tests alone (CI runs them after `make test`, once the build is done).
test-gguf: install-gguf
	$(VENV)/bin/pytest -q tests/test_gguf.py

# Real client programs against a live `embedhub serve` (slow; not part of `make test`); -s prints
# the request counts the Open WebUI test measures.
# Open WebUI lives in its own venv: its pins would fight embedhub's. torch goes in first there too.
OPENWEBUI_VENV ?= .venv-openwebui
OPENWEBUI_VERSION ?= 0.12.4
OPENWEBUI_STAMP := $(OPENWEBUI_VENV)/.installed-$(OPENWEBUI_VERSION)

$(OPENWEBUI_STAMP):
	test -x $(OPENWEBUI_VENV)/bin/python || $(SYSTEM_PYTHON) -m venv $(OPENWEBUI_VENV)
	$(OPENWEBUI_VENV)/bin/python -m pip install -q --upgrade pip
	$(OPENWEBUI_VENV)/bin/python -m pip install -q torch==$(TORCH_VERSION)
	$(OPENWEBUI_VENV)/bin/python -m pip install -q open-webui==$(OPENWEBUI_VERSION)
	touch $(OPENWEBUI_STAMP)

install-clients: $(OPENWEBUI_STAMP)

test-clients: install install-clients
	OPENWEBUI_VENV=$(abspath $(OPENWEBUI_VENV)) $(VENV)/bin/pytest -q -s -m slow tests/clients

format: install
	$(VENV)/bin/ruff format
	$(VENV)/bin/ruff check --fix

clean:
	rm -rf $(VENV) $(OPENWEBUI_VENV) .pytest_cache .ruff_cache
