import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// A scripted loopback source that answers 503, 429 with Retry-After, a timeout and a body cut off
/// mid-record before it answers properly: the run ends with exactly the expected rows, and the run
/// history shows the retries.
@Suite struct FlakySourceTests {
    final class Script: @unchecked Sendable {
        private let lock = NSLock()
        private var calls: [String: Int] = [:]
        func next(_ path: String) -> Int { lock.withLock { calls[path, default: 0] += 1; return calls[path]! } }
    }

    @Test func retriesUntilTheSourceAnswersAndLoadsExactlyOnce() async throws {
        let pages = (1...3).map { try! Data(contentsOf: URL(fileURLWithPath: Paths.sample("energie-api/page-\($0).json"))) }
        let script = Script()
        let server = try await LoopbackHTTPServer.start { request in
            let n = script.next(request.path)
            let page = Int(request.path.filter(\.isNumber)) ?? 1
            let body = Array(pages[page - 1])
            switch (page, n) {
            case (1, 1): return .text("maintenance", status: 503)
            case (1, 2): return LoopbackHTTPServer.Response(status: 429, headers: [("Retry-After", "1")], body: Array("slow down".utf8))
            // Far longer than the timeout, which in turn is far longer than any other answer takes on a loaded
            // 2-core machine (a 1 s timeout once counted a fifth retry under the full suite).
            case (2, 1): return LoopbackHTTPServer.Response(status: 200, body: body, delay: .seconds(30))
            case (3, 1): return LoopbackHTTPServer.Response(status: 200, body: body, cutAfter: body.count * 2 / 3) // cut mid-record
            default: return LoopbackHTTPServer.Response(status: 200, headers: [("Content-Type", "application/json")], body: body)
            }
        }
        defer { Task { try await server.stop() } }
        let s = try spec("""
            version: 1
            name: flaky
            tenant: "05515000"
            source:
              kind: http
              url: \(server.baseURL)/page-1.json
              timeout_seconds: 4
              paging: { kind: next_link, next: links.next }
              format: { kind: json, records: $.items }
            \(HTTPSourceTests.mapping)
            """)
        try await TestDatabase.with { db in
            let report = try await PostgresSinkTests.run(s, db)
            #expect(report.succeeded, "\(report.failure.map(String.init(describing:)) ?? "")")
            #expect(report.totals.recordsRead == 72)
            #expect(report.totals.observations == 71)
            #expect(try await counts(db) == Counts(observations: 71, stations: 3, quarantine: 1))
            let history = try await db.client.query("SELECT status, retries, events::text FROM datenwerk.runs", logger: db.logger)
                .decode((String, Int, String).self).collect()
            let (status, retries, events) = try #require(history.first)
            #expect(status == "succeeded")
            #expect(retries == 4)
            #expect(events.contains("(503)"))
            #expect(events.contains("(429)"))
            #expect(events.contains("no complete answer within"))
            #expect(events.contains("page fetched again"))
            // The same run again loads nothing new.
            let again = try await PostgresSinkTests.run(s, db)
            #expect(again.load.inserted == 0)
            #expect(try await counts(db).observations == 71)
        }
    }
}
