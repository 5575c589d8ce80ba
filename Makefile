# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export RAY_DATA_DISABLE_PROGRESS_BARS ?= 1
export WANDB_MODE ?= offline
# Real-data tests read the mirror beside the checkout when there is one (CI sets it explicitly).
export MMRAY_DATA_MIRROR ?= $(abspath $(wildcard ../shared/datasets))

.PHONY: demo test bench venv clean

# Byte-compile mmray before running it: every Ray process a trial starts imports the package, and where
# PYTHONDONTWRITEBYTECODE is set (as on this project's development machines) nothing else caches the
# compiled modules.
BYTECODE := $(BIN)/python -m compileall -q mmray

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BYTECODE)
	$(BIN)/mmray sweep sweeps/demo.yaml --overwrite

# pytest's exit code 5 means "no tests ran": treat it as a failure, never a pass.
test: $(STAMP)
	$(BYTECODE)
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The performance harness: writes benchmarks/RESULTS.md and RESULTS.json (about 50 minutes on 2 cores).
bench: $(STAMP)
	$(BYTECODE)
	$(BIN)/python benchmarks/perf/run.py

clean:
	rm -rf results build .pytest_cache
