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

@Suite struct IncrementalTests {
    static func spec(_ base: String, query: String = "") throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: """
            version: 1
            name: energie-api
            tenant: "05515000"
            source:
              kind: http
              url: "\(base)/messwerte\(query)"
              format: { kind: json, records: $.items }
            observations:
              station: { id: meter }
              time: { field: ts, format: iso8601 }
              values: [{ field: kw, property: electric_power, unit: kW }]
            """, file: "/tmp/energie.yaml")
    }

    static func page(_ hours: Range<Int>) -> String {
        let items = hours.map { #"{"meter":"m1","ts":"2024-05-01T\#(String(format: "%02d", $0)):00:00Z","kw":\#($0)}"# }
        return #"{"items":[\#(items.joined(separator: ","))]}"#
    }

    /// The second run asks with the first run's ETag; 304 means nothing new (a run that succeeds with
    /// nothing read), the history says so, and the third run gets the new version.
    @Test func etagMakesRunsIncremental() async throws {
        let version = Mutex(1)
        let server = try await LoopbackHTTPServer.start { request in
            let current = version.withLock { $0 }
            let etag = "\"v\(current)\""
            if request.header("If-None-Match") == etag { return LoopbackHTTPServer.Response(status: 304, headers: [("ETag", etag)]) }
            let hours = current == 1 ? 0..<3 : 0..<5
            var response = LoopbackHTTPServer.Response.text(Self.page(hours), contentType: "application/json")
            response.headers.append(("ETag", etag))
            return response
        }
        defer { Task { try await server.stop() } }
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db))
            let spec = try Self.spec(server.baseURL)
            let first = try await runner.run(spec, trigger: "test")
            #expect(first.totals.observations == 3)
            let second = try await runner.run(spec, trigger: "test")
            #expect(second.succeeded)
            #expect(second.totals.recordsRead == 0)
            version.withLock { $0 = 2 }
            let third = try await runner.run(spec, trigger: "test")
            #expect(third.load.inserted == 2)
            #expect(third.load.unchanged == 3)
            let requests = server.requests
            #expect(requests.count == 3)
            #expect(requests[0].header("If-None-Match") == nil)
            #expect(requests[1].header("If-None-Match") == "\"v1\"")
            #expect(requests[2].header("If-None-Match") == "\"v1\"")
            let events = try await db.client.query("SELECT events::text FROM datenwerk.runs WHERE id = \(second.runID)", logger: db.logger).decode(String.self).collect()
            #expect(events.first?.contains("304 not modified, nothing new") == true)
            let cursor = try await db.client.query("SELECT cursor->'http'->>\(server.baseURL + "/messwerte") FROM datenwerk.checkpoints", logger: db.logger)
                .decode(String?.self).collect()
            #expect(cursor.first??.contains("v2") == true)
        }
    }

    /// `{since}` in the URL is the last successful run's high-water mark (the epoch before the first run).
    @Test func sinceAsksOnlyForWhatIsNew() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            .text(Self.page(request.query["seit"] == "1970-01-01T00:00:00Z" ? 0..<3 : 3..<4), contentType: "application/json")
        }
        defer { Task { try await server.stop() } }
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db))
            let spec = try Self.spec(server.baseURL, query: "?seit={since}&limit=100")
            #expect(try await runner.run(spec, trigger: "test").load.inserted == 3)
            #expect(try await runner.run(spec, trigger: "test").load.inserted == 1)
            let requests = server.requests
            #expect(requests.map { $0.query["seit"] } == ["1970-01-01T00:00:00Z", "2024-05-01T02:00:00Z"])
            #expect(requests.allSatisfy { $0.query["limit"] == "100" })
        }
    }

    /// Ten documents from one host with at most 2 connections and 50 ms between starts: never more than two
    /// requests in flight, and the starts are spaced.
    @Test func perHostConcurrencyAndRateLimit() async throws {
        let inFlight = Mutex((now: 0, max: 0))
        let server = try await LoopbackHTTPServer.start { _ in
            inFlight.withLock { $0.now += 1; $0.max = max($0.max, $0.now) }
            try? await Task.sleep(for: .milliseconds(150))
            inFlight.withLock { $0.now -= 1 }
            return .text("ok")
        }
        defer { Task { try await server.stop() } }
        let fetcher = HTTPFetcher(connectionsPerHost: 2, minimumInterval: .milliseconds(50))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<10 {
                group.addTask {
                    let response = try await fetcher.get(.init(url: "\(server.baseURL)/doc/\(i)"))
                    for try await _ in response.body {}
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        try await fetcher.shutdown()
        #expect(inFlight.withLock { $0.max } == 2)
        // Ten requests, two at a time, 150 ms each: at least five rounds.
        #expect(elapsed >= .milliseconds(700))
    }
}
