import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Loads a run with COPY into a temporary staging table, then merges in ONE transaction:
/// stations upserted, observations `INSERT … ON CONFLICT` on their natural key, quarantine rows,
/// the run row and the checkpoint. Re-running the same input changes no row counts.
package struct PostgresObservationSink: ObservationSink {
    package let database: Database
    /// Staged rows are sent to the server in COPY chunks of about this many bytes.
    package var copyChunkBytes = 512 * 1024
    /// The fast path's groups of rows sent in key order (`KeyOrderedRows`): a group ends at the first station change
    /// past this many bytes, or at twice it.
    package var groupBytes = 4 * 1024 * 1024
    /// Station keys (new ones, and station items) one run may hold in memory: `ObservationLoad.maxStations`.
    package var maxStationsPerRun = 500_000
    /// The fast path's COPY goes into `observations` (months that have a partition) or into the run's fresh tables
    /// (months that had none), and starts a new COPY whenever the next row belongs to the other. A run whose rows
    /// switch more often than this (a file station by station across old and new months) gives way to staging.
    package var maxTargetSwitches = 64
    /// At most this many months one run fills as fresh tables (each holds a few locks until the commit, from the
    /// server's shared lock table: `max_locks_per_transaction` × connections); a run over more months (a
    /// backfill of decades) gives way to staging, whose partitions are made and committed one by one.
    package var maxFreshMonths = 120

    /// Called when the load's connection closed (server restart, network) and the load has not ended
    /// 60 s later. `GuardedConnection` ends every statement of the load 1 s after a close, so this is only a
    /// last resort against hangs nobody has seen yet; the CLI exits the process (code 75, "try again") so a
    /// supervisor restarts it and the job's lease expires and is retaken.
    package var onStuckLoad: (@Sendable (String) -> Void)?

    package init(database: Database, onStuckLoad: (@Sendable (String) -> Void)? = nil) {
        self.database = database
        self.onStuckLoad = onStuckLoad
    }

    package func beginRun(pipeline: PipelineSpec, context: RunContext) async throws -> Int64 {
        let host = ProcessInfo.processInfo.hostName
        let rows = try await database.client.query("""
            INSERT INTO datenwerk.runs (pipeline, tenant, trigger, status, host, job_id)
            VALUES (\(pipeline.name), \(pipeline.tenant), \(context.trigger), 'running', \(host), \(context.jobID)) RETURNING id
            """, logger: database.logger)
        for try await id in rows.decode(Int64.self) { return id }
        throw PipelineError(step: .load, code: .database, message: "could not create the run row")
    }

    package func load(runID: Int64, pipeline: PipelineSpec, context: RunContext, next: () async throws -> [StagedItem]?, totals: () -> RunTotals) async throws -> LoadResult {
        do {
            return try await merge(runID: runID, pipeline: pipeline, context: context, next: next, totals: totals)
        } catch let error as PSQLError {
            throw PipelineError(step: .load, code: .database, message: describeDatabaseError(error), underlying: error,
                                sqlState: error.serverInfo?[.sqlState])
        } catch let error as ConnectionLost {
            throw PipelineError(step: .load, code: .database, message: error.description, underlying: error)
        }
    }

    private func merge(runID: Int64, pipeline: PipelineSpec, context: RunContext, next: () async throws -> [StagedItem]?, totals: () -> RunTotals) async throws -> LoadResult {
        // Runs of the tenant whose hourly buckets' second transaction never committed (HourlySideLoad).
        await SeriesAggregates.repairPending(tenant: pipeline.tenant, database: database)
        // The first load's new hourly buckets, COPYed beside the load on a second connection; it commits right
        // after the load's transaction, or rolls back.
        let slot = SideSlot()
        let result: LoadResult
        do {
            result = try await load(runID: runID, pipeline: pipeline, context: context, next: next, totals: totals, side: slot)
        } catch {
            await slot.load?.rollBack()
            throw error
        }
        if let side = slot.load {
            FailPoint.hit("after-commit", pipeline: pipeline.name)
            if await !side.commit() {
                await SeriesAggregates.repairPending(tenant: pipeline.tenant, database: database)
            }
        }
        return result
    }

    private func load(runID: Int64, pipeline: PipelineSpec, context: RunContext, next: () async throws -> [StagedItem]?, totals: () -> RunTotals,
                      side: SideSlot) async throws -> LoadResult {
        let logger = database.logger
        return try await database.transaction { connection in
            let ended = SetOnce()
            defer { ended.set() }
            if let onStuckLoad {
                let pipelineName = pipeline.name
                connection.connection.closeFuture.whenComplete { _ in
                    Task {
                        try? await Task.sleep(for: .seconds(60))
                        if !ended.isSet {
                            onStuckLoad("run \(runID) of \(pipelineName): the database connection closed during the load and the load did not end within 60 s")
                        }
                    }
                }
            }
            // COPY names its table as one identifier: `observations` is found through the search path.
            try await connection.query("SET LOCAL search_path TO datenwerk, public", logger: logger)
            // Sorting and hashing the run's rows in memory, and the fresh tables' index builds (`attachFresh`).
            try await connection.query("SET LOCAL work_mem = '256MB'", logger: logger)
            try await connection.query("SET LOCAL maintenance_work_mem = '256MB'", logger: logger)
            // The fresh tables' indexes are built by this backend alone: PostgreSQL's parallel build sorts through
            // temporary files and merges, more CPU for about the same time (psql, 1M rows: 0.35 s either way), and
            // its workers took the core that the dashboard buckets' side transaction COPYs on meanwhile. Measured,
            // `datenwerk run` of 10M 10-minute rows: PostgreSQL CPU 14.4 → 12.7 s, wall 15.1 → 13.8 s.
            try await connection.query("SET LOCAL max_parallel_maintenance_workers = 0", logger: logger)
            let tenant = pipeline.tenant
            let load = try await ObservationLoad.prepare(runID: runID, tenant: tenant, database: database, on: connection)
            load.maxStations = maxStationsPerRun
            var feed = ItemFeed(pending: try await next())

            // The first-load fast path: when none of the first batch's stored series has a row in the batch's time
            // span, the rows are copied straight into `observations` (its primary key still refuses any repeat),
            // and rows of a month that has no partition yet into a fresh table of the run's own, whose indexes
            // are built once at the end before it is attached (`attachFresh`: the key refuses a repeat there).
            // If a row is there after all (a later batch overlaps stored data, or the run repeats a key), the fast
            // path gives way: back to the savepoint (the fresh tables go with it), and the rows sent so far, kept in
            // a spool, go to staging.
            var fast = try await looksNew(feed.pending, load: load, on: connection)
            var sideHasNew = false
            if fast {
                load.aggregates = try SeriesAggregates(stored: try await SeriesAggregates.storedSeries(tenant: tenant, on: connection, logger: logger))
                if let aggregates = load.aggregates, !aggregates.overflow {
                    let database = database
                    aggregates.side = side
                    aggregates.sideGroupBytes = max(1, groupBytes / 4)
                    aggregates.dayGroupBytes = max(1, groupBytes / 4)
                    aggregates.openSide = { HourlySideLoad(database: database, runID: runID) }
                    // Rows into fresh tables whose indexes are all built after the COPY: the side's buckets wait
                    // for that, when the client leaves a core free.
                    aggregates.holdSide = { [unowned load] in !load.indexesAhead && !load.freshMonths.isEmpty }
                }
                try await connection.query("SAVEPOINT datenwerk_fast", logger: logger)
                load.rowSpool = try LoadSpool("rows")
                do {
                    try await copy(load, fast: true, feed: &feed, next: next, on: connection)
                    // The last buckets close; what the side transaction still has to COPY (hourly buckets held
                    // back, the new days) goes in beside the index builds of `attachFresh`.
                    try load.aggregates?.finish()
                    try await load.aggregates?.startSideTail()
                    try await attachFresh(load, on: connection)
                    try await connection.query("RELEASE SAVEPOINT datenwerk_fast", logger: logger)
                    load.rowSpool = nil
                    sideHasNew = await load.aggregates?.sideCopiedAll() ?? false
                } catch {
                    guard let reason = FastPathGivesWay.reason(error) else { throw error }
                    logger.info("\(pipeline.name): first-load fast path gave way after \(load.observations) observations (\(reason)); merging instead")
                    try await connection.query("ROLLBACK TO SAVEPOINT datenwerk_fast", logger: logger)
                    fast = false
                    load.aggregates = nil
                    load.freshMonths = []
                    load.indexedMonths = []
                    load.indexesAhead = true
                    load.copyTarget = .observations
                }
            }
            if !fast {
                try await connection.query("""
                    CREATE TEMP TABLE datenwerk_staging (
                        seq bigint GENERATED BY DEFAULT AS IDENTITY, station_id bigint NOT NULL, property text COLLATE "C" NOT NULL,
                        phenomenon_start timestamptz NOT NULL, phenomenon_end timestamptz, result float8 NOT NULL, quality text,
                        run_id bigint, conflicting boolean NOT NULL DEFAULT false
                    ) ON COMMIT DROP
                    """, logger: logger)
                try await copy(load, fast: false, feed: &feed, next: next, on: connection)
            }
            FailPoint.hit("after-copy", pipeline: pipeline.name)

            if !fast, load.observations > 0 {
                // Partitions are created on a second connection in their own short transactions (ATTACH takes no
                // lock that would block readers or other loads), before this transaction takes any lock another
                // load could wait for (the station upsert): it may wait there for a load filling a fresh table
                // of the same month to commit.
                try await ensurePartitions(load.months.subtracting(load.partitions))
            }
            var stationRows = 0
            var moved: [(Int64, Int64)] = []
            if load.hasStationRows {
                (stationRows, moved) = try await upsertStations(load, fast: fast, on: connection)
            }
            var result = LoadResult()
            if fast {
                result.inserted = load.observations
            } else if load.observations > 0 {
                try await connection.query("ANALYZE datenwerk_staging", logger: logger)
                if load.mayRepeat {
                    result = try await settleRepeats(runID: runID, pipeline: pipeline, load: load, on: connection)
                }
                let (inserted, updated) = try await mergeStaged(load, pipeline: pipeline, on: connection)
                result.inserted = inserted
                result.updated = updated
            }
            // The dashboard aggregates (`series`, hourly, daily) for what this run wrote.
            let aggregatesStarted = ContinuousClock.now
            // The side transaction's buckets stay only when nothing this transaction writes can meet them.
            if let aggregates = load.aggregates, !aggregates.overflow, load.observations > 0, moved.isEmpty, !aggregates.revisitsNew, sideHasNew {
                var span = PostgresBindings()
                span.append(load.minStart)
                span.append(load.maxStart)
                span.append(runID)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    UPDATE datenwerk.runs SET aggregates_pending = tstzrange('epoch'::timestamptz + $1 * interval '1 microsecond',
                                                                             'epoch'::timestamptz + $2 * interval '1 microsecond', '[]')
                    WHERE id = $3
                    """, binds: span), logger: logger)
            } else if let dropped = side.load {
                await dropped.rollBack()
                side.load = nil
                sideHasNew = false
            }
            if let aggregates = load.aggregates, !aggregates.overflow {
                if load.observations > 0 {
                    try await aggregates.applyDeltas(moved: moved, sideHasNew: sideHasNew, on: connection, logger: logger)
                    logger.info("\(pipeline.name): dashboard aggregates added (\(aggregates.seriesCount) series\(sideHasNew ? ", new hours and days beside the load\(aggregates.heldBack ? ", after the rows" : "")" : "")) in \(ContinuousClock.now - aggregatesStarted)")
                }
            } else if result.inserted + result.updated > 0 {
                var from = ByteBufferAllocator().buffer(capacity: 40), to = ByteBufferAllocator().buffer(capacity: 40)
                CopyText.timestamp(load.minStart, &from)
                CopyText.timestamp(load.maxStart, &to)
                try await SeriesAggregates.recompute(runID: runID, from: String(buffer: from), to: String(buffer: to), on: connection, logger: logger)
                logger.info("\(pipeline.name): dashboard aggregates recomputed for \(result.inserted + result.updated) written observations in \(ContinuousClock.now - aggregatesStarted)")
            }
            FailPoint.hit("after-merge", pipeline: pipeline.name)
            if !load.quarantineSpool.isEmpty {
                try await connection.query("""
                    CREATE TEMP TABLE datenwerk_quarantine_staging (
                        seq bigint GENERATED ALWAYS AS IDENTITY, origin text, line integer, record integer, path text, field text,
                        reason text, raw text, fields jsonb
                    ) ON COMMIT DROP
                    """, logger: logger)
                try await connection.copyFrom(table: "datenwerk_quarantine_staging", columns: Self.quarantineColumns, logger: logger) { writer in
                    try await load.quarantineSpool.read { try await writer.write($0) }
                }
                try await connection.query("""
                    INSERT INTO datenwerk.quarantine AS q (pipeline, run_id, origin, line, record, path, field, reason, raw, fields, fingerprint)
                    SELECT DISTINCT ON (fp) \(pipeline.name), \(runID), origin, line, record, path, field, reason, raw, fields, fp
                    FROM (SELECT *, md5(concat_ws(chr(31), origin, line, record, path, field, raw)) AS fp FROM datenwerk_quarantine_staging) bad
                    ORDER BY fp, seq DESC
                    ON CONFLICT (pipeline, fingerprint) DO UPDATE SET
                        run_id = EXCLUDED.run_id, reason = EXCLUDED.reason, last_seen = now(), seen_count = q.seen_count + 1
                    """, logger: logger)
            }
            if let replay = context.replay {
                try await settle(replay, pipeline: pipeline.name, runID: runID, on: connection)
            }
            // The privacy gate (docs/privacy.md): the spec's min_count and the series this run wrote.
            try await PrivacyGate.record(pipeline: pipeline, runID: runID, fromMicros: load.observations > 0 ? load.minStart : nil,
                                         toMicros: load.observations > 0 ? load.maxStart : nil, on: connection, logger: logger)
            var t = totals()
            result.stations = stationRows
            t.settle(result)
            result.unchanged = max(0, t.observations - result.inserted - result.updated)
            try await finishRun(runID, status: "succeeded", totals: t, load: result, failure: nil, context: context, on: connection)
            guard context.writesCheckpoint else { return result }
            let cursor = Self.checkpoint(t, context: context)
            // The high-water mark never moves back (a re-delivered old file, a corrected day).
            try await connection.query("""
                INSERT INTO datenwerk.checkpoints AS c (pipeline, cursor, run_id, updated_at) VALUES (\(context.checkpointKey(pipeline.name)), \(cursor)::jsonb, \(runID), now())
                ON CONFLICT (pipeline) DO UPDATE SET
                    cursor = EXCLUDED.cursor || jsonb_strip_nulls(jsonb_build_object('max_phenomenon_start_us',
                        GREATEST((c.cursor->>'max_phenomenon_start_us')::numeric, (EXCLUDED.cursor->>'max_phenomenon_start_us')::numeric))),
                    run_id = EXCLUDED.run_id, updated_at = now()
                """, logger: logger)
            FailPoint.hit("before-commit", pipeline: pipeline.name)
            return result
        }
    }

    static let quarantineColumns = ["origin", "line", "record", "path", "field", "reason", "raw", "fields"]
    static let stationColumns = ["id", "station_key", "name", "station_kind", "lon", "lat", "alt", "src_x", "src_y", "srid", "props"]

    /// The batch pulled but not yet taken (`pending` from `index` on).
    struct ItemFeed {
        var pending: [StagedItem]?
        var index = 0
    }

    /// Whether the run looks like a first load: no stored series of the first batch has a row in its span there.
    private func looksNew(_ batch: [StagedItem]?, load: ObservationLoad, on connection: GuardedConnection) async throws -> Bool {
        guard let batch else { return false }
        let spans = load.storedSeriesSpans(batch)
        guard !spans.ids.isEmpty else { return true }
        for try await exists in try await connection.query("""
            SELECT EXISTS (
                SELECT 1 FROM unnest(\(spans.ids)::int8[], \(spans.properties)::text[], \(spans.from)::int8[], \(spans.to)::int8[]) AS s(id, property, lo, hi)
                JOIN datenwerk.observations o ON o.station_id = s.id AND o.property = s.property
                 AND o.phenomenon_start BETWEEN 'epoch'::timestamptz + s.lo * interval '1 microsecond' AND 'epoch'::timestamptz + s.hi * interval '1 microsecond')
            """, logger: database.logger).decode(Bool.self) {
            return !exists
        }
        return false
    }

    /// Streams the run's items: observations as COPY rows into `observations` or the run's fresh tables (fast), or
    /// the staging table, the rest into the load's spools. The fast path ends its COPY before a row that belongs to
    /// the other target, or to a month that has neither a partition nor a fresh table yet (it makes one:
    /// `beginFresh`), and goes on with a new COPY.
    ///
    /// When the rows move on from fresh months to a new one, the months left behind are indexed right then
    /// (`FreshIndexing`) while the rows go on: the connection is busy with the index build, so the rows, in the
    /// same key-ordered groups, go to a backlog file until the build is done, and the next COPY sends the backlog
    /// first. Rows in time order (a backfill, a feed) so have their months indexed beside the parsing, not after it.
    private func copy(_ load: ObservationLoad, fast: Bool, feed: inout ItemFeed, next: () async throws -> [StagedItem]?, on connection: GuardedConnection) async throws {
        let logger = database.logger
        var switches = 0
        var indexing: FreshIndexing?
        do {
            while true {
                var current = feed
                // Whatever happens, what was taken stays taken (a fast path that gives way goes on from here).
                defer { feed = current }
                var stop = FeedStop.end
                let table = !fast ? "datenwerk_staging" : load.copyTarget == .fresh ? load.freshParent : "observations"
                if let running = indexing {
                    stop = try await feedRows(load, fast: fast, current: &current, next: next, until: running.done) { try running.backlog.append($0) }
                    try await running.task.value
                    indexing = nil
                    try await connection.copyFrom(table: table, columns: ObservationLoad.columns, format: .binary, logger: logger) { writer in
                        try await running.backlog.read { try await writer.write($0) }
                        if case .indexed = stop {
                            stop = try await feedRows(load, fast: fast, current: &current, next: next, until: nil) { try await writer.write($0) }
                        }
                    }
                } else if fast, let first = load.nextTarget(current), first != load.copyTarget {
                    // The next row goes elsewhere: no COPY is opened for nothing.
                    stop = .target(first)
                } else {
                    if !fast, let replay = load.rowSpool {
                        // The rows the fast path had sent, again, into staging, in the order they were taken: the
                        // staging table numbers them 1, 2, … (`seq`), as the observations were counted.
                        try await connection.copyFrom(table: table, columns: ObservationLoad.columns, format: .binary, logger: logger) { writer in
                            try await replay.read { try await writer.write($0) }
                        }
                        load.rowSpool = nil
                    }
                    // Rows into staging carry their number (`seq`): they go in key order, not in the order they came.
                    load.rowsCarrySeq = !fast
                    try await connection.copyFrom(table: table, columns: fast ? ObservationLoad.columns : ObservationLoad.stagingColumns,
                                                  format: .binary, logger: logger) { writer in
                        stop = try await feedRows(load, fast: fast, current: &current, next: next, until: nil) { try await writer.write($0) }
                    }
                }
                switch stop {
                case .end:
                    return
                case .indexed:
                    continue
                case .target(.newMonth(let month)):
                    // The months the rest of the batch in hand has rows of. Those without a table yet begin now
                    // with this one, so that the rows go on in one COPY (a file station by station: its first
                    // station runs through every month); a fresh month among them is not left behind.
                    let (ahead, goesBack) = load.months(after: current)
                    if goesBack && load.indexesAhead {
                        // The batch comes back to an earlier month: not in time order, as at a revisit.
                        try await stopIndexingAhead(load, on: connection)
                    }
                    // The fresh months the rows leave behind, not indexed yet.
                    let left = load.indexesAhead ? load.freshMonths.subtracting(load.indexedMonths).filter { $0 < month && !ahead.contains($0) } : []
                    load.copyTarget = try await beginFresh(month, load, on: connection)
                    for other in ahead.sorted() where other != month && !load.freshMonths.contains(other) && !load.partitions.contains(other) {
                        _ = try await beginFresh(other, load, on: connection)
                    }
                    if !left.isEmpty {
                        indexing = try FreshIndexing(months: left.sorted(), timeIndex: load.inTimeOrder, on: connection, logger: logger)
                        load.indexedMonths.formUnion(left)
                    }
                case .target(.revisit):
                    // Not in time order after all (a file station by station).
                    try await stopIndexingAhead(load, on: connection)
                case .target(let target):
                    switches += 1
                    if switches > maxTargetSwitches {
                        throw FastPathGivesWay(description: "its rows went back and forth between months with and without a partition more than \(maxTargetSwitches) times")
                    }
                    load.copyTarget = target
                }
            }
        } catch {
            // Nothing else may use the connection while an index build is on it.
            if let running = indexing { _ = try? await running.task.value }
            throw error
        }
    }

    /// The rows are not in time order after all: the months indexed ahead lose their indexes again and get them at
    /// the end with the others; every fresh month is indexed then (and the side's buckets wait for those builds).
    private func stopIndexingAhead(_ load: ObservationLoad, on connection: GuardedConnection) async throws {
        for month in load.indexedMonths.sorted() {
            _ = try await connection.collect("SELECT datenwerk.unindex_fresh_partition(\(unescaped: Self.partition(month)))", logger: database.logger)
        }
        load.indexedMonths = []
        load.indexesAhead = false
    }

    /// Why `feedRows` stopped: the items ended, the next row belongs to another target (it is not taken), or the
    /// index build it fed a backlog beside is done.
    enum FeedStop {
        case end, indexed
        case target(ObservationLoad.RowTarget)
    }

    /// Takes items into COPY rows and hands them to `output` until the items end, a row belongs to another target
    /// than `into`, or `until` is set (checked between items).
    private func feedRows(_ load: ObservationLoad, fast: Bool, current: inout ItemFeed, next: () async throws -> [StagedItem]?,
                          until done: SetOnce?, output: (ByteBuffer) async throws -> Void) async throws -> FeedStop {
        let chunkBytes = copyChunkBytes
        let groupBytes = self.groupBytes
        let into = load.copyTarget
        // Sized for the largest group (twice `groupBytes`, plus a row).
        var rows = ByteBufferAllocator().buffer(capacity: 2 * groupBytes + 64 * 1024)
        // Rows go in groups of whole stations, each in key order (KeyOrderedRows) from `ordered`: into the
        // fresh tables and partitions (the fast path), and into staging, whose rows the merge sorts by the key
        // (already in order, a file station by station, its sort is one pass; `seq` keeps the order they
        // came in). `spooled`: bytes at the start of `rows` already in the spool.
        var order = KeyOrderedRows()
        var spooled = 0
        var ordered = ByteBufferAllocator().buffer(capacity: 2 * groupBytes + 64 * 1024)
        /// Sends the buffered rows; `keepingLast`: all but the last one (the first of the next group).
        func send(keepingLast: Bool = false) async throws {
            guard rows.readableBytes > 0 else { return }
            // Spooled (in the order they came) before they are sent: if the server refuses a row, the spool
            // has every row taken so far.
            if rows.readableBytes > spooled {
                try load.rowSpool?.append(rows.getSlice(at: rows.readerIndex + spooled, length: rows.readableBytes - spooled)!)
            }
            let count = keepingLast ? order.count - 1 : order.count
            let bytes = keepingLast ? order.endBeforeLast : rows.readableBytes
            // One write per group. Sent in pieces of `chunkBytes` (less memory: the group's buffer plus a piece),
            // the load over the embedded server's Unix socket took 3.6 s instead of 2.8 s for 1M rows (2 MB
            // pieces: 3.2 s), with the same PostgreSQL CPU: the COPY waited between pieces.
            try await output(order.take(rows: count, bytes: bytes, of: rows, propertyRanks: KeyOrderedRows.ranks(load.propertyKeys), into: &ordered))
            rows.moveReaderIndex(forwardBy: bytes)
            rows.discardReadBytes()
            spooled = rows.readableBytes
        }
        var stop = FeedStop.end
        feeding: while let batch = current.pending {
            while current.index < batch.count {
                if let done, done.isSet {
                    stop = .indexed
                    break feeding
                }
                let before = rows.readableBytes
                let missing: String?
                // The item is read in place (an observation is not copied out of its batch to be taken).
                if case .observation(let o) = batch[current.index] {
                    if fast {
                        let target = load.target(o.phenomenonStart)
                        if target != into {
                            stop = .target(target)
                            break feeding
                        }
                    }
                    missing = try load.take(o, into: &rows)
                } else {
                    missing = try load.takeIfReady(batch[current.index], into: &rows)
                }
                if let key = missing {
                    // A station key met for the first time: its id is reserved, then the item is taken.
                    try await load.reserveID(for: key)
                    continue
                }
                current.index += 1
                if rows.readableBytes > before {
                    let series = load.lastSeries
                    let newStation = series.station != order.lastStation
                    order.note(slot: series.slot, station: series.station, property: series.property, end: rows.readableBytes)
                    if !order.ordering {
                        if rows.readableBytes >= chunkBytes { try await send() }
                    } else if rows.readableBytes >= 2 * groupBytes {
                        try await send()
                    } else if newStation, before >= groupBytes {
                        try await send(keepingLast: true)
                    }
                }
            }
            try await load.aggregates?.flushSide()
            current = ItemFeed(pending: try await next())
        }
        try await send()
        return stop
    }

    /// The name of the partition of `month` (its first µs), as SQL: the database names it (`observation_partition_name`).
    static func partition(_ month: Int64) -> String {
        "datenwerk.observation_partition_name('epoch'::timestamptz + \(month) * interval '1 microsecond')"
    }

    /// A month the fast path meets that had no partition when the load began: a fresh table of this run's own
    /// (`datenwerk.begin_fresh_partition`, migration 0014) unless its partition was made since (then its rows go
    /// into `observations`). Another load filling that month's fresh table right now holds it until it commits:
    /// the fast path gives way rather than wait for it while holding fresh tables of its own (two such loads
    /// could each wait for the other on their second connections, where the server sees no deadlock).
    private func beginFresh(_ month: Int64, _ load: ObservationLoad, on connection: GuardedConnection) async throws -> ObservationLoad.RowTarget {
        if load.freshMonths.count >= maxFreshMonths {
            throw FastPathGivesWay(description: "its rows span more than \(maxFreshMonths) months without a partition")
        }
        let rows = try await connection.collect("""
            SELECT datenwerk.begin_fresh_partition(\(load.freshParent), 'epoch'::timestamptz + \(month) * interval '1 microsecond')
            """, logger: database.logger)
        switch try rows.first?.decode(String.self) {
        case "fresh":
            load.freshMonths.insert(month)
            return .fresh
        case "exists":
            load.partitions.insert(month)
            return .observations
        default:
            throw FastPathGivesWay(description: "another load is filling the partition of \(Self.monthName(month)) and has not committed")
        }
    }

    /// Builds the indexes of the run's fresh tables (a key the run repeated fails here, 23505: the fast path gives
    /// way) and attaches them to `observations` as its partitions (`datenwerk.attach_fresh_partitions`). Measured
    /// with `psql` on the bench's 1M rows in 7 months: COPY into the indexed partitions 1.84 s; COPY into fresh
    /// tables 0.62 s, then their indexes and attaching 0.45 s. The BRIN index on the start only when the rows came
    /// in time order (`inTimeOrder`, migration 0015).
    private func attachFresh(_ load: ObservationLoad, on connection: GuardedConnection) async throws {
        guard !load.freshMonths.isEmpty else { return }
        // The function's error (23505) comes with its row: the row is read.
        _ = try await connection.collect("SELECT datenwerk.attach_fresh_partitions(\(load.freshParent), \(load.inTimeOrder))", logger: database.logger)
        load.partitions.formUnion(load.freshMonths)
        load.freshMonths = []
    }

    /// `2024-03` for the first µs of March 2024 (UTC), for messages.
    static func monthName(_ month: Int64) -> String {
        let (y, m, _) = CivilTime.date(days: CivilTime.floorDiv(month, 86_400_000_000))
        return "\(y)-\(m < 10 ? "0" : "")\(m)"
    }

    /// Upserts the run's stations (explicit ids: stored ones, or those reserved for new keys). If another run
    /// created one of the new keys first, this run's rows move to that station's id.
    private func upsertStations(_ load: ObservationLoad, fast: Bool, on connection: GuardedConnection) async throws -> (Int, [(Int64, Int64)]) {
        let logger = database.logger
        try await connection.query("""
            CREATE TEMP TABLE datenwerk_station_staging (
                id bigint NOT NULL, station_key text NOT NULL, name text, station_kind text, lon float8, lat float8, alt float8,
                src_x float8, src_y float8, srid integer, props jsonb
            ) ON COMMIT DROP
            """, logger: logger)
        try await connection.copyFrom(table: "datenwerk_station_staging", columns: Self.stationColumns, logger: logger) { writer in
            var b = ByteBufferAllocator().buffer(capacity: 64 * 1024)
            load.stationRows(into: &b)
            try await writer.write(b)
        }
        var count = 0
        for try await n in try await connection.query("""
            WITH upserted AS (
                INSERT INTO datenwerk.stations AS s (id, tenant, key, name, kind, geom, altitude, properties)
                SELECT id, \(load.tenant), station_key, name, station_kind,
                       CASE WHEN srid IS NOT NULL THEN ST_Transform(ST_SetSRID(ST_MakePoint(src_x, src_y), srid), 4326)
                            WHEN lon IS NULL OR lat IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END,
                       alt, coalesce(props, '{}'::jsonb)
                FROM datenwerk_station_staging ORDER BY station_key
                ON CONFLICT (tenant, key) DO UPDATE SET
                    name = coalesce(EXCLUDED.name, s.name), kind = coalesce(EXCLUDED.kind, s.kind),
                    geom = coalesce(EXCLUDED.geom, s.geom), altitude = coalesce(EXCLUDED.altitude, s.altitude),
                    properties = s.properties || EXCLUDED.properties, updated_at = now()
                WHERE (s.name, s.kind, s.altitude, s.properties) IS DISTINCT FROM
                      (coalesce(EXCLUDED.name, s.name), coalesce(EXCLUDED.kind, s.kind), coalesce(EXCLUDED.altitude, s.altitude), s.properties || EXCLUDED.properties)
                   OR NOT (s.geom IS NOT DISTINCT FROM coalesce(EXCLUDED.geom, s.geom))
                RETURNING 1)
            SELECT count(*)::bigint FROM upserted
            """, logger: logger).decode(Int64.self) { count = Int(n) }
        // A key another run stored between this run's start and now: its id wins.
        var moved: [(Int64, Int64)] = []
        for try await pair in try await connection.query("""
            SELECT g.id, st.id FROM datenwerk_station_staging g
            JOIN datenwerk.stations st ON st.tenant = \(load.tenant) AND st.key = g.station_key WHERE st.id <> g.id
            """, logger: logger).decode((Int64, Int64).self) {
            moved.append(pair)
        }
        for (reserved, stored) in moved {
            if fast {
                try await connection.query("""
                    UPDATE datenwerk.observations SET station_id = \(stored) WHERE station_id = \(reserved) AND run_id = \(load.runID)
                    """, logger: logger)
            } else {
                try await connection.query("UPDATE datenwerk_staging SET station_id = \(stored) WHERE station_id = \(reserved)", logger: logger)
            }
        }
        return (count, moved)
    }

    /// Staged rows into `observations`: only new and changed rows are written (unchanged ones stop at the join,
    /// which reads only the run's time span); repeats of a key in the run were settled before, the last one loads.
    private func mergeStaged(_ load: ObservationLoad, pipeline: PipelineSpec, on connection: GuardedConnection) async throws -> (Int, Int) {
        let logger = database.logger
        let source = load.mayRepeat
            ? """
              SELECT DISTINCT ON (station_id, property, phenomenon_start) station_id, property, phenomenon_start, phenomenon_end, result, quality
              FROM datenwerk_staging WHERE NOT conflicting ORDER BY station_id, property, phenomenon_start, seq DESC
              """
            : "SELECT station_id, property, phenomenon_start, phenomenon_end, result, quality FROM datenwerk_staging"
        var from = ByteBufferAllocator().buffer(capacity: 40), to = ByteBufferAllocator().buffer(capacity: 40)
        CopyText.timestamp(load.minStart, &from)
        CopyText.timestamp(load.maxStart, &to)
        let statement = PostgresQuery(unsafeSQL: """
            WITH src AS (\(source)), diff AS (
                SELECT src.*, (o.station_id IS NULL) AS is_new
                FROM src LEFT JOIN datenwerk.observations o
                  ON o.station_id = src.station_id AND o.property = src.property AND o.phenomenon_start = src.phenomenon_start
                 AND o.phenomenon_start BETWEEN $2::timestamptz AND $3::timestamptz
                WHERE o.station_id IS NULL
                   OR (o.phenomenon_end, o.result, o.quality) IS DISTINCT FROM (src.phenomenon_end, src.result, src.quality)
            ), merged AS (
                INSERT INTO datenwerk.observations AS o (station_id, property, phenomenon_start, phenomenon_end, result, quality, run_id)
                SELECT station_id, property, phenomenon_start, phenomenon_end, result, quality, $1 FROM diff
                ON CONFLICT (station_id, property, phenomenon_start) DO UPDATE SET
                    phenomenon_end = EXCLUDED.phenomenon_end, result = EXCLUDED.result, quality = EXCLUDED.quality, run_id = EXCLUDED.run_id
                WHERE (o.phenomenon_end, o.result, o.quality) IS DISTINCT FROM (EXCLUDED.phenomenon_end, EXCLUDED.result, EXCLUDED.quality)
                RETURNING 1
            )
            SELECT count(*) FILTER (WHERE is_new)::bigint, count(*) FILTER (WHERE NOT is_new)::bigint FROM diff
            """, binds: {
                var b = PostgresBindings()
                b.append(load.runID)
                b.append(String(buffer: from))
                b.append(String(buffer: to))
                return b
            }())
        // Once seen under concurrent loads into a fresh database: the merge found no partition for a month
        // that ensurePartitions had just created (SQLSTATE 23514). The merge is retried once behind a
        // savepoint after creating the partitions again, instead of failing the run.
        var counts = (0, 0)
        try await connection.query("SAVEPOINT datenwerk_merge", logger: logger)
        for attempt in 1...2 {
            do {
                for try await (i, u) in try await connection.query(statement, logger: logger).decode((Int64, Int64).self) {
                    counts = (Int(i), Int(u))
                }
                break
            } catch let error as PSQLError where attempt == 1 && error.serverInfo?[.sqlState] == "23514" {
                logger.notice("\(pipeline.name): \(describeDatabaseError(error)); partitions created again, merge retried")
                try await connection.query("ROLLBACK TO SAVEPOINT datenwerk_merge", logger: logger)
                try await ensurePartitions(load.months)
            }
        }
        try await connection.query("RELEASE SAVEPOINT datenwerk_merge", logger: logger)
        return counts
    }

    /// Observations of this run that share a natural key (station, property, start). Equal repeats load once and
    /// are counted (`duplicate`); repeats with a different end, value or quality load NOT at all: each is
    /// quarantined as `conflicting_duplicate` with its source record (or counted under `on_bad_record: skip`, or
    /// fail the run under `fail`), because "last one wins" would silently pick one. Only run when some series
    /// of the run went back in time (`ObservationLoad.mayRepeat`); the source records come from the load's
    /// provenance spool, read into the database only when there is a conflict to describe.
    private func settleRepeats(runID: Int64, pipeline: PipelineSpec, load: ObservationLoad, on connection: GuardedConnection) async throws -> LoadResult {
        let logger = database.logger
        try await connection.query("""
            CREATE TEMP TABLE datenwerk_repeats ON COMMIT DROP AS
            SELECT station_id, property, phenomenon_start, count(*) AS n,
                   (min(result) <> max(result) OR min(coalesce(phenomenon_end, '-infinity')) <> max(coalesce(phenomenon_end, '-infinity'))
                    OR min(quality) IS DISTINCT FROM max(quality) OR (count(quality) > 0 AND count(quality) < count(*))) AS conflicting
            FROM datenwerk_staging
            GROUP BY station_id, property, phenomenon_start HAVING count(*) > 1
            """, logger: logger)
        var duplicates = 0, conflicting = 0
        for try await (d, c) in try await connection.query("""
            SELECT coalesce(sum(n - 1) FILTER (WHERE NOT conflicting), 0)::bigint, coalesce(sum(n) FILTER (WHERE conflicting), 0)::bigint
            FROM datenwerk_repeats
            """, logger: logger).decode((Int64, Int64).self) {
            duplicates = Int(d)
            conflicting = Int(c)
        }
        guard conflicting > 0 else { return LoadResult(duplicates: duplicates) }
        // Set aside: conflicting rows take no part in the merge.
        try await connection.query("""
            UPDATE datenwerk_staging g SET conflicting = true FROM datenwerk_repeats r
            WHERE r.conflicting AND g.station_id = r.station_id AND g.property = r.property AND g.phenomenon_start = r.phenomenon_start
            """, logger: logger)
        try await connection.query("""
            CREATE TEMP TABLE datenwerk_provenance (first_seq bigint PRIMARY KEY, origin text, line integer, record integer, path text, raw text) ON COMMIT DROP
            """, logger: logger)
        try await connection.copyFrom(table: "datenwerk_provenance", columns: ["first_seq", "origin", "line", "record", "path", "raw"], logger: logger) { writer in
            try await load.provenanceSpool.read { try await writer.write($0) }
        }
        let described = """
            SELECT g.seq, st.key AS station_key, g.property, p.origin, p.line, p.record, p.path, p.raw, r.n,
                   to_char(g.phenomenon_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at,
                   string_agg(g.result::text || coalesce(' (' || regexp_replace(p.origin, '^.*/', '') || coalesce(':' || p.line, '') || ')', ''), ', ')
                       OVER (PARTITION BY g.station_id, g.property, g.phenomenon_start ORDER BY g.seq
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS values_seen,
                   json_build_object('station', st.key, 'property', g.property,
                                     'phenomenon_start_us', (extract(epoch FROM g.phenomenon_start) * 1000000)::bigint,
                                     'phenomenon_end_us', (extract(epoch FROM g.phenomenon_end) * 1000000)::bigint,
                                     'result', g.result, 'quality', g.quality)::text AS described
            FROM datenwerk_staging g
            JOIN datenwerk_repeats r
              ON r.conflicting AND g.station_id = r.station_id AND g.property = r.property AND g.phenomenon_start = r.phenomenon_start
            JOIN datenwerk.stations st ON st.id = g.station_id
            LEFT JOIN LATERAL (SELECT * FROM datenwerk_provenance p WHERE p.first_seq <= g.seq ORDER BY p.first_seq DESC LIMIT 1) p ON true
            WHERE g.conflicting
            """
        switch pipeline.onBadRecord {
        case .fail:
            var first = ""
            for try await (key, property, at, values) in try await connection.query(PostgresQuery(unsafeSQL: """
                SELECT station_key, property, at, values_seen FROM (\(described)) c ORDER BY seq LIMIT 1
                """), logger: logger).decode((String, String, String, String).self) {
                first = "station \(key), \(property) at \(at): \(values)"
            }
            throw PipelineError(step: .transform, code: .badRecord,
                                message: "bad record (on_bad_record: fail): conflicting_duplicate: \(conflicting) observations share their station, property and time with a different value in this run; first: \(first)")
        case .skip:
            return LoadResult(duplicates: duplicates, conflictingSkipped: conflicting)
        case .quarantine:
            try await connection.query(PostgresQuery(unsafeSQL: """
                INSERT INTO datenwerk.quarantine AS q (pipeline, run_id, origin, line, record, path, field, reason, raw, fingerprint)
                SELECT DISTINCT ON (fp) $1, $2, origin, line, record, path, property, reason, raw, fp
                FROM (SELECT seq, coalesce(origin, $1) AS origin, line, record, path, property,
                             'conflicting_duplicate: station ' || station_key || ', ' || property || ' at ' || at || ' came '
                                 || n || ' times in this run with different values (' || values_seen || '); none loaded' AS reason,
                             coalesce(raw, described) AS raw,
                             md5(concat_ws(chr(31), coalesce(origin, $1), line, record, path, property, coalesce(raw, described))) AS fp
                      FROM (\(described)) c) bad
                ORDER BY fp, seq DESC
                ON CONFLICT (pipeline, fingerprint) DO UPDATE SET
                    run_id = EXCLUDED.run_id, reason = EXCLUDED.reason, last_seen = now(), seen_count = q.seen_count + 1
                """, binds: Self.binds(pipeline.name, runID)), logger: logger)
            return LoadResult(duplicates: duplicates, conflicting: conflicting)
        }
    }

    static func binds(_ name: String, _ runID: Int64) -> PostgresBindings {
        var b = PostgresBindings()
        b.append(name)
        b.append(runID)
        return b
    }

    /// A replay's outcome, in its run's transaction: records that load now (or that the transform now filters
    /// out) leave quarantine; those still bad keep their row with the new reason and field.
    private func settle(_ replay: QuarantineReplay, pipeline: String, runID: Int64, on connection: GuardedConnection) async throws {
        let resolved = replay.resolvedIDs
        if !resolved.isEmpty {
            try await connection.query("DELETE FROM datenwerk.quarantine WHERE pipeline = \(pipeline) AND id = ANY(\(resolved))", logger: database.logger)
        }
        let bad = replay.stillBadRecords
        guard !bad.isEmpty else { return }
        try await connection.query("""
            UPDATE datenwerk.quarantine q SET reason = u.reason, field = CASE WHEN u.has_field THEN u.field END,
                run_id = \(runID), last_seen = now(), seen_count = q.seen_count + 1
            FROM unnest(\(bad.map(\.id)), \(bad.map { $0.error.field != nil }), \(bad.map { $0.error.field ?? "" }), \(bad.map(\.error.reason)))
                 AS u(id, has_field, field, reason)
            WHERE q.id = u.id AND q.pipeline = \(pipeline)
            """, logger: database.logger)
    }

    package func checkpoint(_ key: String) async throws -> JSONValue? {
        let rows = try await database.client.query("SELECT cursor::text FROM datenwerk.checkpoints WHERE pipeline = \(key)", logger: database.logger)
        for try await text in rows.decode(String.self) { return try JSONParser.parse(Array(text.utf8)) }
        return nil
    }

    /// Records the failure. A run that failed because the server went away (a restart) is recorded once the
    /// server is back: connection errors are retried for about 20 s.
    package func failRun(runID: Int64, pipeline: PipelineSpec, context: RunContext, failure: PipelineError, totals: RunTotals, quarantined: [QuarantinedRecord]) async throws {
        var attempt = 0
        while true {
            do {
                return try await recordFailure(runID: runID, pipeline: pipeline, context: context, failure: failure, totals: totals, quarantined: quarantined)
            } catch where isConnectionError(error) && attempt < 7 {
                attempt += 1
                database.logger.notice("run \(runID): the database is not reachable to record the failure (\(describeDatabaseError(error))); attempt \(attempt + 1) soon")
                try await Task.sleep(for: .milliseconds(min(5_000, 250 << attempt)))
            }
        }
    }

    private func recordFailure(runID: Int64, pipeline: PipelineSpec, context: RunContext, failure: PipelineError, totals: RunTotals, quarantined: [QuarantinedRecord]) async throws {
        try await database.transaction { connection in
            try await finishRun(runID, status: "failed", totals: totals, load: LoadResult(), failure: failure, context: context, on: connection)
            for bad in quarantined {
                let e = bad.error
                try await connection.query("""
                    INSERT INTO datenwerk.quarantine AS q (pipeline, run_id, origin, line, record, path, field, reason, raw, fields, fingerprint)
                    VALUES (\(pipeline.name), \(runID), \(e.location.origin), \(e.location.line), \(e.location.record), \(e.location.path), \(e.field), \(e.reason), \(bad.raw), \(bad.fields?.serialized)::jsonb,
                            md5(concat_ws(chr(31), \(e.location.origin)::text, \(e.location.line)::int, \(e.location.record)::int, \(e.location.path)::text, \(e.field)::text, \(bad.raw)::text)))
                    ON CONFLICT (pipeline, fingerprint) DO UPDATE SET run_id = EXCLUDED.run_id, reason = EXCLUDED.reason, last_seen = now(), seen_count = q.seen_count + 1
                    """, logger: database.logger)
            }
        }
    }

    private func finishRun(_ runID: Int64, status: String, totals t: RunTotals, load: LoadResult, failure: PipelineError?, context: RunContext, on connection: GuardedConnection) async throws {
        if let job = context.jobID {
            // The job ends in the same transaction as its run: a worker killed before the commit leaves the job
            // running under an expiring lease (retaken, nothing half-loaded); after it, the job is done.
            // A failed extract/load (network, database) is tried again later with backoff; other failures are final.
            let retry = failure.map { $0.step == .extract || $0.step == .load } ?? false
            try await connection.query("""
                UPDATE datenwerk.jobs SET run_id = \(runID), error = \(failure.map(String.init(describing:))),
                    status = CASE WHEN \(status) = 'succeeded' THEN 'succeeded'
                                  WHEN \(retry) AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,
                    not_before = CASE WHEN \(status) <> 'succeeded' AND \(retry) AND attempts < max_attempts
                                      THEN now() + interval '30 seconds' * power(2, attempts - 1) ELSE not_before END,
                    finished_at = CASE WHEN \(status) = 'succeeded' OR NOT (\(retry) AND attempts < max_attempts) THEN now() END,
                    lease_owner = CASE WHEN \(status) = 'succeeded' THEN lease_owner END,
                    lease_expires_at = NULL
                WHERE id = \(job)
                """, logger: database.logger)
        }
        try await connection.query("""
            UPDATE datenwerk.runs SET status = \(status), finished_at = clock_timestamp(),
                records_read = \(t.recordsRead), loaded = \(t.observations), inserted = \(load.inserted), updated = \(load.updated),
                quarantined = \(t.quarantined), skipped = \(t.skipped), bytes = \(t.bytes),
                values_read = \(t.valuesRead), quarantined_values = \(t.quarantinedValues), skips = \(t.skips.json.serialized)::jsonb,
                balanced = \(t.valuesUncounted ? nil : t.isBalanced),
                error_step = \(failure?.step.rawValue), error = \(failure?.message),
                retries = \(t.retries.count), events = \(JSONValue.array((t.retries + t.events).map { .string($0) }).serialized)::jsonb
            WHERE id = \(runID)
            """, logger: database.logger)
    }

    /// How long creating a partition may wait for another load that is filling that month's fresh table (it
    /// holds the month until it commits). A load waits here on its second connection, where the server cannot
    /// see a deadlock through this process; past this it fails (and is retried) instead of hanging.
    package var partitionWait = "10min"

    private func ensurePartitions(_ months: Set<Int64>) async throws {
        for month in months.sorted() {
            do {
                try await database.transaction { connection in
                    try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL lock_timeout = '\(partitionWait)'"), logger: database.logger)
                    _ = try await connection.collect("SELECT datenwerk.ensure_observation_partition('epoch'::timestamptz + \(month) * interval '1 microsecond')", logger: database.logger)
                }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55P03" {
                throw PipelineError(step: .load, code: .database, message: "waited \(partitionWait) for the partition of \(Self.monthName(month)) of datenwerk.observations: another load holds it (a first load of that month has not committed yet)",
                                    underlying: error, sqlState: "55P03")
            }
        }
    }

    /// The first microsecond of the UTC month containing `micros` (a stable key per month).
    static func monthKey(_ micros: Int64) -> Int64 {
        let (y, m, _) = CivilTime.date(days: CivilTime.floorDiv(micros, 86_400_000_000))
        return CivilTime.days(year: y, month: m, day: 1) * 86_400_000_000
    }

    static func checkpoint(_ t: RunTotals, context: RunContext = RunContext()) -> String {
        var members: [JSONValue.Member] = [
            .init("records_read", .number(Double(t.recordsRead))),
            .init("origins", .array(t.origins.map { .string($0) })),
        ]
        if let window = context.window {
            members.append(.init("window_from_us", .number(Double(window.lowerBound))))
            members.append(.init("window_to_us", .number(Double(window.upperBound))))
        }
        members += t.sourceState
        if let max = t.maxPhenomenonStart { members.append(.init("max_phenomenon_start_us", .number(Double(max)))) }
        return JSONValue.object(members).serialized
    }

    // MARK: - COPY text encoding

    /// A station row of `datenwerk_station_staging` after its id: key, name, kind, lon, lat, alt, source x/y/srid, properties.
    static func encodeStation(_ s: Station, into b: inout ByteBuffer) {
        CopyText.text(s.key, &b); CopyText.tab(&b)
        CopyText.optional(s.name, &b); CopyText.tab(&b)
        CopyText.optional(s.kind, &b); CopyText.tab(&b)
        number(s.location?.longitude, &b); CopyText.tab(&b)
        number(s.location?.latitude, &b); CopyText.tab(&b)
        number(s.location?.altitude, &b); CopyText.tab(&b)
        number(s.sourceCoordinates?.x, &b); CopyText.tab(&b)
        number(s.sourceCoordinates?.y, &b); CopyText.tab(&b)
        number(s.sourceCoordinates.map { Double($0.epsg) }, &b); CopyText.tab(&b)
        CopyText.text(s.properties.serialized, &b)
        b.writeInteger(UInt8(ascii: "\n"))
    }

    /// A row of `datenwerk_quarantine_staging`: origin, line, record, path, field, reason, raw, fields.
    static func encodeQuarantined(_ q: QuarantinedRecord, into b: inout ByteBuffer) {
        let e = q.error
        CopyText.text(e.location.origin, &b); CopyText.tab(&b)
        CopyText.optionalInteger(e.location.line, &b); CopyText.tab(&b)
        CopyText.optionalInteger(e.location.record, &b); CopyText.tab(&b)
        CopyText.optional(e.location.path, &b); CopyText.tab(&b)
        CopyText.optional(e.field, &b); CopyText.tab(&b)
        CopyText.text(e.reason, &b); CopyText.tab(&b)
        CopyText.text(q.raw, &b); CopyText.tab(&b)
        CopyText.optional(q.fields?.serialized, &b)
        b.writeInteger(UInt8(ascii: "\n"))
    }

    static func number(_ d: Double?, _ b: inout ByteBuffer) {
        guard let d, d.isFinite else { b.writeStaticString("\\N"); return }
        CopyText.double(d, &b)
    }
}

/// A flag set once, read from any task (a load that ended, an index build that is done).
final class SetOnce: Sendable {
    private let value = Atomic(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

/// Why the first-load fast path hands its rows to the staged merge (the run goes on): a row it cannot write
/// straight (23505: the run repeats a key, or a stored row is there after all; 23514), or one of its own reasons.
struct FastPathGivesWay: Error, CustomStringConvertible {
    let description: String

    static func reason(_ error: any Error) -> String? {
        if let error = error as? FastPathGivesWay { return error.description }
        if let error = error as? PSQLError, ["23505", "23514"].contains(error.serverInfo?[.sqlState]) { return describeDatabaseError(error) }
        return nil
    }
}

/// Indexes fresh tables on the load's connection while the load goes on into a backlog file (`copy`).
final class FreshIndexing {
    let done = SetOnce()
    let task: Task<Void, any Error>
    let backlog: LoadSpool

    init(months: [Int64], timeIndex: Bool, on connection: GuardedConnection, logger: Logger) throws {
        backlog = try LoadSpool("backlog")
        let done = self.done
        task = Task {
            defer { done.set() }
            for month in months {
                _ = try await connection.collect("SELECT datenwerk.index_fresh_partition(\(unescaped: PostgresObservationSink.partition(month)), \(timeIndex))", logger: logger)
            }
        }
    }
}
