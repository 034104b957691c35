# The two commands of the README: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LWR := $(BIN)/lwr
DEMO_DIR ?= .lwr-demo

.PHONY: install lint test demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check reconciler tests bench
	$(BIN)/mypy reconciler

test: lint
	$(BIN)/pytest -q

demo: install
	rm -rf $(DEMO_DIR)
	$(LWR) tenant init --demo --tenant local:$(DEMO_DIR)/tenant.db
	$(LWR) validate examples/company.yaml --tenant local:$(DEMO_DIR)/tenant.db
	$(LWR) plan examples/company.yaml --tenant local:$(DEMO_DIR)/tenant.db
	$(LWR) apply examples/company.yaml --tenant local:$(DEMO_DIR)/tenant.db \
		--auto-approve
	$(LWR) plan examples/company.yaml --tenant local:$(DEMO_DIR)/tenant.db --detailed-exitcode

bench: install
	$(BIN)/python bench/plan_bench.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .lwr .pytest_cache .mypy_cache .ruff_cache
