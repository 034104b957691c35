# The two commands of the README: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LWR := $(BIN)/lwr
DEMO_DIR ?= .lwr-demo

.PHONY: install lint test stress demo bench bench-fleet dist clean messages

# The .po is a prerequisite: installing compiles it into the .mo lwr reads (hatch_build.py).
$(VENV)/.installed: pyproject.toml $(wildcard reconciler/locale/*/LC_MESSAGES/lwr.po)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check reconciler tests bench
	$(BIN)/ruff format --check reconciler tests bench
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

# The translations (docs/ja/glossary.md): extract every message id from reconciler/ with
# Babel, merge them into each language's .po (new ids come in untranslated; tests/test_i18n.py
# fails until they are translated), and compile the .mo files lwr reads.
BABEL_KEYWORDS := -k _ -k n_:1,2 -k N_ -k of -k counted:1,2
messages: install
	PYTHONPATH=. $(BIN)/pybabel extract -F babel.cfg $(BABEL_KEYWORDS) --no-location --sort-output \
		-o .lwr-messages.pot .
	$(BIN)/pybabel update -D lwr -i .lwr-messages.pot -d reconciler/locale -w 100 \
		--ignore-pot-creation-date --no-fuzzy-matching
	rm -f .lwr-messages.pot
	$(BIN)/pybabel compile -D lwr -d reconciler/locale

# The crash, concurrency and hostile-input tests at full size (10,000-change plan, 24 SIGKILL
# points, 40 MiB inputs, a 100,000-row audit log); `make test` runs them reduced. Prints the
# kill-point report.
STRESS_REPORT := bench/out/crash-report.txt
stress: install
	mkdir -p bench/out && rm -f $(STRESS_REPORT)
	LWR_STRESS=1 LWR_CRASH_REPORT=$(STRESS_REPORT) $(BIN)/pytest -q \
		tests/test_crash.py tests/test_concurrency.py tests/test_shared_state.py tests/test_fuzz.py \
		tests/test_store.py
	cat $(STRESS_REPORT)

# Benchmarks (scripts, not tests): tables on stdout, results in bench/out/, and the plot in
# docs/performance.png when matplotlib (the `plot` extra) can be installed.
BENCH_SIZES ?= 1k 10k 100k 1M
bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m pip install --quiet -e '.[plot]' || echo "no matplotlib: no plot"
	$(BIN)/python bench/plan_bench.py $(BENCH_SIZES)
	$(BIN)/python bench/diff_bench.py 1k 10k  # DeepDiff at 100k runs for minutes
	$(BIN)/python bench/apply_bench.py $(BENCH_SIZES)
	$(BIN)/python bench/plot.py

# Many tenants, local vs PostgreSQL state (about 8 minutes; needs the PostgreSQL server
# binaries, or FLEET_ARGS="--postgres URL"). Figures in docs/scaling.md.
FLEET_ARGS ?=
bench-fleet: install
	$(BIN)/python bench/fleet_bench.py $(FLEET_ARGS)

# The wheel of this checkout in dist/ (schemas and shipped policies inside), to publish to the
# team's own package index and install pinned: README, "Install".
dist: install
	rm -rf dist
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	@ls dist/*.whl

clean:
	rm -rf $(VENV) $(DEMO_DIR) dist .lwr .pytest_cache .mypy_cache .ruff_cache
