import DatenwerkConnectors
import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkServer
import Foundation
import Logging
import PostgresNIO
import Testing
import DatenwerkTesting

/// Pipeline templates end to end (docs/templates.md): one template for two municipalities loads into each one's
/// stations; templates of another installation are fetched pinned by their hash, from a loopback server and from
/// this server's own `/templates/`.
@Suite("Pipeline templates", .serialized)
struct TemplateSharingTests {
    static let templates = Paths.root + "/Pipelines/templates"

    /// A pipeline of town `name` with tenant `tenant`, reading `url` through the German CSV template.
    static func pipeline(_ name: String, tenant: String, url: String, uses: String = "templates/german-csv", pin: String? = nil) -> String {
        """
        version: 1
        name: \(name)
        tenant: "\(tenant)"
        uses: \(uses)
        \(pin.map { "sha256: \($0)" } ?? "")
        with:
          url: \(url)
          title: Klimamessnetz \(name)
          publisher: Stadt \(name)
          skip_rows: 2
          comment_prefixes: ["Ende der Datei"]
          columns:
            "Lufttemperatur [°C]": air_temperature
            "rel. Feuchte [%]": relative_humidity
            "Luftdruck [hPa]": air_pressure
            "Wind [km/h]": { property: wind_speed, unit: km/h }
        """
    }

    /// The sample German CSV (ISO-8859-1) for Münster, and the same for Osnabrück with its own station ids.
    static func csvFiles() throws -> (muenster: [UInt8], osnabrueck: [UInt8]) {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Paths.root + "/SampleData/klima-musterstadt.csv")))
        let text = String(decoding: bytes, as: Unicode.ASCII.self)   // only ASCII bytes are replaced; the others stay as they are
        #expect(text.contains("MS-01"))
        var other = bytes
        for index in other.indices.dropLast(2) where other[index] == UInt8(ascii: "M") && other[index + 1] == UInt8(ascii: "S") && other[index + 2] == UInt8(ascii: "-") {
            other[index] = UInt8(ascii: "O")
        }
        return (bytes, other)
    }

    @Test func oneTemplateForTwoMunicipalitiesLoadsIntoSeparateStations() async throws {
        let (muenster, osnabrueck) = try Self.csvFiles()
        let server = try await LoopbackHTTPServer.start { request in
            .init(body: request.path.hasSuffix("osnabrueck.csv") ? osnabrueck : muenster)
        }
        defer { Task { try? await server.stop() } }
        // Beside Pipelines/templates (never written: only read from the text).
        let file = { (name: String) in Paths.root + "/Pipelines/examples/\(name).yaml" }
        let specs = [
            try PipelineSpec.parse(yaml: Self.pipeline("klima-muenster", tenant: "05515000", url: server.baseURL + "/muenster.csv"),
                                   file: file("klima-muenster"), connectors: BuiltinConnectors.registry),
            try PipelineSpec.parse(yaml: Self.pipeline("klima-osnabrueck", tenant: "03404000", url: server.baseURL + "/osnabrueck.csv"),
                                   file: file("klima-osnabrueck"), connectors: BuiltinConnectors.registry),
        ]
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            for spec in specs {
                let report = try await runner.run(spec, trigger: "test")
                #expect(report.succeeded, "\(spec.name): \(report)")
                #expect(report.totals.observations > 0, "\(spec.name): \(report)")
            }
            let rows = try await db.client.query("SELECT tenant, key FROM datenwerk.stations ORDER BY key", logger: db.logger)
                .decode((String, String).self).collect()
            let muensterKeys = Set(rows.filter { $0.0 == "05515000" }.map(\.1))
            let osnabrueckKeys = Set(rows.filter { $0.0 == "03404000" }.map(\.1))
            #expect(muensterKeys == ["klima-muenster:MS-01", "klima-muenster:MS-02", "klima-muenster:MS-03"])
            #expect(osnabrueckKeys == ["klima-osnabrueck:OS-01", "klima-osnabrueck:OS-02", "klima-osnabrueck:OS-03"])
            #expect(muensterKeys.isDisjoint(with: osnabrueckKeys))
            // The same observations per town: one template, the same mapping.
            let counts = try await db.client.query("""
                SELECT s.tenant, count(*)::bigint FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id
                GROUP BY s.tenant ORDER BY s.tenant
                """, logger: db.logger).decode((String, Int64).self).collect()
            #expect(counts.count == 2)
            #expect(counts.first?.1 == counts.last?.1 && (counts.first?.1 ?? 0) > 0, "\(counts)")
        }
    }

    @Test func aRemoteTemplateIsFetchedOnlyWithItsPinnedHash() async throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.templates + "/german-csv.yaml")))
        let server = try await LoopbackHTTPServer.start { request in
            request.path == "/templates/german-csv.yaml" ? .init(headers: [("Content-Type", "application/yaml")], body: bytes) : .init(status: 404)
        }
        defer { Task { try? await server.stop() } }
        let dir = try Paths.temporaryDirectory()
        let library = TemplateLibrary(cacheDirectory: dir + "/cache")
        let url = server.baseURL + "/templates/german-csv.yaml"
        let right = sha256Hex(bytes)

        // A wrong pin: nothing is cached, the problem is at the pipeline's sha256 line, and reading the pipeline says why.
        let wrong = String(right.reversed())
        let wrongFile = dir + "/klima-wrong.yaml"
        try Self.pipeline("klima-wrong", tenant: "05515000", url: "https://example.org/k.csv", uses: url, pin: wrong).write(toFile: wrongFile, atomically: false, encoding: .utf8)
        let refused = await RemoteTemplates.fetchMissing(files: [wrongFile], library: library, fetcher: testFetcher)
        #expect(refused.fetched.isEmpty)
        #expect(refused.problems.map(\.description) == [
            "\(wrongFile):5:9: error: template \(url) has sha256 \(right), not the pinned \(wrong): it changed on its server (or is not the one meant); read the new version and pin its hash to use it",
        ])
        #expect(!FileManager.default.fileExists(atPath: library.cachedFile(sha256: wrong)))
        let notFetched = try #require(throws: DiagnosticError.self) { try PipelineSpec.load(file: wrongFile, connectors: BuiltinConnectors.registry, templates: library) }
        #expect(notFetched.diagnostics.first?.message.hasPrefix("template \(url) has not been fetched yet") == true)

        // The right pin: fetched once, then read from the cache (no second request).
        let rightFile = dir + "/klima-right.yaml"
        try Self.pipeline("klima-right", tenant: "05515000", url: "https://example.org/k.csv", uses: url, pin: right).write(toFile: rightFile, atomically: false, encoding: .utf8)
        let fetched = await RemoteTemplates.fetchMissing(files: [rightFile], library: library, fetcher: testFetcher)
        #expect(fetched.problems.isEmpty, "\(fetched.problems)")
        #expect(fetched.fetched.map(\.url) == [url])
        let requests = server.requests.count
        let again = await RemoteTemplates.fetchMissing(files: [rightFile], library: library, fetcher: testFetcher)
        #expect(again.fetched.isEmpty && again.problems.isEmpty)
        #expect(server.requests.count == requests)
        let spec = try PipelineSpec.load(file: rightFile, connectors: BuiltinConnectors.registry, templates: library)
        #expect(spec.source?.url == "https://example.org/k.csv")
        #expect(spec.datasetMetadata?.title == "Klimamessnetz klima-right")

        // A value that the body cannot take is reported at the pipeline's `with:` entry (a parameter replaced whole).
        let badValue = dir + "/klima-bad-value.yaml"
        try Self.pipeline("klima-bad-value", tenant: "05515000", url: "https://example.org/k.csv", uses: url, pin: right)
            .replacingOccurrences(of: "skip_rows: 2", with: "timezone: Europe/Nirgendwo").write(toFile: badValue, atomically: false, encoding: .utf8)
        let valueError = try #require(throws: DiagnosticError.self) { try PipelineSpec.load(file: badValue, connectors: BuiltinConnectors.registry, templates: library) }
        #expect(valueError.diagnostics.first?.description.hasPrefix("\(badValue):10:13: error: unknown time zone 'Europe/Nirgendwo'") == true, "\(valueError)")
    }

    /// A problem of a remote template's own body is reported at the template's URL and line, naming the pipeline.
    @Test func aProblemInARemoteTemplateIsReportedAtItsURL() async throws {
        let broken = Array("""
            version: 1
            template: zaehler
            description: a counter CSV
            parameters:
              url: { type: url, description: the file, example: "https://example.org/z.csv" }
            pipeline:
              version: 1
              source: { kind: http, url: "${{ params.url }}", format: { kind: csv } }
              observations:
                station: { id: Station }
                time: { field: Zeit, format: iso8601 }
                values: [{ field: n, property: bicycle_count }]
              on_bad_record: quarantaine

            """.utf8)
        let server = try await LoopbackHTTPServer.start { _ in .init(body: broken) }
        defer { Task { try? await server.stop() } }
        let dir = try Paths.temporaryDirectory()
        let library = TemplateLibrary(cacheDirectory: dir + "/cache")
        let url = server.baseURL + "/templates/zaehler.yaml"
        let file = dir + "/zaehler-a.yaml"
        try "version: 1\nname: zaehler-a\ntenant: \"05515000\"\nuses: \(url)\nsha256: \(sha256Hex(broken))\nwith: { url: \"https://example.org/a.csv\" }\n"
            .write(toFile: file, atomically: false, encoding: .utf8)
        let fetched = await RemoteTemplates.fetchMissing(files: [file], library: library, fetcher: testFetcher)
        #expect(fetched.problems.isEmpty, "\(fetched.problems)")
        let error = try #require(throws: DiagnosticError.self) { try PipelineSpec.load(file: file, connectors: BuiltinConnectors.registry, templates: library) }
        #expect(error.diagnostics.map(\.description) == [
            "\(url):13:18: error: 'quarantaine' is not one of fail, skip, quarantine; did you mean 'quarantine'? (at 'on_bad_record') (in template 'zaehler', used by pipeline 'zaehler-a' at \(file):4:7)",
        ])
    }

    @Test func theServerPublishesItsTemplatesForNeighbours() async throws {
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            var logger = Logger(label: "test.server")
            logger.logLevel = .critical
            var configuration = DatenwerkServer.Configuration(host: "127.0.0.1", port: 0)
            configuration.templatesDirectory = Self.templates
            let server = try await ServerHarness.start(DatenwerkServer(configuration: configuration, pipelines: [], database: db, runner: runner, logger: logger))
            defer { Task { await server.stop() } }

            let index = try await server.request(.GET, "/templates/")
            #expect(index.status == 200)
            let json = try JSONParser.parse(index.body)
            guard case .array(let items)? = json["templates"] else {
                Issue.record("no templates array: \(index.text)")
                return
            }
            #expect(items.count == TemplateLibrary.files(in: Self.templates).count)
            let german = try #require(items.first { $0["name"] == .string("german-csv") })
            guard case .string(let hash)? = german["sha256"], case .string(let url)? = german["url"] else {
                Issue.record("no sha256/url: \(german)")
                return
            }
            #expect(url == server.baseURL + "/templates/german-csv.yaml")

            let file = try await server.request(.GET, "/templates/german-csv.yaml")
            #expect(file.status == 200)
            #expect(file.header("Content-Type")?.hasPrefix("application/yaml") == true)
            #expect(sha256Hex(file.body) == hash)
            #expect(file.body == [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.templates + "/german-csv.yaml"))))
            #expect(try await server.request(.GET, "/templates/nichts.yaml").status == 404)
            #expect(try await server.request(.POST, "/templates/german-csv.yaml").status == 405)

            // A neighbour pins the index's hash and uses the template.
            let dir = try Paths.temporaryDirectory()
            let library = TemplateLibrary(cacheDirectory: dir + "/cache")
            let pipelineFile = dir + "/klima-nachbar.yaml"
            try Self.pipeline("klima-nachbar", tenant: "03404000", url: "https://example.org/k.csv", uses: url, pin: hash).write(toFile: pipelineFile, atomically: false, encoding: .utf8)
            let fetched = await RemoteTemplates.fetchMissing(files: [pipelineFile], library: library, fetcher: testFetcher)
            #expect(fetched.problems.isEmpty, "\(fetched.problems)")
            let spec = try PipelineSpec.load(file: pipelineFile, connectors: BuiltinConnectors.registry, templates: library)
            #expect(spec.tenant == "03404000")
        }
    }

    /// `datenwerk templates list|describe` and `validate` on a pipeline with a wrong parameter: both files named.
    @Test func theCommandLineListsDescribesAndValidates() async throws {
        let list = try await CLITests.datenwerk(["templates", "list"])
        #expect(list.status == 0, "\(list.stderr)")
        let names = list.stdout.split(separator: "\n").dropFirst().map { String($0.prefix { $0 != " " }) }
        #expect(names == TemplateLibrary.files(in: Self.templates).map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension })
        #expect(list.stdout.contains("german-csv  "))

        let describe = try await CLITests.datenwerk(["templates", "describe", "sensor-community"])
        #expect(describe.status == 0, "\(describe.stderr)")
        #expect(describe.stdout.contains("  bbox (bbox [west, south, east, north] in WGS84 degrees) required"))
        #expect(describe.stdout.contains("uses: templates/sensor-community\nwith:\n  bbox: [7.47, 51.84, 7.77, 52.06]"))
        let unknown = try await CLITests.datenwerk(["templates", "describe", "sensor-comunity"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("did you mean 'sensor-community'?"))

        let dir = try Paths.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/templates", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.templates + "/sensor-community.yaml", toPath: dir + "/templates/sensor-community.yaml")
        try """
            version: 1
            name: feinstaub-muenster
            tenant: "05515000"
            uses: templates/sensor-community
            with:
              bbox: [7.77, 51.84, 7.47, 52.06]
              title: Feinstaub Münster
              publisher: Stadt Münster
            """.write(toFile: dir + "/feinstaub-muenster.yaml", atomically: false, encoding: .utf8)
        let validate = try await CLITests.datenwerk(["validate", "."], in: dir)
        #expect(validate.status == 64)
        let declared = try #require(try String(contentsOfFile: Self.templates + "/sensor-community.yaml", encoding: .utf8)
            .components(separatedBy: "\n").firstIndex { $0.hasPrefix("  bbox:") }) + 1
        #expect(validate.stderr.contains("feinstaub-muenster.yaml:6:9: error: parameter 'bbox' of template 'sensor-community' (declared at ./templates/sensor-community.yaml:\(declared):3) expects bbox [west, south, east, north] in WGS84 degrees with west < east and south < north"), "\(validate.stderr)")
        #expect(validate.stderr.contains("error: 1 problem in 1 pipeline file; nothing was run."), "\(validate.stderr)")
    }
}
