import DatenwerkCore
import DatenwerkPublishing
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// When a dataset last changed, from its pipeline's runs.
package struct DatasetState: Sendable, Hashable {
    /// The id of the newest run that inserted or changed observations; 0 when none has.
    package var version: Int64
    /// When that run finished (µs since 1970): `Last-Modified`, `dct:modified`.
    package var lastModifiedMicros: Int64?
    /// When the first run that inserted observations finished: `dct:issued`.
    package var firstLoadedMicros: Int64?

    package init(version: Int64 = 0, lastModifiedMicros: Int64? = nil, firstLoadedMicros: Int64? = nil) {
        self.version = version
        self.lastModifiedMicros = lastModifiedMicros
        self.firstLoadedMicros = firstLoadedMicros
    }
}

/// A station that has observations in a dataset.
package struct DatasetStation: Sendable, Hashable {
    package var id: Int64
    package var key: String
    package var name: String?
    package var longitude: Double?
    package var latitude: Double?
}

/// What the data says about one dataset at one state: the facts the catalog shows and the stations.
package struct DatasetSnapshot: Sendable {
    package var state: DatasetState
    package var facts: DatasetFacts
    package var stations: [DatasetStation]

    /// The located stations, for the catalog page's map.
    package var stationPoints: [StationPoint] {
        stations.compactMap { s in
            guard let lon = s.longitude, let lat = s.latitude else { return nil }
            return StationPoint(key: s.key, name: s.name, longitude: lon, latitude: lat)
        }
    }
}

/// Reads published datasets from PostgreSQL: their state and facts (cached per state) and their
/// observations as a stream of encoded bytes, for the server's downloads and `datenwerk export`.
///
/// A dataset's observations are the rows last written by a run of its pipeline (`observations.run_id` →
/// `runs.pipeline`, a hashed semi-join on the runs index); no extra column or migration. Downloads are
/// ordered by (phenomenon start, station row, property): time filters prune monthly partitions and use
/// their time index; a whole dataset is sorted by PostgreSQL (1.04M rows: ~3.5 s, outside our memory).
///
/// Every statement goes through `ServerConnections`: a bounded wait for a connection (503 when the database is
/// away) and rows read whole per statement; downloads FETCH pages of `pageRows` rows from a cursor, so a backend
/// that dies mid-download breaks the body off instead of trapping in postgres-nio's row stream.
package final class ObservationStore: Sendable {
    package let connections: ServerConnections
    private let cache = Mutex<[String: DatasetSnapshot]>([:])
    /// Rows per statement of a download (memory: about this many rows at once).
    package let pageRows: Int

    package init(connections: ServerConnections, pageRows: Int = 4000) {
        self.connections = connections
        self.pageRows = max(1, pageRows)
    }

    // MARK: State and facts

    /// The state of every pipeline named (missing: never loaded anything).
    package func states(pipelines: [String]) async throws -> [String: DatasetState] {
        guard !pipelines.isEmpty else { return [:] }
        let rows = try await connections.rows("""
            SELECT pipeline, max(id)::int8,
                   (extract(epoch FROM max(finished_at)) * 1000000)::int8,
                   (extract(epoch FROM min(finished_at) FILTER (WHERE inserted > 0)) * 1000000)::int8
            FROM datenwerk.runs
            WHERE pipeline = ANY(\(pipelines)) AND status = 'succeeded' AND (inserted > 0 OR updated > 0)
            GROUP BY pipeline
            """)
        var states: [String: DatasetState] = [:]
        for row in rows {
            let (pipeline, version, last, first) = try row.decode((String, Int64, Int64?, Int64?).self)
            states[pipeline] = DatasetState(version: version, lastModifiedMicros: last, firstLoadedMicros: first)
        }
        return states
    }

    package func state(pipeline: String) async throws -> DatasetState {
        try await states(pipelines: [pipeline])[pipeline] ?? DatasetState()
    }

    /// The snapshots of `datasets` at their current states, in the same order.
    package func snapshots(_ datasets: [DatasetMetadata]) async throws -> [DatasetSnapshot] {
        let states = try await states(pipelines: datasets.map(\.pipeline))
        var result: [DatasetSnapshot] = []
        for dataset in datasets {
            result.append(try await snapshot(dataset, state: states[dataset.pipeline] ?? DatasetState()))
        }
        return result
    }

    /// The facts and stations of a dataset at `state`; computed once per state (one grouped scan of its rows).
    package func snapshot(_ dataset: DatasetMetadata, state: DatasetState) async throws -> DatasetSnapshot {
        if let cached = cache.withLock({ $0[dataset.pipeline] }), cached.state == state { return cached }
        let snapshot = try await computeSnapshot(pipeline: dataset.pipeline, state: state)
        cache.withLock { $0[dataset.pipeline] = snapshot }
        return snapshot
    }

    private func computeSnapshot(pipeline: String, state: DatasetState) async throws -> DatasetSnapshot {
        var facts = DatasetFacts(lastModifiedMicros: state.lastModifiedMicros, firstLoadedMicros: state.firstLoadedMicros)
        guard state.version > 0 else { return DatasetSnapshot(state: state, facts: facts, stations: []) }
        let series = try await connections.rows("""
            SELECT o.station_id, o.property, count(*)::int8,
                   (extract(epoch FROM min(o.phenomenon_start)) * 1000000)::int8,
                   (extract(epoch FROM max(coalesce(o.phenomenon_end, o.phenomenon_start))) * 1000000)::int8
            FROM datenwerk.observations o
            WHERE o.run_id IN (SELECT id FROM datenwerk.runs WHERE pipeline = \(pipeline))
            GROUP BY o.station_id, o.property
            """)
        var stationIDs: Set<Int64> = []
        var propertyKeys: Set<String> = []
        for row in series {
            let (station, property, count, first, last) = try row.decode((Int64, String, Int64, Int64, Int64).self)
            stationIDs.insert(station)
            propertyKeys.insert(property)
            facts.observationCount += Int(count)
            facts.firstMicros = min(facts.firstMicros ?? first, first)
            facts.lastMicros = max(facts.lastMicros ?? last, last)
        }
        var stations: [DatasetStation] = []
        if !stationIDs.isEmpty {
            let rows = try await connections.rows("""
                SELECT id, key, name, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom))
                FROM datenwerk.stations WHERE id = ANY(\(Array(stationIDs))) ORDER BY key
                """)
            for row in rows {
                let (id, key, name, lon, lat) = try row.decode((Int64, String, String?, Double?, Double?).self)
                stations.append(DatasetStation(id: id, key: key, name: name, longitude: lon, latitude: lat))
            }
        }
        facts.stationCount = stations.count
        facts.bbox = BoundingBox(points: stations.compactMap { s in s.longitude.flatMap { lon in s.latitude.map { (longitude: lon, latitude: $0) } } })
        if !propertyKeys.isEmpty {
            let rows = try await connections.rows("""
                SELECT key, unit, label_de, label_en FROM datenwerk.observed_properties WHERE key = ANY(\(Array(propertyKeys))) ORDER BY key
                """)
            for row in rows {
                let (key, unit, de, en) = try row.decode((String, String, String, String).self)
                facts.properties.append(.init(key: key, unit: unit, labelDE: de, labelEN: en))
            }
        }
        return DatasetSnapshot(state: state, facts: facts, stations: stations)
    }

    // MARK: Observations

    /// For a filter with `limit`: the key of the page's last row when more rows follow it, else nil.
    package func pageEnd(pipeline: String, filter: ObservationFilter) async throws -> ObservationCursor? {
        guard let limit = filter.limit else { return nil }
        var q = Self.selection(pipeline: pipeline, filter: filter, through: nil, keysOnly: true)
        let offset = q.bind(Int64(limit - 1))
        q.sql += " OFFSET \(offset) LIMIT 2"
        var keys: [ObservationCursor] = []
        for row in try await connections.rows(q.query) {
            let (start, station, property) = try row.decode((UTCMicros, Int64, String).self)
            keys.append(ObservationCursor(startMicros: start.value, stationID: station, property: property))
        }
        return keys.count == 2 ? keys[0] : nil
    }

    /// Streams the observations of `dataset` that pass `filter` (up to and including `through`, the page
    /// end) through `encoder` — header, rows, footer with `next` — handing `write` chunks of about
    /// `chunkBytes`. Rows come from PostgreSQL through a cursor in pages of `pageRows` (the next page is
    /// fetched when the client has taken the previous one), so memory stays constant whatever the size. Only the observation columns travel per row; station
    /// names, positions and units come from `snapshot` (a station or property newer than it is looked up
    /// once). Returns the number of rows written.
    @discardableResult
    package func writeObservations(
        _ dataset: DatasetMetadata, snapshot: DatasetSnapshot, filter: ObservationFilter, through: ObservationCursor? = nil,
        encoder: ObservationEncoder, next: String? = nil, chunkBytes: Int = 64 * 1024, opened: OpenCursor? = nil,
        write: (ByteBuffer) async throws -> Void
    ) async throws -> Int {
        var stations = Dictionary(snapshot.stations.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var units = Dictionary(snapshot.facts.properties.map { ($0.key, $0.unit) }, uniquingKeysWith: { first, _ in first })
        var encoder = encoder
        var bytes: [UInt8] = []
        bytes.reserveCapacity(chunkBytes + 4096)
        encoder.writeHeader(into: &bytes)
        let cursor: OpenCursor
        if let opened { cursor = opened } else { cursor = try await open(pipeline: dataset.pipeline, filter: filter, through: through) }
        let connection = cursor.lease.connection
        let logger = connections.logger
        var count = 0
        do {
            let fetch = PostgresQuery(unsafeSQL: "FETCH \(pageRows) FROM datenwerk_download")
            while true {
                let rows = try await connection.collect(fetch, logger: logger)
                for row in rows {
                    let (stationID, property, start, end, value, quality) = try row.decode((Int64, String, UTCMicros, UTCMicros?, Double, String?).self)
                    if stations[stationID] == nil { stations[stationID] = try await station(stationID, on: connection) }
                    if units[property] == nil { units[property] = try await unit(property, on: connection) }
                    let place = stations[stationID]!
                    encoder.write(ObservationRow(stationKey: place.key, stationName: place.name, property: property, unit: units[property]!,
                                                 startMicros: start.value, endMicros: end?.value, value: value, quality: quality,
                                                 longitude: place.longitude, latitude: place.latitude), into: &bytes)
                    count += 1
                    if bytes.count >= chunkBytes {
                        try await write(ByteBuffer(bytes: bytes))
                        bytes.removeAll(keepingCapacity: true)
                    }
                }
                if rows.count < pageRows { break }
            }
            _ = try await connection.collect("COMMIT", logger: logger)
            cursor.lease.release(reusable: true)
        } catch {
            // The transaction is left with its connection, which is closed (a client that went away mid-body).
            cursor.lease.release(reusable: false)
            throw error
        }
        encoder.writeFooter(into: &bytes, next: next)
        if !bytes.isEmpty { try await write(ByteBuffer(bytes: bytes)) }
        return count
    }

    /// A download's statement, declared as a cursor in a read-only transaction on a leased connection.
    package struct OpenCursor: Sendable {
        let lease: ServerConnections.Lease
    }

    /// Opens the cursor of a download before its answer is sent, so an unreachable database is a 503, not a
    /// body that breaks off. One statement read through a cursor in pages: PostgreSQL sorts once (a page per
    /// statement would sort the rest of the dataset for every page), each FETCH is read whole (never the row
    /// stream), and the client's pace sets when the next page is fetched.
    package func open(pipeline: String, filter: ObservationFilter, through: ObservationCursor?) async throws -> OpenCursor {
        let lease = try await connections.lease()
        do {
            let logger = connections.logger
            _ = try await lease.connection.collect("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ", logger: logger)
            var declare = Self.selection(pipeline: pipeline, filter: filter, through: through, keysOnly: false).query
            declare.sql = "DECLARE datenwerk_download NO SCROLL CURSOR FOR " + declare.sql
            _ = try await lease.connection.collect(declare, logger: logger)
            return OpenCursor(lease: lease)
        } catch {
            lease.release(reusable: false)
            throw error
        }
    }

    private func station(_ id: Int64, on connection: GuardedConnection) async throws -> DatasetStation {
        let rows = try await connection.collect("""
            SELECT key, name, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM datenwerk.stations WHERE id = \(id)
            """, logger: connections.logger)
        for row in rows {
            let (key, name, lon, lat) = try row.decode((String, String?, Double?, Double?).self)
            return DatasetStation(id: id, key: key, name: name, longitude: lon, latitude: lat)
        }
        return DatasetStation(id: id, key: "station-\(id)", name: nil, longitude: nil, latitude: nil)
    }

    private func unit(_ property: String, on connection: GuardedConnection) async throws -> String {
        for row in try await connection.collect("SELECT unit FROM datenwerk.observed_properties WHERE key = \(property)", logger: connections.logger) {
            return try row.decode(String.self)
        }
        return ""
    }

    /// SQL with numbered binds, built clause by clause.
    struct Query {
        var sql = ""
        var binds = PostgresBindings()

        mutating func bind<T: PostgresDynamicTypeEncodable>(_ value: T) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }

        var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
    }

    static let order = "o.phenomenon_start, o.station_id, o.property"

    /// The rows (or only their keys) of a pipeline that pass `filter`, in download order.
    static func selection(pipeline: String, filter: ObservationFilter, through: ObservationCursor?, keysOnly: Bool) -> Query {
        var q = Query()
        func time(_ value: Int64) -> String { "('epoch'::timestamptz + \(q.bind(value)) * interval '1 microsecond')" }
        func bind<T: PostgresDynamicTypeEncodable>(_ value: T) -> String { q.bind(value) }
        var sql: String
        let joinStations = !filter.stations.isEmpty || filter.bbox != nil
        if keysOnly {
            sql = "SELECT o.phenomenon_start, o.station_id, o.property FROM datenwerk.observations o"
        } else {
            sql = "SELECT o.station_id, o.property, o.phenomenon_start, o.phenomenon_end, o.result, o.quality FROM datenwerk.observations o"
        }
        if joinStations { sql += " JOIN datenwerk.stations s ON s.id = o.station_id" }
        sql += " WHERE o.run_id IN (SELECT id FROM datenwerk.runs WHERE pipeline = \(bind(pipeline)))"
        if let from = filter.from { sql += " AND o.phenomenon_start >= \(time(from))" }
        if let to = filter.to { sql += " AND o.phenomenon_start < \(time(to))" }
        if !filter.stations.isEmpty { sql += " AND s.key = ANY(\(bind(filter.stations)))" }
        if !filter.properties.isEmpty { sql += " AND o.property = ANY(\(bind(filter.properties)))" }
        if let box = filter.bbox {
            let corners = [box.minLongitude, box.minLatitude, box.maxLongitude, box.maxLatitude].map { bind($0) }
            sql += " AND s.geom && ST_MakeEnvelope(\(corners.joined(separator: ", ")), 4326)"
        }
        if let after = filter.cursor {
            let start = time(after.startMicros)
            // The first condition lets the time index start at the cursor; the second is the exact order.
            sql += " AND o.phenomenon_start >= \(start) AND (\(order)) > (\(start), \(bind(after.stationID)), \(bind(after.property)))"
        }
        if let end = through {
            let start = time(end.startMicros)
            sql += " AND o.phenomenon_start <= \(start) AND (\(order)) <= (\(start), \(bind(end.stationID)), \(bind(end.property)))"
        }
        sql += " ORDER BY \(order)"
        if !keysOnly, let limit = filter.limit { sql += " LIMIT \(bind(Int64(limit)))" }
        q.sql = sql
        return q
    }
}

/// A `timestamptz` as microseconds since 1970, read from PostgreSQL's binary form (µs since 2000) without
/// going through `Date` (a `Double`, which cannot hold every microsecond of today's dates).
struct UTCMicros: PostgresDecodable {
    var value: Int64

    static let epoch2000: Int64 = 946_684_800_000_000

    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard type == .timestamptz || type == .timestamp else { throw PostgresDecodingError.Code.typeMismatch }
        guard format == .binary, buffer.readableBytes == 8, let micros = buffer.readInteger(as: Int64.self) else {
            throw PostgresDecodingError.Code.failure
        }
        value = micros + Self.epoch2000
    }
}
