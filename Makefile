# The README's two commands: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The browser tests drive Debian's Chromium: Playwright cannot download its own browsers here.
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint format check-deploy audit mutants

run: $(INSTALLED)
	$(BIN)/python manage.py runportal

# The tests run on PostgreSQL, then those marked both_databases again on SQLite, where
# `make run` keeps its data (README: Run it and test it).
test: $(INSTALLED) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit --quiet --configfile pyproject.toml --recursive portal phone_numbers signalwire_simulator
	$(BIN)/python scripts/with_test_servers.py $(BIN)/pytest
	PORTAL_TEST_DATABASE=sqlite $(BIN)/python scripts/with_test_servers.py \
		$(BIN)/pytest -m both_databases

# Known vulnerabilities of every installed package, from PyPI's per-version JSON API, which
# this workplace cannot reach (so it is not part of `make test`). --strict: a package it could
# not check fails the run, so an unreachable service never passes.
audit: $(INSTALLED)
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off

# Mutation testing of the import engine, the rate limiter and the SignalWire client against
# the fast tests (README: Mutation testing). Not part of `make test`: it takes well over an
# hour on 2 cores.
mutants: $(INSTALLED)
	rm -rf mutants
	$(BIN)/python scripts/with_test_servers.py $(BIN)/mutmut run
	$(BIN)/python scripts/mutant_scores.py

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Django's deployment checklist under production-like settings (throwaway secrets, no servers).
check-deploy: $(INSTALLED)
	DATABASE_URL=postgres://portal@db.invalid:5432/portal \
	REDIS_URL=redis://redis.invalid:6379/0 \
	DJANGO_ALLOWED_HOSTS=portal.example.com \
	DJANGO_SECRET_KEY="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	PORTAL_ENCRYPTION_KEYS="$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Debian and Ubuntu ship venv support separately (python3-venv): install it when root.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "The portal needs Python 3.11 or newer (found: $$($(PYTHON) --version))."; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
		rm -rf $(VENV); \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); \
		else \
			echo "Python's venv module is missing. Install it with: sudo apt-get install -y python3-venv"; \
			exit 1; \
		fi; \
	}

# Installed when root, like the servers of scripts/with_test_servers.py.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing chromium for the browser tests…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "The browser tests need Chromium. Install it with: sudo apt-get install -y chromium"; \
		exit 1; \
	fi
