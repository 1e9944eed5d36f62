# Two commands matter: `make demo` and `make test`.  Both set up what they
# need first: a virtual environment in .venv with the dev tools, the ESP32
# type stubs in typings/, and any Debian packages the tests use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the test suite needs: dbus (a private bus for the BLE
# emulation), socat (serves the simulated board to mpremote over TCP), and
# GL/EGL through Mesa for Kivy's offscreen rendering in the UI tests.
DEB_PACKAGES := dbus socat libgl1 libegl1 libegl-mesa0 libglx-mesa0 libgl1-mesa-dri
SETUP_STAMP := $(VENV)/.setup-done
ARGS ?=

.PHONY: help setup test demo bench lint typecheck mpy-check pytest clean

help:
	@echo "make demo    run the simulated helmet (ARGS=... passes options, e.g. ARGS=--headless)"
	@echo "make test    static checks (ruff, mypy vs ESP32 stubs, mpy-cross xtensawin) and every test"
	@echo "make bench   benchmarks, results in bench/results/"

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml tools/ensure_debian_packages.sh
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
		tools/ensure_debian_packages.sh python3-venv python$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv
	@[ -z "$(DEB_PACKAGES)" ] || tools/ensure_debian_packages.sh $(DEB_PACKAGES)
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "Installing the dev tools into $(VENV) (log: $(VENV)/setup.log)"
	@{ $(BIN)/python -m pip install --upgrade pip && \
	   $(BIN)/python -m pip install -e ".[dev]" && \
	   rm -rf typings && \
	   $(BIN)/python -m pip install --no-deps --target typings "micropython-esp32-stubs>=1.29" "micropython-stdlib-stubs>=1.29"; \
	 } > $(VENV)/setup.log 2>&1 || { tail -40 $(VENV)/setup.log; echo "setup failed: see $(VENV)/setup.log"; exit 1; }
	touch $@

test: setup
	$(MAKE) --no-print-directory lint typecheck mpy-check pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

mpy-check: setup
	$(BIN)/python tools/check_micropython.py

pytest: setup
	$(BIN)/pytest

demo: setup
	$(BIN)/python tools/demo.py $(ARGS)

bench: setup
	$(BIN)/python tools/bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) typings build bench/results .pytest_cache .mypy_cache .ruff_cache .hypothesis
