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

# Loads and downloads of a generated German CSV next to psql \copy and ogr2ogr (docs/bench.md); a release build.
#   make bench BENCH_ARGS="--rows 10000000 --runs 3"
BENCH_ARGS ?=
bench: deps
	$(SWIFT) build -c release --scratch-path .build-release
	.build-release/release/datenwerk bench $(BENCH_ARGS)

# Streams ≥ 1M observations from `datenwerk serve` (plain and gzip) and prints bytes, seconds and max server RSS.
bench-download: deps
	bash scripts/bench-download.sh

clean-db:
	-$(SWIFT) run datenwerk db stop
