import DatenwerkCore
import DatenwerkPublishing
import PostgresNIO
import Synchronization

/// What the dataset pages' charts read: per property of a dataset, the hourly mean across its stations over
/// the 7 days (168 UTC hours) that end with the hour of its latest observation — from `datenwerk_api.hourly`,
/// the hourly aggregates kept current by every load, so a chart reads at most 168 rows per station and
/// property through the aggregates' primary keys, never the raw observations of other series.
///
/// A dataset's series are the (station, property) pairs its pipeline's runs wrote (the snapshot's stations and
/// properties). The aggregates are per series, not per run: a station that two pipelines share (global DWD or
/// UBA ids) contributes the hours of both. The latest observation is the newest `series.last_start` of those
/// series. Charts are kept per dataset state (they change only when a run of the pipeline changed data).
package final class ChartQueries: Sendable {
    package let connections: ServerConnections
    private let cache = Mutex<[String: (DatasetState, DatasetChart?)]>([:])

    package init(connections: ServerConnections) {
        self.connections = connections
    }

    /// The chart of a dataset at its snapshot's state; nil when it has no observations yet.
    package func lastWeek(_ dataset: DatasetMetadata, snapshot: DatasetSnapshot) async throws -> DatasetChart? {
        if let cached = cache.withLock({ $0[dataset.pipeline] }), cached.0 == snapshot.state { return cached.1 }
        let chart = try await compute(stationIDs: snapshot.stations.map(\.id), properties: snapshot.facts.properties)
        cache.withLock { $0[dataset.pipeline] = (snapshot.state, chart) }
        return chart
    }

    /// The charts of several datasets (the catalog page's sparklines), keyed by dataset id.
    package func lastWeek(_ datasets: [DatasetMetadata], snapshots: [DatasetSnapshot]) async throws -> [String: DatasetChart] {
        var charts: [String: DatasetChart] = [:]
        for (dataset, snapshot) in zip(datasets, snapshots) {
            if let chart = try await lastWeek(dataset, snapshot: snapshot) { charts[dataset.id] = chart }
        }
        return charts
    }

    /// One series per property (in `properties`' order, those without any hour in the window too, empty).
    package func compute(stationIDs: [Int64], properties: [DatasetFacts.Property]) async throws -> DatasetChart? {
        guard !stationIDs.isEmpty, !properties.isEmpty else { return nil }
        let keys = properties.map(\.key)
        let ends = try await connections.rows("""
            SELECT (extract(epoch FROM date_trunc('hour', max(last_start), 'UTC')) * 1000000)::int8
            FROM datenwerk.series WHERE station_id = ANY(\(stationIDs)) AND property = ANY(\(keys))
            """)
        guard let endRow = ends.first, let end = try endRow.decode(Int64?.self) else { return nil }
        let window = DatasetChart(lastHourMicros: end, series: [])
        // Per property and hour: the mean of the stations' hourly means; per property (hour NULL): how many
        // stations have any hour in the window.
        let rows = try await connections.rows("""
            SELECT h.property, (extract(epoch FROM h.hour) * 1000000)::int8, avg(h.avg), count(DISTINCT h.station_id)::int8
            FROM datenwerk_api.hourly h
            WHERE h.station_id = ANY(\(stationIDs)) AND h.property = ANY(\(keys))
              AND h.hour >= 'epoch'::timestamptz + \(window.firstHourMicros) * interval '1 microsecond'
              AND h.hour <= 'epoch'::timestamptz + \(window.lastHourMicros) * interval '1 microsecond'
            GROUP BY GROUPING SETS ((h.property, h.hour), (h.property))
            ORDER BY 1, 2 NULLS FIRST
            """)
        var points: [String: [ChartPoint]] = [:]
        var stations: [String: Int] = [:]
        for row in rows {
            let (property, hour, mean, count) = try row.decode((String, Int64?, Double?, Int64).self)
            if let hour {
                if let mean, mean.isFinite { points[property, default: []].append(ChartPoint(hourMicros: hour, value: mean)) }
            } else {
                stations[property] = Int(count)
            }
        }
        let series = properties.map { p in
            ChartSeries(property: p.key, labelDE: p.labelDE, labelEN: p.labelEN, unit: p.unit,
                        stationCount: stations[p.key] ?? 0, points: points[p.key] ?? [])
        }
        return DatasetChart(lastHourMicros: end, series: series)
    }
}
