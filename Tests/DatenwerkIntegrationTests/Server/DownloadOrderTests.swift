import DatenwerkCore
@testable import DatenwerkPostgres
import DatenwerkPublishing
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// Downloads come in the primary key's order (station row, property, phenomenon start), so PostgreSQL merges
/// the monthly partitions' primary key scans instead of sorting: the plan of a download's page (a row per series,
/// grouped as the rows come) has no Sort node — for a whole download, a from/to window, and a page between a
/// cursor and a page end.
@Suite(.serialized) struct DownloadOrderTests {
    /// Three stations × two properties, hourly over three months (three partitions), plus rows of another pipeline.
    static func seed(_ connections: ServerConnections) async throws {
        _ = try await connections.rows("""
            SELECT datenwerk.ensure_observation_partition(m)
            FROM generate_series('2024-01-01'::timestamptz, '2024-03-01', interval '1 month') m
            """)
        _ = try await connections.rows("""
            INSERT INTO datenwerk.runs (id, pipeline, tenant, status) VALUES (900001, 'order-test', 't', 'succeeded'),
                (900002, 'order-test', 't', 'succeeded'), (900003, 'order-other', 't', 'succeeded')
            """)
        _ = try await connections.rows("""
            INSERT INTO datenwerk.observations (station_id, property, phenomenon_start, result, run_id)
            SELECT s, p, t, s + extract(epoch FROM t) / 1e6, CASE WHEN s = 3 THEN 900003 ELSE 900001 + (extract(hour FROM t)::int % 2) END
            FROM generate_series(1, 3) s, unnest(ARRAY['air_temperature', 'wind_speed']) p,
                 generate_series('2024-01-01'::timestamptz, '2024-03-31 23:00', interval '1 hour') t
            """)
        _ = try await connections.rows("ANALYZE datenwerk.observations")
    }

    /// The node types of an `EXPLAIN (FORMAT JSON)` plan, depth first.
    static func nodeTypes(_ json: String) throws -> [String] {
        let top = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        var types: [String] = []
        func walk(_ node: [String: Any]) {
            if let type = node["Node Type"] as? String { types.append(type) }
            for child in node["Plans"] as? [[String: Any]] ?? [] { walk(child) }
        }
        for entry in top { if let plan = entry["Plan"] as? [String: Any] { walk(plan) } }
        return types
    }

    @Test func downloadPlansReadThePrimaryKeysWithoutSorting() async throws {
        try await TestDatabase.with { db in
            let connections = ServerConnections(database: db, limit: 1, acquireTimeout: .seconds(30))
            try await Self.seed(connections)
            var whole = ObservationFilter()
            whole.limit = 65536
            var window = ObservationFilter()
            window.limit = 4096
            window.from = 1_706_745_600_000_000   // 2024-02-01T00:00Z
            window.to = 1_707_264_000_000_000     // 2024-02-07T00:00Z
            var paged = ObservationFilter()
            paged.cursor = ObservationCursor(startMicros: 1_706_745_600_000_000, stationID: 1, property: "wind_speed")
            paged.limit = 1000
            let end = ObservationCursor(startMicros: 1_709_251_200_000_000, stationID: 2, property: "air_temperature")
            let cases: [(String, ObservationFilter, ObservationCursor?)] = [("whole", whole, nil), ("from/to", window, nil),
                                                                            ("cursor to page end", paged, end)]
            for (name, filter, through) in cases {
                var query = ObservationStore.page(pipeline: "order-test", filter: filter, through: through).query
                query.sql = "EXPLAIN (FORMAT JSON) " + query.sql
                let lease = try await connections.lease()
                _ = try await lease.connection.collect("BEGIN READ ONLY", logger: db.logger)
                for setting in ObservationStore.downloadSettings {
                    _ = try await lease.connection.collect(PostgresQuery(unsafeSQL: setting), logger: db.logger)
                }
                let rows = try await lease.connection.collect(query, logger: db.logger)
                _ = try await lease.connection.collect("ROLLBACK", logger: db.logger)
                lease.release(reusable: true)
                let types = try Self.nodeTypes(try #require(rows.first).decode(String.self))
                #expect(!types.contains { $0.contains("Sort") }, "\(name): \(types)")
                #expect(types.contains("Index Scan"), "\(name): \(types)")
                #expect(types.first == "Aggregate", "\(name): \(types)")
            }
            // The whole download in that order, exactly the pipeline's rows.
            let keys = try await connections.rows(
                ObservationStore.selection(pipeline: "order-test", filter: ObservationFilter(), through: nil, keysOnly: true).query
            ).map { try $0.decode((UTCMicros, Int64, String).self) }
            await connections.shutdown()
            #expect(keys.count == 2 * 2 * 91 * 24)
            let ordered = keys.map { ($0.1, $0.2, $0.0.value) }
            #expect(zip(ordered, ordered.dropFirst()).allSatisfy { $0 < $1 })
            #expect(Set(keys.map(\.1)) == [1, 2])
        }
    }
}
