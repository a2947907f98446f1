import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

/// HTTP sources against a real server on loopback.
@Suite struct HTTPSourceTests {
    static let mapping = """
        observations:
          station: { id: messstelle, coordinates: { lon: position.lon, lat: position.lat } }
          time: { field: zeitpunkt, format: iso8601, interval: PT15M }
          values:
            - { field: energie_kwh, property: electricity_consumption, unit: kWh }
        """

    @Test func followsRelativeNextLinksFromTheBody() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            .file(Paths.sample("energie-api" + request.path.replacingOccurrences(of: "/api/v1", with: "")))
        }
        defer { Task { try await server.stop() } }
        let s = try spec("""
            version: 1
            name: energie-http
            tenant: "05515000"
            source:
              kind: http
              url: \(server.baseURL)/api/v1/page-1.json
              headers: { Accept: application/json }
              paging: { kind: next_link, next: links.next }
              format: { kind: json, records: $.items }
            \(Self.mapping)
            """)
        let (sink, report) = try await dryRun(s)
        #expect(report.succeeded)
        #expect(server.requests.map(\.path) == ["/api/v1/page-1.json", "/api/v1/page-2.json", "/api/v1/page-3.json"])
        #expect(server.requests.first?.header("Accept") == "application/json")
        #expect(report.totals.recordsRead == 72)
        #expect(sink.observations.count == 71)
        #expect(report.totals.bytes == (1...3).reduce(0) { $0 + (try! Data(contentsOf: URL(fileURLWithPath: Paths.sample("energie-api/page-\($1).json")))).count })
    }

    /// An API that serves `total` items through `offset`/`limit` or `page`/`size` parameters.
    static func pagedAPI(total: Int) async throws -> LoopbackHTTPServer {
        try await LoopbackHTTPServer.start { request in
            let limit = Int(request.query["limit"] ?? request.query["size"] ?? "") ?? 10
            let offset = request.query["offset"].flatMap(Int.init) ?? ((Int(request.query["page"] ?? "1") ?? 1) - 1) * limit
            let items = (offset..<min(offset + limit, total)).map { i in
                "{\"messstelle\":\"M\(i % 3)\",\"position\":{\"lat\":51.9,\"lon\":7.6},\"zeitpunkt\":\"2024-05-01T\(String(format: "%02d", i / 4)):\(String(format: "%02d", (i % 4) * 15)):00Z\",\"energie_kwh\":\(i)}"
            }
            return .text("{\"total\":\(total),\"items\":[\(items.joined(separator: ","))]}", contentType: "application/json")
        }
    }

    @Test func pagesByOffsetUntilAShortPage() async throws {
        let server = try await Self.pagedAPI(total: 23)
        defer { Task { try await server.stop() } }
        let s = try spec("""
            version: 1
            name: offset-api
            tenant: "05515000"
            source:
              kind: http
              url: \(server.baseURL)/items?filter=a%20b
              paging: { kind: offset, page_size: 10 }
              format: { kind: json, records: $.items }
            \(Self.mapping)
            """)
        let (sink, report) = try await dryRun(s)
        #expect(report.succeeded)
        #expect(server.requests.map { "\($0.query["offset"]!)/\($0.query["limit"]!)/\($0.query["filter"]!)" } == ["0/10/a b", "10/10/a b", "20/10/a b"])
        // kWh → MW.h
        #expect(sink.observations.map { ($0.result * 1000).rounded() } == (0..<23).map(Double.init))
    }

    @Test func pagesByPageNumberAndStopsAtAnEmptyPage() async throws {
        let server = try await Self.pagedAPI(total: 20)
        defer { Task { try await server.stop() } }
        let s = try spec("""
            version: 1
            name: page-api
            tenant: "05515000"
            source:
              kind: http
              url: \(server.baseURL)/items
              paging: { kind: page, param: page, size_param: size, start: 1, page_size: 10 }
              format: { kind: json, records: $.items }
            \(Self.mapping)
            """)
        let (sink, _) = try await dryRun(s)
        #expect(server.requests.map { $0.query["page"]! } == ["1", "2", "3"])
        #expect(sink.observations.count == 20)
    }

    @Test func followsTheLinkHeaderAndReadsNDJSON() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            let n = Int(request.query["p"] ?? "1") ?? 1
            let line = "{\"messstelle\":\"X\",\"position\":{\"lat\":52,\"lon\":7},\"zeitpunkt\":\"2024-05-01T0\(n):00:00Z\",\"energie_kwh\":\(n)}\n"
            var response = LoopbackHTTPServer.Response.text(line + line.replacingOccurrences(of: ":00:00Z", with: ":30:00Z"), contentType: "application/x-ndjson")
            if n < 3 { response.headers.append(("Link", "</feed?p=\(n + 1)>; rel=\"next\"")) }
            return response
        }
        defer { Task { try await server.stop() } }
        let s = try spec("""
            version: 1
            name: ndjson-feed
            tenant: "05515000"
            source:
              kind: http
              url: \(server.baseURL)/feed
              paging: { kind: next_link }
              format: { kind: ndjson }
            \(Self.mapping)
            """)
        let (sink, report) = try await dryRun(s)
        #expect(report.succeeded)
        #expect(server.requests.map(\.uri) == ["/feed", "/feed?p=2", "/feed?p=3"])
        #expect(sink.observations.map { ($0.result * 1000).rounded() } == [1, 1, 2, 2, 3, 3])
    }

    @Test func aServerErrorFailsTheRunAtExtractWithTheURL() async throws {
        let server = try await LoopbackHTTPServer.start { _ in .text("database offline", status: 503) }
        defer { Task { try await server.stop() } }
        let s = try spec("""
            version: 1
            name: broken-api
            tenant: "05515000"
            source: { kind: http, url: "\(server.baseURL)/x.json", format: { kind: json, records: $.items } }
            \(Self.mapping)
            """)
        let (sink, report) = try await dryRun(s)
        let failure = try #require(report.failure)
        #expect(failure.step == .extract)
        #expect(failure.message == "GET \(server.baseURL)/x.json answered 503: database offline")
        #expect(sink.observations.isEmpty)
    }

    @Test func aBodyCutOffMidRecordIsNeverLoadedAsPartialData() async throws {
        let body = try Data(contentsOf: URL(fileURLWithPath: Paths.sample("energie-api/page-1.json")))
        let server = try await LoopbackHTTPServer.start { _ in
            LoopbackHTTPServer.Response(status: 200, headers: [("Content-Type", "application/json")], body: Array(body), cutAfter: body.count / 2)
        }
        defer { Task { try await server.stop() } }
        let s = try spec("""
            version: 1
            name: cut-api
            tenant: "05515000"
            source: { kind: http, url: "\(server.baseURL)/page-1.json", format: { kind: json, records: $.items } }
            \(Self.mapping)
            """)
        let (_, report) = try await dryRun(s)
        let failure = try #require(report.failure)
        #expect(failure.step == .extract)
        #expect(failure.message.contains("cut off") || failure.message.contains("unexpected end of JSON"))
    }
}
