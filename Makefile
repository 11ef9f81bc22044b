# After — the two commands a new user needs: `make run` and `make test`.
SHELL := /bin/bash
AFTER := node bin/after

.PHONY: install build deps chromium run test test-unit test-integration test-couchdb test-cluster bench bench-peers-setup clean

install: node_modules/.install-stamp

node_modules/.install-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: install
	npx tsc -p tsconfig.json

# How the parts of src/ may import each other, with the rules written down in
# .dependency-cruiser.cjs: no import loops, and every layer imports only those below it.
deps: install
	npx depcruise src --config .dependency-cruiser.cjs --output-type err

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

# The whole suite: the import rules, unit tests, then integration tests on the embedded database.
test: build deps chromium
	npx mocha 'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js'

test-unit: build
	npx mocha 'dist/test/unit/**/*.test.js'

test-integration: build chromium
	npx mocha 'dist/test/integration/**/*.test.js'

# The integration suite against a real CouchDB: COUCHDB_URL=http://user:pass@host:port make test-couchdb
test-couchdb: build chromium
	@test -n "$$COUCHDB_URL" || { echo "make test-couchdb: set COUCHDB_URL to a CouchDB server URL" >&2; exit 2; }
	npx mocha 'dist/test/integration/**/*.test.js'

# docs/spec.md §7: claims on a CouchDB cluster, one worker instance per node (test/integration/cluster.test.ts):
# COUCHDB_CLUSTER_URLS="$$(../shared/couchdb/couchdb.sh cluster url)" make test-cluster
test-cluster: build
	@test -n "$$COUCHDB_CLUSTER_URLS" || { echo "make test-cluster: set COUCHDB_CLUSTER_URLS to the cluster's node URLs, space-separated (couchdb.sh cluster start prints them)" >&2; exit 2; }
	npx mocha dist/test/integration/cluster.test.js

# The workloads in one table (docs/performance.md), on a fresh embedded database by default:
#   make bench                                                      W1, W1b, W2, W3, W4 on pouchdb-server
#   COUCHDB_URL=http://admin:pw@127.0.0.1:5985 make bench           the same on that CouchDB
#   COUCHDB_CLUSTER_URLS="$$(../shared/couchdb/couchdb.sh cluster url)" make bench   W5 scale-out on a cluster
# Each workload makes its own databases there and deletes them afterwards. W1 and W2 also run on
# BullMQ/Redis and pg-boss/PostgreSQL when `make bench-peers-setup` has installed them (embedded
# runs only; BENCH_PEERS=0: not at all).
bench: build
	node dist/bench/run.js

# The peers of `make bench`: Debian's Redis and PostgreSQL servers (the bench starts throwaway
# ones of its own), and BullMQ and pg-boss in bench/peers/node_modules, pinned by
# bench/peers/package-lock.json and kept out of the project's own dependencies. `npm install`,
# not `npm ci`: the lock leaves out msgpackr-extract's builds for other platforms (the registry
# lacks their newest version), which `npm ci` counts as out of sync; every version stays pinned.
bench-peers-setup:
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$([ "$$(id -u)" = 0 ] || echo sudo -E) apt-get install -y -qq redis-server postgresql
	cd bench/peers && npm install --no-audit --no-fund --loglevel=error

clean:
	rm -rf dist node_modules
