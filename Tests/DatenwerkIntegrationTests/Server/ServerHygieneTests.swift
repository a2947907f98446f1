import AsyncHTTPClient
import DatenwerkPostgres
import DatenwerkPublishing
import DatenwerkServer
import Foundation
import NIOHTTP1
import PostgresNIO
import Testing
import DatenwerkTesting

/// What every HTTP client meets before any data: HEAD, OPTIONS, 405, CORS, request ids, generic 5xx bodies,
/// validated cursors, uniform 404s (the restricted case is in `PublishingServerTests`).
@Suite(.timeLimit(.minutes(3))) struct ServerHygieneTests {
    typealias P = PublishingServer

    @Test func headAnswersLikeGetWithoutABody() async throws {
        try await P.with { server, _ in
            for path in ["/", "/catalog.ttl", "/datasets/musterstadt-klima/observations.csv", "/health"] {
                let get = try await server.get(path)
                let port = try #require(Int(server.baseURL.split(separator: ":").last ?? ""))
                let head = try await RawHTTP.get(port: port, path, method: "HEAD")
                #expect(get.status == 200, "\(path)")
                #expect(head.status == 200, "\(path): HEAD gave \(head.status)")
                #expect(head.body.isEmpty, "\(path)")
                #expect(head.header("Content-Type") == get.header("Content-Type"), "\(path)")
                #expect(!get.body.isEmpty, "\(path)")
            }
        }
    }

    @Test func unsupportedMethodsGet405WithAllowAndOptionsGet204() async throws {
        try await P.with { server, _ in
            for (method, path, allow) in [(HTTPMethod.POST, "/catalog", "GET, HEAD, OPTIONS"), (.DELETE, "/datasets/musterstadt-klima/observations.csv", "GET, HEAD, OPTIONS"),
                                          (.GET, "/ingest/anything", "POST, OPTIONS"), (.PUT, "/health", "GET, HEAD, OPTIONS")] {
                let answer = try await server.request(method, path)
                #expect(answer.status == 405, "\(method) \(path): \(answer.status)")
                #expect(answer.header("Allow") == allow, "\(method) \(path)")
                #expect(answer.header("Content-Type") == "application/problem+json; charset=utf-8")
            }
            let options = try await server.request(.OPTIONS, "/datasets/musterstadt-klima/observations.csv")
            #expect(options.status == 204)
            #expect(options.header("Allow") == "GET, HEAD, OPTIONS")
            #expect(options.header("Access-Control-Allow-Origin") == "*")
            #expect(try await server.request(.GET, "/no/such/thing").status == 404)
        }
    }

    @Test func openGetsCarryCORSAndEveryAnswerARequestID() async throws {
        try await P.with { server, _ in
            var ids: Set<String> = []
            for path in ["/", "/catalog.jsonld", "/datasets/musterstadt-klima/datapackage.json", "/datasets/musterstadt-klima/observations.geojson"] {
                let answer = try await server.get(path)
                #expect(answer.status == 200)
                #expect(answer.header("Access-Control-Allow-Origin") == "*", "\(path)")
                let id = try #require(answer.header("X-Request-Id"), "\(path)")
                #expect(id.count == 12 && id.allSatisfy(\.isHexDigit))
                ids.insert(id)
            }
            #expect(ids.count == 4)
            let restricted = try await server.get("/datasets/\(P.restricted)/observations.csv", headers: [("Authorization", "Bearer \(P.token)")])
            #expect(restricted.status == 200)
            #expect(restricted.header("Access-Control-Allow-Origin") == nil)
        }
    }

    /// A database error reaches the log, never the client: the body names the request id only.
    @Test func internalErrorsAreGenericWithTheRequestID() async throws {
        try await P.with { server, db in
            try await db.client.query("ALTER TABLE datenwerk.observed_properties RENAME TO observed_properties_gone", logger: db.logger)
            let answer = try await server.get("/datasets/musterstadt-klima/datapackage.json")
            try await db.client.query("ALTER TABLE datenwerk.observed_properties_gone RENAME TO observed_properties", logger: db.logger)
            #expect(answer.status == 500, "\(answer.text)")
            let id = try #require(answer.header("X-Request-Id"))
            #expect(answer.text.contains("request \(id)"), "\(answer.text)")
            for leak in ["observed_properties", "SQLSTATE", "PostgreSQL", "PSQLError", "relation", "datenwerk."] {
                #expect(!answer.text.contains(leak), "\(leak) in \(answer.text)")
            }
        }
    }

    /// Cursors are checked before they reach the database: a forged one is 400 naming `cursor`.
    @Test func forgedCursorsAre400() async throws {
        @Sendable func token(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        try await P.with { server, _ in
            let page = try await server.get("/datasets/musterstadt-klima/observations.ndjson?limit=10")
            let next = try #require(page.header("Link"))
            let real = try #require(next.split(separator: "cursor=").last?.split(separator: ">").first).description
            #expect(try await server.get("/datasets/musterstadt-klima/observations.ndjson?limit=10&cursor=\(real)").status == 200)
            // A version-1 token ("1,0,1,x") was a position in the former time order: refused, not paged wrongly.
            for forged in [token("2,99999999999999999,1,air_temperature"), token("2,0,-5,air_temperature"), token("2,0,1,air\u{0}temperature"),
                           token("2,-9223372036854775808,1,x"), token("2,0,1," + String(repeating: "p", count: 300)), "!!", token("3,0,1,x"),
                           token("1,0,1,x")] {
                let answer = try await server.get("/datasets/musterstadt-klima/observations.csv?cursor=\(forged)")
                #expect(answer.status == 400, "\(forged): \(answer.status) \(answer.text)")
                #expect(answer.text.contains(#""parameter":"cursor""#), "\(answer.text)")
            }
            let nul = try await server.get("/datasets/musterstadt-klima/observations.csv?station=a%00b")
            #expect(nul.status == 400, "\(nul.text)")
            #expect(nul.text.contains(#""parameter":"station""#))
        }
    }

    /// Spreadsheet programs run cells that start with = + - @ as formulas: such text cells are quoted with a `'`.
    @Test func csvTextCellsCannotBecomeFormulas() {
        let row = ObservationRow(stationKey: "=HYPERLINK(\"http://evil\")", stationName: "@SUM(A1)", property: "+cmd", unit: "-x",
                                 startMicros: 0, endMicros: nil, value: -3.5, quality: "ok", longitude: nil, latitude: nil)
        var out: [UInt8] = []
        ObservationEncoder.appendCSV(row, to: &out)
        let line = String(decoding: out, as: UTF8.self)
        #expect(line.hasPrefix(#""'=HYPERLINK(""http://evil"")","'@SUM(A1)","'+cmd","'-x","#), "\(line)")
        #expect(line.contains(",-3.5,"), "numbers stay numbers: \(line)")
    }
}
