import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// One natural key (station, property, start) twice in one run: never "last one wins" in silence.
@Suite struct RepeatedKeysTests {
    /// Station A at 01:00 three times (equal), station A at 02:00 twice with different values, station B once.
    static let lines = [
        "id;zeit;wert",
        "A;2024-05-01T01:00:00Z;5",
        "A;2024-05-01T01:00:00Z;5",
        "A;2024-05-01T02:00:00Z;7",
        "B;2024-05-01T02:00:00Z;3",
        "A;2024-05-01T01:00:00Z;5",
        "A;2024-05-01T02:00:00Z;9",
    ]

    static func pipeline(onBadRecord: String) throws -> PipelineSpec {
        let dir = try Paths.temporaryDirectory()
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/counts.csv"))
        return try spec("""
            version: 1
            name: repeats
            tenant: "05515000"
            source: { kind: file, path: counts.csv, format: { kind: csv, delimiter: ";" } }
            observations:
              station: { id: id }
              time: { field: zeit, format: iso8601 }
              values: [{ field: wert, property: vehicle_count }]
            on_bad_record: \(onBadRecord)
            """, in: dir)
    }

    /// `groupBytes`: the default, and groups of one or two rows (the first-load COPY sends its rows in key order
    /// group by group; the rows it replays into staging when the repeat makes it give way keep the file's order,
    /// which the provenance of the quarantined records depends on).
    @Test(arguments: [4 << 20, 100])
    func conflictingRepeatsAreQuarantinedWithTheirRawRecordsAndEqualOnesCounted(groupBytes: Int) async throws {
        try await TestDatabase.with { db in
            var postgres = PostgresObservationSink(database: db)
            postgres.groupBytes = groupBytes
            let runner = PipelineRunner(fetcher: testFetcher, sink: postgres)
            let report = try await runner.run(try Self.pipeline(onBadRecord: "quarantine"), trigger: "test")
            #expect(report.succeeded)
            let t = report.totals
            #expect(t.valuesRead == 6)
            #expect(t.observations == 2)            // A 01:00 once, B 02:00
            #expect(t.skips[.duplicate] == 2)        // the two equal repeats of A 01:00
            #expect(t.quarantined == 2)              // both A 02:00 rows, not just the later one
            #expect(t.isBalanced)
            #expect(report.load.inserted == 2)
            let stored = try await db.client.query("""
                SELECT s.key, o.result FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id ORDER BY 1, o.phenomenon_start
                """, logger: db.logger).decode((String, Double).self).collect()
            #expect(stored.map(\.0) == ["repeats:A", "repeats:B"])
            #expect(stored.map(\.1) == [5, 3])
            let bad = try await db.client.query("SELECT line, field, raw, reason FROM datenwerk.quarantine ORDER BY line", logger: db.logger)
                .decode((Int?, String?, String, String).self).collect()
            #expect(bad.map(\.0) == [4, 7])
            #expect(bad.map(\.1) == ["vehicle_count", "vehicle_count"])
            #expect(bad.map(\.2) == [Self.lines[3], Self.lines[6]])
            let reason = try #require(bad.first?.3)
            #expect(reason.hasPrefix("conflicting_duplicate: station repeats:A, vehicle_count at 2024-05-01T02:00:00Z came 2 times"))
            #expect(reason.contains("counts.csv:4") && reason.contains("counts.csv:7"))
            // The run history keeps the books.
            let row = try await db.client.query("""
                SELECT values_read, loaded, quarantined, quarantined_values, skipped, skips::text, balanced FROM datenwerk.runs WHERE id = \(report.runID)
                """, logger: db.logger).decode((Int64, Int64, Int64, Int64, Int64, String, Bool?).self).collect()
            let r = try #require(row.first)
            #expect(r.0 == 6 && r.1 == 2 && r.2 == 2 && r.3 == 2 && r.4 == 2)
            #expect(r.5 == #"{"duplicate": 2}"#)
            #expect(r.6 == true)
            // The in-memory sink (dry runs of tests) settles repeats the same way.
            let (sink, memory) = try await dryRun(try Self.pipeline(onBadRecord: "quarantine"))
            #expect(memory.totals.observations == 2 && memory.totals.quarantined == 2 && memory.totals.skips[.duplicate] == 2)
            #expect(sink.quarantined.map(\.raw) == [Self.lines[3], Self.lines[6]])
        }
    }

    /// A replay would load whichever of the two records it maps alone: conflicting duplicates are not replayable.
    /// The merge path (the first batch meets a stored row of B, at 02:00): staging rows go in key order, group by group, so
    /// B's rows and A's no longer alternate as in the file. Each carries its number in the run, so the conflicting
    /// pair of A is still quarantined with its own two lines and its values listed in the file's order, and the
    /// equal repeat still loads once.
    @Test(arguments: [4 << 20, 100])
    func conflictsFoundByTheMergeKeepTheirLinesWhileStagingRowsGoInKeyOrder(groupBytes: Int) async throws {
        try await TestDatabase.with { db in
            let spec = try Self.pipeline(onBadRecord: "quarantine")
            let file = URL(fileURLWithPath: spec.file).deletingLastPathComponent().appendingPathComponent("counts.csv")
            let log = AccessControlTests.LogCapture()
            var postgres = PostgresObservationSink(database: db.logging(to: Logger(label: "merge") { _ in log }))
            postgres.groupBytes = groupBytes
            let runner = PipelineRunner(fetcher: testFetcher, sink: postgres)
            try Data("id;zeit;wert\nB;2024-05-01T02:00:00Z;2\n".utf8).write(to: file)
            #expect(try await runner.run(spec, trigger: "test").load.inserted == 1)
            let lines = [
                "id;zeit;wert",
                "B;2024-05-01T01:00:00Z;1",
                "A;2024-05-01T01:00:00Z;5",
                "B;2024-05-01T02:00:00Z;2",
                "A;2024-05-01T02:00:00Z;7",
                "B;2024-05-01T03:00:00Z;3",
                "A;2024-05-01T01:00:00Z;5",
                "A;2024-05-01T02:00:00Z;9",
            ]
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
            let before = log.lines.withLock { $0.count }
            let report = try await runner.run(spec, trigger: "test")
            #expect(report.succeeded)
            #expect(report.load.inserted == 3)
            #expect(report.load.unchanged == 1)
            #expect(report.totals.skips[.duplicate] == 1)
            #expect(report.totals.quarantined == 2)
            let second = log.lines.withLock { $0[before...].joined(separator: "\n") }
            #expect(second.contains("dashboard aggregates recomputed") && !second.contains("fast path gave way"), "not the merge from the start: \(second)")
            let stored = try await db.client.query("""
                SELECT s.key, o.result FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id ORDER BY 1, o.phenomenon_start
                """, logger: db.logger).decode((String, Double).self).collect()
            #expect(stored.map(\.1) == [5, 1, 2, 3])
            let bad = try await db.client.query("SELECT line, raw, reason FROM datenwerk.quarantine ORDER BY line", logger: db.logger)
                .decode((Int?, String, String).self).collect()
            #expect(bad.map(\.0) == [5, 8])
            #expect(bad.map(\.1) == [lines[4], lines[7]])
            #expect(bad.allSatisfy { $0.2.contains("(7 (counts.csv:5), 9 (counts.csv:8))") }, "\(bad.map(\.2))")
        }
    }

    @Test func conflictingDuplicatesAreNotReplayed() async throws {
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db))
            let spec = try Self.pipeline(onBadRecord: "quarantine")
            #expect(try await runner.run(spec, trigger: "test").totals.quarantined == 2)
            let replay = QuarantineStore(db).replay(pipeline: spec.name, ids: [])
            let report = try await runner.run(spec, context: RunContext(trigger: "replay", replay: replay))
            #expect(report.succeeded)
            #expect(replay.resolvedIDs.isEmpty)
            #expect(replay.notReplayableRecords.count == 2)
            #expect(replay.notReplayableRecords.allSatisfy { $0.reason.contains("correct the source") })
            let left = try await db.client.query("SELECT count(*)::bigint FROM datenwerk.quarantine", logger: db.logger).decode(Int64.self).collect()
            #expect(left == [2])
            let stored = try await db.client.query("SELECT count(*)::bigint FROM datenwerk.observations", logger: db.logger).decode(Int64.self).collect()
            #expect(stored == [2])
        }
    }

    @Test func underFailAConflictFailsTheRunAndUnderSkipItIsCounted() async throws {
        try await TestDatabase.with { db in
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db))
            let failed = try await runner.run(try Self.pipeline(onBadRecord: "fail"), trigger: "test")
            #expect(!failed.succeeded)
            #expect(failed.failure?.code == .badRecord)
            #expect(failed.failure?.message.contains("conflicting_duplicate") == true)
            let none = try await db.client.query("SELECT count(*)::bigint FROM datenwerk.observations", logger: db.logger).decode(Int64.self).collect()
            #expect(none == [0])

            let skipped = try await runner.run(try Self.pipeline(onBadRecord: "skip"), trigger: "test")
            #expect(skipped.succeeded)
            #expect(skipped.totals.skips[.conflictingDuplicate] == 2)
            #expect(skipped.totals.quarantined == 0)
            #expect(skipped.totals.isBalanced)
            let quarantine = try await db.client.query("SELECT count(*)::bigint FROM datenwerk.quarantine", logger: db.logger).decode(Int64.self).collect()
            #expect(quarantine == [0])
        }
    }
}
