import DatenwerkCore
import DatenwerkTransforms
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Keeps the dashboard tables (`series`, `observations_hourly`, `observations_daily`; migration 0008,
/// docs/dashboards.md) current for what one run wrote, in the run's own transaction.
///
/// Two ways, chosen per run:
/// - **Deltas (the first-load fast path).** Every row the fast path COPYs is new, so aggregates simply add up:
///   while the rows pass, this class keeps per series its open hour and day bucket (count, sum, min, max) and
///   its latest row, and writes a closed bucket to a spool when the series moves to the next hour or day.
///   A bucket after the series' stored latest hour (day) that the run has not written yet cannot exist: those
///   are COPYed straight into the table (no `ON CONFLICT`, whose speculative insertion costs more than the row
///   itself); the others go through a temporary table and are added to the stored buckets. Memory holds one
///   state per series, not per row. Hourly buckets are kept only for series with starts off the full hour
///   (`series.hourly_raw` false); an hourly series is its own hourly aggregate.
/// - **Recompute (the staged path, or more series than `maxSeries`).** Rows may have changed, so the touched
///   hours, days and series (those of rows this run wrote: `run_id` = this run, in its time span) are computed
///   again from `observations` and replace the stored ones.
final class SeriesAggregates {
    struct Bucket {
        var key = Int64.min
        var n: Int32 = 0
        var total = 0.0
        var minimum = 0.0
        var maximum = 0.0

        @inline(__always) mutating func add(_ value: Double) {
            n += 1
            total += value
            if value < minimum { minimum = value }
            if value > maximum { maximum = value }
        }
    }

    struct State {
        var station: Int64
        var property: String
        /// Its series number and its property's number in the load (`KeyOrderedRows` orders the side's buckets by them).
        var slot = 0
        var propertyIndex = 0
        var minStart: Int64
        var maxStart: Int64
        var lastEnd: Int64?
        var lastResult: Double
        var lastQuality: String?
        /// Every start of this run's rows is on a full UTC hour.
        var aligned = true
        /// Hourly buckets are kept for this series (stored as not `hourly_raw`, or it stopped being so in this run).
        var fine: Bool
        /// For a series that was hourly until a start off the full hour in this run: the latest hour of its rows
        /// until then; its hourly buckets up to this hour are computed from `observations` after the load.
        var flipHour: Int64?
        var hour = Bucket()
        var day = Bucket()
        /// The stored latest hour and day of the series (`Int64.min`: a new series); the latest bucket written
        /// to a "new" spool.
        var storedHour = Int64.min
        var storedDay = Int64.min
        /// Stored as `hourly_raw` (it flips in this run): its hours are all recomputed in the load's transaction,
        /// so none of its buckets may go to the side transaction.
        var storedRaw = false
        var newHour = Int64.min
        var newDay = Int64.min
    }

    static let hourMicros: Int64 = 3_600_000_000
    static let dayMicros: Int64 = 86_400_000_000
    /// Series tracked per run (about 150 bytes each); past it the run recomputes instead.
    static let maxSeries = 200_000

    /// The tenant's stored series: their latest start and whether they keep hourly buckets (not `hourly_raw`).
    private let stored: [StoredKey: Stored]
    struct StoredKey: Hashable {
        var station: Int64
        var property: String
    }
    struct Stored {
        var lastStart: Int64
        var fine: Bool
    }
    /// More stored series than this for one tenant are not read: the run recomputes instead.
    static let maxStoredSeries = 500_000

    /// One state per series of the run, at the series' number in the load (`ObservationLoad`'s `SeriesSlots`:
    /// 0, 1, 2, … as series first come).
    private var states: [State] = []
    var seriesCount: Int { states.count }
    private(set) var overflow = false
    /// The second connection that COPYs `hourNew`'s buckets while the load runs (`HourlySideLoad`), opened by
    /// `openSide` once the first `sideChunkBytes` of them are there (small loads never open one). Empty: the load
    /// COPYs them itself after the observations.
    var side: SideSlot?
    var openSide: (() -> HourlySideLoad)?
    /// A bucket of an hour or day this run had already written as new (rows going back in time): the load's
    /// transaction would add it to a row the side transaction holds, so the side must give way.
    private(set) var revisitsNew = false
    /// Whether the side's groups are held back for now (in `hourNew` only) and COPYed after the rows, beside the
    /// fresh tables' index builds (`startSideTail`). Asked between batches, until it says no more.
    var holdSide: (() -> Bool)?
    private var holding = false
    /// The side's hourly buckets were held back (`holdSide`) at some point of the load.
    var heldBack: Bool { holding }
    /// Bytes of `hourNew` handed to the side (the groups are spooled in the order they are handed).
    private var sentBytes = 0
    /// `hourNew` rows of the group being gathered for `side`: a group ends at the first station change past
    /// `sideGroupBytes` (or at twice it) and goes in key order (`KeyOrderedRows`: the side's COPY into
    /// `observations_hourly` then appends at its primary key's right edge — measured with `psql \copy` of the 1.67M
    /// buckets of 10M 10-minute rows: 3.55 s in key order, 4.62 s in the order they close, properties alternating).
    private var sideChunk = ByteBuffer()
    private var sideOrder = KeyOrderedRows()
    private var sideScratch = ByteBuffer()
    /// Groups closed (and spooled to `hourNew`) but not yet handed to `side`.
    private var sideReady: [ByteBuffer] = []
    /// Daily buckets that cannot exist yet, gathered up to `dayGroupBytes` and spooled to `dayNew` in key order (as
    /// the side's hourly groups): they close in time order, series after series. `psql \copy` of the 41,860 daily
    /// buckets of the bench's 1M-row load into `observations_daily`: 0.135 s in key order, 0.17 s as they close.
    private var dayChunk = ByteBuffer()
    private var dayOrder = KeyOrderedRows()
    private var dayScratch = ByteBuffer()
    /// Set by the sink (a quarter of its `groupBytes`, as `sideGroupBytes`).
    var dayGroupBytes = 1 << 20
    /// The run's property keys by the load's numbers (`State.propertyIndex`), for their bytewise order.
    private var propertyNames: [String] = []
    /// Set by the sink (a quarter of its `groupBytes`).
    var sideGroupBytes = 1 << 20
    /// A side connection is opened only for at least this many bytes of new buckets (small loads write them themselves).
    static let sideChunkBytes = 64 * 1024
    /// Buckets that cannot exist yet (straight into the tables) and the others (added in SQL).
    let hourNew: LoadSpool
    let hourMerge: LoadSpool
    let dayNew: LoadSpool
    let dayMerge: LoadSpool

    private static let berlin = TimeZone(identifier: "Europe/Berlin")!
    private var lastHour = Int64.min
    private var lastDay: Int64 = 0
    private var dayOfHour: [Int64: Int64] = [:]

    init(stored: [StoredKey: Stored]?) throws {
        self.stored = stored ?? [:]
        self.overflow = stored == nil
        self.hourNew = try LoadSpool("hourly")
        self.hourMerge = try LoadSpool("hourly-merge")
        self.dayNew = try LoadSpool("daily")
        self.dayMerge = try LoadSpool("daily-merge")
    }

    /// The tenant's stored series (nil: more than `maxStoredSeries`).
    static func storedSeries(tenant: String, on connection: GuardedConnection, logger: Logger) async throws -> [StoredKey: Stored]? {
        var series: [StoredKey: Stored] = [:]
        for try await (station, property, last, raw) in try await connection.query("""
            SELECT s.station_id, s.property, (extract(epoch FROM s.last_start) * 1000000)::int8, s.hourly_raw
            FROM datenwerk.series s JOIN datenwerk.stations st ON st.id = s.station_id
            WHERE st.tenant = \(tenant) LIMIT \(maxStoredSeries + 1)
            """, logger: logger).decode((Int64, String, Int64, Bool).self) {
            series[StoredKey(station: station, property: property)] = Stored(lastStart: last, fine: !raw)
        }
        return series.count > maxStoredSeries ? nil : series
    }

    /// The calendar day in Europe/Berlin (days since 1970-01-01) of a UTC hour. Offsets change only on full
    /// UTC hours there, so the hour decides; cached per hour.
    @inline(__always) func berlinDay(hour: Int64) -> Int64 {
        if hour == lastHour { return lastDay }
        let day: Int64
        if let known = dayOfHour[hour] {
            day = known
        } else {
            let offset = Int64(Self.berlin.secondsFromGMT(for: Date(timeIntervalSince1970: Double(hour / 1_000_000)))) * 1_000_000
            day = CivilTime.floorDiv(hour + offset, Self.dayMicros)
            if dayOfHour.count > 100_000 { dayOfHour.removeAll(keepingCapacity: true) }
            dayOfHour[hour] = day
        }
        lastHour = hour
        lastDay = day
        return day
    }

    /// One observation the fast path sends, of the load's series number `slot` (nil: the load stopped numbering
    /// series; then, as past `maxSeries`, the run recomputes instead).
    /// `property`: the load's number of the property (0, 1, 2, … as properties first come), `name` its key.
    @inline(__always) func add(slot: Int?, station: Int64, property index: Int, name property: @autoclosure () -> String,
                               start: Int64, end: Int64?, result: Double, quality: String?) throws {
        guard !overflow else { return }
        let hour = CivilTime.floorDiv(start, Self.hourMicros) * Self.hourMicros
        let day = berlinDay(hour: hour)
        if let slot, slot < states.count {
            try update(&states[slot], station: station, hour: hour, day: day, start: start, end: end, result: result, quality: quality)
        } else {
            // A new series has the next number; any other number means the two countings went apart.
            guard let slot, slot == states.count, states.count < Self.maxSeries else {
                overflow = true
                states = []
                return
            }
            let name = property()
            let known = stored[StoredKey(station: station, property: name)]
            var s = State(station: station, property: name, minStart: start, maxStart: start, lastEnd: end, lastResult: result,
                          lastQuality: quality, fine: known?.fine ?? false)
            s.slot = slot
            s.propertyIndex = index
            // A property's first series comes with its number (numbered in the same order), so the list grows in step.
            while propertyNames.count <= index { propertyNames.append(name) }
            if let known {
                s.storedHour = CivilTime.floorDiv(known.lastStart, Self.hourMicros) * Self.hourMicros
                s.storedDay = berlinDay(hour: s.storedHour)
                s.storedRaw = !known.fine
            }
            try take(&s, station: station, hour: hour, day: day, start: start, result: result)
            states.append(s)
        }
    }

    @inline(__always) private func update(_ s: inout State, station: Int64, hour: Int64, day: Int64, start: Int64, end: Int64?,
                                          result: Double, quality: String?) throws {
        if start < s.minStart { s.minStart = start }
        if start > s.maxStart {
            s.maxStart = start
            s.lastEnd = end
            s.lastResult = result
            s.lastQuality = quality
        }
        try take(&s, station: station, hour: hour, day: day, start: start, result: result)
    }

    @inline(__always) private func take(_ s: inout State, station: Int64, hour: Int64, day: Int64, start: Int64, result: Double) throws {
        if start != hour {
            s.aligned = false
            if !s.fine {
                // Rows before this one were not bucketed: every hour up to the latest of them is computed from
                // `observations` after the load, and rows of those hours coming later are left to that too.
                s.fine = true
                s.flipHour = max(hour, CivilTime.floorDiv(s.maxStart, Self.hourMicros) * Self.hourMicros)
            }
        }
        if s.fine, s.flipHour.map({ hour > $0 }) ?? true {
            if s.hour.key != hour {
                if s.hour.n > 0 { try emitHour(&s, station: station) }
                s.hour = Bucket(key: hour, n: 0, total: 0, minimum: result, maximum: result)
            }
            s.hour.add(result)
        }
        if s.day.key != day {
            if s.day.n > 0 { try emitDay(&s, station: station) }
            s.day = Bucket(key: day, n: 0, total: 0, minimum: result, maximum: result)
        }
        s.day.add(result)
    }

    private func emitHour(_ s: inout State, station: Int64) throws {
        // A series stored as hourly that flips here gets all its hours recomputed in the load's transaction:
        // its buckets are merged there too, never COPYed beside it.
        let fresh = s.hour.key > s.storedHour && s.hour.key > s.newHour && !s.storedRaw
        if fresh { s.newHour = s.hour.key } else if s.hour.key > s.storedHour, !s.storedRaw { revisitsNew = true }
        if fresh, openSide != nil {
            // Encoded once, into the side's group; a closed group goes to the spool too (the load's way if the side
            // gives way).
            if sideChunk.capacity == 0 { sideChunk = ByteBufferAllocator().buffer(capacity: 2 * sideGroupBytes + 4096) }
            if station != sideOrder.lastStation, sideChunk.readableBytes >= sideGroupBytes { try closeSideGroup() }
            Self.row(s.hour, station: station, property: s.property, into: &sideChunk) { $1.timestamp($0) }
            sideOrder.note(slot: s.slot, station: station, property: s.propertyIndex, end: sideChunk.readableBytes)
            if sideChunk.readableBytes >= 2 * sideGroupBytes { try closeSideGroup() }
        } else {
            try emit(s.hour, station: station, property: s.property, into: fresh ? hourNew : hourMerge) { $1.timestamp($0) }
        }
    }

    /// Ends the side's group: its buckets in key order, to `hourNew` and to the groups to send.
    private func closeSideGroup() throws {
        guard sideChunk.readableBytes > 0 else { return }
        let group = sideOrder.take(rows: sideOrder.count, bytes: sideChunk.readableBytes, of: sideChunk,
                                   propertyRanks: KeyOrderedRows.ranks(propertyNames), into: &sideScratch)
        try hourNew.write { out in out.writeImmutableBuffer(group) }
        sideReady.append(group)
        sideChunk.clear()
    }

    /// Hands the groups of new hourly buckets closed so far to the side transaction (between batches of the load);
    /// `force` (at the end) closes the last group first.
    ///
    /// While `holdSide` says so — the rows go into fresh tables whose indexes are all built after the COPY (a file
    /// station by station) — the groups stay in `hourNew` only: the side COPYs them after the rows, on the core the
    /// client leaves free while the load's connection builds those indexes, instead of competing with the COPY for
    /// both cores (measured, 10M 10-minute rows: see docs/dashboards.md).
    func flushSide(force: Bool = false) async throws {
        if force { try closeSideGroup() }
        guard let slot = side, let openSide else {
            sideReady.removeAll()
            return
        }
        guard !sideReady.isEmpty else { return }
        if !holding, let holdSide, holdSide() { holding = true }
        if holding {
            // Spooled already; COPYed from the spool by `startSideTail`.
            sideReady.removeAll()
            return
        }
        if slot.load == nil {
            // Every closed group is in `hourNew` already: a small load writes them itself.
            guard sideReady.reduce(0, { $0 + $1.readableBytes }) >= Self.sideChunkBytes else {
                if force { sideReady.removeAll() }
                return
            }
            slot.load = openSide()
        }
        guard let load = slot.load else { return }
        for group in sideReady {
            sentBytes += group.readableBytes
            await load.send(group)
        }
        sideReady.removeAll()
    }

    /// After `finish`, before the fresh tables' indexes are built: ends the side's channel and lets it COPY what
    /// is left — the hourly buckets held back and the new daily buckets — from the spools, in its own task. A side
    /// is opened for them if there is none yet and they are worth it (`sideChunkBytes`). Nothing goes to the side
    /// when the run revisited a bucket it wrote as new: that side is rolled back, the load writes them itself.
    func startSideTail() async throws {
        try await flushSide(force: true)
        guard let slot = side, let openSide else { return }
        var tail: HourlySideLoad.Tail?
        if !revisitsNew {
            let hours = try hourNew.segment(from: sentBytes)
            let days = try dayNew.segment(from: 0)
            if slot.load == nil, hours.range.count + days.range.count >= Self.sideChunkBytes {
                slot.load = openSide()
            }
            tail = HourlySideLoad.Tail(hours: hours, days: days)
        }
        slot.load?.finish(tail: tail)
    }

    /// After `startSideTail`: true when the side transaction holds every bucket of `hourNew` and `dayNew`.
    func sideCopiedAll() async -> Bool {
        guard !revisitsNew, let load = side?.load else { return false }
        return await load.copiedAll()
    }

    private func emitDay(_ s: inout State, station: Int64) throws {
        let fresh = s.day.key > s.storedDay && s.day.key > s.newDay
        guard fresh else {
            // A day this run wrote as new already (rows going back in time): added to it in the load's transaction,
            // so the new days cannot go to the side transaction.
            if s.day.key > s.storedDay { revisitsNew = true }
            try emit(s.day, station: station, property: s.property, into: dayMerge) { $1.date(days: $0) }
            return
        }
        s.newDay = s.day.key
        if dayChunk.capacity == 0 { dayChunk = ByteBufferAllocator().buffer(capacity: dayGroupBytes + 4096) }
        Self.row(s.day, station: station, property: s.property, into: &dayChunk) { $1.date(days: $0) }
        dayOrder.note(slot: s.slot, station: station, property: s.propertyIndex, end: dayChunk.readableBytes)
        if dayChunk.readableBytes >= dayGroupBytes { try closeDayGroup() }
    }

    /// Spools the gathered daily buckets to `dayNew`, in key order (as `closeSideGroup`).
    private func closeDayGroup() throws {
        guard dayChunk.readableBytes > 0 else { return }
        let group = dayOrder.take(rows: dayOrder.count, bytes: dayChunk.readableBytes, of: dayChunk,
                                  propertyRanks: KeyOrderedRows.ranks(propertyNames), into: &dayScratch)
        try dayNew.write { out in out.writeImmutableBuffer(group) }
        dayChunk.clear()
    }

    private func emit(_ b: Bucket, station: Int64, property: String, into spool: LoadSpool, key: (Int64, inout BinaryRowWriter) -> Void) throws {
        try spool.write { out in Self.row(b, station: station, property: property, into: &out, key: key) }
    }

    /// A bucket as a binary COPY row of `hourColumns` (`key` writes the hour) or `dayColumns` (the day).
    @inline(__always) private static func row(_ b: Bucket, station: Int64, property: String, into out: inout ByteBuffer,
                                              key: (Int64, inout BinaryRowWriter) -> Void) {
        out.writeBinaryRow(maxBytes: 80 + property.utf8.count) { w in
            w.fields(7)
            w.int8(station)
            w.text(property)
            key(b.key, &w)
            w.int4(b.n)
            w.float8(b.total)
            w.float8(b.minimum)
            w.float8(b.maximum)
        }
    }

    /// Closes the open buckets (end of the COPY).
    func finish() throws {
        for i in states.indices {
            let station = states[i].station
            if states[i].hour.n > 0 { try emitHour(&states[i], station: station) }
            if states[i].day.n > 0 { try emitDay(&states[i], station: station) }
        }
        try closeDayGroup()
    }

    func seriesRows(_ body: (ByteBuffer) async throws -> Void) async throws {
        var b = ByteBufferAllocator().buffer(capacity: 256 * 1024)
        for s in states {
            CopyText.integer(s.station, &b); CopyText.tab(&b)
            CopyText.text(s.property, &b); CopyText.tab(&b)
            CopyText.timestamp(s.minStart, &b); CopyText.tab(&b)
            CopyText.timestamp(s.maxStart, &b); CopyText.tab(&b)
            if let e = s.lastEnd { CopyText.timestamp(e, &b) } else { b.writeStaticString("\\N") }
            CopyText.tab(&b)
            CopyText.double(s.lastResult, &b); CopyText.tab(&b)
            CopyText.optional(s.lastQuality, &b); CopyText.tab(&b)
            b.writeStaticString(s.aligned ? "t\t" : "f\t")
            if let f = s.flipHour { CopyText.timestamp(f, &b) } else { b.writeStaticString("\\N") }
            b.writeInteger(UInt8(ascii: "\n"))
            if b.readableBytes > 200 * 1024 {
                try await body(b)
                b.clear()
            }
        }
        if b.readableBytes > 0 { try await body(b) }
    }

    // MARK: - In the database

    /// The fast path's deltas into the stored aggregates. `moved`: station ids reserved by this run whose key
    /// another run stored first (the rows moved to the stored id; so do the deltas). `sideHasNew`: the side
    /// transaction holds the buckets of `hourNew` and `dayNew` (then `moved` is empty).
    func applyDeltas(moved: [(Int64, Int64)], sideHasNew: Bool, on connection: GuardedConnection, logger: Logger) async throws {
        try await connection.query("""
            CREATE TEMP TABLE datenwerk_run_series (
                station_id int8 NOT NULL, property text COLLATE "C" NOT NULL, min_start timestamptz NOT NULL, max_start timestamptz NOT NULL,
                last_end timestamptz, last_result float8 NOT NULL, last_quality text, aligned boolean NOT NULL, flip_hour timestamptz,
                stored_raw boolean NOT NULL DEFAULT false
            ) ON COMMIT DROP
            """, logger: logger)
        try await connection.query("CREATE TEMP TABLE datenwerk_hour_delta (LIKE datenwerk.observations_hourly) ON COMMIT DROP", logger: logger)
        try await connection.query("CREATE TEMP TABLE datenwerk_day_delta (LIKE datenwerk.observations_daily) ON COMMIT DROP", logger: logger)
        try await connection.copyFrom(table: "datenwerk_run_series", columns: Self.seriesColumns, logger: logger) { writer in
            try await seriesRows { try await writer.write($0) }
        }
        // Buckets that cannot exist yet go straight into the tables, behind a savepoint: if one exists after all
        // (another pipeline's run wrote the same series meanwhile), they are added like the others. Rows of a
        // station whose id moved (another run stored its key first) are all added in SQL.
        let hour = (table: "observations_hourly", delta: "datenwerk_hour_delta", columns: Self.hourColumns)
        let day = (table: "observations_daily", delta: "datenwerk_day_delta", columns: Self.dayColumns)
        for (target, fresh, merge) in [(hour, hourNew, hourMerge), (day, dayNew, dayMerge)] {
            var direct = moved.isEmpty && !fresh.isEmpty
            if direct, sideHasNew {
                // Already COPYed beside the load (HourlySideLoad).
            } else if direct {
                try await connection.query("SAVEPOINT datenwerk_buckets", logger: logger)
                do {
                    try await connection.copyFrom(table: target.table, columns: target.columns, format: .binary, logger: logger) { writer in
                        try await fresh.read { try await writer.write($0) }
                    }
                    try await connection.query("RELEASE SAVEPOINT datenwerk_buckets", logger: logger)
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                    try await connection.query("ROLLBACK TO SAVEPOINT datenwerk_buckets", logger: logger)
                    logger.notice("dashboard buckets met stored ones (\(describeDatabaseError(error))); adding them instead")
                    direct = false
                }
            }
            for spool in direct ? [merge] : [fresh, merge] where !spool.isEmpty {
                try await connection.copyFrom(table: target.delta, columns: target.columns, format: .binary, logger: logger) { writer in
                    try await spool.read { try await writer.write($0) }
                }
            }
        }
        for (reserved, stored) in moved {
            for table in ["datenwerk_run_series", "datenwerk_hour_delta", "datenwerk_day_delta"] {
                try await connection.query(PostgresQuery(unsafeSQL: "UPDATE \(table) SET station_id = $1 WHERE station_id = $2", binds: Self.pair(stored, reserved)), logger: logger)
            }
        }
        // A stored hourly series that got a start off the hour in this run: all its hours are computed from
        // `observations` below (its stored rows never had buckets), replacing what its deltas wrote.
        try await connection.query("""
            UPDATE datenwerk_run_series r SET stored_raw = true FROM datenwerk.series s
            WHERE s.station_id = r.station_id AND s.property = r.property AND s.hourly_raw
            """, logger: logger)
        try await connection.query("""
            INSERT INTO datenwerk.series AS s (station_id, property, first_start, last_start, last_end, last_result, last_quality, hourly_raw)
            SELECT station_id, property, min_start, max_start, last_end, last_result, last_quality, aligned FROM datenwerk_run_series
            ORDER BY station_id, property
            ON CONFLICT (station_id, property) DO UPDATE SET
                first_start = least(s.first_start, EXCLUDED.first_start),
                last_start = greatest(s.last_start, EXCLUDED.last_start),
                last_end = CASE WHEN EXCLUDED.last_start >= s.last_start THEN EXCLUDED.last_end ELSE s.last_end END,
                last_result = CASE WHEN EXCLUDED.last_start >= s.last_start THEN EXCLUDED.last_result ELSE s.last_result END,
                last_quality = CASE WHEN EXCLUDED.last_start >= s.last_start THEN EXCLUDED.last_quality ELSE s.last_quality END,
                hourly_raw = s.hourly_raw AND EXCLUDED.hourly_raw
            """, logger: logger)
        for (table, delta, key) in [("observations_hourly", "datenwerk_hour_delta", "hour"), ("observations_daily", "datenwerk_day_delta", "day")] {
            try await connection.query(PostgresQuery(unsafeSQL: """
                INSERT INTO datenwerk.\(table) AS h (station_id, property, \(key), n, total, minimum, maximum)
                SELECT station_id, property, \(key), sum(n), sum(total), min(minimum), max(maximum)
                FROM \(delta) GROUP BY station_id, property, \(key) ORDER BY station_id, property, \(key)
                ON CONFLICT (station_id, property, \(key)) DO UPDATE SET
                    n = h.n + EXCLUDED.n, total = h.total + EXCLUDED.total,
                    minimum = least(h.minimum, EXCLUDED.minimum), maximum = greatest(h.maximum, EXCLUDED.maximum)
                """), logger: logger)
        }
        // Series that stopped being hourly in this run: their hours up to that point from `observations`
        // (all of them for a stored series; this run's for a new one). Two statements: an OR in the join
        // condition would keep PostgreSQL from the primary key's range and make it read every row.
        try await connection.query("ANALYZE datenwerk_run_series", logger: logger)
        for range in ["r.stored_raw", "NOT r.stored_raw AND o.phenomenon_start >= r.min_start AND o.phenomenon_start < r.flip_hour + interval '1 hour'"] {
            try await connection.query(PostgresQuery(unsafeSQL: """
                INSERT INTO datenwerk.observations_hourly AS h (station_id, property, hour, n, total, minimum, maximum)
                SELECT o.station_id, o.property, date_trunc('hour', o.phenomenon_start, 'UTC'), count(*), sum(o.result), min(o.result), max(o.result)
                FROM datenwerk_run_series r
                JOIN datenwerk.observations o ON o.station_id = r.station_id AND o.property = r.property AND \(range)
                WHERE r.flip_hour IS NOT NULL
                GROUP BY 1, 2, 3
                ON CONFLICT (station_id, property, hour) DO UPDATE SET
                    n = EXCLUDED.n, total = EXCLUDED.total, minimum = EXCLUDED.minimum, maximum = EXCLUDED.maximum
                """), logger: logger)
        }
    }

    static let seriesColumns = ["station_id", "property", "min_start", "max_start", "last_end", "last_result", "last_quality", "aligned", "flip_hour"]
    static let hourColumns = ["station_id", "property", "hour", "n", "total", "minimum", "maximum"]
    static let dayColumns = ["station_id", "property", "day", "n", "total", "minimum", "maximum"]

    static func pair(_ a: Int64, _ b: Int64) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(a)
        binds.append(b)
        return binds
    }

    /// Recomputes the aggregates of the tenant's runs whose side transaction (`HourlySideLoad`) did not commit after
    /// their load did (the process died in between, or it failed), each in its own transaction, and clears their
    /// mark. A side transaction still going holds its advisory lock: its run is left alone. Failures are logged,
    /// never fail the caller: the mark stays for the next time.
    static func repairPending(tenant: String, database: Database) async {
        let logger = database.logger
        do {
            var pending: [(Int64, String, String)] = []
            for try await row in try await database.client.query("""
                SELECT id, lower(aggregates_pending)::text, upper(aggregates_pending)::text FROM datenwerk.runs
                WHERE tenant = \(tenant) AND aggregates_pending IS NOT NULL ORDER BY id
                """, logger: logger).decode((Int64, String, String).self) {
                pending.append(row)
            }
            for (runID, from, to) in pending {
                let repaired: Bool = try await database.transaction { connection in
                    // Never wait long for rows a running load holds: the next load tries again.
                    try await connection.query("SET LOCAL lock_timeout = '10s'", logger: logger)
                    for try await free in try await connection.query(
                        "SELECT pg_try_advisory_xact_lock(\(HourlySideLoad.lockSpace), \(Int32(truncatingIfNeeded: runID)))", logger: logger
                    ).decode(Bool.self) where !free {
                        return false
                    }
                    try await recompute(runID: runID, from: from, to: to, on: connection, logger: logger)
                    try await connection.query("UPDATE datenwerk.runs SET aggregates_pending = NULL WHERE id = \(runID)", logger: logger)
                    return true
                }
                if repaired { logger.notice("run \(runID): dashboard aggregates recomputed (its hourly buckets had not committed)") }
            }
        } catch {
            logger.warning("tenant \(tenant): dashboard aggregates left to repair (\(describeDatabaseError(error)))")
        }
    }

    /// Rows of the run may have changed (the staged path): the hours, days and series of the rows it wrote
    /// (`run_id`, within `from...to`) are computed again from `observations`.
    static func recompute(runID: Int64, from: String, to: String, on connection: GuardedConnection, logger: Logger) async throws {
        var binds = PostgresBindings()
        binds.append(runID)
        binds.append(from)
        binds.append(to)
        try await connection.query(PostgresQuery(unsafeSQL: """
            CREATE TEMP TABLE datenwerk_touched ON COMMIT DROP AS
            SELECT station_id, property, date_trunc('hour', phenomenon_start, 'UTC') AS hour,
                   (phenomenon_start AT TIME ZONE 'Europe/Berlin')::date AS day,
                   bool_and(date_trunc('hour', phenomenon_start, 'UTC') = phenomenon_start) AS aligned
            FROM datenwerk.observations
            WHERE run_id = $1 AND phenomenon_start BETWEEN $2::timestamptz AND $3::timestamptz
            GROUP BY 1, 2, 3, 4
            """, binds: binds), logger: logger)
        try await connection.query("ANALYZE datenwerk_touched", logger: logger)
        // Stored hourly series with a start off the hour now: all their hours get buckets.
        try await connection.query("""
            CREATE TEMP TABLE datenwerk_flipped ON COMMIT DROP AS
            SELECT t.station_id, t.property FROM datenwerk_touched t
            JOIN datenwerk.series s ON s.station_id = t.station_id AND s.property = t.property AND s.hourly_raw
            GROUP BY t.station_id, t.property HAVING NOT bool_and(t.aligned)
            """, logger: logger)
        try await connection.query("""
            INSERT INTO datenwerk.series AS s (station_id, property, first_start, last_start, last_end, last_result, last_quality, hourly_raw)
            SELECT t.station_id, t.property, f.phenomenon_start, l.phenomenon_start, l.phenomenon_end, l.result, l.quality, t.aligned
            FROM (SELECT station_id, property, bool_and(aligned) AS aligned FROM datenwerk_touched GROUP BY 1, 2) t
            CROSS JOIN LATERAL (SELECT o.phenomenon_start FROM datenwerk.observations o
                                WHERE o.station_id = t.station_id AND o.property = t.property ORDER BY o.phenomenon_start LIMIT 1) f
            CROSS JOIN LATERAL (SELECT o.phenomenon_start, o.phenomenon_end, o.result, o.quality FROM datenwerk.observations o
                                WHERE o.station_id = t.station_id AND o.property = t.property ORDER BY o.phenomenon_start DESC LIMIT 1) l
            ORDER BY 1, 2
            ON CONFLICT (station_id, property) DO UPDATE SET
                first_start = EXCLUDED.first_start, last_start = EXCLUDED.last_start, last_end = EXCLUDED.last_end,
                last_result = EXCLUDED.last_result, last_quality = EXCLUDED.last_quality,
                hourly_raw = s.hourly_raw AND EXCLUDED.hourly_raw
            """, logger: logger)
        try await connection.query("""
            INSERT INTO datenwerk.observations_hourly AS h (station_id, property, hour, n, total, minimum, maximum)
            SELECT DISTINCT ON (station_id, property, hour) * FROM (
            SELECT k.station_id, k.property, k.hour, count(*) AS n, sum(o.result) AS total, min(o.result) AS minimum, max(o.result) AS maximum
            FROM (SELECT DISTINCT station_id, property, hour FROM datenwerk_touched) k
            JOIN datenwerk.series s ON s.station_id = k.station_id AND s.property = k.property AND NOT s.hourly_raw
            JOIN datenwerk.observations o ON o.station_id = k.station_id AND o.property = k.property
             AND o.phenomenon_start >= k.hour AND o.phenomenon_start < k.hour + interval '1 hour'
            GROUP BY 1, 2, 3
            UNION ALL
            SELECT o.station_id, o.property, date_trunc('hour', o.phenomenon_start, 'UTC'), count(*), sum(o.result), min(o.result), max(o.result)
            FROM datenwerk_flipped x
            JOIN datenwerk.observations o ON o.station_id = x.station_id AND o.property = x.property
            GROUP BY 1, 2, 3) u
            ON CONFLICT (station_id, property, hour) DO UPDATE SET
                n = EXCLUDED.n, total = EXCLUDED.total, minimum = EXCLUDED.minimum, maximum = EXCLUDED.maximum
            """, logger: logger)
        try await connection.query("""
            INSERT INTO datenwerk.observations_daily AS d (station_id, property, day, n, total, minimum, maximum)
            SELECT k.station_id, k.property, k.day, count(*), sum(o.result), min(o.result), max(o.result)
            FROM (SELECT DISTINCT station_id, property, day FROM datenwerk_touched) k
            JOIN datenwerk.observations o ON o.station_id = k.station_id AND o.property = k.property
             AND o.phenomenon_start >= (k.day::timestamp AT TIME ZONE 'Europe/Berlin')
             AND o.phenomenon_start < ((k.day + 1)::timestamp AT TIME ZONE 'Europe/Berlin')
            GROUP BY 1, 2, 3
            ON CONFLICT (station_id, property, day) DO UPDATE SET
                n = EXCLUDED.n, total = EXCLUDED.total, minimum = EXCLUDED.minimum, maximum = EXCLUDED.maximum
            """, logger: logger)
    }
}
