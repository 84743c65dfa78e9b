# Two commands on a fresh machine with python3 and make: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-postgres lint migrate env bench admin lock clean mutate

install: $(STAMP)

$(STAMP): requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	touch $(STAMP)

# Writes .env from .env.example with a fresh SECRET_KEY, only when .env is missing.
env: .env
.env:
	$(PYTHON) scripts/write_env.py .env.example .env

migrate: install .env
	$(BIN)/python -m app check-config
	$(BIN)/alembic upgrade head

run: migrate
	$(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) --http app.core.bodylimit:LimitedHttpToolsProtocol --no-proxy-headers

REDIS_NOTE = @test -n "$$TEST_REDIS_URL" || echo "note: TEST_REDIS_URL is not set: the tests of limits shared through Redis and of Redis failures are skipped (.ci/run sets it; e.g. TEST_REDIS_URL=redis://127.0.0.1:6379/15 make test)"

test: install
	$(REDIS_NOTE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(REDIS_NOTE)

test-postgres: install
	$(REDIS_NOTE)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(REDIS_NOTE)

# What CI checks before the tests: lint, formatting, types.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Mutation testing of app/auth, app/users, app/confirmation, app/services/email, app/newsletters (mutmut;
# config: [tool.mutmut] in pyproject.toml).
# Not part of CI: it takes long. Prints the score per package and the mutants not killed;
# MUTATE_ARGS="--write-docs" also updates docs/mutation.md, MUTATE_ARGS="'app.auth.csrf*'"
# re-tests some mutants only. Results are kept in mutants/ between runs (delete it to redo all).
mutate: install
	$(BIN)/python scripts/mutate.py $(MUTATE_ARGS)

bench: install
	$(BIN)/python -m bench
	$(BIN)/python -m bench.outbox
	$(BIN)/python -m bench.newsletter
	$(BIN)/python -m bench.transactions

admin: migrate
	$(BIN)/python -m app create-admin --email "$(EMAIL)"

# Re-pin after editing pyproject.toml dependencies.
lock: install
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links --extra dev -o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache
