# The two commands: `make dev` runs the product on embedded defaults, `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEV_ENV := DEBUG=1
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: dev test install install-dev system-deps migrate seed run worker beat lint schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian packages (apt-packages.txt): espeak-ng (TTS fallback), Chromium and chromedriver (browser tests),
# telephone prompts (speech tests), PostgreSQL and Redis (the test run starts private servers from them).
# Installs only what is missing, so it costs a dpkg query when everything is there.
system-deps:
	@missing=$$(grep -v '^#' apt-packages.txt | xargs -n1 sh -c 'dpkg -s "$$0" >/dev/null 2>&1 || echo "$$0"'); \
	if [ -n "$$missing" ] && ! command -v apt-get >/dev/null; then \
		echo "Not a Debian system: install the equivalents of" $$missing "yourself." >&2; \
	elif [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing || \
		{ $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; }; \
	fi

migrate: install
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput

seed: migrate
	$(DEV_ENV) $(BIN)/python manage.py seed_demo
	$(DEV_ENV) $(BIN)/python manage.py dev_superuser

dev: seed
	@echo "VoiceCRM on http://$(HOST):$(PORT)/  (admin: /admin/, dashboard: /dashboard/, widget demo: /widget/demo/)"
	$(DEV_ENV) $(BIN)/python manage.py runserver $(HOST):$(PORT)

# Needs nothing else: without DATABASE_URL the run starts its own PostgreSQL (conftest.py), and the
# tests that need Redis start their own redis-server.
test: install-dev system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# ruff (ruff.toml) and the import contracts (.importlinter): dependencies point one way.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The REST API's OpenAPI schema, checked in: a test fails when the API changes and this file does not.
schema: install
	$(DEV_ENV) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

worker: install
	$(BIN)/celery -A voicecrm worker -Q default,stt,tts,postcall --loglevel=INFO

beat: install
	$(BIN)/celery -A voicecrm beat --loglevel=INFO

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
