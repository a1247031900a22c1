# Témoin — two commands do everything on a fresh machine:
#   make run    set up, then run Témoin on the embedded default with demo data (http://127.0.0.1:8000/)
#   make test   set up, then run the whole test suite
.PHONY: run test setup ffmpeg build-deps demo demo-code clean bench-offload lock ceph-start ceph-stop assets uppy-build

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PATH := $(abspath $(VENV))/bin:$(PATH)

setup: $(VENV)/.installed ffmpeg

# The C reader of custody verification (audit/_chainscan.c) compiles against libpq and OpenSSL;
# without them the install skips it and the Python reader is used (docs/custody.md §4).
build-deps:
	@missing=; command -v gcc >/dev/null 2>&1 || missing=1; \
	[ -f "$$(pg_config --includedir 2>/dev/null)/libpq-fe.h" ] || [ -f /usr/include/postgresql/libpq-fe.h ] || missing=1; \
	[ -f /usr/include/openssl/evp.h ] || missing=1; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing gcc, libpq-dev and libssl-dev (Debian packages) for the C reader"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev libpq-dev libssl-dev >/dev/null; \
	  else \
	    echo "note: gcc, libpq-dev or libssl-dev missing: custody verification will use the Python reader" >&2; \
	  fi; \
	fi

# Exact versions from the lock files (docs/deployment.md, "Dependencies"): requirements.lock for
# the runtime (what the image installs), requirements-test.lock for it plus the test tools.
$(VENV)/.installed: requirements-test.lock pyproject.toml setup.py audit/_chainscan.c | build-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-test.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

# After a change of pyproject.toml's dependencies: the same versions where they still fit, the
# newest allowed otherwise (uv pip compile). `make lock UPGRADE=--upgrade` moves everything forward.
# --universal: one lock for every Python 3.11 and platform (markers kept), so the image's Python,
# Debian's and a developer's install the same set.
UV_COMPILE = TEMOIN_BUILD_EXTENSIONS=0 $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet $(UPGRADE)
lock: $(VENV)/.installed
	$(PY) -m pip install --quiet 'uv>=0.5'
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra test --constraint requirements.lock -o requirements-test.lock

# Ceph RGW, the object store with enforced Object Lock that the tests also run on (.ci/run starts
# it; stop it when you are done: it keeps about 0.5 GB of memory).
ceph-start:
	bash deploy/ceph/rgw.sh start
ceph-stop:
	bash deploy/ceph/rgw.sh stop

ffmpeg:
	@if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing ffmpeg (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else \
	    echo "ffmpeg is required: install it (e.g. sudo apt-get install ffmpeg) and run make again" >&2; exit 1; \
	  fi; \
	fi

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo
	@echo "Témoin: http://127.0.0.1:$(PORT)/  (Ctrl+C to stop)"
	TEMOIN_PORT=$(PORT) $(VENV)/bin/honcho -f Procfile.embedded start

demo-code: setup
	@$(PY) manage.py demo --code

# The suite runs on every core (pytest-xdist; many tests wait on ffmpeg, workers or a browser):
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Front-end libraries (docs/operations.md, "Maps"): `npm ci` installs exactly what package-lock.json
# pins (npm checks each tarball against the lock's integrity hash), then the files the pages use are
# copied into config/static/vendor/, which is committed: production and `make run` need no npm.
# SOURCE names the locked tarball and SHA256SUMS the copied files (`sha256sum -c` in that folder);
# tests/daily/test_maps.py checks the copy against both, and against the tarball when npm has it.
LEAFLET_DIST := node_modules/leaflet/dist
LEAFLET_OUT := config/static/vendor/leaflet
assets:
	npm ci --ignore-scripts --no-audit --no-fund
	rm -rf $(LEAFLET_OUT) && mkdir -p $(LEAFLET_OUT)/images
	cp node_modules/leaflet/LICENSE $(LEAFLET_DIST)/leaflet.js $(LEAFLET_DIST)/leaflet.js.map $(LEAFLET_DIST)/leaflet.css $(LEAFLET_OUT)/
	cp $(LEAFLET_DIST)/images/*.png $(LEAFLET_OUT)/images/
	node -p "const p = require('./package-lock.json').packages['node_modules/leaflet']; \
	  'leaflet@' + p.version + ' ' + p.integrity" > $(LEAFLET_OUT)/SOURCE
	cd $(LEAFLET_OUT) && LC_ALL=C sha256sum LICENSE leaflet.css leaflet.js leaflet.js.map images/*.png > SHA256SUMS
	$(MAKE) --no-print-directory uppy-build
	node -p "const l = require('./package-lock.json').packages; ['@uppy/core', '@uppy/dashboard', '@uppy/tus', \
	  '@uppy/locales', 'esbuild'].map(n => n + '@' + l['node_modules/' + n].version + ' ' + l['node_modules/' + n].integrity).join('\\n')" \
	  > $(UPPY_OUT)/SOURCE
	cd $(UPPY_OUT) && LC_ALL=C sha256sum LICENSE uppy.css uppy.js > SHA256SUMS

# The partner's upload page's Uppy (issue 22): one JS and one CSS file bundled by esbuild from the
# locked packages (assets/uppy.js is the entry; sizes written as our pages write them: assets/bytes.js
# in place of @transloadit/prettier-bytes). tests/requisitions/test_uppy_bundle.py runs this
# same target into a temporary folder and compares the bytes with the committed bundle.
UPPY_OUT ?= config/static/vendor/uppy
uppy-build:
	rm -rf $(UPPY_OUT) && mkdir -p $(UPPY_OUT)
	node_modules/.bin/esbuild assets/uppy.js --bundle --minify --format=iife --target=es2020 \
	  --alias:@transloadit/prettier-bytes=./assets/bytes.js \
	  --legal-comments=eof --log-level=warning --outfile=$(UPPY_OUT)/uppy.js
	cp node_modules/@uppy/core/LICENSE $(UPPY_OUT)/LICENSE

bench-offload: setup
	$(PY) bench/offload.py

clean:
	rm -rf var .pytest_cache
