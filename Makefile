# One entry point for people and CI. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export ANONYMIZED_TELEMETRY ?= False
export HAYSTACK_TELEMETRY_ENABLED ?= False
export TOKENIZERS_PARALLELISM ?= false
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: install demo test test-slow test-gpu mutation lint type docs check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# -qq: errors only (a mirror's warnings and setuptools' notes would bury the demo's answers).
	$(PY) -m pip install -qq --upgrade pip
	# The CPU build of torch first, so that no CUDA build is pulled in.
	$(PY) -m pip install -qq torch==2.13.0
	$(PY) -m pip install -qq -e ".[all,test,docs,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## the main job: a small RAG demo through Chroma, LangChain and LlamaIndex
	$(VENV)/bin/instructor-embed demo

test: $(STAMP)  ## unit + integration tests and doctests (not the slow ones)
	$(PY) -m pytest -m "not slow" -q

test-slow: $(STAMP)  ## Chroma server, Ray, SciFact subset through every path
	$(PY) -m pytest -m slow -q

test-gpu: $(STAMP)  ## CUDA parity, bf16, feeding threads, T5 shared mask, fp16 guard (skipped without CUDA)
	$(PY) -m pytest -m gpu tests/gpu -q -rs

mutation: $(STAMP)  ## mutation score of the input rules, reference semantics, readers and store helpers (long)
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children 2
	$(VENV)/bin/mutmut results

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

type: $(STAMP)
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

check: lint type test test-slow docs

bench: $(STAMP)  ## the benchmark suite (QUICK=1: small workloads in minutes; GPU=1: with the GPU benchmark)
	$(PY) benchmarks/run.py $(if $(QUICK),--quick) $(if $(GPU),--gpu)

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
