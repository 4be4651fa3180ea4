# ISN: `make run` serves the demo network; `make test` runs the whole suite. See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
PORT ?= 8000

.PHONY: install run migrate seed worker beat test lint format bench check-deploy clean messages

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "ISN needs Python 3.11 (apt-get install python3.11 python3.11-venv), found $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

worker: install
	$(VENV)/bin/celery -A isn worker --queues urgent,default --concurrency 2 --loglevel INFO

beat: install
	$(VENV)/bin/celery -A isn beat --loglevel INFO

# The portal, a Celery worker and beat, together; Ctrl-C (or any of them stopping) stops all three.
run: seed
	@echo "ISN portal: http://127.0.0.1:$(PORT)/   (Ctrl-C stops the portal, the worker and beat)"
	@bash -c 'trap "kill \$$(jobs -p) 2>/dev/null; wait" EXIT; \
		$(VENV)/bin/celery -A isn worker --queues urgent,default --concurrency 2 --loglevel INFO & \
		$(VENV)/bin/celery -A isn beat --loglevel INFO & \
		$(PY) manage.py runserver 127.0.0.1:$(PORT) & \
		wait -n'

# The whole suite on PostgreSQL and Redis (DATABASE_URL/REDIS_URL, or throwaway servers started for the run), on two
# pytest-xdist workers (one database each); PYTEST_ARGS replaces that, e.g. PYTEST_ARGS="tests/audit -x".
PYTEST_ARGS ?= -n 2
test: install
	$(PY) -m tests.servers -m pytest $(PYTEST_ARGS)

# ruff, then the layers of DESIGN.md (import-linter's contracts in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The portal's translation catalogs (locale/<language>/LC_MESSAGES/django.po): every string of templates and Python,
# model choice labels included, kept with what translators already wrote; then the .mo files the portal reads. Both
# are committed, so neither a server nor `make run` needs gettext; tests/portal/test_catalogs.py extracts the same
# way (same ignores) and fails on any string missing or untranslated in a catalog, or a .mo out of step with its .po.
LOCALES := km zh_Hans lo my th vi
MESSAGES_IGNORE := -i tests -i bench -i var -i migrations -i test-artifacts -i node_modules
messages: install
	$(PY) manage.py makemessages $(addprefix -l ,$(LOCALES)) $(MESSAGES_IGNORE) --add-location=file --no-obsolete
	$(PY) manage.py compilemessages $(addprefix -l ,$(LOCALES)) -i .venv

bench: install
	$(PY) -m tests.servers -m bench

check-deploy: install
	ISN_ENV=production ISN_SECRET_KEY="$$(head -c 48 /dev/urandom | base64)" ISN_ALLOWED_HOSTS=isn.example.org \
		DATABASE_URL=postgres://isn@localhost/isn REDIS_URL=redis://localhost:6379/0 ISN_MASTER_KEY="$$(head -c 32 /dev/urandom | base64)" ISN_AUDIT_SIGNING_KEY="$$(head -c 32 /dev/urandom | base64)" \
		$(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
