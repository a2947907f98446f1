// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Release builds leave out the run-time exclusivity checks (each access to a class's stored property went
    // through swift_beginAccess: ~5 % of a load's client CPU, docs/bench.md). Debug builds, which the tests
    // run, keep them, so an overlapping access still traps there.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Datenwerk",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "datenwerk", targets: ["datenwerk"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.19"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.20.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.4.0"),
        // Metrics: the swift-metrics API anywhere (tiny); the Prometheus backend only in DatenwerkServer (`/metrics`).
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Access control: OIDC bearer JWTs (JWKS) and SHA-256 token hashes (swift-crypto, which jwt-kit brings anyway).
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "4.1.0"..<"6.0.0"),
    ],
    targets: [
        // Model, diagnostics, dataset metadata and the DCAT-AP.de code lists: no I/O, no heavy dependency.
        .target(name: "DatenwerkCore", swiftSettings: swiftSettings),
        // libxml2 (Debian libxml2-dev) for the streaming XML decoder: SAX2 push parser only.
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        // Streaming CSV / JSON / NDJSON / XML decoders over byte chunks.
        .target(name: "DatenwerkFormats", dependencies: ["DatenwerkCore", "CLibXML2"], swiftSettings: swiftSettings),
        // Units (UCUM), local time -> UTC, timestamp patterns, numbers, CRS -> WGS84.
        .target(name: "DatenwerkTransforms", dependencies: ["DatenwerkCore"], swiftSettings: swiftSettings),
        // The one HTTP fetcher (AsyncHTTPClient): timeouts, paging.
        .target(
            name: "DatenwerkHTTP",
            dependencies: [
                "DatenwerkCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Open-data publishing without I/O: DCAT-AP.de, Table Schema, row encoders, the download filter, HTML page.
        .target(name: "DatenwerkPublishing", dependencies: ["DatenwerkCore", "DatenwerkTransforms"], swiftSettings: swiftSettings),
        // PipelineSpec (YAML), sources, mapping to the common model, runner.
        .target(
            name: "DatenwerkPipeline",
            dependencies: [
                "DatenwerkCore", "DatenwerkFormats", "DatenwerkTransforms", "DatenwerkHTTP",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                // SHA-256 pins of pipeline templates shared between installations (Spec/Template.swift).
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // The bundled Gemeindeverzeichnis (municipality keys for `tenant:`; Destatis, dl-de/by-2-0).
            resources: [.copy("Tenants/Resources")],
            swiftSettings: swiftSettings
        ),
        // One folder per connector; the explicit built-in list is `BuiltinConnectors.registry`.
        .target(
            name: "DatenwerkConnectors",
            dependencies: [
                "DatenwerkCore", "DatenwerkFormats", "DatenwerkTransforms", "DatenwerkHTTP", "DatenwerkPipeline",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: swiftSettings
        ),
        // Jobs without a database: Worker, Scheduler, Backfill planning, lifecycle services, child job processes;
        // the `JobQueue` / `ScheduleStore` / `PipelineLocking` protocols and the pure lease, attempt and schedule rules.
        .target(
            name: "DatenwerkOperations",
            dependencies: [
                "DatenwerkCore", "DatenwerkPipeline", "DatenwerkTransforms",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // postgres-nio: embedded cluster, migrations, COPY + merge sink, PostgresJobQueue, PipelineLock.
        .target(
            name: "DatenwerkPostgres",
            dependencies: [
                "DatenwerkCore", "DatenwerkPipeline", "DatenwerkTransforms", "DatenwerkOperations", "DatenwerkPublishing",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Migrations")],
            swiftSettings: swiftSettings
        ),
        // Hummingbird 2: `datenwerk serve` (push ingest, health, catalog, downloads) and its scheduler.
        .target(
            name: "DatenwerkServer",
            dependencies: [
                "DatenwerkCore", "DatenwerkPipeline", "DatenwerkOperations", "DatenwerkPostgres", "DatenwerkHTTP", "DatenwerkTransforms", "DatenwerkPublishing",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support: loopback HTTP server, per-test databases, paths, fixtures and samples shared by both test targets.
        .target(
            name: "DatenwerkTesting",
            dependencies: [
                "DatenwerkCore", "DatenwerkTransforms", "DatenwerkHTTP", "DatenwerkPublishing", "DatenwerkPipeline",
                "DatenwerkConnectors", "DatenwerkPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command line: the only place that wires Postgres into the runner.
        .executableTarget(
            name: "datenwerk",
            dependencies: [
                "DatenwerkCore", "DatenwerkPipeline", "DatenwerkOperations", "DatenwerkPostgres", "DatenwerkHTTP", "DatenwerkConnectors", "DatenwerkServer", "DatenwerkPublishing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Unit tests: no database, no child processes, no network — seconds once built.
        .testTarget(
            name: "DatenwerkUnitTests",
            dependencies: [
                "DatenwerkCore", "DatenwerkFormats", "DatenwerkTransforms", "DatenwerkHTTP", "DatenwerkPipeline",
                "DatenwerkConnectors", "DatenwerkOperations", "DatenwerkPublishing", "DatenwerkTesting",
            ],
            swiftSettings: swiftSettings
        ),
        // Integration tests: real PostgreSQL + PostGIS, loopback HTTP servers, child processes, outside validators.
        .testTarget(
            name: "DatenwerkIntegrationTests",
            dependencies: [
                "DatenwerkCore", "DatenwerkFormats", "DatenwerkTransforms", "DatenwerkHTTP", "DatenwerkPipeline",
                "DatenwerkConnectors", "DatenwerkOperations", "DatenwerkPostgres", "DatenwerkServer", "DatenwerkTesting", "DatenwerkPublishing", "datenwerk",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            exclude: ["CLI/missing-file.yaml"],
            swiftSettings: swiftSettings
        ),
    ]
)
