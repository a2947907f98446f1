import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

/// The shared `request:` block: headers with `${env:NAME}` secrets and a timeout, for the generic http source and
/// connectors alike; the secret is sent and never shown.
@Suite struct RequestBlockTests {
    static let secret = "rq-7a6b5c4d3e2f1"
    static let variable = "DATENWERK_TEST_REQUEST_TOKEN"

    init() { setenv(Self.variable, Self.secret, 1) }

    static func genericSpec(_ url: String, variable: String = RequestBlockTests.variable) throws -> PipelineSpec {
        try spec("""
            version: 1
            name: secret-api
            tenant: "05515000"
            source:
              kind: http
              url: \(url)
              request:
                headers: { Authorization: "Bearer ${env:\(variable)}", X-Client: datenwerk }
                timeout_seconds: 20
              format: { kind: ndjson }
            \(HTTPSourceTests.mapping)
            """)
    }

    @Test func theGenericSourceSendsTheSecretAndItsErrorNeverShowsIt() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            // A careless server that echoes the credentials it got.
            .text("token \(request.header("Authorization") ?? "none") is not valid for \(request.uri)", status: 401)
        }
        defer { Task { try await server.stop() } }
        let s = try Self.genericSpec("\(server.baseURL)/feed?key=\(Self.secret)")
        #expect(s.request.headers.first?.1 == "Bearer ${env:\(Self.variable)}")
        let (_, report) = try await dryRun(s)
        let failure = try #require(report.failure)
        #expect(server.requests.first?.header("Authorization") == "Bearer \(Self.secret)")
        #expect(server.requests.first?.header("X-Client") == "datenwerk")
        #expect(failure.step == .extract)
        #expect(failure.message == "GET \(server.baseURL)/feed?key=*** answered 401: token Bearer *** is not valid for /feed?key=***")
        let everything = "\(failure) \(report.totals.retries) \(report.totals.events) \(report.totals.origins) \(report.recordProblems)"
        #expect(!everything.contains(Self.secret))
    }

    @Test func retriesInTheRunHistoryAreMaskedToo() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            .text("busy, \(request.header("Authorization") ?? "")", status: 503)
        }
        defer { Task { try await server.stop() } }
        let (_, report) = try await dryRun(try Self.genericSpec("\(server.baseURL)/busy"))
        #expect(report.failure != nil)
        #expect(!report.totals.retries.isEmpty)
        #expect(report.totals.retries.allSatisfy { $0.contains("Bearer ***") && !$0.contains(Self.secret) })
    }

    @Test func aMissingVariableFailsTheRunAtExtractNamingIt() async throws {
        let server = try await LoopbackHTTPServer.start { _ in .text("{}") }
        defer { Task { try await server.stop() } }
        let (_, report) = try await dryRun(try Self.genericSpec("\(server.baseURL)/x", variable: "DATENWERK_TEST_NEVER_SET"))
        let failure = try #require(report.failure)
        #expect(failure.step == .extract)
        #expect(failure.message == "environment variable DATENWERK_TEST_NEVER_SET (used in request header Authorization) is not set")
        #expect(server.requests.isEmpty)
    }

    @Test func aConnectorGetsTheRequestBlockThroughItsSession() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            request.header("Authorization") == "Bearer \(Self.secret)"
                ? .text(#"{"value":[]}"#, contentType: "application/json")
                : .text("no token: \(request.header("Authorization") ?? "-")", status: 401)
        }
        defer { Task { try await server.stop() } }
        let s = try PipelineSpec.parse(yaml: """
            version: 1
            name: sensorthings-token
            tenant: "11000000"
            source:
              kind: sensorthings
              url: "\(server.baseURL)/FROST-Server/v1.1"
              datastreams: ["7"]
              properties: { Temperature: air_temperature }
              request: { headers: { Authorization: "Bearer ${env:\(Self.variable)}" } }
            """, file: "/tmp/sta.yaml", connectors: BuiltinConnectors.registry)
        let report = try await PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry).run(s)
        #expect(report.succeeded, "\(report.failure.map { "\($0)" } ?? "")")
        #expect(server.requests.count == 1)
        #expect(server.requests.allSatisfy { $0.header("Authorization") == "Bearer \(Self.secret)" })
    }

    @Test func theBlockIsChecked() throws {
        func problems(_ source: String) -> String {
            do {
                _ = try spec("""
                    version: 1
                    name: checked
                    tenant: "05515000"
                    source:
                    \(source)
                    \(HTTPSourceTests.mapping)
                    """)
                return ""
            } catch {
                return "\(error)"
            }
        }
        let file = problems("""
              kind: file
              path: x.csv
              request: { headers: { A: b } }
              format: { kind: ndjson }
            """)
        #expect(file.contains("'request' applies to kind: http, not kind: file"), "\(file)")
        let syntax = problems("""
              kind: http
              url: http://127.0.0.1:9/x
              request: { headers: { Authorization: "Bearer ${TOKEN}" }, timeout: 3 }
              format: { kind: ndjson }
            """)
        #expect(syntax.contains("error: write an environment variable as ${env:NAME} (letters, digits, '_') (at 'source.request.headers.Authorization')"), "\(syntax)")
        #expect(syntax.contains("timeout"), "\(syntax)")
    }
}
