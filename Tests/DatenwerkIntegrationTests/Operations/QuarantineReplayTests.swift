import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// `datenwerk quarantine replay`: fix a pipeline, replay its quarantined records, and they leave quarantine.
@Suite struct QuarantineReplayTests {
    static let csv = """
        station,time,temp,hum
        s1,2024-05-01T10:00:00Z,20.5,50
        s1,2024-05-01T11:00:00Z,45.2,30
        s2,2024-05-01T10:00:00Z,n/a,60
        s2,2024-05-01T11:00:00Z,99.9,61
        s2,2024-05-01T12:00:00Z,19.5,62

        """

    /// Version 1 is too strict (temperatures above 40 °C) and does not know "n/a"; version 2 is fixed.
    static func pipeline(fixed: Bool) -> String {
        """
        version: 1
        name: replay-demo
        tenant: "09162000"
        source:
          kind: file
          path: replay-demo.csv
          format: { kind: csv, delimiter: "," }
        observations:
          station: { id: station, prefix: replay }
          time: { field: time, format: iso8601 }
          \(fixed ? #"missing: ["", "n/a"]"# : "")
          values:
            - { field: temp, property: air_temperature, range: \(fixed ? "[-40, 50]" : "[-30, 40]") }
            - { field: hum, property: relative_humidity }
        """
    }

    /// The CSV and version 1 of the pipeline in a new folder; returns the pipeline file.
    static func writeStrictVersion() throws -> String {
        let dir = try Paths.temporaryDirectory()
        try Data(csv.utf8).write(to: URL(fileURLWithPath: dir + "/replay-demo.csv"))
        let file = dir + "/replay-demo.yaml"
        try Data(pipeline(fixed: false).utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    @Test func fixedMappingReplaysThroughTheCLI() async throws {
        try await TestDatabase.with { db in
            let file = try Self.writeStrictVersion()
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            let first = try await runner.run(try PipelineSpec.load(file: file), trigger: "test")
            #expect(first.succeeded)
            #expect(first.totals.quarantined == 3)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 7)
            let checkpoint = try await db.client.query("SELECT cursor::text, run_id FROM datenwerk.checkpoints WHERE pipeline = 'replay-demo'", logger: db.logger)
                .decode((String, Int64).self).collect()
            #expect(checkpoint.count == 1)
            // Decoded fields are kept with each quarantined record.
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.quarantine WHERE fields->>'station' IS NOT NULL") == 3)

            // Fix the file, replay.
            try Data(Self.pipeline(fixed: true).utf8).write(to: URL(fileURLWithPath: file))
            let env = ["DATABASE_URL": db.location.url]
            let replay = try ChildProcess(["quarantine", "replay", file], environment: env)
            #expect(await replay.wait() == 0, "\(replay.text)")
            #expect(replay.text.contains("replayed 3 quarantined records: 2 loaded, 1 still quarantined"), "\(replay.text)")
            #expect(replay.text.contains("1 new and 0 changed observations"), "\(replay.text)")

            // 45.2 °C is loaded; the n/a record is resolved (its humidity was there already); 99.9 °C stays.
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 8)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations WHERE property = 'air_temperature' AND result = 45.2") == 1)
            let left = try await db.client.query("SELECT raw, field, reason, seen_count FROM datenwerk.quarantine WHERE pipeline = 'replay-demo'", logger: db.logger)
                .decode((String, String?, String, Int).self).collect()
            #expect(left.count == 1)
            #expect(left.first?.0 == "s2,2024-05-01T11:00:00Z,99.9,61")
            #expect(left.first?.1 == "temp")
            #expect(left.first?.2.contains("-40…50") == true, "the reason of the current configuration: \(left)")
            #expect(left.first?.3 == 2)
            // The replay is a run of its own in the history, with its outcome; no checkpoint moved.
            let runs = try await db.client.query("""
                SELECT status, inserted, quarantined, events::text FROM datenwerk.runs WHERE pipeline = 'replay-demo' AND trigger = 'replay'
                """, logger: db.logger).decode((String, Int, Int, String).self).collect()
            #expect(runs.count == 1)
            #expect(runs.first?.0 == "succeeded" && runs.first?.1 == 1 && runs.first?.2 == 1)
            #expect(runs.first?.3.contains("2 loaded, 1 still quarantined") == true)
            let after = try await db.client.query("SELECT cursor::text, run_id FROM datenwerk.checkpoints WHERE pipeline = 'replay-demo'", logger: db.logger)
                .decode((String, Int64).self).collect()
            #expect(after.map(\.0) == checkpoint.map(\.0) && after.map(\.1) == checkpoint.map(\.1))

            // Again: only the bad one is tried, nothing else changes.
            let again = try ChildProcess(["quarantine", "replay", file], environment: env)
            #expect(await again.wait() == 0, "\(again.text)")
            #expect(again.text.contains("replayed 1 quarantined record: 0 loaded, 1 still quarantined"), "\(again.text)")
            #expect(again.text.contains("still #"), "\(again.text)")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 8)
            #expect(try await scalar(db, "SELECT seen_count FROM datenwerk.quarantine WHERE pipeline = 'replay-demo'") == 3)

            // A normal run of the fixed pipeline duplicates nothing and keeps the one bad record once.
            let rerun = try await runner.run(try PipelineSpec.load(file: file), trigger: "test")
            #expect(rerun.succeeded && rerun.load.inserted == 0)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 8)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.quarantine WHERE pipeline = 'replay-demo'") == 1)
        }
    }

    @Test func onlyTheGivenIDs() async throws {
        try await TestDatabase.with { db in
            let file = try Self.writeStrictVersion()
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            #expect(try await runner.run(try PipelineSpec.load(file: file), trigger: "test").totals.quarantined == 3)
            let hot = try await scalar(db, "SELECT id FROM datenwerk.quarantine WHERE raw LIKE '%45.2%'")
            let fixed = try PipelineSpec.parse(yaml: Self.pipeline(fixed: true), file: file, connectors: BuiltinConnectors.registry)
            let replay = QuarantineStore(db).replay(pipeline: fixed.name, ids: [hot])
            let report = try await runner.run(fixed, context: RunContext(trigger: "replay", replay: replay))
            #expect(report.succeeded)
            #expect(replay.resolvedIDs == [hot])
            #expect(report.load.inserted == 1)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.quarantine WHERE pipeline = 'replay-demo'") == 2)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.quarantine WHERE id = \(hot)") == 0)
            // The replayed value is in the dashboard aggregates too (late data into a stored series).
            try await DashboardAggregatesTests.expectConsistent(db, "after a quarantine replay")
        }
    }

    /// A push pipeline whose `fields` named a key the device does not send: fixing `fields` and replaying the
    /// stored uplink loads its values.
    @Test func pushedUplinkReplaysAfterFixingFields() async throws {
        try await TestDatabase.with { db in
            func spec(_ fields: String) throws -> PipelineSpec {
                try PipelineSpec.parse(yaml: """
                    version: 1
                    name: ttn-replay
                    tenant: "03402000"
                    source:
                      kind: ttn
                      applications: [ht-sensor-project-br]
                      fields: { \(fields) }
                    """, file: "/tmp/ttn-replay.yaml", connectors: BuiltinConnectors.registry)
            }
            let body = try [UInt8](Data(contentsOf: URL(fileURLWithPath: PushIngestTests.sample)))
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            let wrong = try await runner.run(try spec("Temperature: air_temperature"), trigger: "push", pushed: [PushedDocument(origin: "POST /ingest/ttn-replay", body: body)])
            #expect(wrong.succeeded && wrong.totals.quarantined == 1)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 0)

            let fixed = try spec("TempC_SHT: air_temperature, Hum_SHT: relative_humidity, BatV: battery_voltage")
            let replay = QuarantineStore(db).replay(pipeline: fixed.name)
            let report = try await runner.run(fixed, context: RunContext(trigger: "replay", replay: replay))
            #expect(report.succeeded, "\(String(describing: report.failure))")
            #expect(replay.loadedCount == 1 && replay.stillBadRecords.isEmpty && replay.notReplayableRecords.isEmpty)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 3)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.stations WHERE key LIKE 'ttn-replay:ht-sensor-project-br:%'") == 1)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.quarantine WHERE pipeline = 'ttn-replay'") == 0)
            try await DashboardAggregatesTests.expectConsistent(db, "after replaying a pushed uplink")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk_api.latest WHERE station_key LIKE 'ttn-replay:%'") == 3)
        }
    }

    /// A connector that quarantines fragments of its documents cannot replay them: it says so and keeps them.
    @Test func connectorFragmentsAreReportedNotReplayable() async throws {
        try await TestDatabase.with { db in
            let spec = try PipelineSpec.parse(yaml: """
                version: 1
                name: sc-replay
                tenant: "09162000"
                source:
                  kind: sensor-community
                  url: http://127.0.0.1:9/never-read.json
                """, file: "/tmp/sc-replay.yaml", connectors: BuiltinConnectors.registry)
            try await db.client.query("""
                INSERT INTO datenwerk.quarantine (pipeline, origin, reason, raw, fingerprint) VALUES ('sc-replay', 'a.json', 'bad value', '{"x":1}', 'fp1')
                """, logger: db.logger)
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            let replay = QuarantineStore(db).replay(pipeline: spec.name)
            let report = try await runner.run(spec, context: RunContext(trigger: "replay", replay: replay))
            #expect(report.succeeded)
            #expect(replay.notReplayableRecords.count == 1)
            #expect(replay.notReplayableRecords.first?.reason.contains("run the pipeline again") == true)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.quarantine WHERE pipeline = 'sc-replay'") == 1)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 0)
        }
    }
}
