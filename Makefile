# Two entry points that work on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The main job: sample histories (V1 and legacy V0 rows) in an embedded SQLite
# file, read back through the compatibility layer, a timeline and the verify report.
run: $(STAMP)
	rm -f demo.db demo.db-wal demo.db-shm
	$(BIN)/eventstore demo demo.db

# The whole suite, then mypy (strict) and ruff.
test: $(STAMP)
	bash scripts/system-deps.sh
	$(BIN)/python -m pytest -q
	$(MAKE) lint

lint: $(STAMP)
	$(BIN)/mypy
	$(BIN)/ruff check eventstore tests benchmarks
	$(BIN)/ruff format --check eventstore tests benchmarks

# The benchmark suite (not tests): writes benchmarks/results/latest.md and .json.
# BENCH_ARGS=--quick for 10k and 100k events only.
bench: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# The long reliability run: 500 SIGKILLs per SQLite writer (250 against
# PostgreSQL), 100k+ fuzz examples; figures go to tests/reliability/last-soak.txt.
soak: $(STAMP)
	bash scripts/system-deps.sh
	rm -f tests/reliability/last-soak.txt
	EVENTSTORE_SOAK=1 EVENTSTORE_SOAK_REPORT=tests/reliability/last-soak.txt \
		$(BIN)/python -m pytest -q -s -p no:randomly tests/reliability
	cat tests/reliability/last-soak.txt

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm .pytest_cache .mypy_cache .ruff_cache
