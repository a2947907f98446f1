import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// The loader's two paths, fed batch by batch: a first load copied straight into `observations`, and the staged
/// merge it gives way to when a later batch meets stored rows; months without a partition in the middle of a
/// COPY; station ids resolved in Swift (new keys, keys without a station item, a key another run stores first).
@Suite struct LoadPathTests {
    static let spec: PipelineSpec = try! PipelineSpec.parse(yaml: """
        version: 1
        name: paths
        tenant: "05515000"
        source: { kind: file, path: unused.csv, format: { kind: csv } }
        observations:
          station: { id: id }
          time: { field: t, format: iso8601 }
          values: [{ field: v, property: air_temperature }]
        """, file: "/tmp/paths.yaml")

    static let hour: Int64 = 3_600_000_000
    /// 2024-01-01T00:00Z
    static let t0: Int64 = 1_704_067_200_000_000

    static func observation(_ station: String, _ hour: Int64, _ value: Double, property: String = "air_temperature") -> StagedItem {
        .observation(Observation(stationKey: station, property: property, phenomenonStart: t0 + hour * Self.hour, result: value))
    }

    /// One run of the sink over `batches`; `beforeBatch(i)` runs before batch i is handed over (during the COPY).
    static func load(_ db: Database, _ batches: [[StagedItem]], maxStations: Int = 500_000, groupBytes: Int? = nil,
                     configure: (inout PostgresObservationSink) -> Void = { _ in },
                     beforeBatch: @escaping @Sendable (Int) async throws -> Void = { _ in }) async throws -> LoadResult {
        var sink = PostgresObservationSink(database: db)
        sink.maxStationsPerRun = maxStations
        if let groupBytes { sink.groupBytes = groupBytes }
        configure(&sink)
        let runID = try await sink.beginRun(pipeline: spec, context: RunContext(trigger: "test"))
        let feed = Feed(batches)
        var totals = RunTotals()
        totals.observations = batches.joined().filter { if case .observation = $0 { return true } else { return false } }.count
        let t = totals
        return try await sink.load(runID: runID, pipeline: spec, context: RunContext(trigger: "test"), next: {
            guard let (i, batch) = feed.next() else { return nil }
            try await beforeBatch(i)
            return batch
        }, totals: { t })
    }

    final class Feed: @unchecked Sendable {
        var batches: [[StagedItem]]
        var index = 0
        init(_ batches: [[StagedItem]]) { self.batches = batches }
        func next() -> (Int, [StagedItem])? {
            guard index < batches.count else { return nil }
            defer { index += 1 }
            return (index, batches[index])
        }
    }

    static func rows(_ db: Database) async throws -> [(String, Int64, Double)] {
        try await db.client.query("""
            SELECT s.key, ((extract(epoch FROM o.phenomenon_start) * 1000000)::bigint - \(t0)) / \(hour), o.result
            FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id ORDER BY 1, 2
            """, logger: db.logger).decode((String, Int64, Double).self).collect()
    }

    @Test func aLaterBatchOverStoredRowsMakesTheFastPathGiveWayWithoutLosingOrDoublingRows() async throws {
        try await TestDatabase.with { db in
            let first = try await Self.load(db, [[.station(Station(key: "paths:A"))] + (0..<10).map { Self.observation("paths:A", $0, Double($0)) }])
            #expect(first.inserted == 10 && first.updated == 0)
            // A new station first (the run looks like a first load), then A again: hours 5…9 stored (7 and 8 changed), 10…14 new.
            let second = try await Self.load(db, [
                [.station(Station(key: "paths:B"))] + (0..<6).map { Self.observation("paths:B", $0, 100 + Double($0)) },
                (5..<15).map { Self.observation("paths:A", $0, $0 == 7 || $0 == 8 ? -Double($0) : Double($0)) },
            ])
            #expect(second.inserted == 6 + 5)
            #expect(second.updated == 2)
            let rows = try await Self.rows(db)
            #expect(rows.count == 15 + 6)
            let b: [Double] = rows.filter { $0.0 == "paths:B" }.map(\.2)
            let a: [Double] = rows.filter { $0.0 == "paths:A" }.map(\.2)
            let expectedA: [Double] = (0..<15).map { (h: Int) -> Double in h == 7 || h == 8 ? -Double(h) : Double(h) }
            #expect(b == [100, 101, 102, 103, 104, 105])
            #expect(a == expectedA)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.stations") == 2)
        }
    }

    /// The first-load COPY sends its rows group by group in key order (KeyOrderedRows): with groups of a few rows,
    /// lines of three properties station by station and across two months (a new partition ends a COPY mid-group),
    /// every row lands once with its value; then a later batch over stored rows makes the fast path give way, and the
    /// rows it had sent are replayed into staging without loss or doubling.
    @Test(arguments: [150, 1000, 4 << 20])
    func rowsSentInKeyOrderGroupByGroupLandOnce(groupBytes: Int) async throws {
        try await TestDatabase.with { db in
            let properties = ["wind_speed", "air_temperature", "relative_humidity"]
            func line(_ station: String, _ hour: Int64, _ base: Double) -> [StagedItem] {
                properties.enumerated().map { i, p in Self.observation(station, hour, base + Double(i) / 10, property: p) }
            }
            // Hours 740…748 cross from January into February.
            let hours: [Int64] = Array(740..<749)
            let stations = ["paths:C", "paths:A", "paths:B"]
            var first: [StagedItem] = []
            var expected: [String: Double] = [:]
            for (s, station) in stations.enumerated() {
                first.append(.station(Station(key: station)))
                for h in hours {
                    first += line(station, h, Double(s * 1000) + Double(h))
                    for (i, p) in properties.enumerated() { expected["\(station)/\(p)/\(h)"] = Double(s * 1000) + Double(h) + Double(i) / 10 }
                }
            }
            let loaded = try await Self.load(db, [Array(first.prefix(20)), Array(first.dropFirst(20))], groupBytes: groupBytes)
            #expect(loaded.inserted == expected.count)
            let values = try await db.client.query("""
                SELECT s.key || '/' || o.property || '/' || (((extract(epoch FROM o.phenomenon_start) * 1000000)::bigint - \(Self.t0)) / \(Self.hour))::text, o.result
                FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id
                """, logger: db.logger).decode((String, Double).self).collect()
            #expect(values.count == expected.count)
            #expect(Dictionary(values, uniquingKeysWith: { a, _ in a }) == expected)

            // A new station first (it looks like a first load), then C's last two hours again, hour 748 changed.
            let again = try await Self.load(db, [
                [.station(Station(key: "paths:D"))] + line("paths:D", 740, 5) + line("paths:D", 741, 6),
                line("paths:C", 747, 747) + line("paths:C", 748, -1),
            ], groupBytes: groupBytes)
            #expect(again.inserted == 6)
            #expect(again.updated == 3)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == Int64(expected.count + 6))
        }
    }

    @Test func monthsWithoutAPartitionInTheMiddleOfAFirstLoadAreCreatedAndNothingIsLost() async throws {
        try await TestDatabase.with { db in
            // January, March, January, May, March … in one batch: each new month ends a COPY and starts another.
            let months: [Int64] = [0, 60 * 24, 1, 121 * 24, 60 * 24 + 1, 2, 121 * 24 + 1]
            let result = try await Self.load(db, [[.station(Station(key: "paths:M"))] + months.map { Self.observation("paths:M", $0, Double($0)) }])
            #expect(result.inserted == months.count)
            #expect(try await Self.rows(db).map(\.1) == months.sorted())
            let partitions = try await db.client.query("""
                SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'datenwerk.observations'::regclass ORDER BY 1
                """, logger: db.logger).decode(String.self).collect()
            #expect(partitions == ["observations_y2024m01", "observations_y2024m03", "observations_y2024m05"])
        }
    }

    @Test func observationsWhoseStationCameWithoutAnItemGetABareStationRow() async throws {
        try await TestDatabase.with { db in
            let result = try await Self.load(db, [(0..<3).map { Self.observation("paths:bare", $0, 1) }])
            #expect(result.inserted == 3)
            #expect(try await Self.rows(db).map(\.0) == ["paths:bare", "paths:bare", "paths:bare"])
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.stations WHERE key = 'paths:bare' AND name IS NULL AND geom IS NULL") == 1)
        }
    }

    @Test func anUnknownPropertyFailsTheLoadNamingItAndStoresNothing() async throws {
        try await TestDatabase.with { db in
            let error = await #expect(throws: PipelineError.self) {
                _ = try await Self.load(db, [[Self.observation("paths:A", 0, 1), Self.observation("paths:A", 1, 1, property: "flux_capacitance")]])
            }
            #expect(error?.message.contains("'flux_capacitance'") == true)
            let stored = try await scalar(db, "SELECT count(*) FROM datenwerk.observations")
            #expect(stored == 0)
        }
    }

    /// A new station id on every row (a mapping to the wrong field, or a hostile file) stops at the limit with a
    /// clear error instead of growing the load's memory; nothing is stored.
    @Test(arguments: [false, true]) func moreStationsThanTheLimitFailTheLoadAndStoreNothing(withItems: Bool) async throws {
        try await TestDatabase.with { db in
            let items: [StagedItem] = (0..<6).flatMap { i -> [StagedItem] in
                let o = Self.observation("paths:many-\(i)", 0, 1)
                return withItems ? [.station(Station(key: "paths:many-\(i)")), o] : [o]
            }
            let error = await #expect(throws: PipelineError.self) {
                _ = try await Self.load(db, [items], maxStations: 5)
            }
            #expect(error?.message.hasPrefix("more than 5 stations in one run") == true)
            let stored = try await scalar(db, "SELECT count(*) FROM datenwerk.observations") + scalar(db, "SELECT count(*) FROM datenwerk.stations")
            #expect(stored == 0)
            // At the limit itself the run loads.
            #expect(try await Self.load(db, [Array(items.prefix(withItems ? 10 : 5))], maxStations: 5).inserted == 5)
        }
    }

    /// Another run stores the same new station key while this one copies: its id wins, and this run's rows move to it.
    @Test(arguments: [false, true]) func aNewStationStoredByAnotherRunMeanwhileKeepsOneStationAndMovesTheRows(staged: Bool) async throws {
        try await TestDatabase.with { db in
            if staged {
                // Stored rows of another station make this run a staged one.
                _ = try await Self.load(db, [[.station(Station(key: "paths:old"))] + (0..<3).map { Self.observation("paths:old", $0, 1) }])
            }
            let old: [StagedItem] = staged ? (0..<3).map { Self.observation("paths:old", $0, 1) } : []
            let result = try await Self.load(db, [
                old + [.station(Station(key: "paths:race", name: "Erster"))] + (0..<4).map { Self.observation("paths:race", $0, 2) },
                (4..<8).map { Self.observation("paths:race", $0, 2) },
            ], beforeBatch: { i in
                guard i == 1 else { return }
                try await db.client.query("INSERT INTO datenwerk.stations (tenant, key, name) VALUES ('05515000', 'paths:race', 'Zweiter')", logger: db.logger)
            })
            #expect(result.inserted == 8)
            let stations = try await db.client.query("SELECT id, name FROM datenwerk.stations WHERE key = 'paths:race'", logger: db.logger)
                .decode((Int64, String?).self).collect()
            #expect(stations.count == 1)
            #expect(stations.first?.1 == "Erster")
            let id = try #require(stations.first?.0)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations WHERE station_id = \(id)") == 8)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations o WHERE NOT EXISTS (SELECT 1 FROM datenwerk.stations s WHERE s.id = o.station_id)") == 0)
        }
    }
}
