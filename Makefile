# Every target sets up what it needs itself, idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := dataset-fashion-mnist chromium g++
PYTEST_ARGS ?=
# Test files run on two pytest-xdist workers (each file stays on one worker, so it shares its fixtures: a Voila
# server, a trained model, a search). The suite waits on servers and browsers about half of the time, so two
# workers on two cores finish it sooner. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

.PHONY: setup apt test app bench anchors screenshots clean

setup: $(STAMP) apt

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[ui,dev]'
	@touch $(STAMP)

# Debian packages the tests use, installed only when missing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "apt-get install$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test: setup
	WORKBENCH_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Refresh the README's screenshots (the browser tests take them; plain `make test` writes them to /tmp).
screenshots: setup
	WORKBENCH_SCREENSHOTS=$(CURDIR)/docs/screenshots WORKBENCH_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=2 \
		$(PY) -m pytest tests/browser -k "slider or fine_tune or export"

# Compression Studio on the embedded default (LeNet-5 on the bundled MNIST sample), served by workbench_server:
# Voila on 127.0.0.1 where a closed tab ends its kernel, kernels whose page is gone are culled after 5 idle
# minutes, and past MAX_SESSIONS sessions (about 1 GB each) new visitors get a "server is full" page.
APP_PORT ?= 8866
MAX_SESSIONS ?= 20
# Pre-heated Studio kernels (each has run the Studio, so a page draws at once; about 1 GB each, beside the sessions).
STUDIO_POOL ?= 1
app: $(STAMP)
	@echo ""
	@echo "  Compression Studio: http://127.0.0.1:$(APP_PORT)/voila/render/compression_studio.ipynb"
	@echo "  (all apps: http://127.0.0.1:$(APP_PORT)/voila/tree)"
	@echo ""
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m workbench_server apps/ --no-browser --port=$(APP_PORT) \
		--preheat_kernel=True --pool_size=1 --studio_pool=$(STUDIO_POOL) --max_sessions=$(MAX_SESSIONS)

# Benchmarks: all rows, or one with `make bench ROW=lenet5-mnist` (auto-* rows run the automatic search, within
# their wall-time budget); writes bench/results and bench/RESULTS.md. `make bench ROW=search-scaling` measures
# 1 against 2 search workers.
ROW ?=
bench: setup
	@for row in $(or $(ROW),$$($(PY) bench/rows.py) $$($(PY) bench/search_rows.py) search-scaling); do \
		echo "== $$row"; \
		case $$row in \
			auto-*) WORKBENCH_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=3 $(PY) bench/search_run.py $$row || exit 1;; \
			search-scaling) WORKBENCH_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=3 $(PY) bench/search_scaling.py || exit 1;; \
			*) WORKBENCH_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=3 $(PY) bench/run.py $$row || exit 1;; \
		esac; \
	done
	@if [ -z "$(ROW)" ]; then WORKBENCH_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=3 $(PY) bench/widget_latency.py; fi
	$(PY) bench/tables.py

# The tfmot reference (legacy tf_keras + tensorflow-model-optimization) in its own venv, never the package's:
# it reuses the project's TensorFlow and adds only tf_keras and tfmot. Writes bench/anchors/results/*.json.
ANCHORS_VENV ?= .venv-anchors
anchors: setup
	@test -x $(ANCHORS_VENV)/bin/python || $(PYTHON) -m venv $(ANCHORS_VENV)
	@$(ANCHORS_VENV)/bin/python -c "import sysconfig; print('$(CURDIR)/$(VENV)/lib/python' + sysconfig.get_python_version() + '/site-packages')" \
		> $$($(ANCHORS_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/project-deps.pth
	$(ANCHORS_VENV)/bin/python -m pip install --quiet "tf-keras==$$($(PY) -c 'import tensorflow as tf; print(tf.__version__.rsplit(".", 1)[0])').*" \
		"tensorflow-model-optimization>=0.8"
	mkdir -p /tmp/workbench-anchors
	WORKBENCH_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=3 $(PY) bench/anchors/export_data.py mnist /tmp/workbench-anchors/mnist.npz
	TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=3 $(ANCHORS_VENV)/bin/python bench/anchors/tfmot_lenet5.py \
		/tmp/workbench-anchors/mnist.npz bench/anchors/results/tfmot-lenet5-mnist.json
	WORKBENCH_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=3 $(PY) bench/anchors/export_data.py fashion_mnist /tmp/workbench-anchors/fashion.npz 20000
	TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=3 $(ANCHORS_VENV)/bin/python bench/anchors/tfmot_mobilenet.py \
		/tmp/workbench-anchors/fashion.npz bench/anchors/results/tfmot-mobilenet-fashion.json --row mobilenet-fashion
	WORKBENCH_OFFLINE=1 TF_CPP_MIN_LOG_LEVEL=3 $(PY) bench/anchors/export_data.py fashion_mnist /tmp/workbench-anchors/fashion-full.npz
	TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=3 $(ANCHORS_VENV)/bin/python bench/anchors/tfmot_mobilenet.py \
		/tmp/workbench-anchors/fashion-full.npz bench/anchors/results/tfmot-mobilenet-fashion-full.json --row mobilenet-fashion-full
	$(PY) bench/tables.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
