# The two commands of the README: `make demo` and `make test`. Both set up first.
.PHONY: setup demo test lint clean

VENV := .venv
PY := $(VENV)/bin/python

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) -m fltiny.demo

test: setup
	@bash scripts/run_tests.sh

lint: setup
	@$(VENV)/bin/ruff check fltiny tests bench tools
	@bash scripts/check_c_format.sh

clean:
	rm -rf build reports .pytest_cache
