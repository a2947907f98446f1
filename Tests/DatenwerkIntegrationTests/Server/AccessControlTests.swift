import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkServer
import DatenwerkTesting
import Foundation
import JWTKit
import Logging
import PostgresNIO
import Synchronization
import Testing

/// Issue 16, access control (docs/access.md), on the real server and a real PostgreSQL: push ingest, run
/// triggers, quarantine replay and restricted downloads answer 401 without a token, 403 with a wrong scope and
/// 2xx with the right one (API tokens, tenant tokens, admin, the legacy secrets, OIDC JWTs from a real JWKS
/// endpoint); revoked and expired tokens stop at the next request; wrong tokens are limited per client; no
/// token reaches the log.
@Suite(.serialized) struct AccessControlTests {
    typealias P = PublishingServer
    static let ttnToken = "ttn-secret-\(UInt64.random(in: 1...UInt64.max))"
    static let downloadToken = "download-secret-\(UInt64.random(in: 1...UInt64.max))"
    static let ingestPath = "/ingest/ttn-emden"
    static let runsPath = "/pipelines/\(P.klima)/runs"
    static let replayPath = "/pipelines/\(P.klima)/quarantine/replay"
    static let downloadPath = "/datasets/\(P.restricted)/observations.csv"

    /// Log lines the server wrote, message and metadata (the log handler of the test's server).
    final class LogCapture: LogHandler, @unchecked Sendable {
        let lines = Mutex<[String]>([])
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            let all = self.metadata.merging(metadata ?? [:]) { $1 }
            lines.withLock { $0.append("\(level) \(message) \(all)") }
        }
        var text: String { lines.withLock { $0.joined(separator: "\n") } }
    }

    struct Setup {
        var server: ServerHarness
        var db: Database
        var log: LogCapture
    }

    static func withServer(limit: FailureLimiter.Policy = .init(burst: 1000), oidc: OIDCConfiguration? = nil, environment: [String: String] = [:],
                           _ body: @Sendable (Setup) async throws -> Void) async throws {
        try await TestDatabase.with { db in
            let restricted = try P.restrictedPipeline()
            try await P.load([restricted], into: db)
            let specs = [try PushIngestTests.pipeline(), try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"), connectors: BuiltinConnectors.registry), restricted]
            let capture = LogCapture()
            let logger = Logger(label: "test.access") { _ in capture }
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry, logger: logger)
            var configuration = DatenwerkServer.Configuration(host: "127.0.0.1", port: 0)
            configuration.databaseTimeout = .seconds(30)
            configuration.failureLimit = limit
            configuration.oidc = oidc
            let server = try await ServerHarness.start(DatenwerkServer(
                configuration: configuration, pipelines: specs, database: db, runner: runner,
                environment: ["TTN_TEST_TOKEN": ttnToken, "DATENWERK_DOWNLOAD_TOKEN": downloadToken].merging(environment) { $1 }, logger: logger, catalog: try P.catalog()))
            do {
                try await body(Setup(server: server, db: db, log: capture))
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
        }
    }

    /// A new API token with `scopes` in the test database (what `datenwerk tokens create` does).
    static func token(_ db: Database, _ scopes: [String], expires: Date? = nil) async throws -> (id: Int64, token: String) {
        let token = APIToken.generate()
        let id = try await TokenStore(db).create(hash: APIToken.hash(token), hint: APIToken.hint(token), name: "test", scopes: scopes, expiresAt: expires)
        return (id, token)
    }

    static func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer \(token)")] }

    static var uplink: [UInt8] { Array((try? Data(contentsOf: URL(fileURLWithPath: PushIngestTests.sample))) ?? Data()) }

    enum Route: CaseIterable {
        case ingest, runs, replay, download

        func send(_ server: ServerHarness, _ headers: [(String, String)]) async throws -> ServerHarness.Answer {
            switch self {
            case .ingest: try await server.request(.POST, AccessControlTests.ingestPath, headers: headers + [("Content-Type", "application/json")], body: AccessControlTests.uplink)
            case .runs: try await server.request(.POST, AccessControlTests.runsPath, headers: headers)
            case .replay: try await server.request(.POST, AccessControlTests.replayPath, headers: headers)
            case .download: try await server.request(.GET, AccessControlTests.downloadPath, headers: headers)
            }
        }

        var success: Int {
            switch self {
            case .ingest, .replay, .download: 200
            case .runs: 202
            }
        }
    }

    // MARK: The acceptance matrix

    @Test func eachProtectedRouteAnswers401Then403Then2xx() async throws {
        try await Self.withServer { s in
            let ingest = try await Self.token(s.db, ["ingest:ttn-emden"])
            let run = try await Self.token(s.db, ["run:\(P.klima)"])
            let read = try await Self.token(s.db, ["read:\(P.restricted)"])
            let tenant = try await Self.token(s.db, ["tenant:05515000"])   // klima and the restricted dataset; not ttn-emden (03402000)
            let admin = try await Self.token(s.db, ["admin"])
            let right: [Route: [String]] = [
                .ingest: [ingest.token, admin.token, Self.ttnToken],
                .runs: [run.token, tenant.token, admin.token],
                .replay: [run.token, tenant.token, admin.token],
                .download: [read.token, tenant.token, admin.token, Self.downloadToken],
            ]
            let wrong: [Route: [String]] = [
                .ingest: [read.token, run.token, tenant.token],
                .runs: [ingest.token, read.token],
                .replay: [ingest.token, read.token],
                .download: [run.token, ingest.token],
            ]
            for route in Route.allCases {
                let none = try await route.send(s.server, [])
                #expect(none.status == 401, "\(route): \(none.text)")
                #expect(none.header("WWW-Authenticate") == #"Bearer realm="datenwerk""#, "\(route)")
                #expect(none.header("Content-Type") == "application/problem+json; charset=utf-8", "\(route)")
                // The tenant (AGS) of a pipeline or dataset is not told to whoever asks.
                #expect(!none.text.contains("05515000") && !none.text.contains("03402000"), "\(route): \(none.text)")
                let garbage = try await route.send(s.server, Self.bearer(APIToken.generate()))
                #expect(garbage.status == 401, "\(route): \(garbage.text)")
                #expect(garbage.header("WWW-Authenticate")?.contains(#"error="invalid_token""#) == true, "\(route)")
                for token in wrong[route]! {
                    let answer = try await route.send(s.server, Self.bearer(token))
                    #expect(answer.status == 403, "\(route): \(answer.text)")
                    #expect(answer.header("Content-Type") == "application/problem+json; charset=utf-8", "\(route)")
                    #expect(answer.header("WWW-Authenticate")?.contains("insufficient_scope") == true, "\(route)")
                    #expect(!answer.text.contains("05515000") && !answer.text.contains("03402000"), "\(route): \(answer.text)")
                }
                for token in right[route]! {
                    let answer = try await route.send(s.server, Self.bearer(token))
                    #expect(answer.status == route.success, "\(route): \(answer.text)")
                    // Also as X-Datenwerk-Token (what webhook senders without Authorization use).
                    let header = try await route.send(s.server, [("X-Datenwerk-Token", token)])
                    #expect(header.status == route.success, "\(route) via X-Datenwerk-Token: \(header.text)")
                }
            }
            // Open data needs none.
            #expect(try await s.server.request(.GET, "/datasets/\(P.klima)/datapackage.json").status == 200)
        }
    }

    @Test func runTriggerQueuesAManualJobWithItsStatusAtLocation() async throws {
        try await Self.withServer { s in
            let run = try await Self.token(s.db, ["run:\(P.klima)"])
            let answer = try await s.server.request(.POST, Self.runsPath, headers: Self.bearer(run.token))
            #expect(answer.status == 202)
            let location = try #require(answer.header("Location"))
            let id = try #require(Int64(location.split(separator: "/").last.map(String.init) ?? ""))
            #expect(location == "/pipelines/\(P.klima)/runs/\(id)")
            let rows = try await s.db.client.query("SELECT pipeline, kind, status FROM datenwerk.jobs WHERE id = \(id)", logger: s.db.logger)
                .decode((String, String, String).self).collect()
            #expect(rows.count == 1)
            #expect(rows.first?.0 == P.klima && rows.first?.1 == "manual" && rows.first?.2 == "queued")
            let status = try await s.server.request(.GET, location, headers: Self.bearer(run.token))
            #expect(status.status == 200, "\(status.text)")
            #expect(status.text.contains(#""status":"queued""#), "\(status.text)")
            #expect(try await s.server.request(.GET, location).status == 401)
            // An admin learns that a pipeline does not exist; anyone else gets the same 401/403 as for one that does.
            let admin = try await Self.token(s.db, ["admin"])
            #expect(try await s.server.request(.POST, "/pipelines/nope/runs", headers: Self.bearer(admin.token)).status == 404)
            #expect(try await s.server.request(.POST, "/pipelines/nope/runs", headers: Self.bearer(run.token)).status == 403)
            #expect(try await s.server.request(.POST, "/pipelines/nope/runs").status == 401)
            // A push pipeline runs when pushed to.
            #expect(try await s.server.request(.POST, "/pipelines/ttn-emden/runs", headers: Self.bearer(admin.token)).status == 409)
        }
    }

    @Test func replayOverHTTPLoadsWhatMapsNowAndLeavesQuarantine() async throws {
        try await Self.withServer { s in
            // A bad uplink goes to quarantine; replay finds it still bad (the pipeline is unchanged) and says so.
            let bad = try await s.server.request(.POST, Self.ingestPath, headers: Self.bearer(Self.ttnToken) + [("Content-Type", "application/json")],
                                                 body: Array(#"{"end_device_ids":{"device_id":"#.utf8))
            #expect(bad.status == 400)
            let run = try await Self.token(s.db, ["run:ttn-emden"])
            let replay = try await s.server.request(.POST, "/pipelines/ttn-emden/quarantine/replay", headers: Self.bearer(run.token))
            #expect(replay.status == 200, "\(replay.text)")
            #expect(replay.text.contains(#""still_quarantined":1"#), "\(replay.text)")
            let runs = try await s.db.client.query("SELECT count(*)::bigint FROM datenwerk.runs WHERE trigger = 'replay'", logger: s.db.logger).decode(Int64.self).collect()
            #expect(runs == [1])
            let badID = try await s.server.request(.POST, "/pipelines/ttn-emden/quarantine/replay?id=x", headers: Self.bearer(run.token))
            #expect(badID.status == 400)
        }
    }

    // MARK: Revocation and expiry

    @Test func revokedAndExpiredTokensStopAtTheNextRequest() async throws {
        try await Self.withServer { s in
            let read = try await Self.token(s.db, ["read:\(P.restricted)"])
            #expect(try await s.server.request(.GET, Self.downloadPath, headers: Self.bearer(read.token)).status == 200)
            #expect(try await TokenStore(s.db).revoke(id: read.id))
            let revoked = try await s.server.request(.GET, Self.downloadPath, headers: Self.bearer(read.token))
            #expect(revoked.status == 401)
            #expect(try await TokenStore(s.db).revoke(id: read.id) == false)

            let past = try await Self.token(s.db, ["admin"], expires: Date().addingTimeInterval(-1))
            #expect(try await s.server.request(.POST, Self.runsPath, headers: Self.bearer(past.token)).status == 401)

            // A token used a moment ago expires: its next request is refused.
            let soon = try await Self.token(s.db, ["admin"], expires: Date().addingTimeInterval(3600))
            #expect(try await s.server.request(.POST, Self.runsPath, headers: Self.bearer(soon.token)).status == 202)
            try await s.db.client.query("UPDATE datenwerk.api_tokens SET expires_at = now() - interval '1 second' WHERE id = \(soon.id)", logger: s.db.logger)
            #expect(try await s.server.request(.POST, Self.runsPath, headers: Self.bearer(soon.token)).status == 401)

            let listed = try await TokenStore(s.db).list()
            #expect(listed.count == 3)
            #expect(listed.first { $0.id == read.id }?.revokedAt != nil)
            #expect(listed.first { $0.id == read.id }?.lastUsedAt != nil)
            #expect(listed.allSatisfy { $0.hint.hasPrefix("dwk_") && $0.hint.count == 8 })
            // Only the hash is stored: no column holds the token.
            let stored = try await s.db.client.query("SELECT row_to_json(t)::text FROM datenwerk.api_tokens t", logger: s.db.logger).decode(String.self).collect()
            for row in stored { #expect(!row.contains(read.token) && !row.contains(soon.token)) }
        }
    }

    // MARK: Rate limit

    @Test func wrongTokensAreLimitedPerClient() async throws {
        try await Self.withServer(limit: .init(burst: 10, window: .seconds(60))) { s in
            let admin = try await Self.token(s.db, ["admin"])
            for i in 1...10 {
                let answer = try await s.server.request(.POST, Self.runsPath, headers: Self.bearer("dwk_wrong\(i)"))
                #expect(answer.status == 401, "attempt \(i)")
            }
            let limited = try await s.server.request(.POST, Self.runsPath, headers: Self.bearer("dwk_wrong11"))
            #expect(limited.status == 429)
            let retry = try #require(limited.header("Retry-After").flatMap(Int.init))
            #expect(retry >= 1 && retry <= 6)
            #expect(limited.header("Content-Type") == "application/problem+json; charset=utf-8")
            // The client is held off whatever it sends now, on every protected route (guessing cannot go on).
            #expect(try await s.server.request(.POST, Self.runsPath, headers: Self.bearer(admin.token)).status == 429)
            #expect(try await s.server.request(.GET, Self.downloadPath, headers: Self.bearer(admin.token)).status == 429)
            // Open data is not limited.
            #expect(try await s.server.request(.GET, "/datasets/\(P.klima)/datapackage.json").status == 200)
            // Without a trusted proxy, X-Forwarded-For is the client's word and changes nothing.
            let spoofed = try await s.server.request(.POST, Self.runsPath, headers: Self.bearer(admin.token) + [("X-Forwarded-For", "203.0.113.9")])
            #expect(spoofed.status == 429)
            // One warning when the client was held off, not one per refused request.
            let held = s.log.lines.withLock { $0.filter { $0.contains("127.0.0.1 is held off") } }
            #expect(held.count == 1, "\(held)")
        }
    }

    @Test func behindATrustedProxyTheForwardedClientIsLimited() async throws {
        try await Self.withServer(limit: .init(burst: 10, window: .seconds(60)), environment: ["DATENWERK_TRUSTED_PROXIES": "10.9.9.9, 127.0.0.1"]) { s in
            let admin = try await Self.token(s.db, ["admin"])
            let guesser = [("X-Forwarded-For", "198.51.100.7, 203.0.113.5")]   // the proxy appended the last one
            for i in 1...10 {
                #expect(try await s.server.request(.POST, Self.runsPath, headers: Self.bearer("dwk_wrong\(i)") + guesser).status == 401)
            }
            #expect(try await s.server.request(.POST, Self.runsPath, headers: Self.bearer("dwk_wrong11") + guesser).status == 429)
            // Another client behind the same proxy is not held off.
            let other = try await s.server.request(.POST, Self.runsPath, headers: Self.bearer(admin.token) + [("X-Forwarded-For", "203.0.113.6")])
            #expect(other.status == 202, "\(other.text)")
        }
    }

    // MARK: Logs

    @Test func tokensNeverAppearInTheLog() async throws {
        try await Self.withServer { s in
            let admin = try await Self.token(s.db, ["admin"])
            let read = try await Self.token(s.db, ["read:\(P.restricted)"])
            let wrong = APIToken.generate()
            let garbage = "not-a-token-\(UInt64.random(in: 1...UInt64.max))"
            for route in Route.allCases {
                for token in [admin.token, read.token, wrong, garbage, Self.ttnToken, Self.downloadToken] {
                    _ = try await route.send(s.server, Self.bearer(token))
                    _ = try await route.send(s.server, [("X-Datenwerk-Token", token)])
                }
            }
            let log = s.log.text
            // The capture saw the requests (so its silence about tokens means something).
            #expect(log.contains("access:"), "\(log.prefix(2000))")
            #expect(log.contains("API token #\(read.id)"))
            for token in [admin.token, read.token, wrong, garbage, Self.ttnToken, Self.downloadToken] {
                #expect(!log.contains(token), "a token is in the log")
                #expect(!log.contains(String(token.dropFirst(4).prefix(20))), "part of a token is in the log")
            }
        }
    }
}
