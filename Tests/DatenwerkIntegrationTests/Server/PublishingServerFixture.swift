import AsyncHTTPClient
import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkPublishing
import DatenwerkServer
import DatenwerkTesting
import Foundation
import Logging
import NIOCore

/// The real server with the open-data routes, on a loopback port, against a fresh database loaded by
/// the example pipelines (klima: 1150 observations, energie: 143) and a restricted copy of energie.
enum PublishingServer {
    static let token = "download-token-\(UInt64.random(in: 1...UInt64.max))"
    static let klima = "musterstadt-klima"
    static let energie = "musterstadt-energie"
    static let restricted = "musterstadt-intern"

    /// The energie pipeline under another name and station prefix, published with `access: restricted`.
    static func restrictedPipeline() throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: """
            version: 1
            name: musterstadt-intern
            tenant: "05515000"
            dataset:
              title: Interne Messstellen der Stadtwerke
              description: Nur für Berechtigte.
              theme: ENER
              access: restricted
            source:
              kind: file
              path: ../../SampleData/energie-api/page-*.json
              format: { kind: json, records: $.items }
            observations:
              station:
                id: messstelle
                prefix: musterstadt-intern
                name: bezeichnung
                coordinates: { lon: position.lon, lat: position.lat }
              time: { field: zeitpunkt, format: iso8601, interval: PT15M }
              values:
                - { field: energie_kwh, property: electricity_consumption, unit: kWh }
                - { field: leistung_w, property: electric_power, unit: W }
            on_bad_record: quarantine
            """, file: Paths.pipeline("examples/musterstadt-intern.yaml"), connectors: BuiltinConnectors.registry)
    }

    static func pipelines() throws -> [PipelineSpec] {
        [
            try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"), connectors: BuiltinConnectors.registry),
            try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-energie.yaml"), connectors: BuiltinConnectors.registry),
            try restrictedPipeline(),
        ]
    }

    static func catalog() throws -> CatalogMetadata { try CatalogSpec.load(file: Paths.root + "/catalog.yaml") }

    static func load(_ specs: [PipelineSpec], into db: Database) async throws {
        let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
        for spec in specs {
            let report = try await runner.run(spec, trigger: "test")
            guard report.succeeded else { throw TestFailure("loading \(spec.name) failed: \(String(describing: report.failure))") }
        }
    }

    static func start(database: Database, pipelines: [PipelineSpec], pageSize: Int = 100) async throws -> ServerHarness {
        let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: database), connectors: BuiltinConnectors.registry)
        var logger = Logger(label: "test.publishing")
        logger.logLevel = ProcessInfo.processInfo.environment["DATENWERK_TEST_SERVER_LOG"] != nil ? .notice : .critical
        var configuration = DatenwerkServer.Configuration(host: "127.0.0.1", port: 0, catalogPageSize: pageSize)
        // The full suite loads 2 cores heavily; a connection can take over 5 s then. Outages are tested in ServerFaultTests.
        configuration.databaseTimeout = .seconds(30)
        let server = DatenwerkServer(configuration: configuration, pipelines: pipelines,
                                     database: database, runner: runner, environment: ["DATENWERK_DOWNLOAD_TOKEN": token], logger: logger,
                                     catalog: try catalog())
        return try await ServerHarness.start(server)
    }

    /// A database loaded with the three pipelines and one server on it (`pageSize` datasets per catalog page).
    static func with(pageSize: Int = 100, _ body: @Sendable (ServerHarness, Database) async throws -> Void) async throws {
        try await TestDatabase.with { db in
            let specs = try pipelines()
            try await load(specs, into: db)
            let server = try await start(database: db, pipelines: specs, pageSize: pageSize)
            do {
                try await body(server, db)
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
        }
    }

    // MARK: Helpers

    /// Runs blocking work (a child process and its `waitUntilExit`) on a thread of its own. On the
    /// cooperative pool it would hold one of its few threads (two on a 2-core machine) while the
    /// process calls back into the server, whose handlers need those threads: a deadlock.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.start()
        }
    }

    /// Writes `bytes` into a fresh temporary folder.
    static func save(_ bytes: [UInt8], as name: String) throws -> String {
        let path = try Paths.temporaryDirectory() + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `gzip -dc` of the bytes (an outside implementation, not ours).
    static func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let input = try save(bytes, as: "body.gz")
        let output = input + ".out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-dc", input]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("gzip -dc failed with status \(process.terminationStatus)") }
        return Array(try Data(contentsOf: URL(fileURLWithPath: output)))
    }

    /// The target of a `Link: <…>; rel="next"` header, as a path on the server.
    static func nextPath(_ answer: ServerHarness.Answer, server: ServerHarness) -> String? {
        guard let link = answer.header("Link"), let match = link.firstMatch(of: /<([^>]+)>;\s*rel="next"/) else { return nil }
        let url = String(match.1)
        return url.hasPrefix(server.baseURL) ? String(url.dropFirst(server.baseURL.count)) : url
    }

    /// NDJSON lines as objects.
    static func objects(_ body: [UInt8]) throws -> [[String: Any]] {
        try String(decoding: body, as: UTF8.self).split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { throw TestFailure("not an object: \(line)") }
            return object
        }
    }
}

extension ServerHarness {
    /// A client that leaves bodies as sent (`HTTPClient.shared` asks for gzip and unpacks it on its own).
    static let rawClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(decompression: .disabled))

    /// `GET path` with exactly these headers; the body as it came over the wire.
    func get(_ path: String, headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if !headers.contains(where: { $0.0.lowercased() == "connection" }) { request.headers.replaceOrAdd(name: "Connection", value: "close") }
        let response = try await Self.rawClient.execute(request, timeout: .seconds(60))
        let buffer = try await response.body.collect(upTo: 512 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: Array(buffer.readableBytesView))
    }
}

/// The outside validators, run off the cooperative pool (see `PublishingServer.blocking`).
enum Judge {
    static func dcat(_ file: String) async throws -> Validators.Run {
        try await Validators.dcat(file: file)
    }

    static func csv(_ file: String, schema: String? = nil) async throws -> Validators.Run {
        try await Validators.csv(file: file, schema: schema)
    }

    static func geojson(_ file: String) async throws -> Validators.Run {
        try await Validators.geojson(file: file)
    }
}
