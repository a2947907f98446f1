import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// A file source skips the files the last successful run read when they have not changed (`FileMemory`), reads
/// new and changed ones, and reads everything again when the reading rules change or `--full` asks.
@Suite struct FileMemoryTests {
    static func yaml(scale: String = "1") -> String {
        """
        version: 1
        name: zaehlstellen
        tenant: "05515000"
        description: Radzählstellen, one file per day
        source: { kind: file, path: "tag-*.csv", format: { kind: csv, delimiter: ";" } }
        observations:
          station: { id: stelle }
          time: { field: zeit, format: iso8601 }
          values: [{ field: anzahl, property: bicycle_count, scale: \(scale) }]
        max_bad_records: 0
        """
    }

    /// A day's file: `count` hourly counts of two stations, values `base + hour`.
    static func day(_ day: Int, base: Int = 0) -> String {
        var lines = ["stelle;zeit;anzahl"]
        for hour in 0..<24 {
            for station in ["RAD-1", "RAD-2"] {
                lines.append("\(station);2024-05-\(String(format: "%02d", day))T\(String(format: "%02d", hour)):00:00Z;\(base + hour)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func write(_ text: String, _ path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func run(_ spec: PipelineSpec, _ db: Database, full: Bool = false) async throws -> RunReport {
        try await PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db)).run(spec, context: RunContext(trigger: "test", full: full))
    }

    static func remembered(_ db: Database) async throws -> [String] {
        let rows = try await db.client.query("""
            SELECT jsonb_object_keys(cursor->'files'->'read') FROM datenwerk.checkpoints WHERE pipeline = 'zaehlstellen' ORDER BY 1
            """, logger: db.logger).decode(String.self).collect()
        return rows.map { ($0 as NSString).lastPathComponent }
    }

    static func names(_ paths: [String]) -> [String] { paths.map { ($0 as NSString).lastPathComponent } }

    /// A folder with day 1, loaded once (48 new rows); its pipeline.
    static func loadedFirstDay(_ db: Database) async throws -> (dir: String, spec: PipelineSpec) {
        let dir = try Paths.temporaryDirectory()
        try write(day(1), dir + "/tag-01.csv")
        let s = try spec(yaml(), in: dir)
        #expect(try await run(s, db).load.inserted == 48)
        return (dir, s)
    }

    static func total(_ db: Database) async throws -> Double {
        try await db.client.query("SELECT sum(result) FROM datenwerk.observations", logger: db.logger).decode(Double.self).collect().first ?? -1
    }

    @Test func aFolderOfDailyFilesIsReadOnceEachAndAgainWhenAFileChanges() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            try Self.write(Self.day(1), dir + "/tag-01.csv")
            try Self.write(Self.day(2), dir + "/tag-02.csv")
            let s = try spec(Self.yaml(), in: dir)

            let first = try await Self.run(s, db)
            #expect(first.succeeded)
            #expect(first.load.inserted == 96)
            #expect(try await Self.remembered(db) == ["tag-01.csv", "tag-02.csv"])

            // A new day: only its file is read; the others are named as unchanged.
            try Self.write(Self.day(3), dir + "/tag-03.csv")
            let second = try await Self.run(s, db)
            #expect(Self.names(second.totals.origins) == ["tag-03.csv"])
            #expect(second.totals.recordsRead == 48)
            #expect(second.load.inserted == 48)
            #expect(second.totals.events.count == 2)
            #expect(second.totals.events.allSatisfy { $0.contains("unchanged since the last successful run") })
            #expect(try await Self.remembered(db) == ["tag-01.csv", "tag-02.csv", "tag-03.csv"])

            // Nothing changed: nothing read, nothing written, the run still succeeds.
            let idle = try await Self.run(s, db)
            #expect(idle.succeeded)
            #expect(idle.totals.recordsRead == 0)
            #expect(idle.totals.origins.isEmpty)

            // A corrected day of the same size (one digit differs): the hash sees it, the load updates one row.
            let corrected = Self.day(2).replacingOccurrences(of: "RAD-2;2024-05-02T05:00:00Z;5", with: "RAD-2;2024-05-02T05:00:00Z;7")
            #expect(corrected.utf8.count == Self.day(2).utf8.count)
            try Self.write(corrected, dir + "/tag-02.csv")
            let third = try await Self.run(s, db)
            #expect(Self.names(third.totals.origins) == ["tag-02.csv"])
            #expect(third.load.updated == 1)
            #expect(third.load.unchanged == 47)
            // RAD-2 on 2 May: 7 at hour 7 and now at hour 5; no 5 left.
            let values = try await db.client.query("""
                SELECT o.result FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id
                WHERE s.key = 'zaehlstellen:RAD-2' AND o.result IN (5, 7) AND o.phenomenon_start >= '2024-05-01T12:00:00Z' AND o.phenomenon_start < '2024-05-02T12:00:00Z'
                """, logger: db.logger).decode(Double.self).collect()
            #expect(values == [7, 7])

            // A file that went away is forgotten; when it comes back it is read (its rows are unchanged).
            try FileManager.default.removeItem(atPath: dir + "/tag-01.csv")
            _ = try await Self.run(s, db)
            #expect(try await Self.remembered(db) == ["tag-02.csv", "tag-03.csv"])
            try Self.write(Self.day(1), dir + "/tag-01.csv")
            let back = try await Self.run(s, db)
            #expect(Self.names(back.totals.origins) == ["tag-01.csv"])
            #expect(back.load.unchanged == 48)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 144)
        }
    }

    /// The memory is the last *successful* run's: a failed run remembers nothing, so the file it failed on is
    /// read again next time — unless it is back to what the last successful run read.
    @Test func aFailedRunRemembersNothing() async throws {
        try await TestDatabase.with { db in
            let (dir, s) = try await Self.loadedFirstDay(db)

            try Self.write(Self.day(1) + "RAD-1;2024-05-01T23:00:00Z;viele\n", dir + "/tag-01.csv")
            let failed = try await Self.run(s, db)
            #expect(failed.failure?.step == .transform)
            let again = try await Self.run(s, db)
            #expect(again.failure?.step == .transform, "a file a failed run read is read again")

            // Back to the bytes the last successful run read: skipped.
            try Self.write(Self.day(1), dir + "/tag-01.csv")
            let restored = try await Self.run(s, db)
            #expect(restored.succeeded)
            #expect(restored.totals.recordsRead == 0)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 48)
        }
    }

    /// Files are read again when the pipeline reads them differently (YAML, or a spec changed in code), and under
    /// `--full`; not when only the description changes.
    @Test func changedReadingRulesAndFullReadEverything() async throws {
        try await TestDatabase.with { db in
            let (dir, s) = try await Self.loadedFirstDay(db)
            // Hours 0…23 at two stations.
            let once = Double(2 * (0..<24).reduce(0, +))
            #expect(try await Self.total(db) == once)

            let described = try spec(Self.yaml().replacingOccurrences(of: "one file per day", with: "eine Datei je Tag"), in: dir)
            #expect(try await Self.run(described, db).totals.recordsRead == 0)

            let full = try await Self.run(s, db, full: true)
            #expect(full.totals.recordsRead == 48)
            #expect(full.load.unchanged == 48)
            // What `--full` read is remembered for the next run.
            #expect(try await Self.run(s, db).totals.recordsRead == 0)

            let scaled = try spec(Self.yaml(scale: "2"), in: dir)
            let rescaled = try await Self.run(scaled, db)
            #expect(rescaled.totals.recordsRead == 48)
            #expect(rescaled.load.updated == 46)   // both stations count 0 at hour 0, and twice 0 is 0
            #expect(try await Self.total(db) == 2 * once)

            var inCode = scaled
            inCode.observations!.values[0].scale = 3
            #expect(inCode.readingDigest == nil)
            let tripled = try await Self.run(inCode, db)
            #expect(tripled.totals.recordsRead == 48)
            #expect(tripled.load.updated == 46)
            #expect(try await Self.total(db) == 3 * once)
            // A spec without a digest remembers nothing: the YAML pipeline then finds no memory of its own rules.
            #expect(try await Self.run(scaled, db).totals.recordsRead == 48)
        }
    }
}
