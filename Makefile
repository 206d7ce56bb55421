# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# pytest-xdist workers of `make test-fast` (auto = one per CPU core).
TEST_WORKERS ?= auto

.PHONY: install run seed manage shell test test-fast lint format clean bench bench-portal bench-api bench-sync bench-faults bench-catchup

# The stamp is a copy of the pyproject.toml it installed: pip runs (quietly, output in
# .venv/install.log, shown on failure) only when the dependencies really changed.
$(STAMP): pyproject.toml
	@if cmp -s pyproject.toml $(STAMP); then touch $(STAMP); else \
	  command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }; \
	  echo "Installing dependencies into $(VENV) (log: $(VENV)/install.log)..."; \
	  { test -x $(PY) || $(PYTHON) -m venv $(VENV); } \
	  && { $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e '.[dev]'; } \
	    >$(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; echo "pip install failed (log: $(VENV)/install.log)"; exit 1; }; \
	  cp pyproject.toml $(STAMP); \
	fi

install: $(STAMP)

# Local PostgreSQL + Redis under .data/ (unless DATABASE_URL / REDIS_URL are set), migrate,
# seed on first run, then daphne + celery worker + celery beat. Ctrl-C stops everything.
run: $(STAMP)
	@$(PY) -m firezone.devservices run

# manage.py against the services of `make run` (.data/; shared with a running `make run`, started
# for the command otherwise):  make manage ARGS="createsuperuser"
manage: $(STAMP)
	@$(PY) -m firezone.devservices manage $(ARGS)

shell: $(STAMP)
	@$(PY) -m firezone.devservices manage shell $(ARGS)

# (Re-)create the demo data and print its sign-in details; ARGS=--reset starts over.
seed: $(STAMP)
	@$(PY) -m firezone.devservices seed $(ARGS)

# Throwaway PostgreSQL + Redis (unless configured), then the whole suite through manage.py test.
# Serial: see README "Tests".
test: $(STAMP)
	$(PY) -m firezone.devservices exec -- $(PY) manage.py test $(ARGS)

# The inner loop: no browser tests, no tests that start servers, on every core (pytest-xdist:
# a test database and a Redis database per worker).
test-fast: $(STAMP)
	$(PY) -m firezone.devservices exec -- $(PY) -m pytest -m "not browser and not slow" \
	  -n $(TEST_WORKERS) $(ARGS)

# Device-socket benchmark (README "Benchmarks") on a throwaway PostgreSQL + Redis, never on
# configured ones. Smaller runs:
#   make bench ARGS="--sockets 2000 --reconnect-clients 1000 --fanout-large 1000 --burst 2000"
bench: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m firezone.devservices exec -- $(PY) bench/sockets.py $(ARGS)

# Admin list pages on a 10,000-row account (README "Benchmarks"), throwaway services only.
bench-portal: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m firezone.devservices exec -- $(PY) bench/portal.py $(ARGS)

# REST API list endpoints on 1,000- and 10,000-row accounts (README "Benchmarks"), throwaway
# services only.
bench-api: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m firezone.devservices exec -- $(PY) bench/api.py $(ARGS)

# Directory-sync benchmark (README "Benchmarks"): a fake Microsoft Graph of 10,000 users, 1,000
# groups and 50,000 memberships; first sync, no-change re-sync, 5 % churn pushed to 1,000 clients
# of a real daphne; throwaway PostgreSQL + Redis. Smaller: make bench-sync ARGS="--clients 200"
bench-sync: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m firezone.devservices exec -- $(PY) bench/sync.py $(ARGS)

# Outages (README "Outages"): a PostgreSQL and a Redis of its own, each stopped and started again
# under 100 joined clients and a gateway of a real daphne. Smaller: ARGS="--clients 20 --outage 5"
# Then 5,000 fuzzed frames over every socket kind (README "Hostile input"): frames fuzzed, server
# tracebacks (target 0). Smaller: FRAMES_ARGS="--frames 1000"
bench-faults: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) bench/faults.py $(ARGS)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m firezone.devservices exec -- $(PY) bench/frames.py $(FRAMES_ARGS)

# Change-log catch-up poll (README "Delivery: the change log as truth"): one poll for 1,000 hubs
# over a 2,000,000-row change log, with and without its index. Bigger: ARGS="--rows 5000000"
bench-catchup: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m firezone.devservices exec -- $(PY) bench/catchup.py $(ARGS)

# ruff, mypy and the import contract (README "Architecture", read from the source). mypy imports
# the settings (django-stubs): DEBUG=true needs no secrets and no database.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=true $(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:django -W ignore::pytest.PytestConfigWarning tests/test_architecture.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .data
