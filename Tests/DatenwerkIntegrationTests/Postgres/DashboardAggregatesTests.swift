import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// The dashboard tables (`series`, `observations_hourly`, `observations_daily`) and the `datenwerk_api` views
/// equal a from-scratch `GROUP BY` over `observations` after every load: first loads (deltas), re-runs, changed
/// values, late data into an old hour, a series that stops being hourly, repeats in one run, random load orders.
@Suite struct DashboardAggregatesTests {
    static let minute: Int64 = 60_000_000

    static func observation(_ station: String, minutes: Int64, _ value: Double, property: String = "air_temperature") -> StagedItem {
        .observation(Observation(stationKey: station, property: property, phenomenonStart: LoadPathTests.t0 + minutes * minute, result: value))
    }

    /// Rows where the stored aggregates differ from the ones computed from scratch (0 when all is well), per table.
    static func differences(_ db: Database) async throws -> [String: Int64] {
        let close = "abs(a.total - b.total) <= 1e-9 * greatest(1, abs(b.total))"
        var out: [String: Int64] = [:]
        out["daily"] = try await scalar(db, """
            SELECT count(*) FROM datenwerk.observations_daily a
            FULL JOIN (SELECT station_id, property, (phenomenon_start AT TIME ZONE 'Europe/Berlin')::date AS day,
                              count(*) AS n, sum(result) AS total, min(result) AS minimum, max(result) AS maximum
                       FROM datenwerk.observations GROUP BY 1, 2, 3) b
              ON a.station_id = b.station_id AND a.property = b.property AND a.day = b.day
            WHERE a.n IS DISTINCT FROM b.n OR NOT (\(close)) OR a.minimum IS DISTINCT FROM b.minimum OR a.maximum IS DISTINCT FROM b.maximum
            """)
        out["hourly"] = try await scalar(db, """
            SELECT count(*) FROM (SELECT station_id, property, hour, n, sum(avg * n) OVER w AS total, min, max
                                  FROM datenwerk_api.hourly WINDOW w AS (PARTITION BY station_id, property, hour)) a
            FULL JOIN (SELECT station_id, property, date_trunc('hour', phenomenon_start, 'UTC') AS hour,
                              count(*) AS n, sum(result) AS total, min(result) AS min, max(result) AS max
                       FROM datenwerk.observations GROUP BY 1, 2, 3) b
              ON a.station_id = b.station_id AND a.property = b.property AND a.hour = b.hour
            WHERE a.n IS DISTINCT FROM b.n OR NOT (\(close)) OR a.min IS DISTINCT FROM b.min OR a.max IS DISTINCT FROM b.max
            """)
        out["hourly rows per hour"] = try await scalar(db, """
            SELECT count(*) FROM (SELECT 1 FROM datenwerk_api.hourly GROUP BY station_id, property, hour HAVING count(*) > 1) x
            """)
        out["series"] = try await scalar(db, """
            SELECT count(*) FROM datenwerk.series a
            FULL JOIN (SELECT l.station_id, l.property, f.first_start, l.phenomenon_start AS last_start, l.phenomenon_end AS last_end,
                              l.result AS last_result, l.quality AS last_quality, f.hourly_raw
                       FROM (SELECT DISTINCT ON (station_id, property) * FROM datenwerk.observations
                             ORDER BY station_id, property, phenomenon_start DESC) l
                       JOIN (SELECT station_id, property, min(phenomenon_start) AS first_start,
                                    bool_and(date_trunc('hour', phenomenon_start, 'UTC') = phenomenon_start) AS hourly_raw
                             FROM datenwerk.observations GROUP BY 1, 2) f ON f.station_id = l.station_id AND f.property = l.property) b
              ON a.station_id = b.station_id AND a.property = b.property
            WHERE (a.first_start, a.last_start, a.last_end, a.last_result, a.last_quality, a.hourly_raw)
                  IS DISTINCT FROM (b.first_start, b.last_start, b.last_end, b.last_result, b.last_quality, b.hourly_raw)
            """)
        // An hourly series keeps no buckets (its rows are its hourly aggregate).
        out["buckets of hourly series"] = try await scalar(db, """
            SELECT count(*) FROM datenwerk.observations_hourly h
            JOIN datenwerk.series s ON s.station_id = h.station_id AND s.property = h.property AND s.hourly_raw
            """)
        return out
    }

    static func expectConsistent(_ db: Database, _ context: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
        let d = try await differences(db)
        #expect(d.values.allSatisfy { $0 == 0 }, "\(context): \(d.filter { $0.value != 0 })", sourceLocation: sourceLocation)
    }

    @Test func aSequenceOfLoadsReRunsLateDataAndChangesKeepsEveryAggregateEqualToAGroupByFromScratch() async throws {
        try await TestDatabase.with { db in
            // A: hourly data, 3 days (fast path: deltas; no hourly buckets, the rows are the hours).
            let a = (0..<72).map { Self.observation("paths:A", minutes: Int64($0) * 60, Double($0 % 17) - 3.5) }
            _ = try await LoadPathTests.load(db, [[.station(Station(key: "paths:A"))] + a])
            try await Self.expectConsistent(db, "first load, hourly")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_hourly") == 0)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.series WHERE hourly_raw") == 1)

            // B: 10-minute data, new (fast path; hourly buckets from the second row on, the first hour recomputed).
            let b = (0..<300).map { Self.observation("paths:B", minutes: Int64($0) * 10, Double($0).squareRoot(), property: "relative_humidity") }
            _ = try await LoadPathTests.load(db, [b])
            try await Self.expectConsistent(db, "first load, 10-minute")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_hourly") == 50)

            // The same input again (staged, nothing written).
            let again = try await LoadPathTests.load(db, [b])
            #expect(again.inserted == 0 && again.updated == 0)
            try await Self.expectConsistent(db, "re-run")

            // Changed values in B and the latest row of A (staged: recomputed).
            let changed = try await LoadPathTests.load(db, [
                [Self.observation("paths:B", minutes: 50, 99), Self.observation("paths:B", minutes: 2990, -1, property: "relative_humidity"),
                 Self.observation("paths:A", minutes: 71 * 60, 42)],
            ])
            #expect(changed.updated == 2 && changed.inserted == 1)
            try await Self.expectConsistent(db, "changed values")
            #expect(try await scalar(db, "SELECT (result = 42)::int::bigint FROM datenwerk_api.latest WHERE station_key = 'paths:A' AND property = 'air_temperature'") == 1)

            // Late data off the hour into an old hour of A: A stops being an hourly series; all its hours get buckets.
            _ = try await LoadPathTests.load(db, [[Self.observation("paths:A", minutes: 5 * 60 + 30, 1000)]])
            try await Self.expectConsistent(db, "late data off the hour")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.series WHERE hourly_raw") == 0)

            // Late data into a new day before everything (fast path) and a later batch over stored rows (gives way).
            _ = try await LoadPathTests.load(db, [
                (1...5).map { Self.observation("paths:A", minutes: -Int64($0) * 60 * 24, Double($0)) },
                (0..<10).map { Self.observation("paths:B", minutes: Int64($0) * 10 + 5, 7, property: "relative_humidity") },
            ])
            try await Self.expectConsistent(db, "fast path giving way")
        }
    }

    @Test func randomLoadOrdersKeepTheAggregatesEqualToAGroupByFromScratch() async throws {
        for seed: UInt64 in [1, 2, 3] {
            try await TestDatabase.with { db in
                var rng = SplitMix(seed: seed)
                for round in 0..<6 {
                    var batches: [[StagedItem]] = []
                    for _ in 0..<Int(rng.next() % 3 + 1) {
                        var batch: [StagedItem] = []
                        for _ in 0..<Int(rng.next() % 40 + 1) {
                            let station = ["paths:R1", "paths:R2", "paths:R3"][Int(rng.next() % 3)]
                            let property = ["air_temperature", "wind_speed"][Int(rng.next() % 2)]
                            // Whole hours mostly; sometimes 10-minute steps; now and then a day back.
                            let hour = Int64(rng.next() % 60) - (rng.next() % 8 == 0 ? 24 * 40 : 0)
                            let offset: Int64 = rng.next() % 4 == 0 ? Int64(rng.next() % 6) * 10 : 0
                            batch.append(Self.observation(station, minutes: hour * 60 + offset, Double(rng.next() % 1000) / 10, property: property))
                        }
                        batches.append(batch)
                    }
                    _ = try await LoadPathTests.load(db, batches)
                    try await Self.expectConsistent(db, "seed \(seed), round \(round)")
                }
            }
        }
    }

    @Test func theRefreshFunctionRebuildsWhatHandMadeSQLChanged() async throws {
        try await TestDatabase.with { db in
            let rows = (0..<30).map { Self.observation("paths:C", minutes: Int64($0) * 20, Double($0)) }
            _ = try await LoadPathTests.load(db, [rows])
            try await Self.expectConsistent(db, "loaded")
            try await db.client.query("DELETE FROM datenwerk.observations WHERE result > 20", logger: db.logger)
            #expect(try await Self.differences(db).values.contains { $0 > 0 })
            try await AggregateMaintenance(db).refreshAll()
            try await Self.expectConsistent(db, "after refresh")
        }
    }
}

/// `datenwerk db grant-reader`: a login role that reads `datenwerk_api` and nothing else, read-only, with a timeout.
@Suite struct DashboardReaderTests {
    @Test func aReaderRoleReadsTheAPIViewsOnlyWithItsPasswordAndATimeout() async throws {
        try await TestDatabase.with { db in
            _ = try await LoadPathTests.load(db, [[DashboardAggregatesTests.observation("paths:G", minutes: 0, 1.5)]])
            let name = "reader_" + UUID().uuidString.prefix(8).lowercased()
            let password = "pw-\(UUID().uuidString)"
            try await AggregateMaintenance(db).grantReader(name: name, password: password, statementTimeoutMilliseconds: 7000, connectionLimit: 5)
            // Again: an update, not an error.
            try await AggregateMaintenance(db).grantReader(name: name, password: password, statementTimeoutMilliseconds: 7000, connectionLimit: 5)
            defer { Task { try? await db.client.query(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(name)"), logger: db.logger) } }
            // Over TCP (password checked: scram-sha-256) to the embedded cluster, else to DATABASE_URL's server.
            let location = db.location
            let port = try await TestDatabase.embeddedCluster()?.configuration.port ?? location.port
            let host = location.unixSocketPath == nil ? (location.host ?? "localhost") : "127.0.0.1"
            func connect(_ password: String) async throws -> PostgresConnection {
                try await PostgresConnection.connect(
                    configuration: .init(host: host, port: port, username: name, password: password, database: location.database, tls: .disable),
                    id: 1, logger: db.logger)
            }
            let reader = try await connect(password)
            do {
                let latest = try await reader.query("SELECT station_key, result FROM datenwerk_api.latest", logger: db.logger)
                    .decode((String, Double).self).collect()
                #expect(latest.count == 1 && latest.first?.0 == "paths:G" && latest.first?.1 == 1.5)
                // Unqualified names find the API (search_path).
                #expect(try await reader.query("SELECT count(*)::bigint FROM hourly", logger: db.logger).decode(Int64.self).collect() == [1])
                for view in ["daily", "stations", "observations", "pipelines_health", "properties", "runs"] {
                    _ = try await reader.query(PostgresQuery(unsafeSQL: "SELECT * FROM datenwerk_api.\(view) LIMIT 1"), logger: db.logger).collect()
                }
                let timeout = try await reader.query("SHOW statement_timeout", logger: db.logger).decode(String.self).collect()
                #expect(timeout == ["7s"])
                for table in ["datenwerk.observations", "datenwerk.stations", "datenwerk.runs"] {
                    do {
                        _ = try await reader.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"), logger: db.logger).collect()
                        Issue.record("the reader read \(table)")
                    } catch let error as PSQLError {
                        #expect(error.serverInfo?[.sqlState] == "42501", "\(table): \(String(reflecting: error))")
                    }
                }
                do {
                    _ = try await reader.query("CREATE TEMP TABLE x (a int)", logger: db.logger).collect()
                    Issue.record("the reader's session is not read-only")
                } catch let error as PSQLError {
                    #expect(error.serverInfo?[.sqlState] == "25006")
                }
            } catch {
                try? await reader.close()
                throw error
            }
            try await reader.close()
            await #expect(throws: (any Error).self) { try await connect("wrong").close() }
            #expect(!AggregateMaintenance.isValidRoleName("x; DROP TABLE y"))
            #expect(!AggregateMaintenance.isValidRoleName("datenwerk"))
            #expect(AggregateMaintenance.isValidRoleName("grafana_1"))
        }
    }
}

/// A small seeded generator, so a failing order can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
