# Ferry: `make run` (embedded default on http://127.0.0.1:8000), `make test`, `make test-deploy`,
# `make bench`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Two install steps share .venv: `make run` needs Ferry's runtime dependencies only
# (RUN_STAMP); `make test`, `make lint` and `make bench` add the dev toolchain (STAMP).
STAMP     := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
BIND   ?= 127.0.0.1:8000
PYTEST_ARGS ?=
# `make bench BENCH=tests/benchmarks/test_bench_lists.py` runs one benchmark file.
BENCH  ?= tests/benchmarks
# pip prints each package as it fetches it (and a progress bar on a terminal).
PIP_INSTALL := $(BIN)/python -m pip install --progress-bar on

.PHONY: run test test-deploy lint bench system-deps system-deps-run clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Runtime only: no pytest, playwright, moto, mypy ... (tests/deploy/test_run_install.py checks).
$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "==> Installing Ferry's runtime dependencies into $(VENV) (the first time takes a minute or two) ..."
	$(PIP_INSTALL) -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "==> Installing Ferry with its test toolchain (.[dev]) into $(VENV) ..."
	$(PIP_INSTALL) -e '.[dev]'
	touch $(RUN_STAMP) $(STAMP)

# What Ferry needs from Debian (deploy/system-deps.sh): for running, a Docker engine,
# busybox-static (the examples' base image) and git (ingesting operations); the tests add
# PostgreSQL's server binaries and chromium.
system-deps-run:
	@bash deploy/system-deps.sh run

system-deps:
	@bash deploy/system-deps.sh test

run: $(RUN_STAMP) system-deps-run
	@echo "==> Migrating the database (var/ferry.sqlite3) ..."
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ferry_ensure_admin
	@echo "==> Building the example operations' images on the local Docker engine and loading them ..."
	$(BIN)/python manage.py ferry_load_examples
	@echo "==> Ferry on http://$(BIND)/ (the API at /api/, Swagger UI at /api/docs/, admin at /admin/)."
	@echo "    Another address or port: make run BIND=0.0.0.0:9000 ; Ctrl-C stops the server and its worker."
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
