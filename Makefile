# Everything sets itself up on first use: `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')
GEN_STAMP := gen/.stamp

.PHONY: run test lint protos bench setup clean migrate token demo chromium

setup: $(INSTALLED) $(GEN_STAMP)

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@# Generated stubs live in gen/ (not committed); put it on the venv's path.
	@echo "$(CURDIR)/gen" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/steward-gen.pth"
	@touch $@

# Generated code is not committed: it is rebuilt whenever a .proto changes.
$(GEN_STAMP): $(INSTALLED) $(PROTOS) scripts/gen_protos.py
	@$(PY) scripts/gen_protos.py
	@touch $@

protos: $(INSTALLED)
	@$(PY) scripts/gen_protos.py
	@touch $(GEN_STAMP)

run: setup
	@$(PY) -m services.cli.main dev

test: setup chromium
	@$(PY) -m pytest $(PYTEST_ARGS)

# The console tests drive Debian's chromium through Playwright; nothing downloads its own browser.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make chromium: /usr/bin/chromium is missing; as root run: apt-get install -y chromium" >&2; exit 1; \
	  fi; \
	  echo "installing chromium (apt-get) for the console's browser tests" >&2; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
	    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; }; \
	fi

lint: setup
	@$(VENV)/bin/ruff check services tests scripts bench tools
	@$(VENV)/bin/mypy services scripts tests bench tools

migrate: setup
	@$(PY) -m services.cli.main migrate

token: setup
	@$(PY) -m services.cli.main token

clean:
	rm -rf $(VENV) gen var .pytest_cache .mypy_cache .ruff_cache

bench: setup
	@$(PY) -m bench.grpc_calls
	@$(PY) -m bench.assignments
	@$(PY) -m bench.reassignment
	@$(PY) -m bench.scim
	@$(PY) -m bench.tracing
	@$(PY) -m bench.rules
	@$(PY) -m bench.segments
	@$(PY) -m bench.sync_etm
	@$(PY) -m bench.sync_account_team

# The Salesforce ETM sync end to end on a generated org (10,000 rows), in ./var/demo.
demo: setup
	@$(PY) scripts/demo.py
