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
/// every load already maintains (docs/bench.md, "The download order"). Time filters prune partitions and bound
/// each index scan; the page cursor is a position in the same key. Rows travel as a row per series and page
/// with a binary array per column, read in place (`DownloadRowReader`).
///
/// Every statement goes through `ServerConnections`: a bounded wait for a connection (503 when the database is
/// away) and rows read whole per statement; a download is a sequence of page statements in one read-only
/// transaction, each starting after the previous page's last key, so a backend that dies mid-download breaks
/// the body off instead of trapping in postgres-nio's row stream.
package final class ObservationStore: Sendable {
    package let connections: ServerConnections
    private let cache = Mutex<[String: DatasetSnapshot]>([:])
    /// Rows of a download's largest page (memory: about twice this many rows at once, ~100 bytes each). Pages
    /// start at `firstPageRows` (the first page is read before the answer starts) and double up to this size.
    /// Each page is a statement: PostgreSQL plans it and starts an index scan on every partition. Measured on
    /// the bench's 1M rows (CSV, seconds, six arrays a page): pages of 4,096 rows 1.14, 16,384 0.95, 65,536 0.90;
    /// a row per series with four arrays then 0.66.
    package let pageRows: Int
    static let firstPageRows = 4096

    package init(connections: ServerConnections, pageRows: Int = 65536) {
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
    /// `chunkBytes`. Rows come from PostgreSQL in pages of at most `pageRows`, each one statement that answers
    /// with a row per series in the page and a binary array per column (`DownloadRowReader`), so postgres-nio
    /// handles a few messages per page instead of one per observation. The next page (the rows after this page's last key) is
    /// fetched while this one is encoded: at most two pages in memory, and the client's pace still sets how far
    /// the reading runs ahead, so memory stays constant whatever the size. A station's and a property's parts
    /// of a row are encoded once (from `snapshot`; a station or property newer than it is looked up once). A
    /// value the dataset's privacy gate suppresses (`DatasetMetadata.suppresses`) is written as missing, with
    /// the quality `suppressed`. Returns the number of rows written.
    @discardableResult
    package func writeObservations(
        _ dataset: DatasetMetadata, snapshot: DatasetSnapshot, filter: ObservationFilter, through: ObservationCursor? = nil,
        encoder: ObservationEncoder, next: String? = nil, chunkBytes: Int = 64 * 1024, opened: OpenDownload? = nil,
        write: (ByteBuffer) async throws -> Void
    ) async throws -> Int {
        let known = Dictionary(snapshot.stations.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let units = Dictionary(snapshot.facts.properties.map { ($0.key, $0.unit) }, uniquingKeysWith: { first, _ in first })
        var encoder = encoder
        var reader = DownloadRowReader()
        var properties: [ObservationEncoder.Property] = []
        var stations: [Int64: ObservationEncoder.Station] = [:]
        var lastStationID = Int64.min   // rows come series by series: look up only when the station changes
        var lastStation = encoder.station(key: "", name: nil, longitude: nil, latitude: nil)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(chunkBytes + 4096)
        encoder.writeHeader(into: &bytes)
        let download: OpenDownload
        if let opened { download = opened } else { download = try await open(pipeline: dataset.pipeline, filter: filter, through: through) }
        let connection = download.lease.connection
        let logger = connections.logger
        @Sendable func fetch(_ query: PostgresQuery) -> Task<[PostgresRow], any Error> {
            Task { try await connection.collect(query, logger: logger) }
        }
        var pending: Task<[PostgresRow], any Error>? = Task { download.first }
        var asked = download.firstLimit
        var remaining = filter.limit.map { $0 - asked }
        var page: [DownloadRowReader.Cells] = []
        var count = 0
        do {
            while let task = pending {
                try reader.read(page: try await task.value, into: &page)
                pending = nil
                // A full page: the rows after its last key come next (a shorter one was the last).
                if page.count == asked, let last = page.last, remaining.map({ $0 > 0 }) ?? true {
                    asked = min(pageRows, asked * 2, remaining ?? .max)
                    remaining = remaining.map { $0 - asked }
                    var after = filter
                    after.cursor = ObservationCursor(startMicros: last.startMicros, stationID: last.stationID, property: reader.propertyKeys[last.property])
                    after.limit = asked
                    pending = fetch(Self.page(pipeline: dataset.pipeline, filter: after, through: through).query)
                }
                while properties.count < reader.propertyKeys.count {
                    let key = reader.propertyKeys[properties.count]
                    let unit: String
                    if let found = units[key] { unit = found } else { unit = try await self.unit(key, on: connection) }
                    properties.append(encoder.property(key: key, unit: unit))
                }
                for index in page.indices {
                    if page[index].stationID != lastStationID {
                        let id = page[index].stationID
                        if let parts = stations[id] {
                            lastStation = parts
                        } else {
                            let place: DatasetStation
                            if let found = known[id] { place = found } else { place = try await station(id, on: connection) }
                            lastStation = encoder.station(key: place.key, name: place.name, longitude: place.longitude, latitude: place.latitude)
                            stations[id] = lastStation
                        }
                        lastStationID = id
                    }
                    var value = page[index].value
                    var quality = page[index].quality
                    // The privacy gate (docs/privacy.md): a value below `min_count` is written as missing
                    // (empty cell, JSON null) with the quality `suppressed`; the row stays.
                    if dataset.suppresses(value) {
                        value = .nan
                        quality = DatasetMetadata.suppressedQuality
                    }
                    encoder.write(station: lastStation, property: properties[page[index].property],
                                  startMicros: page[index].startMicros, endMicros: page[index].endMicros, value: value, quality: quality,
                                  into: &bytes)
                    count += 1
                    if bytes.count >= chunkBytes {
                        try await write(ByteBuffer(bytes: bytes))
                        bytes.removeAll(keepingCapacity: true)
                    }
                }
            }
            _ = try await connection.collect("COMMIT", logger: logger)
            download.lease.release(reusable: true)
        } catch {
            // The transaction is left with its connection, which is closed (a client that went away mid-body).
            pending?.cancel()
            download.lease.release(reusable: false)
            throw error
        }
        encoder.writeFooter(into: &bytes, next: next)
        if !bytes.isEmpty { try await write(ByteBuffer(bytes: bytes)) }
        return count
    }

    /// A download's read-only transaction on a leased connection, with its first page read.
    package struct OpenDownload: Sendable {
        let lease: ServerConnections.Lease
        /// The first page's answer, and the number of rows it asked for.
        let first: [PostgresRow]
        let firstLimit: Int
    }

    /// The download transaction's settings. No JIT (see `open`). No sort: every page has a plan that reads the
    /// partitions' primary keys in download order, and a page's `LIMIT` is a fraction of a large table, but when it
    /// is not (a small dataset, a page of 65,536 rows out of 100,000) the planner prefers reading everything and
    /// sorting it — for every page, each one reading the whole table again.
    static let downloadSettings = ["SET LOCAL jit = off", "SET LOCAL enable_sort = off"]

    /// Opens a download's transaction and reads its first page before the answer is sent, so an unreachable
    /// database (or a statement it refuses) is a 503, not a body that breaks off. The pages are statements
    /// of their own in one REPEATABLE READ transaction (one snapshot for the whole download), each read whole
    /// (never postgres-nio's row stream): a page starts right after the previous page's last key, so every
    /// partition's index scan starts there (`selection`). JIT is off for the download: its plan is a plain
    /// index scan per partition, and above `jit_optimize_above_cost` compiling it took longer than it saves
    /// (0.94 s of compiling measured on a 1M-row download that runs in 0.54 s without).
    package func open(pipeline: String, filter: ObservationFilter, through: ObservationCursor?) async throws -> OpenDownload {
        let lease = try await connections.lease()
        do {
            let logger = connections.logger
            _ = try await lease.connection.collect("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ", logger: logger)
            for setting in Self.downloadSettings { _ = try await lease.connection.collect(PostgresQuery(unsafeSQL: setting), logger: logger) }
            var first = filter
            first.limit = min(pageRows, Self.firstPageRows, filter.limit ?? .max)
            let rows = try await lease.connection.collect(Self.page(pipeline: pipeline, filter: first, through: through).query, logger: logger)
            return OpenDownload(lease: lease, first: rows, firstLimit: first.limit!)
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

    /// One page of a download: the rows of `selection` (with `filter.limit`, the page's size) as a row per series
    /// with an array per column, in download order (`DownloadRowReader`).
    static func page(pipeline: String, filter: ObservationFilter, through: ObservationCursor?) -> Query {
        var q = selection(pipeline: pipeline, filter: filter, through: through, keysOnly: false)
        q.sql = DownloadRowReader.pageSQL(from: q.sql)
        return q
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
            sql = "SELECT \(DownloadRowReader.columnsSQL) FROM datenwerk.observations o"
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

    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard type == .timestamptz || type == .timestamp else { throw PostgresDecodingError.Code.typeMismatch }
        guard format == .binary, buffer.readableBytes == 8, let micros = buffer.readInteger(as: Int64.self) else {
            throw PostgresDecodingError.Code.failure
        }
        value = micros + CopyBinary.epochMicros
    }
}

/// Reads the pages of a download straight from their binary form, without postgres-nio's generic per-cell
/// decoding. A page is one row per series in it (most pages: one or two): its station row id (int8) and
/// property (text), then one array per column of its observations in time order — `array_agg` of
/// phenomenon_start and phenomenon_end (timestamptz), result (float8) and quality (text) — in PostgreSQL's
/// binary array form: dimensions, a has-NULLs flag, the element type, per dimension its size and lower bound,
/// then per element its length (-1: NULL) and its bytes. A few messages per page instead of one per row:
/// postgres-nio makes a `DataRow` and a `PostgresCell` per cell, and that was over half of a download's CPU in
/// `serve`. (PostgreSQL builds and sends an array of row records at ~3 µs a row, six plain arrays at ~0.5 µs,
/// and these four per series at ~0.15 µs: the station and property once per series instead of per row.)
/// A page of any other shape is an error, and so is one whose rows are not in strictly increasing key order:
/// the next page starts after this one's last key, so a page out of order would lose or repeat rows.
/// Properties are matched by their bytes against the ones seen before (a download has few), so no `String` is
/// made per row.
struct DownloadRowReader {
    struct Cells {
        var stationID: Int64
        /// Index of the property in `propertyKeys`.
        var property: Int
        var startMicros: Int64
        var endMicros: Int64?
        var value: Double
        var quality: String?
    }

    /// The columns of a page's inner statement `o`, the page's rows in download order.
    static let columnsSQL = "o.station_id, o.property, o.phenomenon_start, o.phenomenon_end, o.result, o.quality"

    /// A page of the rows of `inner` (which selects `columnsSQL` in download order): a row per series.
    static func pageSQL(from inner: String) -> String {
        "SELECT o.station_id, o.property, array_agg(o.phenomenon_start), array_agg(o.phenomenon_end), array_agg(o.result), "
            + "array_agg(o.quality) FROM (\(inner)) o GROUP BY o.station_id, o.property ORDER BY o.station_id, o.property"
    }

    /// The types of a page row's cells, and the element type oids of its arrays (timestamptz, timestamptz, float8, text).
    static let types: [PostgresDataType] = [.int8, .text, .timestamptzArray, .timestamptzArray, .float8Array, .textArray]
    static let elementOIDs: [Int32] = [0, 0, 1184, 1184, 701, 25]

    /// The properties seen so far, in the order they were first seen (`Cells.property`).
    private(set) var propertyKeys: [String] = []
    private var propertyBytes: [[UInt8]] = []
    private var last = 0

    /// Reads a page's answer into `cells` (emptied first): no row is an empty page.
    mutating func read(page rows: [PostgresRow], into cells: inout [Cells]) throws {
        cells.removeAll(keepingCapacity: true)
        var row: [ByteBuffer] = []
        row.reserveCapacity(6)
        for page in rows {
            row.removeAll(keepingCapacity: true)
            for (index, cell) in page.enumerated() {
                guard index < 6, cell.format == .binary, cell.dataType == Self.types[index], let bytes = cell.bytes else {
                    throw DownloadRowShape(column: min(index, 6))
                }
                row.append(bytes)
            }
            guard row.count == 6 else { throw DownloadRowShape(column: row.count) }
            guard row[0].readableBytes == 8, let stationID = row[0].getInteger(at: row[0].readerIndex, as: Int64.self) else {
                throw DownloadRowShape(column: 0)
            }
            let property = row[1].withUnsafeReadableBytes { find($0) }
            if let previous = cells.last {
                let after = stationID > previous.stationID
                    || (stationID == previous.stationID && Self.less(propertyBytes[previous.property], propertyBytes[property]))
                guard after else { throw DownloadPageOrder() }
            }
            try row[2].withUnsafeReadableBytes { c2 in
                try row[3].withUnsafeReadableBytes { c3 in
                    try row[4].withUnsafeReadableBytes { c4 in
                        try row[5].withUnsafeReadableBytes { c5 in
                            try Self.read(series: stationID, property, arrays: (c2, c3, c4, c5), into: &cells)
                        }
                    }
                }
            }
        }
    }

    /// One column's array: its elements one after the other.
    private struct Elements {
        let raw: UnsafeRawBufferPointer
        let column: Int
        var offset: Int
        let count: Int

        /// Checks the header (one dimension of `count` elements of the column's type; no dimension: none).
        init(_ raw: UnsafeRawBufferPointer, column: Int) throws {
            self.raw = raw
            self.column = column
            guard raw.count >= 12, int32(raw, 8) == DownloadRowReader.elementOIDs[column] else { throw DownloadRowShape(column: column) }
            switch int32(raw, 0) {
            case 0:
                count = 0
                offset = 12
            case 1:
                // Every element takes at least its 4-byte length: a count beyond that is no array of these bytes
                // (and must not size an allocation).
                guard raw.count >= 20, int32(raw, 12) >= 0, Int(int32(raw, 12)) <= (raw.count - 20) / 4 else {
                    throw DownloadRowShape(column: column)
                }
                count = Int(int32(raw, 12))
                offset = 20
            default: throw DownloadRowShape(column: column)
            }
        }

        /// The next element's length (-1: NULL; the bytes are there) and where its bytes start.
        @inline(__always)
        mutating func next() throws -> (start: Int, length: Int) {
            guard offset + 4 <= raw.count else { throw DownloadRowShape(column: column) }
            let length = Int(int32(raw, offset))
            let start = offset + 4
            guard length >= -1, start + max(length, 0) <= raw.count else { throw DownloadRowShape(column: column) }
            offset = start + max(length, 0)
            return (start, length)
        }

        /// The next element, which must be 8 bytes (timestamptz, float8); nil for NULL.
        @inline(__always)
        mutating func next8() throws -> Int64? {
            let (start, length) = try next()
            if length == -1 { return nil }
            guard length == 8 else { throw DownloadRowShape(column: column) }
            return int64(raw, start)
        }

        var atEnd: Bool { offset == raw.count }
    }

    /// The observations of one series in a page: its four arrays, element by element.
    private static func read(
        series stationID: Int64, _ property: Int,
        arrays: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer),
        into cells: inout [Cells]
    ) throws {
        var starts = try Elements(arrays.0, column: 2)
        var ends = try Elements(arrays.1, column: 3)
        var results = try Elements(arrays.2, column: 4)
        var qualities = try Elements(arrays.3, column: 5)
        let count = starts.count
        guard count > 0 else { throw DownloadRowShape(column: 2) }
        for (column, n) in [ends.count, results.count, qualities.count].enumerated() where n != count {
            throw DownloadRowShape(column: column + 3)
        }
        cells.reserveCapacity(cells.count + count)
        var previous = Int64.min
        for index in 0..<count {
            guard let start = try starts.next8(), let startMicros = micros(start) else { throw DownloadRowShape(column: 2) }
            guard index == 0 || startMicros > previous else { throw DownloadPageOrder() }
            previous = startMicros
            var endMicros: Int64?
            if let end = try ends.next8() {
                guard let micros = micros(end) else { throw DownloadRowShape(column: 3) }
                endMicros = micros
            }
            guard let result = try results.next8() else { throw DownloadRowShape(column: 4) }
            let (qualityStart, qualityLength) = try qualities.next()
            let quality = qualityLength < 0 ? nil
                : String(decoding: UnsafeRawBufferPointer(rebasing: qualities.raw[qualityStart..<(qualityStart + qualityLength)]), as: UTF8.self)
            cells.append(Cells(stationID: stationID, property: property, startMicros: startMicros, endMicros: endMicros,
                               value: Double(bitPattern: UInt64(bitPattern: result)), quality: quality))
        }
        for (column, atEnd) in [starts.atEnd, ends.atEnd, results.atEnd, qualities.atEnd].enumerated() where !atEnd {
            throw DownloadRowShape(column: column + 2)
        }
    }

    /// Byte order (`COLLATE "C"`, the property column's).
    private static func less(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.lexicographicallyPrecedes(b) }

    /// A binary `timestamptz` (µs since 2000-01-01 UTC) as µs since 1970.
    @inline(__always)
    static func micros(_ since2000: Int64) -> Int64? {
        // ±infinity (Int64.max / .min) is no time to write; the loader never stores it.
        guard since2000 != .max, since2000 != .min else { return nil }
        return since2000 + CopyBinary.epochMicros
    }

    /// The index of the property with these bytes in `propertyKeys`, added when new.
    private mutating func find(_ raw: UnsafeRawBufferPointer) -> Int {
        func matches(_ key: [UInt8]) -> Bool {
            key.withUnsafeBytes { key in key.count == raw.count && (raw.count == 0 || memcmp(key.baseAddress!, raw.baseAddress!, raw.count) == 0) }
        }
        if last < propertyBytes.count, matches(propertyBytes[last]) { return last }
        for i in propertyBytes.indices where matches(propertyBytes[i]) {
            last = i
            return i
        }
        propertyBytes.append(Array(raw))
        propertyKeys.append(String(decoding: raw, as: UTF8.self))
        last = propertyKeys.count - 1
        return last
    }
}

/// A download's page had rows out of key order (a plan that did not keep the order of its statement).
struct DownloadPageOrder: Error, Equatable, CustomStringConvertible {
    var description: String { "a download page's rows came out of key order" }
}

@inline(__always)
private func int32(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> Int32 {
    Int32(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self))
}

@inline(__always)
private func int64(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> Int64 {
    Int64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int64.self))
}

/// A download's page had another shape than `DownloadRowReader` reads (a schema change).
struct DownloadRowShape: Error, Equatable, CustomStringConvertible {
    var column: Int
    var description: String { "a download row has an unexpected type or format in column \(column + 1)" }
}
