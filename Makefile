# Two commands from a fresh clone: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The Python extension (csrc/ops) is rebuilt when any of these change.
BUILD_INPUTS := requirements.txt pyproject.toml setup.py $(shell find csrc/ops -type f 2>/dev/null)

.PHONY: setup sysdeps demo test test-slow clean cpp

setup: $(STAMP)

$(STAMP): $(BUILD_INPUTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-build-isolation -e .
	touch $@

demo: setup
	$(VENV)/bin/resnet-edge demo --out runs/demo

# Debian packages of the C++ app (cmake, OpenCV, nlohmann-json, OpenSSL), when missing.
sysdeps:
	scripts/install-system-deps.sh

test: setup sysdeps
	$(PY) -m pytest -q

# The C++ library and app (docs/cpp.md); the C++ tests run the same two commands themselves.
cpp: setup sysdeps
	cmake -S . -B build/cpp -DCMAKE_BUILD_TYPE=Release $$($(PY) scripts/cmake_args.py)
	cmake --build build/cpp -j2

test-slow: setup sysdeps
	$(PY) -m pytest -q -m slow

clean:
	rm -rf build runs *.egg-info resnet_edge/*.so
