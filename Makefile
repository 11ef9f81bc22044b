# After — the two commands a new user needs: `make run` and `make test`.
SHELL := /bin/bash
AFTER := node bin/after

.PHONY: install build chromium run test test-unit test-integration test-couchdb bench clean

install: node_modules/.install-stamp

node_modules/.install-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: install
	npx tsc -p tsconfig.json

# The dashboard tests drive Debian's chromium headless (test/integration/ui.test.ts); install it
# when missing. CI runs as root. Where it cannot be installed those tests are skipped with a note.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make: installing Debian's chromium for the dashboard tests" >&2; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "make: could not install chromium; the dashboard browser tests will be skipped" >&2; \
	  else \
	    echo "make: chromium is missing (sudo apt-get install chromium); the dashboard browser tests will be skipped" >&2; \
	  fi; }

# Embedded database in the background (left running so you can keep posting tasks; stop it
# with `bin/after db stop`), `after init`, then the demo worker in the foreground.
run: build
	@$(AFTER) db status >/dev/null 2>&1 || $(AFTER) db start -b
	$(AFTER) init
	$(AFTER) start demo

# The whole suite: unit tests, then integration tests on the embedded database.
test: build chromium
	npx mocha 'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js'

test-unit: build
	npx mocha 'dist/test/unit/**/*.test.js'

test-integration: build chromium
	npx mocha 'dist/test/integration/**/*.test.js'

# The integration suite against a real CouchDB: COUCHDB_URL=http://user:pass@host:port make test-couchdb
test-couchdb: build chromium
	@test -n "$$COUCHDB_URL" || { echo "make test-couchdb: set COUCHDB_URL to a CouchDB server URL" >&2; exit 2; }
	npx mocha 'dist/test/integration/**/*.test.js'

bench: build
	node dist/bench/run.js

clean:
	rm -rf dist node_modules
