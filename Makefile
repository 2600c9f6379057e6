# Two commands do everything from a fresh clone: `make demo` and `make test`.
# Each creates .venv, installs the project with pinned torch, and Debian's graphviz if `dot`
# is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test generate bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,torch]'
	touch $(STAMP)

setup: $(STAMP)
	@scripts/ensure-dot.sh

# The main job on the bundled specs: lint, summaries, generated/<name>.py and .svg for every
# clean spec; the posts' specs with mistakes are reported, not built (exit code 1 is expected).
demo: setup
	$(BIN)/yarch build || [ $$? -eq 1 ]

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

# Rewrites generated/ (tests/test_generated.py fails when it is stale).
generate: setup
	$(BIN)/yarch schema -o schema/spec.schema.json
	$(BIN)/yarch build > /dev/null || [ $$? -eq 1 ]

# Benchmarks print ratios measured in one run and write bench/results.json; they are not tests
# (CI times nothing). About 6 minutes on 2 cores; docs/BENCHMARKS.md reads the latest run.
bench: setup
	$(BIN)/python bench/run.py

# The structural fuzzer (scripts/fuzz.py): FUZZ_CASES hostile specs from a random seed (or
# FUZZ_SEED) through lint and every renderer, in worker processes with time and memory limits
# (failing cases are written to build/fuzz-failures/SEED/);
# then the property-based tests with the `fuzz` profile: 25 times CI's examples (about 51,000),
# failures shrunk and kept in .hypothesis/. Both run; either failing fails the target.
FUZZ_CASES ?= 100000
FUZZ_SEED ?=
fuzz: setup
	@status=0; \
	$(BIN)/python scripts/fuzz.py --cases $(FUZZ_CASES) --progress 10000 \
		$(if $(FUZZ_SEED),--seed $(FUZZ_SEED)) --save-failures build/fuzz-failures || status=1; \
	YARCH_FUZZ=1 $(BIN)/pytest -q tests/test_properties.py --hypothesis-show-statistics \
		|| status=1; \
	exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
