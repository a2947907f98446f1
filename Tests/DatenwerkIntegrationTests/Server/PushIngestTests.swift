import DatenwerkConnectors
import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// TTN webhooks into the real server, stored in a real PostgreSQL.
@Suite struct PushIngestTests {
    static let token = "test-token-\(UInt64.random(in: 1...UInt64.max))"
    static let sample = Paths.reference("ttn-uplink/tts_v3_uplink_dragino_lsn50v2-s31_2024-06-26.json")

    static func pipeline() throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: """
            version: 1
            name: ttn-emden
            tenant: "03402000"
            source:
              kind: ttn
              token_env: TTN_TEST_TOKEN
              applications: [ht-sensor-project-br]
              fields: { TempC_SHT: air_temperature, Hum_SHT: relative_humidity, BatV: battery_voltage }
            """, file: "/tmp/ttn-emden.yaml", connectors: BuiltinConnectors.registry)
    }

    static func withServer(_ body: @Sendable (ServerHarness, Database) async throws -> Void) async throws {
        try await TestDatabase.with { db in
            let server = try await ServerHarness.start(database: db, pipelines: [try pipeline()], environment: ["TTN_TEST_TOKEN": token])
            do {
                try await body(server, db)
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
        }
    }

    static var auth: [(String, String)] { [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")] }

    @Test func uplinkIsCommittedBeforeTheAnswer() async throws {
        try await Self.withServer { server, db in
            let body = Array(try Data(contentsOf: URL(fileURLWithPath: Self.sample)))
            let answer = try await server.request(.POST, "/ingest/ttn-emden", headers: Self.auth, body: body)
            #expect(answer.status == 200, "\(answer.text)")
            #expect(answer.text.contains(#""status":"stored""#))
            // Read right after the answer on another connection: the rows are there (committed, not in flight).
            let rows = try await db.client.query("""
                SELECT s.key, o.property, o.phenomenon_start, o.result FROM datenwerk.observations o
                JOIN datenwerk.stations s ON s.id = o.station_id ORDER BY o.property
                """, logger: db.logger).decode((String, String, Date, Double).self).collect()
            #expect(rows.map(\.0) == Array(repeating: "ttn-emden:ht-sensor-project-br:eui-a840416051871229", count: 3))
            #expect(rows.map(\.1) == ["air_temperature", "battery_voltage", "relative_humidity"])
            #expect(rows.map(\.3) == [27.9, 3.695, 50.2])
            // uplink_message.received_at, 2024-06-26T13:24:35.116615676Z, to the microsecond.
            #expect(rows.first?.2.timeIntervalSince1970 == 1_719_408_275.116615)
            let run = try await db.client.query("SELECT trigger, status FROM datenwerk.runs ORDER BY id DESC LIMIT 1", logger: db.logger)
                .decode((String, String).self).collect()
            #expect(run.first?.0 == "push")
            #expect(run.first?.1 == "succeeded")
            // TTN retries a webhook it thinks failed: the same uplink again adds nothing.
            let again = try await server.request(.POST, "/ingest/ttn-emden", headers: Self.auth, body: body)
            #expect(again.status == 200)
            #expect(try await counts(db).observations == 3)
        }
    }

    @Test func unauthenticatedPostsAreRejectedAndNothingIsStored() async throws {
        try await Self.withServer { server, db in
            let body = Array(try Data(contentsOf: URL(fileURLWithPath: Self.sample)))
            let none = try await server.request(.POST, "/ingest/ttn-emden", body: body)
            #expect(none.status == 401)
            #expect(none.header("WWW-Authenticate") == #"Bearer realm="datenwerk""#)
            #expect(none.text.contains("no token"))
            let wrong = try await server.request(.POST, "/ingest/ttn-emden", headers: [("Authorization", "Bearer \(Self.token)x")], body: body)
            #expect(wrong.status == 401)
            #expect(wrong.text.contains("the token is not valid for 'ttn-emden'"))
            #expect(!wrong.text.contains(Self.token))
            let header = try await server.request(.POST, "/ingest/ttn-emden", headers: [("X-Datenwerk-Token", Self.token)], body: body)
            #expect(header.status == 200)
            let unknown = try await server.request(.POST, "/ingest/nope", headers: Self.auth, body: body)
            #expect(unknown.status == 404)
            // The names of the push pipelines are not told to whoever guesses.
            #expect(unknown.text.contains("no push pipeline named 'nope'"))
            #expect(!unknown.text.contains("ttn-emden"))
            #expect(try await counts(db) == Counts(observations: 3, stations: 1, quarantine: 0))
            let runs = try await db.client.query("SELECT count(*)::bigint FROM datenwerk.runs", logger: db.logger).decode(Int64.self).collect()
            #expect(runs == [1])
        }
    }

    @Test func malformedBodiesGet400AndAreKeptInQuarantine() async throws {
        try await Self.withServer { server, db in
            let truncated = try await server.request(.POST, "/ingest/ttn-emden", headers: Self.auth, body: Array(#"{"end_device_ids":{"device_id":"#.utf8))
            #expect(truncated.status == 400)
            #expect(truncated.header("Content-Type")?.hasPrefix("application/problem+json") == true)
            #expect(truncated.text.contains("the body is not JSON"))
            #expect(truncated.text.contains("kept in quarantine"))
            let notTTN = try await server.request(.POST, "/ingest/ttn-emden", headers: Self.auth, body: Array(#"{"temperature": 21}"#.utf8))
            #expect(notTTN.status == 400)
            #expect(notTTN.text.contains("end_device_ids.device_id is missing"))
            let kept = try await db.client.query("SELECT raw FROM datenwerk.quarantine ORDER BY id", logger: db.logger).decode(String.self).collect()
            #expect(kept.count == 2)
            #expect(kept.contains(#"{"temperature": 21}"#))
            #expect(try await counts(db).observations == 0)
        }
    }

    @Test func otherMessageTypesAndApplications() async throws {
        try await Self.withServer { server, db in
            let join = try await server.request(.POST, "/ingest/ttn-emden", headers: Self.auth, body: Array(#"""
                {"end_device_ids":{"device_id":"eui-1","application_ids":{"application_id":"ht-sensor-project-br"}},
                 "received_at":"2024-06-26T13:00:00Z","join_accept":{"session_key_id":"AZ","received_at":"2024-06-26T13:00:00Z"}}
                """#.utf8))
            #expect(join.status == 200)
            #expect(join.text.contains(#""status":"ignored""#))
            #expect(join.text.contains("join_accept"))
            let other = try await server.request(.POST, "/ingest/ttn-emden", headers: Self.auth, body: Array(#"""
                {"end_device_ids":{"device_id":"eui-1","application_ids":{"application_id":"someone-else"}},"uplink_message":{}}
                """#.utf8))
            #expect(other.status == 403)
            #expect(try await counts(db) == Counts(observations: 0, stations: 0, quarantine: 0))
        }
    }

    /// Twenty devices post at once: every uplink is stored once, in fewer transactions than posts.
    @Test func concurrentUplinksShareCommits() async throws {
        try await Self.withServer { server, db in
            let template = try String(contentsOfFile: Self.sample, encoding: .utf8)
            try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<20 {
                    let body = template.replacingOccurrences(of: "eui-a840416051871229", with: "eui-device-\(i)")
                    group.addTask { try await server.request(.POST, "/ingest/ttn-emden", headers: Self.auth, body: Array(body.utf8)).status }
                }
                for try await status in group { #expect(status == 200) }
            }
            #expect(try await counts(db) == Counts(observations: 60, stations: 20, quarantine: 0))
            let runs = try await db.client.query("SELECT count(*)::bigint, sum(records_read)::bigint FROM datenwerk.runs WHERE status = 'succeeded'", logger: db.logger)
                .decode((Int64, Int64).self).collect()
            #expect(runs.first?.1 == 20)
            #expect((runs.first?.0 ?? 99) <= 20)
        }
    }

    @Test func healthReportsDatabaseAndMigrations() async throws {
        try await Self.withServer { server, _ in
            let health = try await server.request(.GET, "/health")
            #expect(health.status == 200)
            let json = try JSONParser.parse(health.body)
            #expect(json["status"] == .string("ok"))
            #expect(json["database"] == .string("ok"))
            #expect(json["migrations"]?["missing"] == .array([]))
        }
    }
}
