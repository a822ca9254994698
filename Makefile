# Ferry: `make run` (embedded default on http://127.0.0.1:8000), `make test`, `make test-deploy`,
# `make bench`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BIND   ?= 127.0.0.1:8000
PYTEST_ARGS ?=
# `make bench BENCH=tests/benchmarks/test_bench_lists.py` runs one benchmark file.
BENCH  ?= tests/benchmarks

.PHONY: run test test-deploy lint bench system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# What Ferry needs from Debian: PostgreSQL's server binaries (tests), a running Docker engine,
# busybox-static (the examples' base image) and git (ingesting operations).
system-deps:
	@bash deploy/system-deps.sh

run: $(STAMP) system-deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ferry_ensure_admin
	$(BIN)/python manage.py ferry_load_examples
	$(BIN)/python manage.py ferry_serve --bind $(BIND)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

# pytest runs on a private PostgreSQL cluster; exit code 5 (no tests collected) is a failure.
test: $(STAMP) system-deps lint
	$(BIN)/python -m tests.harness.pgcluster $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The deployment tests, exactly tests/deploy/ (which `make test` leaves out, see addopts in
# pyproject.toml): deploy/provision.sh on a Debian container with systemd, the container image,
# compose, vagrant. Needs root and the Docker engine; prints its stages and how long it took.
DEPLOY_ADDOPTS := -ra --strict-markers -p tests.harness.cromwell
test-deploy: $(STAMP) system-deps
	@start=$$(date +%s); \
	$(BIN)/python -m tests.harness.pgcluster $(BIN)/pytest tests/deploy -s -o addopts="$(DEPLOY_ADDOPTS)" $(PYTEST_ARGS); rc=$$?; \
	echo "make test-deploy: $$(( $$(date +%s) - start )) s"; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no deployment tests: failing"; exit 1; fi; exit $$rc

bench: $(STAMP) system-deps
	$(BIN)/python -m tests.harness.pgcluster $(BIN)/pytest $(BENCH) -s -o addopts="" -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no benchmarks collected: failing"; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
