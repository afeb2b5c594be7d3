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
# Meanwhile memelite's TomTom is compiled into the venv's numba cache (about 40 s of one core on
# its first use, which would otherwise fall on the first interpretation test).
test: $(STAMP)
	@$(PY) -W ignore -c "import numpy as np; from memelite import tomtom; \
		m = [np.random.default_rng(0).dirichlet(np.ones(4), 8).T for _ in range(25)]; tomtom(m[:2], m, n_jobs=1)" & \
	{ command -v chromium >/dev/null && test -x /usr/bin/chromedriver || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }; }; \
	installed=$$?; wait; exit $$installed
	$(PY) -m pytest -q tests

bench: $(VENV)/.bench
	$(PY) bench/onehot.py
	$(PY) bench/pipeline.py
	$(PY) bench/variant_scoring.py

clean:
	rm -rf $(VENV) data runs out
