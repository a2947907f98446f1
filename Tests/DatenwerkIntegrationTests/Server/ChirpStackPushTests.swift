import DatenwerkConnectors
import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// ChirpStack v4 HTTP integration events into the real server on loopback, stored in a real PostgreSQL.
@Suite struct ChirpStackPushTests {
    static let token = "cs-token-\(UInt64.random(in: 1...UInt64.max))"
    static let uplink = Paths.root + "/SampleData/chirpstack/up-klima.json"
    static let others = Paths.root + "/SampleData/chirpstack/events-other.json"

    static func pipeline() throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: """
            version: 1
            name: cs-stadtwerke
            tenant: "05515000"
            source:
              kind: chirpstack
              token_env: CHIRPSTACK_TEST_TOKEN
              applications: [Klima]
              fields: { temperature: air_temperature, humidity: relative_humidity, vdd: battery_voltage }
              units: { vdd: mV }
            """, file: "/tmp/cs-stadtwerke.yaml", connectors: BuiltinConnectors.registry)
    }

    static var auth: [(String, String)] { [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")] }

    @Test func uplinkIsStoredAndOtherEventsAreIgnored() async throws {
        try await TestDatabase.with { db in
            let server = try await ServerHarness.start(database: db, pipelines: [try Self.pipeline()], environment: ["CHIRPSTACK_TEST_TOKEN": Self.token])
            do {
                // As ChirpStack posts it: the event type in the query, the body one event.
                let body = Array(try Data(contentsOf: URL(fileURLWithPath: Self.uplink)))
                let answer = try await server.request(.POST, "/ingest/cs-stadtwerke?event=up", headers: Self.auth, body: body)
                #expect(answer.status == 200, "\(answer.text)")
                #expect(answer.text.contains(#""status":"stored""#))
                let rows = try await db.client.query("""
                    SELECT s.key, o.property, o.phenomenon_start, o.result, s.geom IS NULL FROM datenwerk.observations o
                    JOIN datenwerk.stations s ON s.id = o.station_id ORDER BY o.property
                    """, logger: db.logger).decode((String, String, Date, Double, Bool).self).collect()
                #expect(rows.map(\.0) == Array(repeating: "cs-stadtwerke:a81758fffe0512ab", count: 3))
                #expect(rows.map(\.1) == ["air_temperature", "battery_voltage", "relative_humidity"])
                #expect(rows.map(\.3) == [22.6, 3.612, 42])
                // `time`, 2025-03-30T00:59:58.412735+00:00, to the microsecond.
                #expect(rows.first?.2.timeIntervalSince1970 == 1_743_296_398.412735)
                // The gateways' positions are not the device's.
                #expect(rows.allSatisfy { $0.4 })
                let books = try await db.client.query("SELECT values_read, skips::text FROM datenwerk.runs ORDER BY id DESC LIMIT 1", logger: db.logger)
                    .decode((Int64, String).self).collect()
                #expect(books.first?.0 == 5)
                #expect(books.first?.1.contains(#""unmapped_property": 2"#) == true)

                // Every other event of the application goes to the same URL: answered "ignored", nothing stored.
                let events = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Self.others))))
                guard case .array(let list) = events else { Issue.record("events-other.json is not an array"); return }
                for (event, type) in zip(list, ["join", "status", "log", "ack", "txack", "location", "integration"]) {
                    let ignored = try await server.request(.POST, "/ingest/cs-stadtwerke?event=\(type)", headers: Self.auth, body: Array(event.serialized.utf8))
                    #expect(ignored.status == 200, "\(type): \(ignored.text)")
                    #expect(ignored.text.contains(#""status":"ignored""#))
                    #expect(ignored.text.contains("\(type) events carry no measurements"), "\(ignored.text)")
                }
                // Another application: 403; a v3 event: 400, kept in quarantine; no token: 401.
                let other = String(decoding: body, as: UTF8.self).replacingOccurrences(of: #""applicationName": "Klima""#, with: #""applicationName": "Wasser""#)
                    .replacingOccurrences(of: "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", with: "00000000-0000-4000-8000-000000000000")
                let forbidden = try await server.request(.POST, "/ingest/cs-stadtwerke?event=up", headers: Self.auth, body: Array(other.utf8))
                #expect(forbidden.status == 403, "\(forbidden.text)")
                let v3 = try await server.request(.POST, "/ingest/cs-stadtwerke?event=up", headers: Self.auth,
                                                  body: Array(#"{"applicationID":"1","devEUI":"AQEBAQEBAQE=","object":{"temperature":21}}"#.utf8))
                #expect(v3.status == 400)
                #expect(v3.text.contains("ChirpStack v3"))
                #expect(v3.text.contains("kept in quarantine"))
                let anonymous = try await server.request(.POST, "/ingest/cs-stadtwerke?event=up", body: body)
                #expect(anonymous.status == 401)
                #expect(try await counts(db) == Counts(observations: 3, stations: 1, quarantine: 1))
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
        }
    }
}
