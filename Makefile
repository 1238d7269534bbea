# The two commands of the README: `make run` and `make test`. Both set themselves up.
VENV ?= .venv
BIN := $(VENV)/bin
export VENV

.PHONY: run test setup setup-test lint

setup:
	@scripts/bootstrap

setup-test:
	@scripts/bootstrap --test

# The service with the demo flow on an embedded Redis, on http://127.0.0.1:8080.
run: setup
	AGGREGATOR_FLOWS_FILE=$${AGGREGATOR_FLOWS_FILE:-examples/document-analysis.yaml} \
	$(BIN)/aggregator serve --host $${HOST:-127.0.0.1}

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict aggregator

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)
