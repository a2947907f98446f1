import DatenwerkConnectors
import DatenwerkCore
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Synchronization
import Testing

/// A CKAN portal on loopback (package_show and the resources) and a real PostgreSQL for the checkpoint.
@Suite struct CKANConnectorTests {
    static let samples = Paths.root + "/SampleData/ckan"

    /// The portal: `package_show` answers the sample package with the resource URLs pointing at this server,
    /// `last_modified` of "Zählstellen 2024" from `modified`; the resource files come from SampleData/ckan.
    final class PortalState: Sendable {
        let modified = Mutex("2025-01-06T07:30:01.998120")
        let etag: Mutex<String?>
        let port = Mutex(0)
        init(etag: String?) { self.etag = Mutex(etag) }
    }

    struct Portal: Sendable {
        let server: LoopbackHTTPServer
        let state: PortalState
    }

    static func startPortal(etag: String? = nil) async throws -> Portal {
        let state = PortalState(etag: etag)
        let server = try await LoopbackHTTPServer.start { request in
            let base = "http://127.0.0.1:\(state.port.withLock { $0 })"
            if request.path == "/portal/api/3/action/package_show" {
                guard request.query["id"] == "radverkehr-zaehlstellen" else {
                    return .text(#"{"help":"…","success":false,"error":{"message":"Not found","__type":"Not Found Error"}}"#, status: 404, contentType: "application/json")
                }
                var text = (try? String(contentsOfFile: samples + "/radverkehr-zaehlstellen.json", encoding: .utf8)) ?? ""
                for name in ["beschreibung.pdf", "zaehlstellen-2023.csv", "zaehlstellen-2024.csv", "zaehlstellen-2025.csv"] {
                    text = text.replacingOccurrences(of: #""url": "\#(name)""#, with: #""url": "\#(base)/files/\#(name)""#)
                }
                text = text.replacingOccurrences(of: #""last_modified": "2025-01-06T07:30:01.998120""#, with: #""last_modified": "\#(state.modified.withLock { $0 })""#)
                return .text(text, contentType: "application/json")
            }
            if request.path.hasPrefix("/files/") {
                let tag = state.etag.withLock { $0 }
                if let tag, request.header("If-None-Match") == tag { return LoopbackHTTPServer.Response(status: 304, headers: [("ETag", tag)]) }
                var response = LoopbackHTTPServer.Response.file(samples + "/" + request.path.dropFirst("/files/".count), contentType: "text/csv")
                if let tag { response.headers.append(("ETag", tag)) }
                return response
            }
            return .text("no such path", status: 404)
        }
        state.port.withLock { $0 = server.port }
        return Portal(server: server, state: state)
    }

    static func spec(_ portal: String, extra: String = "") throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: """
            version: 1
            name: ckan-rad
            tenant: "05515000"
            source:
              kind: ckan
              portal: \(portal)
              package: radverkehr-zaehlstellen
            \(extra)
              format: { kind: csv, delimiter: ";" }
              request: { headers: { Authorization: "portal-token-123" } }
            observations:
              station: { id: Zaehlstelle, name: Zaehlstelle, kind: bicycle_counter }
              time: { field: Zeit, format: dd.MM.yyyy HH:mm, timezone: Europe/Berlin, interval: 1h }
              missing: ["-"]
              values:
                - { field: Fahrraeder, property: bicycle_count }
            """, file: "/tmp/ckan-rad.yaml", connectors: BuiltinConnectors.registry)
    }

    /// First run reads the newest CSV; a second run reads nothing ("unchanged since …"); after the portal's
    /// last_modified changes the third run reads it again.
    @Test func readsOnlyWhenLastModifiedChanges() async throws {
        let portal = try await Self.startPortal()
        defer { Task { try await portal.server.stop() } }
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            let spec = try Self.spec(portal.server.baseURL + "/portal/")
            let first = try await runner.run(spec, trigger: "test")
            #expect(first.succeeded, "\(String(describing: first.failure))")
            #expect(first.totals.recordsRead == 6)
            #expect(first.totals.observations == 5)
            #expect(first.totals.isBalanced)
            #expect(first.totals.events.contains { $0.hasPrefix("2 resources match; reading the newest, 'Zählstellen 2024' (CSV, id e3a1c5d7-3333") })
            let second = try await runner.run(spec, trigger: "test")
            #expect(second.succeeded)
            #expect(second.totals.recordsRead == 0)
            #expect(second.totals.events.contains("resource 'Zählstellen 2024' (CSV, id e3a1c5d7-3333-4a2b-8c3d-000000000003) unchanged since 2025-01-06T07:30:01.998120 (last_modified on the portal): not read"))
            #expect(second.totals.isBalanced)
            portal.state.modified.withLock { $0 = "2025-01-07T07:30:00.000000" }
            let third = try await runner.run(spec, trigger: "test")
            #expect(third.totals.recordsRead == 6)
            #expect(third.load.unchanged == 5)
            // The checkpoint says which version was read.
            let cursor = try await PostgresObservationSink(database: db).checkpoint("ckan-rad")
            #expect(cursor?["ckan"]?["modified"]?.text == "2025-01-07T07:30:00.000000")
            #expect(cursor?["ckan"]?["resource"]?.text == "e3a1c5d7-3333-4a2b-8c3d-000000000003")
            let files = portal.server.requests.filter { $0.path.hasPrefix("/files/") }
            #expect(files.map(\.path) == ["/files/zaehlstellen-2024.csv", "/files/zaehlstellen-2024.csv"])
            // The portal's request headers go to the portal; the resource here is on the same host, so they go there too.
            #expect(portal.server.requests.first?.header("Authorization") == "portal-token-123")
            // `--full`: the connector's memory is not handed over, so the unchanged resource is read (rows compared).
            let full = try await runner.run(spec, context: RunContext(trigger: "test", full: true))
            #expect(full.totals.recordsRead == 6)
            #expect(full.load.unchanged == 5)
            let downloads = portal.server.requests.filter { $0.path.hasPrefix("/files/") }
            #expect(downloads.count == 3)
            #expect(downloads.last?.header("If-None-Match") == nil)
            #expect(downloads.last?.header("If-Modified-Since") == nil)
        }
    }

    /// A resource whose server sends an ETag is asked with it even when the portal's metadata is unchanged:
    /// a linked file can change without the portal knowing.
    @Test func anETagChangeIsReadAlthoughThePortalSaysUnchanged() async throws {
        let portal = try await Self.startPortal(etag: "\"a\"")
        defer { Task { try await portal.server.stop() } }
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            let spec = try Self.spec(portal.server.baseURL + "/portal")
            #expect(try await runner.run(spec, trigger: "test").totals.recordsRead == 6)
            let unchanged = try await runner.run(spec, trigger: "test")
            #expect(unchanged.totals.recordsRead == 0)
            #expect(unchanged.totals.events.contains { $0.contains("304 not modified") })
            portal.state.etag.withLock { $0 = "\"b\"" }
            let changed = try await runner.run(spec, trigger: "test")
            #expect(changed.totals.recordsRead == 6)
            #expect(portal.server.requests.filter { $0.path.hasPrefix("/files/") }.compactMap { $0.header("If-None-Match") } == ["\"a\"", "\"a\""])
        }
    }

    @Test func noMatchingResourceListsTheCandidates() async throws {
        let portal = try await Self.startPortal()
        defer { Task { try await portal.server.stop() } }
        let runner = PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry)
        let report = try await runner.run(try Self.spec(portal.server.baseURL + "/portal", extra: "  resource: \"Zählstellen 2030*\""), trigger: "test")
        #expect(report.failure?.step == .extract)
        #expect(report.failure?.message == """
            no resource of dataset 'radverkehr-zaehlstellen' has id or name 'Zählstellen 2030*'; its resources: \
            'Beschreibung der Zählstellen' (PDF, id e3a1c5d7-1111-4a2b-8c3d-000000000001), 'Zählstellen 2023' (csv, id e3a1c5d7-2222-4a2b-8c3d-000000000002), \
            'Zählstellen 2024' (CSV, id e3a1c5d7-3333-4a2b-8c3d-000000000003), 'Zählstellen (Schnittstelle)' (JSON, id e3a1c5d7-5555-4a2b-8c3d-000000000005)
            """)
        let missing = try await runner.run(try PipelineSpec.parse(yaml: """
            version: 1
            name: ckan-missing
            tenant: "05515000"
            source: { kind: ckan, portal: "\(portal.server.baseURL)/portal", package: gibt-es-nicht, format: { kind: csv } }
            observations: { station: { id: a }, time: { field: t, format: iso8601 }, values: [{ field: v, property: air_temperature }] }
            """, file: "/tmp/ckan-missing.yaml", connectors: BuiltinConnectors.registry), trigger: "test")
        #expect(missing.failure?.message.hasPrefix("the portal has no dataset 'gibt-es-nicht'") == true, "\(String(describing: missing.failure))")
    }

    /// The pipeline's request headers (a portal API token) never go to a resource on another host.
    @Test func requestHeadersStayWithThePortal() async throws {
        let files = try await LoopbackHTTPServer.start { request in
            .file(Self.samples + "/zaehlstellen-2024.csv", contentType: "text/csv")
        }
        defer { Task { try await files.stop() } }
        let other = "http://localhost:\(files.port)"
        let portal = try await LoopbackHTTPServer.start { request in
            var text = (try? String(contentsOfFile: Self.samples + "/radverkehr-zaehlstellen.json", encoding: .utf8)) ?? ""
            text = text.replacingOccurrences(of: #""url": "zaehlstellen-2024.csv""#, with: #""url": "\#(other)/zaehlstellen-2024.csv""#)
            return .text(text, contentType: "application/json")
        }
        defer { Task { try await portal.stop() } }
        let runner = PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry)
        let report = try await runner.run(try Self.spec(portal.baseURL), trigger: "test")
        #expect(report.totals.observations == 5, "\(String(describing: report.failure))")
        #expect(portal.requests.first?.header("Authorization") == "portal-token-123")
        #expect(files.requests.count == 1)
        #expect(files.requests.first?.header("Authorization") == nil)
    }

    /// The records are mapped by the pipeline's own observations block, with its own `range:` (as for an http source):
    /// the runner's net for connectors does not apply the vocabulary's range a second time.
    @Test func thePipelinesOwnRangeHolds() async throws {
        let dir = try Paths.temporaryDirectory()
        try Data(#"{"success":true,"result":{"name":"sauna","resources":[{"id":"r1","name":"Sauna","format":"CSV","url":"sauna.csv"}]}}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/sauna.json"))
        try Data("raum,zeit,temp\nsauna-1,2025-02-01T10:00:00Z,75\n".utf8).write(to: URL(fileURLWithPath: dir + "/sauna.csv"))
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: ckan-sauna
            tenant: "05515000"
            source: { kind: ckan, portal: ., package: sauna, format: { kind: csv } }
            observations:
              station: { id: raum }
              time: { field: zeit, format: iso8601 }
              values: [{ field: temp, property: air_temperature, range: [-80, 110] }]
            """, file: dir + "/p.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec, trigger: "test")
        #expect(report.succeeded, "\(String(describing: report.failure))")
        #expect(sink.observations.map(\.result) == [75])
        #expect(sink.quarantined.isEmpty)
    }

    /// Its quarantined records replay like a generic source's: fix the observations block, replay, they load.
    @Test func quarantinedRecordsReplayAfterFixingTheMapping() async throws {
        let dir = try Paths.temporaryDirectory()
        try Data(#"{"success":true,"result":{"name":"pegel","resources":[{"id":"p1","name":"Pegel","format":"CSV","url":"pegel.csv"}]}}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/pegel.json"))
        try Data("pegel,zeit,stand\nP1,2025-02-01T10:00:00Z,1.31\nP1,2025-02-01T11:00:00Z,1.29\n".utf8).write(to: URL(fileURLWithPath: dir + "/pegel.csv"))
        @Sendable func spec(_ unit: String) throws -> PipelineSpec {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: ckan-replay
                tenant: "05515000"
                source: { kind: ckan, portal: ., package: pegel, format: { kind: csv } }
                observations:
                  station: { id: pegel }
                  time: { field: zeit, format: iso8601 }
                  values: [{ field: stand, property: water_level, unit: \(unit), range: [100, 200] }]
                """, file: dir + "/p.yaml", connectors: BuiltinConnectors.registry)
        }
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            // Metres read as centimetres: 1.31 cm is outside the range, both rows go to quarantine.
            let wrong = try await runner.run(try spec("cm"), trigger: "test")
            #expect(wrong.succeeded && wrong.totals.quarantined == 2, "\(String(describing: wrong.failure))")
            let replay = QuarantineStore(db).replay(pipeline: "ckan-replay")
            let report = try await runner.run(try spec("m"), context: RunContext(trigger: "replay", replay: replay))
            #expect(report.succeeded, "\(String(describing: report.failure))")
            #expect(replay.loadedCount == 2 && replay.stillBadRecords.isEmpty && replay.notReplayableRecords.isEmpty)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 2)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.quarantine WHERE pipeline = 'ckan-replay'") == 0)
        }
    }
}
