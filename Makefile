# Two commands do all the set-up on a fresh machine (Python 3.11+ and git):
#   make chat   - the interactive assistant on the embedded defaults (SQLite file + offline model)
#   make test   - the whole test suite (starts a throw-away PostgreSQL when one is installed)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: chat test bench bench-quick demo install clean

# Two distributions from this repository (see README "Install"): the store, adk-lossless-sessions
# (multi_agent/pyproject.toml), and the team, multi-agent-team (pyproject.toml), both editable.
$(STAMP): pyproject.toml multi_agent/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e './multi_agent[postgres,semantic,encryption]'
	# compat: the repository folder on sys.path, where multi_agent.team finds manager/ etc.
	$(PY) -m pip install --quiet -e '.[dev,semantic]' --config-settings editable_mode=compat
	# The semantic-search model files (all-MiniLM-L6-v2, ~90 MB once; no PyTorch needed).
	$(PY) -m multi_agent.memory.model_files
	$(PY) -m pip check
	@touch $(STAMP)

install: $(STAMP)

chat: $(STAMP)
	$(VENV)/bin/multi-agent chat $(ARGS)

demo: $(STAMP)
	$(PY) demo_flow.py $(ARGS)

test: $(STAMP)
	scripts/with_postgres.sh $(PY) -m pytest $(ARGS)

# The benchmarks' PostgreSQL is durable (fsync on), as in production.
bench: $(STAMP)
	MULTI_AGENT_PG_FSYNC=on scripts/with_postgres.sh sh -c 'export MULTI_AGENT_BENCH_PG_URL="$$MULTI_AGENT_TEST_PG_URL"; \
		$(PY) -m bench.run $(ARGS) && $(PY) -m bench.concurrency && $(PY) -m bench.served'

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
