# Two commands do all set-up on a fresh machine:
#   make demo   venv + install + sample data + batch run + STIX bundles + summary (demo-out/)
#   make test   venv + install with test extras + the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_EVENTS ?= 50000
CHROMIUM ?= chromium

.PHONY: demo test bench install clean chromium prism kafka kafka-up kafka-down bytecode

# Prism, Beam's portable runner, for `cranewatch stream` and its tests: built once from the
# Go module proxy into the git-ignored cache, at the installed apache-beam version.
BEAM_VERSION := $(shell sed -n 's/.*"apache-beam>=\([0-9.]*\),.*/\1/p' setup.py)
CACHE  := $(CURDIR)/.cache
PRISM  := $(CACHE)/prism/v$(BEAM_VERSION)/prism

$(PRISM):
	GOPATH=$(CACHE)/gopath GOBIN=$(dir $(PRISM)) GOFLAGS=-modcacherw go install github.com/apache/beam/sdks/v2/go/cmd/prism@v$(BEAM_VERSION)

prism: $(PRISM)

# Apache Kafka's broker jars, for the Kafka source's tests, its bench and `make kafka-up`:
# fetched with Maven (scripts/kafka/pom.xml) into the git-ignored cache.
KAFKA_VERSION := $(shell sed -n 's/.*<kafka.version>\(.*\)<\/kafka.version>.*/\1/p' scripts/kafka/pom.xml)
KAFKA_LIBS    := $(CACHE)/kafka/$(KAFKA_VERSION)/libs

$(KAFKA_LIBS):
	python3 scripts/kafka_broker.py fetch

kafka: $(KAFKA_LIBS)

# A single-node KRaft broker on 127.0.0.1:19092 inside its own network namespace; run the
# stream beside it with `.venv/bin/python scripts/kafka_broker.py exec -- .venv/bin/cranewatch stream ...`.
kafka-up: $(VENV)/.installed $(KAFKA_LIBS)
	$(BIN)/python scripts/kafka_broker.py up

kafka-down:
	$(BIN)/python scripts/kafka_broker.py down

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install when setup.py changes (stamp files keep repeat runs fast).
$(VENV)/.installed: setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(MAKE) --no-print-directory bytecode
	touch $@

$(VENV)/.installed-test: setup.py Makefile | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	@# tests load tests/example_plugin themselves (tests/conftest.py); never into this venv
	-@$(BIN)/pip uninstall --quiet --yes cranewatch-example-plugin 2>/dev/null
	$(MAKE) --no-print-directory bytecode
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/cranewatch demo --out demo-out --events $(DEMO_EVENTS)

test: $(VENV)/.installed-test chromium $(PRISM) $(KAFKA_LIBS)
	$(BIN)/python -m pytest -q tests

# The report's browser test (tests/test_report_browser.py) loads report.html in Debian's
# Chromium. Installed here when missing and we are root; otherwise that one test is skipped.
chromium:
	@if command -v $(CHROMIUM) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "chromium: not installed and not root: skipping its install (the report browser test will be skipped)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "chromium: not installed and no apt-get here (the report browser test will be skipped)"; \
	else \
	  echo "chromium: installing Debian's chromium for the report browser test"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq chromium >/dev/null 2>&1 \
	  || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium: apt-get install failed (the report browser test will be skipped)"; \
	fi

# The project's own modules compiled ahead: pip does this for installed packages, but an
# editable install's sources are compiled on first import, and not kept at all where
# PYTHONDONTWRITEBYTECODE is set, so every run would compile them again (~0.4 s).
bytecode:
	$(BIN)/python -m compileall -q pipelines transforms detections stix_export

bench: $(VENV)/.installed-test bytecode
	$(BIN)/python bench/run_bench.py --events 1000000

clean:
	rm -rf demo-out bench-out .pytest_cache
