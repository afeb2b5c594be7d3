# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install bench data clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel (an unpinned torch pulls a multi-GB CUDA build).
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

# The peers the benchmarks compare against (gReLU brings ~60 packages): only for `make bench`.
$(VENV)/.bench: $(STAMP)
	$(PY) -m pip install -q -e ".[test,bench]"
	touch $(VENV)/.bench

install: $(STAMP)

# Fetch the real genome, simulate the 164-cell-type task, train Basset on Ray Train,
# register it in MLflow, score a real VCF genome-wide, write Parquet and plots.
run: $(STAMP)
	$(VENV)/bin/dnacnn main --config jobs/configs/main.yaml

# The page test (tests/test_serve_page.py) drives Debian's chromium headless: installed when missing.
test: $(STAMP)
	@command -v chromium >/dev/null && test -x /usr/bin/chromedriver || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }
	$(PY) -m pytest -q tests

bench: $(VENV)/.bench
	$(PY) bench/onehot.py
	$(PY) bench/pipeline.py
	$(PY) bench/variant_scoring.py

clean:
	rm -rf $(VENV) data runs out
