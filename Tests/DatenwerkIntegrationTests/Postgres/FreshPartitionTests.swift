import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// A first load of months without a partition fills fresh tables of its own transaction, indexes them (ahead, for
/// months the rows have left in time order; at the end, for the rest) and attaches them (migration 0014). What
/// it leaves must be exactly what `ensure_observation_partition` would have made, holding the same rows; a load
/// that meets another load's fresh month, or rows that keep switching between old and new months, gives way to
/// the staged merge and still loses and doubles nothing.
@Suite struct FreshPartitionTests {
    static let hour: Int64 = 3_600_000_000
    /// Hours from 2024-01-01T00:00Z: January, February, March.
    static let january: [Int64] = [10, 400, 700]
    static let february: [Int64] = [745, 1000, 1300]
    static let march: [Int64] = [1441, 1800, 2100]

    static func line(_ station: String, _ hour: Int64) -> [StagedItem] {
        [LoadPathTests.observation(station, hour, Double(hour) + 0.25, property: "air_temperature"),
         LoadPathTests.observation(station, hour, -Double(hour), property: "wind_speed")]
    }

    /// The partitions of `observations`, each with its indexes as (name of the parent index it is attached to,
    /// is it the primary key), and what a fresh load could leave behind.
    static func shape(_ db: Database) async throws -> (partitions: [String], indexes: [String], leftovers: Int64) {
        let partitions = try await db.client.query("""
            SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'datenwerk.observations'::regclass ORDER BY 1
            """, logger: db.logger).decode(String.self).collect()
        let indexes = try await db.client.query("""
            SELECT c.relname || ' ' || coalesce(p.relname, 'own ' || am.amname || ' ' || ic.relname) || CASE WHEN x.indisprimary THEN ' primary' ELSE '' END
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_index x ON x.indrelid = c.oid
            JOIN pg_class ic ON ic.oid = x.indexrelid JOIN pg_am am ON am.oid = ic.relam
            LEFT JOIN pg_inherits ii ON ii.inhrelid = x.indexrelid
            LEFT JOIN pg_class p ON p.oid = ii.inhparent
            WHERE i.inhparent = 'datenwerk.observations'::regclass ORDER BY 1
            """, logger: db.logger).decode(String.self).collect()
        let leftovers = try await scalar(db, """
            SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE 'observations_load_%')
                 + (SELECT count(*) FROM pg_constraint WHERE conname LIKE '%_fresh')
            """)
        return (partitions, indexes, leftovers)
    }

    /// One load through `LoadPathTests.load`, and whether its fast path gave way (from its log).
    static func load(_ db: Database, _ batches: [[StagedItem]], groupBytes: Int? = nil,
                     configure: (inout PostgresObservationSink) -> Void = { _ in }) async throws -> (LoadResult, gaveWay: Bool) {
        let log = AccessControlTests.LogCapture()
        let result = try await LoadPathTests.load(db.logging(to: Logger(label: "fresh") { _ in log }), batches, groupBytes: groupBytes, configure: configure)
        return (result, log.text.contains("first-load fast path gave way"))
    }

    /// Every partition has the primary key of `observations`; those in `timeIndexed` their own BRIN index on the
    /// start (migration 0015: partitions that live loads make, fresh tables of rows in time order).
    static func expectedIndexes(_ partitions: [String], timeIndexed: Set<String>) -> [String] {
        partitions.flatMap { ["\($0) observations_pkey primary"] + (timeIndexed.contains($0) ? ["\($0) own brin \($0)_time_brin"] : []) }.sorted()
    }

    /// key "station/property/hour" → value
    static func stored(_ db: Database) async throws -> [String: Double] {
        let rows = try await db.client.query("""
            SELECT s.key || '/' || o.property || '/' || (((extract(epoch FROM o.phenomenon_start) * 1000000)::bigint - \(LoadPathTests.t0)) / \(hour))::text, o.result
            FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id
            """, logger: db.logger).decode((String, Double).self).collect()
        return Dictionary(rows, uniquingKeysWith: { a, _ in .nan })
    }

    static func expected(_ stations: [String], _ hours: [Int64]) -> [String: Double] {
        var e: [String: Double] = [:]
        for s in stations {
            for h in hours {
                e["\(s)/air_temperature/\(h)"] = Double(h) + 0.25
                e["\(s)/wind_speed/\(h)"] = -Double(h)
            }
        }
        return e
    }

    /// In time order (all stations hour by hour: January and February are indexed while March comes), and station
    /// by station (each station runs through all months: the months indexed ahead for the first station lose their
    /// indexes again when the second comes back to January), in one batch or in batches of 5 items.
    @Test(arguments: [(true, false), (false, false), (true, true), (false, true)])
    func aFirstLoadLeavesTheSamePartitionsAndIndexesAsEnsureWouldWithEveryRowOnce(timeOrder: Bool, smallBatches: Bool) async throws {
        try await TestDatabase.with { db in
            let stations = ["fresh:A", "fresh:B", "fresh:C"]
            let hours = Self.january + Self.february + Self.march
            var items: [StagedItem] = stations.map { .station(Station(key: $0)) }
            if timeOrder {
                for h in hours { for s in stations { items += Self.line(s, h) } }
            } else {
                for s in stations { for h in hours { items += Self.line(s, h) } }
            }
            let batches = smallBatches ? stride(from: 0, to: items.count, by: 5).map { Array(items[$0..<min($0 + 5, items.count)]) } : [items]
            let (result, gaveWay) = try await Self.load(db, batches, groupBytes: 200)
            #expect(!gaveWay)
            #expect(result.inserted == stations.count * hours.count * 2)
            #expect(try await Self.stored(db) == Self.expected(stations, hours))
            let shape = try await Self.shape(db)
            #expect(shape.partitions == ["observations_y2024m01", "observations_y2024m02", "observations_y2024m03"])
            // Station by station, each month's block ranges would span the whole month: no BRIN index.
            #expect(shape.indexes == Self.expectedIndexes(shape.partitions, timeIndexed: timeOrder ? Set(shape.partitions) : []))
            #expect(shape.leftovers == 0)

            // The attached partitions refuse a repeat like any other, and a later load merges into them.
            let again = try await LoadPathTests.load(db, [Self.line("fresh:A", 400) + Self.line("fresh:D", 401)])
            #expect(again.inserted == 2)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == Int64(stations.count * hours.count * 2 + 2))
        }
    }

    /// A key repeated within the run, in a month already indexed ahead (January, after February began) and in the
    /// month indexed at the end: the fast path gives way and the repeat lands once.
    @Test(arguments: [Int64(10), 1300])
    func aKeyRepeatedInAFreshMonthLandsOnce(repeated: Int64) async throws {
        try await TestDatabase.with { db in
            var items: [StagedItem] = [.station(Station(key: "fresh:R"))]
            for h in Self.january + Self.february { items += Self.line("fresh:R", h) }
            items += Self.line("fresh:R", repeated)
            let (result, gaveWay) = try await Self.load(db, [items])
            #expect(gaveWay)
            #expect(result.inserted == (Self.january.count + Self.february.count) * 2)
            #expect(try await Self.stored(db) == Self.expected(["fresh:R"], Self.january + Self.february))
            let shape = try await Self.shape(db)
            // Made by the merge (`ensure_observation_partition`), as for live loads: with the BRIN index.
            #expect(shape.indexes == Self.expectedIndexes(shape.partitions, timeIndexed: Set(shape.partitions)))
            #expect(shape.leftovers == 0)
        }
    }

    /// Another load is filling February's fresh table (it holds the month's lock): this load gives way rather than
    /// wait inside its COPY, and its merge waits for the month at most `partitionWait`, then fails saying why,
    /// storing nothing. Once the month is free, the same load goes through.
    @Test func aMonthAnotherLoadIsFillingMakesTheLoadWaitAndThenFailSayingWhy() async throws {
        try await TestDatabase.with { db in
            var items: [StagedItem] = [.station(Station(key: "fresh:W"))]
            for h in Self.january + Self.february { items += Self.line("fresh:W", h) }
            let batches = [items]
            try await db.withConnection { holder in
                _ = try await holder.collect("SELECT pg_advisory_lock(datenwerk.observation_partition_lock('observations_y2024m02'))", logger: db.logger)
                do {
                    _ = try await LoadPathTests.load(db, batches, configure: { $0.partitionWait = "300ms" })
                    Issue.record("the load did not wait for February")
                } catch let error as PipelineError {
                    #expect(error.message.contains("waited 300ms for the partition of 2024-02 of datenwerk.observations: another load holds it"), "\(error.message)")
                }
                #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 0)
                #expect(try await Self.shape(db).leftovers == 0)
                _ = try await holder.collect("SELECT pg_advisory_unlock(datenwerk.observation_partition_lock('observations_y2024m02'))", logger: db.logger)
            }
            let result = try await LoadPathTests.load(db, batches)
            #expect(result.inserted == (Self.january.count + Self.february.count) * 2)
            #expect(try await Self.stored(db) == Self.expected(["fresh:W"], Self.january + Self.february))
        }
    }

    /// January has a partition (an earlier load), February not: station by station, the rows switch between
    /// `observations` and the fresh table twice per station. Under the limit the fast path keeps switching; past it,
    /// it gives way. Either way every row lands once and February ends up an ordinary indexed partition.
    @Test(arguments: [64, 2])
    func rowsSwitchingBetweenOldAndNewMonthsLandOnce(maxSwitches: Int) async throws {
        try await TestDatabase.with { db in
            _ = try await LoadPathTests.load(db, [[.station(Station(key: "fresh:old"))] + Self.line("fresh:old", 1)])
            let stations = (0..<5).map { "fresh:S\($0)" }
            var items: [StagedItem] = stations.map { .station(Station(key: $0)) }
            for s in stations { for h in Self.january + Self.february { items += Self.line(s, h) } }
            let (result, gaveWay) = try await Self.load(db, [items], configure: { $0.maxTargetSwitches = maxSwitches })
            // 5 stations, 2 switches each (the first row of the run starts in January's partition).
            #expect(gaveWay == (maxSwitches < 8))
            #expect(result.inserted == stations.count * (Self.january.count + Self.february.count) * 2)
            var expected = Self.expected(stations, Self.january + Self.february)
            expected.merge(Self.expected(["fresh:old"], [1])) { a, _ in a }
            #expect(try await Self.stored(db) == expected)
            let shape = try await Self.shape(db)
            #expect(shape.partitions == ["observations_y2024m01", "observations_y2024m02"])
            // January: one row, a first load in time order; February: a fresh table of rows station by station
            // (no BRIN index), or made by the merge when the fast path gave way (with one).
            #expect(shape.indexes == Self.expectedIndexes(shape.partitions, timeIndexed: gaveWay ? Set(shape.partitions) : ["observations_y2024m01"]))
            #expect(shape.leftovers == 0)
        }
    }

    /// A run over more months without a partition than `maxFreshMonths` gives way (its fresh tables would each hold
    /// locks to the commit); the staged merge makes the partitions one by one, and every row lands once.
    @Test(arguments: [120, 2])
    func aRunOverMoreNewMonthsThanTheLimitLandsOnce(maxFreshMonths: Int) async throws {
        try await TestDatabase.with { db in
            let hours = Self.january + Self.february + Self.march
            var items: [StagedItem] = [.station(Station(key: "fresh:L"))]
            for h in hours { items += Self.line("fresh:L", h) }
            let (result, gaveWay) = try await Self.load(db, [items], configure: { $0.maxFreshMonths = maxFreshMonths })
            #expect(gaveWay == (maxFreshMonths < 3))
            #expect(result.inserted == hours.count * 2)
            #expect(try await Self.stored(db) == Self.expected(["fresh:L"], hours))
            let shape = try await Self.shape(db)
            #expect(shape.partitions == ["observations_y2024m01", "observations_y2024m02", "observations_y2024m03"])
            // One station in time order: fresh tables with the BRIN index, or partitions made by the merge.
            #expect(shape.indexes == Self.expectedIndexes(shape.partitions, timeIndexed: Set(shape.partitions)))
            #expect(shape.leftovers == 0)
        }
    }
}
