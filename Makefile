# villagecast — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := ffmpeg espeak-ng python3-venv
TEST_APT_PACKAGES := chromium fonts-noto-cjk icecast2

.PHONY: run test lint venv system-deps test-system-deps bench clean

$(BIN)/villagecast: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres]'
	touch $@

venv: $(BIN)/villagecast

system-deps:
	@./.ci/apt-ensure $(APT_PACKAGES)

test-system-deps:
	@./.ci/apt-ensure $(APT_PACKAGES) $(TEST_APT_PACKAGES)

run: system-deps venv
	$(BIN)/villagecast serve --demo

test: test-system-deps venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy broadcast streaming devices recordings web tests

bench: test-system-deps venv
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/start_latency.py
	$(BIN)/python bench/live_latency.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/notices.py
	$(BIN)/python bench/alerts.py

clean:
	rm -rf $(VENV) data .pytest_cache
