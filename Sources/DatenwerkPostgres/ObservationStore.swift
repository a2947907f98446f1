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
/// `runs.pipeline`); no extra column or migration. Downloads come series by series — ordered by (station row,
/// property, phenomenon start), the primary key's order — so PostgreSQL reads them from each monthly
/// partition's primary key and merges the partitions (Merge Append) without sorting: no index beyond the one
/// every load already maintains (docs/downloads.md). Time filters prune partitions and bound each index scan;
/// the page cursor is a position in the same key. Rows travel as one binary `record` cell each and are read in
/// place (`DownloadRowReader`).
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
    /// `chunkBytes`. Rows come from PostgreSQL through a cursor in pages of `pageRows`; the next page is
    /// fetched while this one is encoded (at most two pages in memory, and the client's pace still sets how
    /// far the cursor runs ahead), so memory stays constant whatever the size. Only the observation columns
    /// travel per row, read straight from their binary form (`DownloadRowReader`); a station's and a
    /// property's parts of a row are encoded once (from `snapshot`; a station or property newer than it is
    /// looked up once). A value the dataset's privacy gate suppresses (`DatasetMetadata.suppresses`) is
    /// written as missing, with the quality `suppressed`. Returns the number of rows written.
    @discardableResult
    package func writeObservations(
        _ dataset: DatasetMetadata, snapshot: DatasetSnapshot, filter: ObservationFilter, through: ObservationCursor? = nil,
        encoder: ObservationEncoder, next: String? = nil, chunkBytes: Int = 64 * 1024, opened: OpenCursor? = nil,
        write: (ByteBuffer) async throws -> Void
    ) async throws -> Int {
        let known = Dictionary(snapshot.stations.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let units = Dictionary(snapshot.facts.properties.map { ($0.key, $0.unit) }, uniquingKeysWith: { first, _ in first })
        var encoder = encoder
        var reader = DownloadRowReader()
        var stations: [Int64: ObservationEncoder.Station] = [:]
        var lastStationID = Int64.min   // rows come series by series: look up only when the station changes
        var lastStation = encoder.station(key: "", name: nil, longitude: nil, latitude: nil)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(chunkBytes + 4096)
        encoder.writeHeader(into: &bytes)
        let cursor: OpenCursor
        if let opened { cursor = opened } else { cursor = try await open(pipeline: dataset.pipeline, filter: filter, through: through) }
        let connection = cursor.lease.connection
        let logger = connections.logger
        let pageRows = self.pageRows
        let fetch = PostgresQuery(unsafeSQL: "FETCH \(pageRows) FROM datenwerk_download")
        @Sendable func fetchPage() -> Task<[PostgresRow], any Error> {
            Task { try await connection.collect(fetch, logger: logger) }
        }
        var pending: Task<[PostgresRow], any Error>? = fetchPage()
        var count = 0
        do {
            while let page = pending {
                let rows = try await page.value
                pending = rows.count < pageRows ? nil : fetchPage()
                // By index: the rows are read in place (iterating made a copy of each, retained and released).
                for index in rows.indices {
                    var cells = try reader.read(rows[index])
                    if cells.stationID != lastStationID {
                        if let parts = stations[cells.stationID] {
                            lastStation = parts
                        } else {
                            let place: DatasetStation
                            if let found = known[cells.stationID] { place = found } else { place = try await station(cells.stationID, on: connection) }
                            lastStation = encoder.station(key: place.key, name: place.name, longitude: place.longitude, latitude: place.latitude)
                            stations[cells.stationID] = lastStation
                        }
                        lastStationID = cells.stationID
                    }
                    if cells.property < 0 {
                        let key = reader.newPropertyKey
                        let unit: String
                        if let found = units[key] { unit = found } else { unit = try await self.unit(key, on: connection) }
                        cells.property = reader.addProperty(encoder.property(key: key, unit: unit))
                    }
                    // The privacy gate (docs/privacy.md): a value below `min_count` is written as missing
                    // (empty cell, JSON null) with the quality `suppressed`; the row stays.
                    if dataset.suppresses(cells.value) {
                        cells.value = .nan
                        cells.quality = DatasetMetadata.suppressedQuality
                    }
                    encoder.write(station: lastStation, property: reader.property(cells),
                                  startMicros: cells.startMicros, endMicros: cells.endMicros, value: cells.value, quality: cells.quality,
                                  into: &bytes)
                    count += 1
                    if bytes.count >= chunkBytes {
                        try await write(ByteBuffer(bytes: bytes))
                        bytes.removeAll(keepingCapacity: true)
                    }
                }
            }
            _ = try await connection.collect("COMMIT", logger: logger)
            cursor.lease.release(reusable: true)
        } catch {
            // The transaction is left with its connection, which is closed (a client that went away mid-body).
            pending?.cancel()
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
    /// body that breaks off. One statement read through a cursor in pages: the partitions' primary keys are
    /// merged once, each FETCH is read whole (never the row stream), and the client's pace sets when the next
    /// page is fetched. JIT is off for the download: its plan is a plain index scan per partition, and above
    /// `jit_optimize_above_cost` (about 5M rows) compiling it took longer than it saves (0.94 s of compiling
    /// measured on a 1M-row download that runs in 0.54 s without).
    package func open(pipeline: String, filter: ObservationFilter, through: ObservationCursor?) async throws -> OpenCursor {
        let lease = try await connections.lease()
        do {
            let logger = connections.logger
            _ = try await lease.connection.collect("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ", logger: logger)
            _ = try await lease.connection.collect("SET LOCAL jit = off", logger: logger)
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

    /// The download order: the primary key's, (station row, property, phenomenon start) — series by series,
    /// each in time order. Every partition's primary key index gives its rows in this order, so PostgreSQL
    /// merges the partitions instead of sorting (measured on 1M rows: 0.54 s against 1.75 s for the former
    /// time order's sort; an index in time order would have cost every load ~3 s of index CPU per 1M rows).
    static let order = "o.station_id, o.property, o.phenomenon_start"

    /// The rows of the pipeline's runs: a hashed subplan (one hash of the pipeline's run ids per partition
    /// scanned). `IS TRUE` keeps PostgreSQL from turning the `IN` into a join: a hash join gives up the index
    /// order (a Sort of the whole download follows), a nested loop compares each row with every run.
    /// A NULL `run_id` is not true either, as before.
    static func runFilter(pipelineParameter: String) -> String {
        "(o.run_id IN (SELECT id FROM datenwerk.runs WHERE pipeline = \(pipelineParameter))) IS TRUE"
    }

    /// The rows (or only their keys) of a pipeline that pass `filter`, in download order (`order`).
    static func selection(pipeline: String, filter: ObservationFilter, through: ObservationCursor?, keysOnly: Bool) -> Query {
        var q = Query()
        func time(_ value: Int64) -> String { "('epoch'::timestamptz + \(q.bind(value)) * interval '1 microsecond')" }
        func bind<T: PostgresDynamicTypeEncodable>(_ value: T) -> String { q.bind(value) }
        var sql: String
        let joinStations = !filter.stations.isEmpty || filter.bbox != nil
        if keysOnly {
            sql = "SELECT o.phenomenon_start, o.station_id, o.property FROM datenwerk.observations o"
        } else {
            sql = "SELECT \(DownloadRowReader.rowSQL) FROM datenwerk.observations o"
        }
        if joinStations { sql += " JOIN datenwerk.stations s ON s.id = o.station_id" }
        sql += " WHERE " + runFilter(pipelineParameter: bind(pipeline))
        if let from = filter.from { sql += " AND o.phenomenon_start >= \(time(from))" }
        if let to = filter.to { sql += " AND o.phenomenon_start < \(time(to))" }
        if !filter.stations.isEmpty { sql += " AND s.key = ANY(\(bind(filter.stations)))" }
        if !filter.properties.isEmpty { sql += " AND o.property = ANY(\(bind(filter.properties)))" }
        if let box = filter.bbox {
            let corners = [box.minLongitude, box.minLatitude, box.maxLongitude, box.maxLatitude].map { bind($0) }
            sql += " AND s.geom && ST_MakeEnvelope(\(corners.joined(separator: ", ")), 4326)"
        }
        // Row comparisons in the key's order: each partition's index scan starts right after the cursor and
        // stops after the page end.
        if let after = filter.cursor {
            sql += " AND (\(order)) > (\(bind(after.stationID)), \(bind(after.property)), \(time(after.startMicros)))"
        }
        if let end = through {
            sql += " AND (\(order)) <= (\(bind(end.stationID)), \(bind(end.property)), \(time(end.startMicros)))"
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

/// Reads the rows of a download's cursor straight from their binary form, without postgres-nio's generic
/// per-cell decoding. The cursor sends each row as one `record` cell, `ROW(station_id int8, property text,
/// phenomenon_start timestamptz, phenomenon_end timestamptz, result float8, quality text)`: one cell per row
/// instead of six (postgres-nio makes a `PostgresCell` per cell, with its column's name and a slice of the
/// row), read here as PostgreSQL's binary record — a field count, then per field its type oid, its length
/// (-1: NULL) and its bytes. A row of any other shape is an error. Properties are matched by their bytes
/// against the ones seen before (a download has few), so no `String` is made per row.
struct DownloadRowReader {
    struct Cells {
        var stationID: Int64
        /// Index of the property among those seen (`property(_:)`), or -1 for a new one (`newPropertyKey`).
        var property: Int
        var startMicros: Int64
        var endMicros: Int64?
        var value: Double
        var quality: String?
    }

    /// The row expression of the cursor's statement, in the order `read` expects.
    static let rowSQL = "ROW(o.station_id, o.property, o.phenomenon_start, o.phenomenon_end, o.result, o.quality)"
    /// The fields' type oids: int8, text, timestamptz, timestamptz, float8, text.
    static let oids: (Int32, Int32, Int32, Int32, Int32, Int32) = (20, 25, 1184, 1184, 701, 25)

    private var propertyKeys: [[UInt8]] = []
    private var properties: [ObservationEncoder.Property] = []
    private var last = 0
    /// The key of the property a row reported as new (`Cells.property == -1`).
    private(set) var newPropertyKey = ""

    /// The encoded parts of the row's property.
    func property(_ cells: Cells) -> ObservationEncoder.Property { properties[cells.property] }

    /// Adds the parts of `newPropertyKey` and returns their index; the next row with those bytes finds them.
    @discardableResult
    mutating func addProperty(_ parts: ObservationEncoder.Property) -> Int {
        propertyKeys.append(Array(newPropertyKey.utf8))
        properties.append(parts)
        last = properties.count - 1
        return last
    }

    mutating func read(_ row: PostgresRow) throws -> Cells {
        guard row.count == 1, let cell = row.first, cell.dataType == .record, cell.format == .binary, let bytes = cell.bytes else {
            throw DownloadRowShape(column: 0)
        }
        return try bytes.withUnsafeReadableBytes { raw in try read(record: raw) }
    }

    @inline(__always)
    private static func int32(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> Int32 {
        Int32(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self))
    }

    @inline(__always)
    private static func int64(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> Int64 {
        Int64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int64.self))
    }

    /// The header of field `column` at `offset` (moved past it): its length, -1 for NULL. Checks the type
    /// oid, that the bytes are there, and 8 bytes for the fixed-width types.
    @inline(__always)
    private static func field(_ raw: UnsafeRawBufferPointer, _ offset: inout Int, oid: Int32, column: Int) throws -> Int {
        guard offset + 8 <= raw.count, int32(raw, offset) == oid else { throw DownloadRowShape(column: column) }
        let length = Int(int32(raw, offset + 4))
        offset += 8
        guard length >= -1, offset + max(length, 0) <= raw.count, oid == oids.1 || length == -1 || length == 8 else {
            throw DownloadRowShape(column: column)
        }
        return length
    }

    private mutating func read(record raw: UnsafeRawBufferPointer) throws -> Cells {
        guard raw.count >= 4 else { throw DownloadRowShape(column: 0) }
        let count = Int(Self.int32(raw, 0))
        guard count == 6 else { throw DownloadRowShape(column: min(max(count, 0), 6)) }
        var offset = 4
        guard try Self.field(raw, &offset, oid: Self.oids.0, column: 0) == 8 else { throw DownloadRowShape(column: 0) }
        let stationID = Self.int64(raw, offset)
        offset += 8
        let propertyLength = try Self.field(raw, &offset, oid: Self.oids.1, column: 1)
        guard propertyLength >= 0 else { throw DownloadRowShape(column: 1) }
        let property = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + propertyLength)])
        offset += propertyLength
        guard try Self.field(raw, &offset, oid: Self.oids.2, column: 2) == 8, let startMicros = Self.micros(Self.int64(raw, offset)) else {
            throw DownloadRowShape(column: 2)
        }
        offset += 8
        var endMicros: Int64?
        if try Self.field(raw, &offset, oid: Self.oids.3, column: 3) == 8 {
            guard let micros = Self.micros(Self.int64(raw, offset)) else { throw DownloadRowShape(column: 3) }
            endMicros = micros
            offset += 8
        }
        guard try Self.field(raw, &offset, oid: Self.oids.4, column: 4) == 8 else { throw DownloadRowShape(column: 4) }
        let value = Double(bitPattern: UInt64(bitPattern: Self.int64(raw, offset)))
        offset += 8
        let qualityLength = try Self.field(raw, &offset, oid: Self.oids.5, column: 5)
        let quality = qualityLength < 0 ? nil : String(decoding: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + qualityLength)]), as: UTF8.self)
        let propertyIndex = find(property)
        if propertyIndex < 0 { newPropertyKey = String(decoding: property, as: UTF8.self) }
        return Cells(stationID: stationID, property: propertyIndex, startMicros: startMicros, endMicros: endMicros, value: value, quality: quality)
    }

    /// A binary `timestamptz` (µs since 2000-01-01 UTC) as µs since 1970.
    @inline(__always)
    static func micros(_ since2000: Int64) -> Int64? {
        // ±infinity (Int64.max / .min) is no time to write; the loader never stores it.
        guard since2000 != .max, since2000 != .min else { return nil }
        return since2000 + UTCMicros.epoch2000
    }

    private mutating func find(_ raw: UnsafeRawBufferPointer) -> Int {
        func matches(_ key: [UInt8]) -> Bool {
            key.withUnsafeBytes { key in key.count == raw.count && (raw.count == 0 || memcmp(key.baseAddress!, raw.baseAddress!, raw.count) == 0) }
        }
        if last < propertyKeys.count, matches(propertyKeys[last]) { return last }
        for i in propertyKeys.indices where matches(propertyKeys[i]) {
            last = i
            return i
        }
        return -1
    }
}

/// A download's cursor gave a row of another shape than `DownloadRowReader` reads (a schema change).
struct DownloadRowShape: Error, Equatable, CustomStringConvertible {
    var column: Int
    var description: String { "a download row has an unexpected type or format in column \(column + 1)" }
}
