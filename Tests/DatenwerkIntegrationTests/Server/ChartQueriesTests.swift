import DatenwerkPostgres
import DatenwerkPublishing
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// `ChartQueries` (the dataset pages' charts, read from `datenwerk_api.hourly`) against a GROUP BY from scratch
/// over the dataset's own observation rows.
@Suite(.serialized) struct ChartQueriesTests {
    typealias P = PublishingServer

    @Test func chartsEqualHourlyMeansComputedFromTheObservations() async throws {
        try await P.with { _, db in
            let connections = ServerConnections(database: db, limit: 2, acquireTimeout: .seconds(30))
            let store = ObservationStore(connections: connections)
            let charts = ChartQueries(connections: connections)
            for spec in try P.pipelines().prefix(2) {
                let dataset = try #require(spec.datasetMetadata)
                let snapshot = try await store.snapshot(dataset, state: try await store.state(pipeline: dataset.pipeline))
                let chart = try #require(try await charts.lastWeek(dataset, snapshot: snapshot))
                #expect(chart.series.map(\.property) == snapshot.facts.properties.map(\.key))
                #expect(chart.lastHourMicros - chart.firstHourMicros == 167 * 3_600_000_000)

                // Per station and UTC hour the mean of its rows; per property and hour the mean over the stations.
                let rows = try await connections.rows("""
                    WITH o AS (
                        SELECT station_id, property, date_trunc('hour', phenomenon_start, 'UTC') AS hour, avg(result) AS m
                        FROM datenwerk.observations
                        WHERE run_id IN (SELECT id FROM datenwerk.runs WHERE pipeline = \(dataset.pipeline))
                        GROUP BY 1, 2, 3),
                    e AS (SELECT max(hour) AS last FROM o),
                    w AS (SELECT o.* FROM o, e WHERE o.hour > e.last - interval '168 hours')
                    SELECT property, (extract(epoch FROM hour) * 1000000)::int8, avg(m),
                           (SELECT count(DISTINCT w2.station_id) FROM w w2 WHERE w2.property = w.property)::int8
                    FROM w GROUP BY property, hour ORDER BY 1, 2
                    """)
                var expected: [String: [(Int64, Double)]] = [:]
                var stations: [String: Int] = [:]
                for row in rows {
                    let (property, hour, mean, count) = try row.decode((String, Int64, Double, Int64).self)
                    expected[property, default: []].append((hour, mean))
                    stations[property] = Int(count)
                }
                #expect(chart.lastHourMicros == expected.values.compactMap { $0.last?.0 }.max())
                for series in chart.series {
                    let want = expected[series.property] ?? []
                    #expect(series.points.count == want.count, "\(dataset.id)/\(series.property)")
                    #expect(!want.isEmpty, "\(dataset.id)/\(series.property)")
                    for (point, (hour, mean)) in zip(series.points, want) {
                        #expect(point.hourMicros == hour)
                        #expect(abs(point.value - mean) < 1e-9 * max(1, abs(mean)), "\(dataset.id)/\(series.property) at \(hour)")
                    }
                    #expect(series.stationCount == stations[series.property], "\(dataset.id)/\(series.property)")
                }
            }
            await connections.shutdown()
        }
    }
}
