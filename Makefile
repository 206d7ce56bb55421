# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint format clean bench bench-portal

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Local PostgreSQL + Redis under .data/ (unless DATABASE_URL / REDIS_URL are set), migrate,
# seed on first run, then daphne + celery worker + celery beat. Ctrl-C stops everything.
run: $(STAMP)
	$(PY) -m firezone.devservices run

# Throwaway PostgreSQL + Redis (unless configured), then the whole suite through manage.py test.
test: $(STAMP)
	$(PY) -m firezone.devservices exec -- $(PY) manage.py test $(ARGS)

# Device-socket benchmark (README "Benchmarks") on a throwaway PostgreSQL + Redis, never on
# configured ones. Smaller runs:
#   make bench ARGS="--sockets 2000 --reconnect-clients 1000 --fanout-large 1000 --burst 2000"
bench: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m firezone.devservices exec -- $(PY) bench/sockets.py $(ARGS)

# Admin list pages on a 10,000-row account (README "Benchmarks"), throwaway services only.
bench-portal: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m firezone.devservices exec -- $(PY) bench/portal.py $(ARGS)

# mypy imports the settings (django-stubs): DEBUG=true needs no secrets and no database.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=true $(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .data
