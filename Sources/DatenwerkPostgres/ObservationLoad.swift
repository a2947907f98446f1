import DatenwerkCore
import DatenwerkPublishing
import DatenwerkPipeline
import DatenwerkTransforms
import Logging
import NIOCore
import PostgresNIO

/// The client side of one run's load, so the server does only what COPY does: station ids and properties are
/// resolved here from a per-run cache (nothing is joined in SQL per row), each observation is encoded once as a
/// row of `datenwerk.observations`, and what the merge would otherwise sort for is watched as the rows pass:
/// the run's months (partitions), its time span, and whether any series (station, property) went back in time
/// (only then can the run repeat a key, so only then are repeats looked for).
///
/// Stations and quarantined records do not ride in the observation COPY: the latest item per station key is
/// kept (one per station, not per row), quarantined records and the observations' provenance go to spool
/// files (`LoadSpool`) and reach the database after the observations, in the same transaction.
final class ObservationLoad {
    static let columns = ["station_id", "property", "phenomenon_start", "phenomenon_end", "result", "quality", "run_id"]
    /// Rows into the staging table: `columns` and the observation's number in the run (`seq`: 1, 2, … in the
    /// order taken; the provenance notes and "the later of two equal repeats" go by it).
    static let stagingColumns = columns + ["seq"]
    /// Whether `take` writes rows of `stagingColumns` (else of `columns`).
    var rowsCarrySeq = false

    let runID: Int64
    let tenant: String
    let database: Database

    /// The tenant's stations already stored (key → id), read at the start of the load.
    private var storedStations: [String: Int64]
    /// Keys first seen in this run, with the id reserved for them from `stations_id_seq`.
    private(set) var reservedStations: [String: Int64] = [:]
    private var reserve: [Int64] = []
    /// At most this many station keys new to the database, and station items, in one run: they are held in
    /// memory until the upsert (a station is one per key, not per row; a hostile file with a new id on every
    /// line would otherwise grow the load without bound). Past it the load fails saying so.
    var maxStations = 500_000
    /// The latest station item per key, in the order the keys first came.
    private(set) var stations: [String: Station] = [:]
    private(set) var stationOrder: [String] = []
    private var lastKey = ""
    private var lastID: Int64 = -1

    private let knownProperties: Set<String>
    /// The properties met so far (all known); a row's property is found here by equality, its index is its number.
    private var checkedProperties: [String] = []

    /// Months (first µs of the UTC month) that have a partition, and the months of this run.
    var partitions: Set<Int64> { didSet { lastTarget = nil } }
    /// Months the fast path fills in fresh tables of this run's own (partitions of `freshParent`, without indexes
    /// until `PostgresObservationSink.attachFresh` builds them and attaches the tables to `observations`).
    var freshMonths: Set<Int64> = [] { didSet { lastTarget = nil } }
    /// Fresh months whose indexes are built (or being built) already, while the rows come in time order
    /// (`indexesAhead`: until a row comes back to one of them).
    var indexedMonths: Set<Int64> = [] { didSet { lastTarget = nil } }
    var indexesAhead = true { didSet { lastTarget = nil } }
    /// `target` of the last row's month, until one of the four above changes (rows come month by month: the sets
    /// are not looked up per row).
    private var lastTarget: (month: Int64, target: RowTarget)?
    /// The target of the fast path's COPY now.
    var copyTarget = RowTarget.observations
    /// The run's own parent of its fresh tables: one COPY routes the rows of every fresh month.
    var freshParent: String { "observations_load_\(runID)" }
    private(set) var months: Set<Int64> = []
    private var monthStart: Int64 = 1
    private var monthEnd: Int64 = 0
    private var lastMonth: Int64?

    /// Observations taken so far (the staging table's `seq` of the last one).
    private(set) var observations = 0
    private(set) var minStart = Int64.max
    private(set) var maxStart = Int64.min

    /// The run's series (station, property), numbered as they first come; the dashboard aggregates keep their
    /// state under the same numbers. At most `maxSeries` are numbered. `lastStarts[slot]`: the last start per
    /// series while every series moves forward in time; emptied when one goes back or there are more series
    /// (`mayRepeat`).
    private var series = SeriesSlots()
    private var lastStarts: [Int64] = []
    static let maxSeries = 1_000_000
    private(set) var mayRepeat = false
    /// Whether the rows came in time order: none started more than `timeOrderSlack` before the latest start
    /// seen. Decides whether the fresh tables get the BRIN index on the start (migration 0015): it narrows a
    /// time filter only where rows lie in time order; after a file station by station, every block range spans
    /// the whole month.
    private(set) var inTimeOrder = true
    static let timeOrderSlack: Int64 = 86_400_000_000
    /// The series of the observation `takeIfReady` took last (slot nil: past `maxSeries`), for `KeyOrderedRows`.
    private(set) var lastSeries: (slot: Int?, station: Int64, property: Int) = (nil, 0, 0)
    /// The properties met so far; a row's property index points here.
    var propertyKeys: [String] { checkedProperties }

    /// The rows of the fast path (replayed into staging if it gives way), quarantined records, provenance.
    var rowSpool: LoadSpool?
    /// The dashboard aggregates' deltas of the fast path (nil on the staged path, which recomputes).
    var aggregates: SeriesAggregates?
    let quarantineSpool: LoadSpool
    let provenanceSpool: LoadSpool
    /// The provenance noted last (held, so that a new record's cannot be taken for it), and its origin as
    /// escaped COPY text (a run's records share few origins).
    private var lastProvenance: Provenance?
    private var lastOrigin: (text: String, escaped: [UInt8])?

    private init(runID: Int64, tenant: String, database: Database, stored: [String: Int64], properties: Set<String>, partitions: Set<Int64>) throws {
        self.runID = runID
        self.tenant = tenant
        self.database = database
        self.storedStations = stored
        self.knownProperties = properties
        self.partitions = partitions
        self.quarantineSpool = try LoadSpool("quarantine")
        self.provenanceSpool = try LoadSpool("provenance")
    }

    /// Reads the tenant's station ids, the observed properties and the existing partitions.
    static func prepare(runID: Int64, tenant: String, database: Database, on connection: GuardedConnection) async throws -> ObservationLoad {
        let logger = database.logger
        var stored: [String: Int64] = [:]
        for try await (key, id) in try await connection.query("SELECT key, id FROM datenwerk.stations WHERE tenant = \(tenant)", logger: logger)
            .decode((String, Int64).self) {
            stored[key] = id
        }
        var properties = Set<String>()
        for try await key in try await connection.query("SELECT key FROM datenwerk.observed_properties", logger: logger).decode(String.self) {
            properties.insert(key)
        }
        var partitions = Set<Int64>()
        for try await name in try await connection.query("""
            SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'datenwerk.observations'::regclass
            """, logger: logger).decode(String.self) {
            if let month = partitionMonth(name) { partitions.insert(month) }
        }
        return try ObservationLoad(runID: runID, tenant: tenant, database: database, stored: stored, properties: properties, partitions: partitions)
    }

    /// `observations_y2024m03` → the first µs of March 2024 (UTC); nil for any other name.
    static func partitionMonth(_ name: String) -> Int64? {
        let bytes = Array(name.utf8)
        let prefix = Array("observations_y".utf8)
        guard bytes.count == prefix.count + 7, bytes.starts(with: prefix), bytes[prefix.count + 4] == UInt8(ascii: "m") else { return nil }
        func number(_ r: Range<Int>) -> Int? { Int(String(decoding: bytes[r], as: UTF8.self)) }
        guard let year = number(prefix.count..<prefix.count + 4), let month = number(prefix.count + 5..<prefix.count + 7), (1...12).contains(month) else { return nil }
        return CivilTime.days(year: year, month: month, day: 1) * 86_400_000_000
    }

    // MARK: - Taking the items

    /// Where the fast path sends a row of `start`: into `observations`, into the run's fresh tables, or neither
    /// yet (a month without a partition: the COPY must stop before that row, since a table created during a
    /// statement is not seen by it).
    /// `revisit`: a fresh month indexed ahead (`indexesAhead`) that rows come back to.
    enum RowTarget: Equatable {
        case observations, fresh
        case newMonth(Int64)
        case revisit(Int64)
    }

    func target(_ start: Int64) -> RowTarget {
        let month = month(start)
        if let last = lastTarget, last.month == month { return last.target }
        let target: RowTarget
        if partitions.contains(month) {
            target = .observations
        } else if freshMonths.contains(month) {
            target = indexesAhead && indexedMonths.contains(month) ? .revisit(month) : .fresh
        } else {
            target = .newMonth(month)
        }
        lastTarget = (month, target)
        return target
    }

    /// The target of the next observation of `feed`, if its batch has one.
    func nextTarget(_ feed: PostgresObservationSink.ItemFeed) -> RowTarget? {
        guard let batch = feed.pending else { return nil }
        for i in feed.index..<batch.count {
            if case .observation(let o) = batch[i] { return target(o.phenomenonStart) }
        }
        return nil
    }

    /// The months of the observations of `feed`'s batch from its position on, and whether they go back to an
    /// earlier month on the way (the rows are not in time order).
    func months(after feed: PostgresObservationSink.ItemFeed) -> (months: Set<Int64>, goesBack: Bool) {
        guard let batch = feed.pending else { return ([], false) }
        var found = Set<Int64>()
        var last = Int64.min
        var goesBack = false
        for i in feed.index..<batch.count {
            guard case .observation(let o) = batch[i] else { continue }
            let month = month(o.phenomenonStart)
            if month != last {
                if month < last { goesBack = true }
                found.insert(month)
                last = month
            }
        }
        return (found, goesBack)
    }

    private func month(_ start: Int64) -> Int64 {
        if start >= monthStart && start < monthEnd { return monthStart }
        let key = PostgresObservationSink.monthKey(start)
        let (y, m, _) = CivilTime.date(days: CivilTime.floorDiv(key, 86_400_000_000))
        monthStart = key
        monthEnd = m == 12 ? CivilTime.days(year: y + 1, month: 1, day: 1) * 86_400_000_000 : CivilTime.days(year: y, month: m + 1, day: 1) * 86_400_000_000
        return key
    }

    /// One item of the run: an observation is encoded into `rows` (a binary COPY row of `columns`); a station is remembered; a quarantined
    /// record goes to its spool.
    /// Takes `item` unless it names a station key without an id yet: then nothing is taken and the key is
    /// returned (`reserveID(for:)` it, then take the item again).
    func takeIfReady(_ item: StagedItem, into rows: inout ByteBuffer) throws -> String? {
        switch item {
        case .observation(let o):
            return try take(o, into: &rows)
        case .station(let s):
            if stations.updateValue(s, forKey: s.key) == nil {
                stationOrder.append(s.key)
                if stationOrder.count > maxStations { throw tooManyStations() }
            }
            if knownID(s.key) == nil { return s.key }
        case .quarantined(let q):
            try quarantineSpool.write { PostgresObservationSink.encodeQuarantined(q, into: &$0) }
        }
        return nil
    }

    /// `takeIfReady` of an observation.
    func take(_ o: Observation, into rows: inout ByteBuffer) throws -> String? {
        guard let station = knownID(o.stationKey) else { return o.stationKey }
        let property = try propertyIndex(o.property)
        observations += 1
        let start = o.phenomenonStart
        if start < minStart { minStart = start }
        if start > maxStart {
            maxStart = start
        } else if inTimeOrder {
            let (back, overflow) = maxStart.subtractingReportingOverflow(start)
            if overflow || back > Self.timeOrderSlack { inTimeOrder = false }
        }
        let month = month(start)
        if month != lastMonth {
            months.insert(month)
            lastMonth = month
        }
        let slot = seriesSlot(station: station, property: property, start: start)
        lastSeries = (slot, station, property)
        if let aggregates {
            try aggregates.add(slot: slot, station: station, property: property, name: o.property, start: start, end: o.phenomenonEnd,
                               result: o.result, quality: o.quality)
        }
        try note(o.provenance)
        let runID = self.runID
        // A binary COPY row (`columns`): 2 + 5 × 12 + 2 × 4 bytes and the two texts; into staging (`stagingColumns`)
        // 12 more for the observation's number. Two closures, so that the fast path's has no branch for it.
        let maxBytes = 72 + o.property.utf8.count + (o.quality?.utf8.count ?? 0)
        if rowsCarrySeq {
            let seq = Int64(observations)
            rows.writeBinaryRow(maxBytes: maxBytes + 12) { w in
                w.fields(8)
                Self.write(o, station: station, start: start, runID: runID, &w)
                w.int8(seq)
            }
        } else {
            rows.writeBinaryRow(maxBytes: maxBytes) { w in
                w.fields(7)
                Self.write(o, station: station, start: start, runID: runID, &w)
            }
        }
        return nil
    }

    /// The fields of `columns` after the field count.
    @inline(__always) private static func write(_ o: Observation, station: Int64, start: Int64, runID: Int64, _ w: inout BinaryRowWriter) {
        w.int8(station)
        w.text(o.property)
        w.timestamp(start)
        if let end = o.phenomenonEnd { w.timestamp(end) } else { w.null() }
        w.float8(o.result)
        w.optional(o.quality)
        w.int8(runID)
    }

    /// The series' number (nil past `maxSeries`), noting whether it went back in time.
    private func seriesSlot(station: Int64, property: Int, start: Int64) -> Int? {
        if let slot = series.slot(station: station, property: property) {
            if !mayRepeat {
                if lastStarts[slot] >= start {
                    mayRepeat = true
                    lastStarts = []
                } else {
                    lastStarts[slot] = start
                }
            }
            return slot
        }
        guard series.count < Self.maxSeries else {
            mayRepeat = true
            lastStarts = []
            return nil
        }
        if !mayRepeat { lastStarts.append(start) }
        return series.insert(station: station, property: property)
    }

    /// A provenance entry (first observation seq, origin, line, record, path, raw) whenever the record behind
    /// the observations changes: the observations of one record share one.
    private func note(_ provenance: Provenance?) throws {
        if provenance === lastProvenance { return }
        lastProvenance = provenance
        let seq = observations
        var origin: [UInt8] = []
        if let p = provenance {
            if let last = lastOrigin, last.text == p.location.origin {
                origin = last.escaped
            } else {
                var b = ByteBuffer()
                CopyText.text(p.location.origin, &b)
                origin = Array(b.readableBytesView)
                lastOrigin = (p.location.origin, origin)
            }
        }
        // One reservation for the whole line (a note per record: ~10 % of a first load's client CPU when each
        // field reserved its own).
        let raw = provenance?.raw
        let path = provenance?.location.path
        let maxBytes = 20 + origin.count + 2 * 20 + 2 * (path?.utf8.count ?? 0) + 2 * (raw?.utf8.count ?? 0) + 16
        try provenanceSpool.write { b in
            CopyText.raw(&b, maxBytes: maxBytes) { w in
                w.integer(Int64(seq)); w.byte(9)
                guard let p = provenance else {
                    w.null(); w.byte(9); w.null(); w.byte(9); w.null(); w.byte(9); w.null(); w.byte(9); w.null(); w.byte(10)
                    return
                }
                if !origin.isEmpty { origin.withUnsafeBufferPointer { w.copy($0) } }
                w.byte(9)
                if let line = p.location.line { w.integer(Int64(line)) } else { w.null() }
                w.byte(9)
                if let record = p.location.record { w.integer(Int64(record)) } else { w.null() }
                w.byte(9)
                if let path { w.text(path) } else { w.null() }
                w.byte(9)
                w.text(p.raw)
                w.byte(10)
            }
        }
    }

    /// The property's small number in this run (its index among the properties seen), checked against the vocabulary.
    private func propertyIndex(_ property: String) throws -> Int {
        for (i, known) in checkedProperties.enumerated() where known == property { return i }
        guard knownProperties.contains(property) else {
            throw PipelineError(step: .load, code: .database,
                                message: "observed property '\(property)' is not in the vocabulary (datenwerk.observed_properties); run `datenwerk migrate` after adding it, or map the value to a known property")
        }
        checkedProperties.append(property)
        return checkedProperties.count - 1
    }

    /// The station's id if it is stored or reserved already.
    @inline(__always) private func knownID(_ key: String) -> Int64? {
        if key == lastKey { return lastID }
        guard let id = storedStations[key] ?? reservedStations[key] else { return nil }
        lastKey = key
        lastID = id
        return id
    }

    /// Reserves an id for a new key from the stations' sequence (on a second connection: sequences are outside
    /// transactions anyway, and the load's own connection is busy with the COPY), in blocks.
    func reserveID(for key: String) async throws {
        if reservedStations.count >= maxStations { throw tooManyStations() }
        if reserve.isEmpty { reserve = try await reserveIDs(min(1024, max(16, reservedStations.count))) }
        reservedStations[key] = reserve.removeLast()
    }

    private func tooManyStations() -> PipelineError {
        PipelineError(step: .load, code: .badRecord,
                      message: "more than \(maxStations) stations in one run (each distinct station id is a station): is the station id mapped to the right field? Split the input if it really has that many")
    }

    private func reserveIDs(_ n: Int) async throws -> [Int64] {
        try await database.withConnection { connection in
            var ids: [Int64] = []
            for try await id in try await connection.query("SELECT nextval('datenwerk.stations_id_seq') FROM generate_series(1, \(n))", logger: database.logger)
                .decode(Int64.self) {
                ids.append(id)
            }
            return ids.reversed()
        }
    }

    /// Stations to upsert: every station item of the run, and keys that only observations named (a bare row,
    /// so no observation points nowhere).
    func stationRows(into b: inout ByteBuffer) {
        for key in stationOrder {
            guard let s = stations[key], let id = storedStations[key] ?? reservedStations[key] else { continue }
            CopyText.integer(id, &b); CopyText.tab(&b)
            PostgresObservationSink.encodeStation(s, into: &b)
        }
        for (key, id) in reservedStations where stations[key] == nil {
            CopyText.integer(id, &b); CopyText.tab(&b)
            CopyText.text(key, &b)
            b.writeStaticString("\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n")
        }
    }

    var hasStationRows: Bool { !stationOrder.isEmpty || !reservedStations.isEmpty }

    /// The series of `batch` whose stations are stored already, with the span of their starts in the batch:
    /// if none of them has a row in its span, the run is taken for a first load.
    func storedSeriesSpans(_ batch: [StagedItem]) -> (ids: [Int64], properties: [String], from: [Int64], to: [Int64]) {
        struct Series: Hashable {
            var station: Int64
            var property: String
        }
        var spans: [Series: (Int64, Int64)] = [:]
        for item in batch {
            guard case .observation(let o) = item, let id = storedStations[o.stationKey] else { continue }
            let key = Series(station: id, property: o.property)
            if let (lo, hi) = spans[key] {
                spans[key] = (min(lo, o.phenomenonStart), max(hi, o.phenomenonStart))
            } else {
                spans[key] = (o.phenomenonStart, o.phenomenonStart)
            }
        }
        var result: ([Int64], [String], [Int64], [Int64]) = ([], [], [], [])
        for (key, span) in spans {
            result.0.append(key.station)
            result.1.append(key.property)
            result.2.append(span.0)
            result.3.append(span.1)
        }
        return result
    }
}

/// PostgreSQL's COPY text format, written byte by byte.
package enum CopyText {
    @inline(__always) package static func tab(_ b: inout ByteBuffer) { b.writeInteger(UInt8(ascii: "\t")) }

    package static func optional(_ s: String?, _ b: inout ByteBuffer) {
        if let s { text(s, &b) } else { b.writeStaticString("\\N") }
    }

    package static func optionalInteger(_ v: Int?, _ b: inout ByteBuffer) {
        if let v { integer(Int64(v), &b) } else { b.writeStaticString("\\N") }
    }

    /// One value written by `RawWriter` (the same code the observation rows use) into at most `maxBytes`.
    @inline(__always) static func raw(_ b: inout ByteBuffer, maxBytes: Int, _ body: (inout RawWriter) -> Void) {
        b.writeWithUnsafeMutableBytes(minimumWritableBytes: maxBytes) { raw in
            var w = RawWriter(base: raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
            body(&w)
            return w.count
        }
    }

    /// Decimal digits without a `String`.
    package static func integer(_ value: Int64, _ b: inout ByteBuffer) { raw(&b, maxBytes: 20) { $0.integer(value) } }

    /// Shortest text that reads back as the same double (integral values without a fraction).
    package static func double(_ d: Double, _ b: inout ByteBuffer) { raw(&b, maxBytes: 40) { $0.double(d) } }

    /// µs since the epoch as `YYYY-MM-DD HH:MM:SS[.ffffff]+00` (years before 1 AD as `… BC`).
    package static func timestamp(_ micros: Int64, _ b: inout ByteBuffer) { raw(&b, maxBytes: 40) { $0.timestamp(micros) } }

    /// COPY text format: backslash, tab, newline and carriage return are escaped; NUL is dropped.
    package static func text(_ s: String, _ b: inout ByteBuffer) { raw(&b, maxBytes: 2 * s.utf8.count) { $0.text(s) } }
}

/// Writes a COPY text row into memory reserved for it (no capacity check or exclusivity check per byte).
struct RawWriter {
    let base: UnsafeMutablePointer<UInt8>
    var count = 0

    @inline(__always) mutating func byte(_ b: UInt8) {
        base[count] = b
        count += 1
    }

    /// `\N`, COPY text's NULL.
    @inline(__always) mutating func null() {
        base[count] = 92
        base[count + 1] = 78
        count += 2
    }

    @inline(__always) mutating func two(_ v: Int) {
        base[count] = UInt8(truncatingIfNeeded: 48 + v / 10)
        base[count + 1] = UInt8(truncatingIfNeeded: 48 + v % 10)
        count += 2
    }

    mutating func integer(_ value: Int64) {
        guard value != .min else { for b in String(value).utf8 { byte(b) }; return }
        if value < 0 { byte(45) }
        var v = value < 0 ? -value : value
        var digits = 1
        var probe = v
        while probe >= 10 { probe /= 10; digits += 1 }
        var i = count + digits
        count = i
        repeat {
            i -= 1
            base[i] = UInt8(truncatingIfNeeded: 48 + v % 10)
            v /= 10
        } while v > 0
    }

    /// The last `width` decimal digits of `value`, with leading zeros.
    @inline(__always) mutating func digits(_ value: UInt64, width: Int) {
        var v = value
        var i = count + width
        count = i
        for _ in 0..<width {
            i -= 1
            base[i] = UInt8(truncatingIfNeeded: 48 + v % 10)
            v /= 10
        }
    }

    /// Whole numbers as integers; values with a short decimal form (`ByteWriting.shortDecimal`: measured values
    /// nearly always) digit by digit; anything else as `description` (a `String`, 3–4 % of a load's client CPU
    /// when every value went that way).
    mutating func double(_ d: Double) {
        if d.isFinite, d.rounded(.towardZero) == d, abs(d) < 1e15 {
            integer(Int64(d))
        } else if let (digits, decimals) = ByteWriting.shortDecimal(d) {
            if d < 0 { byte(45) }
            let unit = ByteWriting.powersOfTen[decimals]
            integer(Int64(digits / unit))
            byte(46)
            self.digits(digits % unit, width: decimals)
        } else {
            var s = d.description
            s.withUTF8 { for b in $0 { byte(b) } }
        }
    }

    /// Escaped as COPY text wants it (see `CopyText.text`); needs up to twice the UTF-8 length.
    mutating func text(_ s: String) {
        var s = s
        s.withUTF8 { bytes(escaping: $0) }
    }

    /// `text`'s escaping of UTF-8 bytes: copied as they are up to the first byte that needs it.
    mutating func bytes(escaping bytes: UnsafeBufferPointer<UInt8>) {
        var start = 0
        for (i, b) in bytes.enumerated() where b == 92 || b < 14 && (b == 9 || b == 10 || b == 13 || b == 0) {
            if i > start { copy(UnsafeBufferPointer(rebasing: bytes[start..<i])) }
            switch b {
            case 92: byte(92); byte(92)
            case 9: byte(92); byte(116)
            case 10: byte(92); byte(110)
            case 13: byte(92); byte(114)
            default: break   // NUL is dropped
            }
            start = i + 1
        }
        if bytes.count > start { copy(UnsafeBufferPointer(rebasing: bytes[start...])) }
    }

    @inline(__always) mutating func copy(_ bytes: UnsafeBufferPointer<UInt8>) {
        (base + count).update(from: bytes.baseAddress!, count: bytes.count)
        count += bytes.count
    }

    /// See `CopyText.timestamp`; at most 36 bytes.
    mutating func timestamp(_ micros: Int64) {
        let days = CivilTime.floorDiv(micros, 86_400_000_000)
        let (y, m, d) = CivilTime.date(days: days)
        var rest = micros - days * 86_400_000_000
        let hour = Int(rest / 3_600_000_000)
        rest -= Int64(hour) * 3_600_000_000
        let minute = Int(rest / 60_000_000)
        rest -= Int64(minute) * 60_000_000
        let second = Int(rest / 1_000_000)
        let fraction = Int(rest - Int64(second) * 1_000_000)
        let year = y > 0 ? y : 1 - y
        if year < 10000 { two(year / 100); two(year % 100) } else { integer(Int64(year)) }
        byte(45); two(m); byte(45); two(d); byte(32)
        two(hour); byte(58); two(minute); byte(58); two(second)
        if fraction != 0 {
            byte(46)
            digits(UInt64(fraction), width: 6)
        }
        byte(43); byte(48); byte(48)
        if y <= 0 { byte(32); byte(66); byte(67) }
    }
}
