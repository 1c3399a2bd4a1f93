# The two commands of the README: `make signoff` and `make test`. Everything sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DOC    ?= dataflows/chargebee-invoiced.rst

.PHONY: install test unit features lint signoff cassettes report mutants clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

## Whole suite, offline: the unit tests and every feature replayed from cassettes, side by side
## (neither writes where the other reads), each one's output printed whole when it ends.
## The unit tests run on three pytest-xdist workers, one more than this machine's cores: the
## defect catalogue is one work unit and the service defects (which mostly sleep) another
## (tests/conftest.py), and whenever a test waits on a service or a sandbox the third keeps
## the cores busy (make test: 79-86 s against 87-94 s with two, runs alternating). The replay
## stays one process: a worker's start-up costs more than its 100-odd scenarios gain on
## cores already busy with the unit tests.
test: install
	$(MAKE) --no-print-directory -j2 --output-sync=target unit features

## The tests let Python cache bytecode even where the environment says not to
## (PYTHONDONTWRITEBYTECODE=1, as on our shared machine): without the cache each of the suite's
## Python processes (three workers, the replay, every `talkqa` and pytest child) compiles
## talk-qa's and the tests' modules again and pytest rewrites every test module's asserts
## again, ~3.5 s of CPU per pytest process. __pycache__/ is ignored by git; the mutation
## runner turns the cache off again for its copy, whose mutants keep a file's size.
test unit features: export PYTHONDONTWRITEBYTECODE :=

unit: install
	$(BIN)/pytest tests -n 3

features: install
	$(BIN)/pytest features --talkqa-mode=replay --block-network --record-mode=none

lint: install
	$(BIN)/ruff check talkqa reference_sync defects tests benchmarks tools
	$(BIN)/mypy
	$(BIN)/mypy -p tools

## The main job: bundled sandboxes, reference sync, reports/ with Allure results and sign-off.
signoff: install
	$(BIN)/talkqa signoff $(DOC) --mode sandbox

## Re-record every cassette against freshly reset sandboxes (deterministic: no diff expected).
## Recorded in a scratch copy; each re-recorded checklist's folder is replaced whole (so cassettes
## of renamed or removed scenarios do not linger) only once the whole recording passed.
cassettes: install
	$(BIN)/python -m talkqa.record

## The Allure 3 HTML report of the last run, one file that opens from disk:
## reports/allure-report/index.html. Needs Node.js 20+ (npx fetches the pinned Allure); exit 2 without.
report: install
	$(BIN)/talkqa report reports/allure-results --out reports/allure-report

## Plant each fault of tools/mutants.py in a private copy of the tree and run the tests that must
## kill it: prints one line per mutant and "killed K of N (P%)"; exit 1 if any survived.
mutants: install
	$(BIN)/python -m tools.mutants

clean:
	rm -rf reports .pytest_cache
