import DatenwerkCore
import DatenwerkPublishing
import PostgresNIO

/// The SQL behind OGC API – Features (`/ogcapi/`, `OGCFeatures` encodes, `DatenwerkServer` routes):
///
/// * a dataset's **stations** with the latest value of each of its properties — from `datenwerk.series` (one row
///   per station and property, kept current by every load), joined to `datenwerk.stations`; `bbox` through the
///   stations' GiST index (`ST_Intersects`), `datetime` against each station's first and latest observation;
///   paged by station key (keyset: `key > $after` / `key < $before`), exact `numberMatched`.
/// * a dataset's **observations** — the rows written by its pipeline's runs (the same selection as the downloads,
///   `ObservationStore.runFilter`), in primary key order (station row, property, phenomenon start) so every monthly
///   partition is read from its primary key and merged without a sort; `bbox` first resolves the dataset's stations
///   in the box (GiST), then reads only their series (`station_id = ANY(…)`, the key's first column); `datetime`
///   bounds `phenomenon_start` (partition pruning, then the key or the BRIN index); keyset paging by the key.
///   A page reads at most `limit + 1` rows.
/// * the **privacy gate** (docs/privacy.md): a value below its dataset's `min_count` (not 0) is NaN (JSON null)
///   — a latest value through `datenwerk.series_min_count`, an observation through its pipeline's
///   `datenwerk.dataset_privacy` row — and an observation's quality is then `suppressed`.
///
/// Every statement is parameterised: the values a client sends travel as binds, never in the SQL text.
package final class FeatureQueries: Sendable {
    package let connections: ServerConnections

    package init(connections: ServerConnections) {
        self.connections = connections
    }

    /// One page of items in the collection's order, and whether rows exist beyond either end of it.
    package struct Page<Item: Sendable>: Sendable {
        package var items: [Item]
        /// A row follows the page's last item (a `next` link).
        package var hasNext: Bool
        /// A row precedes the page's first item (a `prev` link).
        package var hasPrevious: Bool
        /// All rows matching the filter, when known.
        package var numberMatched: Int?
    }

    /// Where a page starts: after or before a position (nil: the first page).
    package enum Position<Key: Sendable>: Sendable {
        case after(Key)
        case before(Key)
    }

    // MARK: Stations

    /// The stations among `stationIDs` (a dataset's) that lie in one of `boxes` (none: anywhere) and whose
    /// observations of `properties` reach into `from`…`to` (inclusive, µs; nil: open), ordered by key.
    package func stations(
        stationIDs: [Int64], properties: [String], boxes: [BoundingBox], from: Int64?, to: Int64?,
        position: Position<String>?, limit: Int
    ) async throws -> Page<StationFeature> {
        guard !stationIDs.isEmpty, !properties.isEmpty else { return Page(items: [], hasNext: false, hasPrevious: false, numberMatched: 0) }
        var q = ObservationStore.Query()
        var sql = "WITH matched AS (" + Self.stationSelect(&q, stationIDs: stationIDs, properties: properties)
        if !boxes.isEmpty { sql += " AND (" + Self.intersects(&q, column: "s.geom", boxes) + ")" }
        sql += " GROUP BY s.id"
        var having: [String] = []
        if let from { having.append("max(r.last_start) >= \(Self.time(&q, from))") }
        if let to { having.append("min(r.first_start) <= \(Self.time(&q, to))") }
        if !having.isEmpty { sql += " HAVING " + having.joined(separator: " AND ") }
        sql += ") SELECT key, name, lon, lat, first_micros, last_micros, props, results, times, (SELECT count(*) FROM matched)::int8 FROM matched"
        var descending = false
        switch position {
        case .after(let key): sql += " WHERE key > \(q.bind(key))"
        case .before(let key): sql += " WHERE key < \(q.bind(key))"; descending = true
        case nil: break
        }
        sql += " ORDER BY key\(descending ? " DESC" : "") LIMIT \(q.bind(Int64(limit + 1)))"
        q.sql = sql
        var items: [StationFeature] = []
        var matched = 0
        let rows = try await connections.rows(q.query)
        for row in rows {
            let (feature, count) = try Self.station(row)
            items.append(feature)
            matched = count
        }
        if rows.isEmpty {
            // Nothing after (or before) the position: count the matches on their own.
            var c = ObservationStore.Query()
            var count = "SELECT count(*)::int8 FROM (" + Self.stationSelect(&c, stationIDs: stationIDs, properties: properties)
            if !boxes.isEmpty { count += " AND (" + Self.intersects(&c, column: "s.geom", boxes) + ")" }
            count += " GROUP BY s.id"
            var having: [String] = []
            if let from { having.append("max(r.last_start) >= \(Self.time(&c, from))") }
            if let to { having.append("min(r.first_start) <= \(Self.time(&c, to))") }
            if !having.isEmpty { count += " HAVING " + having.joined(separator: " AND ") }
            c.sql = count + ") m"
            matched = try await connections.rows(c.query).first.map { try $0.decode(Int64.self) }.map(Int.init) ?? 0
        }
        return Self.page(items, limit: limit, descending: descending, position: position != nil, matched: matched)
    }

    /// One station of the dataset by its key, with the latest values of `properties`; nil when it is not one.
    package func station(key: String, stationIDs: [Int64], properties: [String]) async throws -> StationFeature? {
        guard !stationIDs.isEmpty, !properties.isEmpty else { return nil }
        var q = ObservationStore.Query()
        var sql = "WITH matched AS (" + Self.stationSelect(&q, stationIDs: stationIDs, properties: properties)
        sql += " AND s.key = \(q.bind(key)) GROUP BY s.id)"
        sql += " SELECT key, name, lon, lat, first_micros, last_micros, props, results, times, 1::int8 FROM matched ORDER BY key LIMIT 1"
        q.sql = sql
        return try await connections.rows(q.query).first.map { try Self.station($0).0 }
    }

    private static func stationSelect(_ q: inout ObservationStore.Query, stationIDs: [Int64], properties: [String]) -> String {
        """
        SELECT s.key, s.name, ST_X(ST_Centroid(s.geom)) AS lon, ST_Y(ST_Centroid(s.geom)) AS lat,
               (extract(epoch FROM min(r.first_start)) * 1000000)::int8 AS first_micros,
               (extract(epoch FROM max(r.last_start)) * 1000000)::int8 AS last_micros,
               array_agg(r.property::text ORDER BY r.property) AS props,
               array_agg(CASE WHEN datenwerk.below_min_count(r.last_result, g.min_count) THEN 'NaN'::float8 ELSE r.last_result END
                         ORDER BY r.property) AS results,
               array_agg((extract(epoch FROM r.last_start) * 1000000)::int8 ORDER BY r.property) AS times
        FROM datenwerk.stations s
        JOIN datenwerk.series r ON r.station_id = s.id AND r.property = ANY(\(q.bind(properties)))
        LEFT JOIN datenwerk.series_min_count g ON g.station_id = r.station_id AND g.property = r.property
        WHERE s.id = ANY(\(q.bind(stationIDs)))
        """
    }

    private static func station(_ row: PostgresRow) throws -> (StationFeature, Int) {
        let (key, name, lon, lat, first, last, props, results, times, count) =
            try row.decode((String, String?, Double?, Double?, Int64, Int64, [String], [Double], [Int64], Int64).self)
        var latest: [StationFeature.Latest] = []
        for i in props.indices where i < results.count && i < times.count {
            latest.append(.init(property: props[i], value: results[i], startMicros: times[i]))
        }
        return (StationFeature(key: key, name: name, longitude: lon, latitude: lat, firstMicros: first, lastMicros: last, latest: latest), Int(count))
    }

    // MARK: Observations

    /// The ids among `stationIDs` of the stations that lie in one of `boxes` (GiST).
    package func stations(_ stationIDs: [Int64], within boxes: [BoundingBox]) async throws -> [Int64] {
        guard !stationIDs.isEmpty, !boxes.isEmpty else { return [] }
        var q = ObservationStore.Query()
        q.sql = "SELECT s.id FROM datenwerk.stations s WHERE s.id = ANY(\(q.bind(stationIDs))) AND (\(Self.intersects(&q, column: "s.geom", boxes))) ORDER BY s.id"
        return try await connections.rows(q.query).map { try $0.decode(Int64.self) }
    }

    /// A page of the pipeline's observations (of `stationIDs` only, when given) with a phenomenon start in
    /// `from`…`to` (inclusive, µs; nil: open), in primary key order.
    package func observations(
        pipeline: String, stationIDs: [Int64]?, from: Int64?, to: Int64?, position: Position<ObservationKey>?, limit: Int
    ) async throws -> Page<ObservationFeatureRow> {
        if let stationIDs, stationIDs.isEmpty { return Page(items: [], hasNext: false, hasPrevious: position != nil, numberMatched: 0) }
        var q = ObservationStore.Query()
        var descending = false
        var sql = Self.observationSelect(&q, pipeline: pipeline)
        if let stationIDs { sql += " AND o.station_id = ANY(\(q.bind(stationIDs)))" }
        if let from { sql += " AND o.phenomenon_start >= \(Self.time(&q, from))" }
        if let to { sql += " AND o.phenomenon_start <= \(Self.time(&q, to))" }
        switch position {
        case .after(let k): sql += " AND (\(ObservationStore.order)) > (\(q.bind(k.stationID)), \(q.bind(k.property)), \(Self.time(&q, k.startMicros)))"
        case .before(let k):
            sql += " AND (\(ObservationStore.order)) < (\(q.bind(k.stationID)), \(q.bind(k.property)), \(Self.time(&q, k.startMicros)))"
            descending = true
        case nil: break
        }
        sql += descending ? " ORDER BY o.station_id DESC, o.property DESC, o.phenomenon_start DESC" : " ORDER BY \(ObservationStore.order)"
        sql += " LIMIT \(q.bind(Int64(limit + 1)))"
        q.sql = sql
        let items = try await connections.rows(q.query).map(Self.observation)
        return Self.page(items, limit: limit, descending: descending, position: position != nil, matched: nil)
    }

    /// One observation of the pipeline by its key; nil when the pipeline has none there.
    package func observation(pipeline: String, key: ObservationKey) async throws -> ObservationFeatureRow? {
        var q = ObservationStore.Query()
        var sql = Self.observationSelect(&q, pipeline: pipeline)
        sql += " AND o.station_id = \(q.bind(key.stationID)) AND o.property = \(q.bind(key.property))"
        sql += " AND o.phenomenon_start = \(Self.time(&q, key.startMicros)) LIMIT 1"
        q.sql = sql
        return try await connections.rows(q.query).first.map(Self.observation)
    }

    private static func observationSelect(_ q: inout ObservationStore.Query, pipeline: String) -> String {
        let pipeline = q.bind(pipeline)
        let suppressed = q.bind(DatasetMetadata.suppressedQuality)
        return """
        SELECT o.station_id, o.property::text, (extract(epoch FROM o.phenomenon_start) * 1000000)::int8,
               (extract(epoch FROM o.phenomenon_end) * 1000000)::int8,
               CASE WHEN \(PrivacySQL.belowGate("o.result", pipeline: pipeline)) THEN 'NaN'::float8 ELSE o.result END,
               CASE WHEN \(PrivacySQL.belowGate("o.result", pipeline: pipeline)) THEN \(suppressed) ELSE o.quality END
        FROM datenwerk.observations o
        WHERE \(ObservationStore.runFilter(pipelineParameter: pipeline))
        """
    }

    private static func observation(_ row: PostgresRow) throws -> ObservationFeatureRow {
        let (station, property, start, end, result, quality) = try row.decode((Int64, String, Int64, Int64?, Double, String?).self)
        return ObservationFeatureRow(key: ObservationKey(stationID: station, property: property, startMicros: start), endMicros: end, result: result, quality: quality)
    }

    // MARK: Helpers

    private static func page<Item>(_ rows: [Item], limit: Int, descending: Bool, position: Bool, matched: Int?) -> Page<Item> {
        let more = rows.count > limit
        var items = Array(rows.prefix(limit))
        if descending {
            items.reverse()
            // Read backwards from a `before` position: the position itself follows the page.
            return Page(items: items, hasNext: true, hasPrevious: more, numberMatched: matched)
        }
        return Page(items: items, hasNext: more, hasPrevious: position, numberMatched: matched)
    }

    /// `ST_Intersects` of `column` with any of the boxes (CRS84 = EPSG:4326 axis order in PostGIS: lon, lat).
    private static func intersects(_ q: inout ObservationStore.Query, column: String, _ boxes: [BoundingBox]) -> String {
        boxes.map { b in
            let corners = [b.minLongitude, b.minLatitude, b.maxLongitude, b.maxLatitude].map { q.bind($0) }
            return "ST_Intersects(\(column), ST_MakeEnvelope(\(corners.joined(separator: ", ")), 4326))"
        }.joined(separator: " OR ")
    }

    private static func time(_ q: inout ObservationStore.Query, _ micros: Int64) -> String {
        "('epoch'::timestamptz + \(q.bind(micros)) * interval '1 microsecond')"
    }
}
