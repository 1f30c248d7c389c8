# Two commands on a fresh machine with Python 3.10+: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TEMPLATE := gating_templates/cll_cd19_7aad.yaml

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The main job on the demo cohort: both instrument layouts, full output with report.
demo: $(VENV)/.installed
	$(BIN)/cytokit inspect sample_fcs/calibur/CLL001_C2D1_stained.fcs sample_fcs/modern/CLL001_C2D1_stained.fcs
	$(BIN)/cytokit run sample_fcs/calibur --template $(TEMPLATE) --out demo_out/calibur
	$(BIN)/cytokit run sample_fcs/modern --template $(TEMPLATE) --out demo_out/modern
	@echo "Reports: $(CURDIR)/demo_out/calibur/report.html $(CURDIR)/demo_out/modern/report.html"

test: $(VENV)/.installed
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --no-deps fcsparser==0.2.8 six
	$(BIN)/python benchmarks/bench_read.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_figures.py

clean:
	rm -rf $(VENV) build *.egg-info demo_out
