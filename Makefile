# Datenwerk — two commands do everything on a fresh machine:
#   make demo   installs what is missing, builds, and runs the example pipelines into the embedded PostgreSQL
#   make test   installs what is missing, builds, and runs every test against a real PostgreSQL + PostGIS

SWIFT ?= swift
SWIFT_FLAGS ?=

.PHONY: demo test build release deps bench bench-download clean-db

deps:
	@sh scripts/ensure-deps.sh

build: deps
	$(SWIFT) build $(SWIFT_FLAGS)

demo: build
	$(SWIFT) run $(SWIFT_FLAGS) datenwerk demo

test: deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	$(SWIFT) test --skip-build $(SWIFT_FLAGS)

release: deps
	$(SWIFT) build -c release

bench: deps
	bash scripts/bench.sh

# Streams ≥ 1M observations from `datenwerk serve` (plain and gzip) and prints bytes, seconds and max server RSS.
bench-download: deps
	bash scripts/bench-download.sh

clean-db:
	-$(SWIFT) run datenwerk db stop
