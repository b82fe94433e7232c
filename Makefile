# Two entry points: `make run` and `make test`. Both install into .venv when needed.
# torch==2.13.0 (the local CPU build) goes in first, so nothing pulls a multi-GB CUDA build.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_PYTHON ?= python3
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1

.PHONY: install browser run test test-slow test-clients install-clients lint format clean

$(STAMP): pyproject.toml
	test -x $(PYTHON) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/embedhub serve

# Debian's Chromium for the UI tests (Playwright drives it; its own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian chromium for the browser tests"; \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
		|| echo "could not install chromium (not root?): the browser tests will be skipped"; }

lint: install
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

test: install browser lint
	$(VENV)/bin/pytest -q

test-slow: install
	$(VENV)/bin/pytest -q -m slow

# Real client programs against a live `embedhub serve` (slow; not part of `make test`); -s prints
# the request counts the Open WebUI test measures.
# Open WebUI lives in its own venv: its pins would fight embedhub's. torch goes in first there too.
OPENWEBUI_VENV ?= .venv-openwebui
OPENWEBUI_VERSION ?= 0.12.4
OPENWEBUI_STAMP := $(OPENWEBUI_VENV)/.installed-$(OPENWEBUI_VERSION)

$(OPENWEBUI_STAMP):
	test -x $(OPENWEBUI_VENV)/bin/python || $(SYSTEM_PYTHON) -m venv $(OPENWEBUI_VENV)
	$(OPENWEBUI_VENV)/bin/python -m pip install -q --upgrade pip
	$(OPENWEBUI_VENV)/bin/python -m pip install -q torch==2.13.0
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
