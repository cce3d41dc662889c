# genesys-prov — the two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
N ?= 10000

.PHONY: demo test lint bench soak clean install browser

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/genesys-prov demo

lint: $(BIN)/.installed
	$(BIN)/ruff check genesys_prov tests
	$(BIN)/mypy

# The HTML report is tested in a real headless browser: Debian's chromium, installed here
# when missing and when we can (root with apt-get); otherwise that one test is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
		echo "chromium is not installed: the HTML report browser test will be skipped"

test: lint browser
	$(BIN)/pytest -q

# The fault matrix at scale: 1,000 users, five seeds, three times the fault rates.
soak: $(BIN)/.installed
	GENESYS_PROV_SOAK=1 $(BIN)/pytest -q -p no:cacheprovider tests/test_faults.py

bench: $(BIN)/.installed
	$(BIN)/python -m genesys_prov.sandbox.bench --users $(N)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
