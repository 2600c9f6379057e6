# Two commands do everything from a fresh clone: `make demo` and `make test`.
# Each creates .venv, installs the project with pinned torch, and Debian's graphviz if `dot`
# is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test generate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,torch]'
	touch $(STAMP)

setup: $(STAMP)
	@scripts/ensure-dot.sh

# The main job on the bundled specs: the reference specs lint clean, the posts' specs show
# the mistakes yarch catches in them.
demo: setup
	$(BIN)/yarch lint specs/*.yaml
	-$(BIN)/yarch lint specs/posts/
	$(BIN)/yarch summary specs/googlenet.yaml --depth 0

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

# Rewrites generated/. Code and diagram generation (`yarch build`) is not written yet; until
# then this checks that every bundled reference spec is still clean.
generate: setup
	$(BIN)/yarch lint specs/*.yaml

# Benchmarks print ratios measured in one run; they are not tests (CI times nothing).
bench: setup
	$(BIN)/python bench/googlenet_forward.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
