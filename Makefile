# wuye-gis: `make run` serves the demo district; `make test` runs the tests.
# Both set up what they need: Python deps into .venv, and PostgreSQL + PostGIS
# from the OS packages when missing (as root, via apt-get).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# Test files run side by side on this many processes (pytest-xdist), each with its own embedded
# cluster under var/test-gwN; TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 3

.PHONY: run test setup sysdeps sysdeps-postgis sysdeps-browser sysdeps-qgis assets lint typecheck bench clean

run: setup
	$(BIN)/wuye demo --if-empty
	$(BIN)/wuye serve

test: setup
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

setup: sysdeps $(STAMP) assets

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

# Browser assets of the map pages (Leaflet and plugins) from the npm registry, pinned by
# maps/static/package-lock.json; served by our app under /static/vendor/ (no CDN).
ASSETS_STAMP := maps/static/node_modules/.installed-stamp

assets: $(ASSETS_STAMP)

$(ASSETS_STAMP): maps/static/package.json maps/static/package-lock.json
	cd maps/static && npm ci --no-audit --no-fund --ignore-scripts
	touch $(ASSETS_STAMP)

# OS packages: PostgreSQL + PostGIS (the embedded database), Chromium and CJK
# fonts (map snapshots, PDF reports, browser tests), poppler (reading PDFs back),
# Pango (WeasyPrint). Installed with apt-get when missing and running as root.
OS_PACKAGES := chromium fonts-noto-cjk poppler-utils libpango-1.0-0 libpangoft2-1.0-0

sysdeps: sysdeps-postgis sysdeps-browser sysdeps-qgis

sysdeps-browser:
	@missing=""; for p in $(OS_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "安装 installing$$missing (apt-get) …"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else \
	  echo "missing OS packages:$$missing — run 'make' as root or install them yourself."; exit 1; \
	fi

# QGIS's Python bindings and data providers (about 1 GB), for the desktop-client test
# (tests/test_qgis.py runs PyQGIS headless with the system python3, QT_QPA_PLATFORM=offscreen).
QGIS_PACKAGES := python3-qgis qgis-providers

sysdeps-qgis:
	@missing=""; for p in $(QGIS_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "安装 installing$$missing (apt-get, QGIS for the desktop-client test) …"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else \
	  echo "missing OS packages:$$missing — run 'make' as root or install them yourself."; exit 1; \
	fi

# PostgreSQL server binaries and the PostGIS extension, from the OS packages.
sysdeps-postgis:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && \
	    ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then \
	  exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "安装 installing PostgreSQL + PostGIS (apt-get) …"; \
	  apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql postgresql-postgis; \
	else \
	  echo "PostgreSQL + PostGIS are missing: run 'make' as root, or install the packages" \
	       "postgresql and postgresql-postgis (Debian) yourself."; \
	  exit 1; \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every benchmark, one after another (about half an hour); results in bench/results/.
# wrk (Debian) is the load generator of the features benchmark.
bench: setup
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk; }
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/auth.py
	$(BIN)/python bench/assign.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/maps.py
	$(BIN)/python bench/report.py

clean:
	-$(BIN)/wuye db stop
	rm -rf $(VENV) var
