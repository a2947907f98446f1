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

    /// Called when the load's connection closed (server restart, network) and the load has not ended
    /// 60 s later. `GuardedConnection` ends every statement of the load 1 s after a close, so this is only a
    /// last resort against hangs nobody has seen yet; the CLI exits the process (code 75, "try again") so a
    /// supervisor restarts it and the job's lease expires and is retaken.
    package var onStuckLoad: (@Sendable (String) -> Void)?

    package init(database: Database, onStuckLoad: (@Sendable (String) -> Void)? = nil) {
        self.database = database
        self.onStuckLoad = onStuckLoad
    }

    static let stagingColumns = [
        "kind", "station_key", "name", "station_kind", "lon", "lat", "alt", "src_x", "src_y", "srid", "props", "property", "t_start", "t_end",
        "result", "quality", "origin", "line", "record", "path", "field", "reason", "raw", "fields",
    ]

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
        let logger = database.logger
        return try await database.transaction { connection in
            let ended = LoadEnded()
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
            try await connection.query("""
                CREATE TEMP TABLE datenwerk_staging (
                    seq bigint GENERATED ALWAYS AS IDENTITY, kind "char" NOT NULL, station_key text, name text, station_kind text,
                    lon float8, lat float8, alt float8, src_x float8, src_y float8, srid integer, props jsonb, property text, t_start bigint, t_end bigint, result float8,
                    quality text, origin text, line integer, record integer, path text, field text, reason text, raw text, fields jsonb
                ) ON COMMIT DROP
                """, logger: logger)
            var months = Set<Int64>()
            var buffer = ByteBufferAllocator().buffer(capacity: copyChunkBytes + 64 * 1024)
            try await connection.copyFrom(table: "datenwerk_staging", columns: Self.stagingColumns, logger: logger) { writer in
                while let batch = try await next() {
                    for item in batch {
                        Self.encode(item, into: &buffer)
                        if case .observation(let o) = item {
                            months.insert(Self.monthKey(o.phenomenonStart))
                        }
                        if buffer.readableBytes >= copyChunkBytes {
                            try await writer.write(buffer)
                            buffer.clear()
                        }
                    }
                }
                if buffer.readableBytes > 0 { try await writer.write(buffer) }
            }
            FailPoint.hit("after-copy", pipeline: pipeline.name)
            // Sorting and hashing the run's rows in memory, with statistics of what was staged.
            try await connection.query("SET LOCAL work_mem = '256MB'", logger: logger)
            try await connection.query("ANALYZE datenwerk_staging", logger: logger)
            // Partitions are created on a second connection in their own short transactions, so the long
            // load transaction never holds a lock on the parent table that would block readers.
            try await ensurePartitions(months)
            let tenant = pipeline.tenant
            var stationRows = 0
            for try await count in try await connection.query("""
                WITH upserted AS (
                    INSERT INTO datenwerk.stations AS s (tenant, key, name, kind, geom, altitude, properties)
                    SELECT DISTINCT ON (station_key) \(tenant), station_key, name, station_kind,
                           CASE WHEN srid IS NOT NULL THEN ST_Transform(ST_SetSRID(ST_MakePoint(src_x, src_y), srid), 4326)
                                WHEN lon IS NULL OR lat IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END,
                           alt, coalesce(props, '{}'::jsonb)
                    FROM datenwerk_staging WHERE kind = 's' ORDER BY station_key, seq DESC
                    ON CONFLICT (tenant, key) DO UPDATE SET
                        name = coalesce(EXCLUDED.name, s.name), kind = coalesce(EXCLUDED.kind, s.kind),
                        geom = coalesce(EXCLUDED.geom, s.geom), altitude = coalesce(EXCLUDED.altitude, s.altitude),
                        properties = s.properties || EXCLUDED.properties, updated_at = now()
                    WHERE (s.name, s.kind, s.altitude, s.properties) IS DISTINCT FROM
                          (coalesce(EXCLUDED.name, s.name), coalesce(EXCLUDED.kind, s.kind), coalesce(EXCLUDED.altitude, s.altitude), s.properties || EXCLUDED.properties)
                       OR NOT (s.geom IS NOT DISTINCT FROM coalesce(EXCLUDED.geom, s.geom))
                    RETURNING 1)
                SELECT count(*)::bigint FROM upserted
                """, logger: logger).decode(Int64.self) { stationRows = Int(count) }
            let repeats = try await settleRepeats(runID: runID, pipeline: pipeline, on: connection)
            var inserted = 0, updated = 0
            let mergeStatement: PostgresQuery = """
                WITH src AS (
                    SELECT DISTINCT ON (st.id, g.property, g.t_start)
                           st.id AS station_id, g.property,
                           'epoch'::timestamptz + g.t_start * interval '1 microsecond' AS phenomenon_start,
                           'epoch'::timestamptz + g.t_end * interval '1 microsecond' AS phenomenon_end,
                           g.result, g.quality
                    FROM datenwerk_staging g
                    JOIN datenwerk.stations st ON st.tenant = \(tenant) AND st.key = g.station_key
                    WHERE g.kind = 'o'
                    ORDER BY st.id, g.property, g.t_start, g.seq DESC
                ), diff AS (
                    -- Only new and changed rows go to the insert; unchanged ones stop here
                    -- (the statement's snapshot is taken before the insert).
                    SELECT src.*, (o.station_id IS NULL) AS is_new
                    FROM src LEFT JOIN datenwerk.observations o
                      ON o.station_id = src.station_id AND o.property = src.property AND o.phenomenon_start = src.phenomenon_start
                    WHERE o.station_id IS NULL
                       OR (o.phenomenon_end, o.result, o.quality) IS DISTINCT FROM (src.phenomenon_end, src.result, src.quality)
                ), merged AS (
                    INSERT INTO datenwerk.observations AS o (station_id, property, phenomenon_start, phenomenon_end, result, quality, run_id)
                    SELECT station_id, property, phenomenon_start, phenomenon_end, result, quality, \(runID) FROM diff
                    ON CONFLICT (station_id, property, phenomenon_start) DO UPDATE SET
                        phenomenon_end = EXCLUDED.phenomenon_end, result = EXCLUDED.result, quality = EXCLUDED.quality, run_id = EXCLUDED.run_id
                    WHERE (o.phenomenon_end, o.result, o.quality) IS DISTINCT FROM (EXCLUDED.phenomenon_end, EXCLUDED.result, EXCLUDED.quality)
                    RETURNING 1
                )
                SELECT count(*) FILTER (WHERE is_new)::bigint, count(*) FILTER (WHERE NOT is_new)::bigint FROM diff
                """
            // Once seen under concurrent loads into a fresh database: the merge found no partition for a month
            // that ensurePartitions had just created (SQLSTATE 23514). The merge is retried once behind a
            // savepoint after creating the partitions again, instead of failing the run.
            try await connection.query("SAVEPOINT datenwerk_merge", logger: logger)
            for attempt in 1...2 {
                do {
                    for try await (i, u) in try await connection.query(mergeStatement, logger: logger).decode((Int64, Int64).self) {
                        inserted = Int(i)
                        updated = Int(u)
                    }
                    break
                } catch let error as PSQLError where attempt == 1 && error.serverInfo?[.sqlState] == "23514" {
                    logger.notice("\(pipeline.name): \(describeDatabaseError(error)); partitions created again, merge retried")
                    try await connection.query("ROLLBACK TO SAVEPOINT datenwerk_merge", logger: logger)
                    try await ensurePartitions(months)
                }
            }
            try await connection.query("RELEASE SAVEPOINT datenwerk_merge", logger: logger)
            FailPoint.hit("after-merge", pipeline: pipeline.name)
            try await connection.query("""
                INSERT INTO datenwerk.quarantine AS q (pipeline, run_id, origin, line, record, path, field, reason, raw, fields, fingerprint)
                SELECT DISTINCT ON (fp) \(pipeline.name), \(runID), origin, line, record, path, field, reason, raw, fields, fp
                FROM (SELECT *, md5(concat_ws(chr(31), origin, line, record, path, field, raw)) AS fp FROM datenwerk_staging WHERE kind = 'q') bad
                ORDER BY fp, seq DESC
                ON CONFLICT (pipeline, fingerprint) DO UPDATE SET
                    run_id = EXCLUDED.run_id, reason = EXCLUDED.reason, last_seen = now(), seen_count = q.seen_count + 1
                """, logger: logger)
            if let replay = context.replay {
                try await settle(replay, pipeline: pipeline.name, runID: runID, on: connection)
            }
            var t = totals()
            var result = repeats
            result.inserted = inserted
            result.updated = updated
            result.stations = stationRows
            t.settle(result)
            result.unchanged = max(0, t.observations - inserted - updated)
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

    /// Observations of this run that share a natural key (station, property, start). Equal repeats load once and
    /// are counted (`duplicate`); repeats with a different end, value or quality load NOT at all: each is
    /// quarantined as `conflicting_duplicate` with its source record (or counted under `on_bad_record: skip`, or
    /// fail the run under `fail`), because "last one wins" would silently pick one.
    private func settleRepeats(runID: Int64, pipeline: PipelineSpec, on connection: GuardedConnection) async throws -> LoadResult {
        let logger = database.logger
        try await connection.query("""
            CREATE TEMP TABLE datenwerk_repeats ON COMMIT DROP AS
            SELECT station_key, property, t_start, count(*) AS n,
                   (min(result) <> max(result) OR min(coalesce(t_end, -1)) <> max(coalesce(t_end, -1))
                    OR min(quality) IS DISTINCT FROM max(quality) OR (count(quality) > 0 AND count(quality) < count(*))) AS conflicting
            FROM datenwerk_staging WHERE kind = 'o'
            GROUP BY station_key, property, t_start HAVING count(*) > 1
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
        // Set aside: kind 'c' rows take no part in the merge.
        try await connection.query("""
            UPDATE datenwerk_staging g SET kind = 'c' FROM datenwerk_repeats r
            WHERE r.conflicting AND g.kind = 'o' AND g.station_key = r.station_key AND g.property = r.property AND g.t_start = r.t_start
            """, logger: logger)
        let described = """
            SELECT g.seq, g.station_key, g.property, g.origin, g.line, g.record, g.path, g.raw, r.n,
                   to_char(('epoch'::timestamptz + g.t_start * interval '1 microsecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at,
                   string_agg(g.result::text || coalesce(' (' || regexp_replace(g.origin, '^.*/', '') || coalesce(':' || g.line, '') || ')', ''), ', ')
                       OVER (PARTITION BY g.station_key, g.property, g.t_start ORDER BY g.seq
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS values_seen,
                   json_build_object('station', g.station_key, 'property', g.property, 'phenomenon_start_us', g.t_start,
                                     'phenomenon_end_us', g.t_end, 'result', g.result, 'quality', g.quality)::text AS described
            FROM datenwerk_staging g JOIN datenwerk_repeats r
              ON r.conflicting AND g.station_key = r.station_key AND g.property = r.property AND g.t_start = r.t_start
            WHERE g.kind = 'c'
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

    private func ensurePartitions(_ months: Set<Int64>) async throws {
        guard !months.isEmpty else { return }
        try await database.withConnection { connection in
            for month in months.sorted() {
                try await connection.query("SELECT datenwerk.ensure_observation_partition('epoch'::timestamptz + \(month) * interval '1 microsecond')", logger: database.logger)
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

    static func encode(_ item: StagedItem, into b: inout ByteBuffer) {
        switch item {
        case .station(let s):
            b.writeStaticString("s\t")
            text(s.key, &b); tab(&b)
            optional(s.name, &b); tab(&b)
            optional(s.kind, &b); tab(&b)
            number(s.location?.longitude, &b); tab(&b)
            number(s.location?.latitude, &b); tab(&b)
            number(s.location?.altitude, &b); tab(&b)
            number(s.sourceCoordinates?.x, &b); tab(&b)
            number(s.sourceCoordinates?.y, &b); tab(&b)
            number(s.sourceCoordinates.map { Double($0.epsg) }, &b); tab(&b)
            text(s.properties.serialized, &b)
            b.writeStaticString("\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n")
        case .observation(let o):
            b.writeStaticString("o\t")
            text(o.stationKey, &b)
            b.writeStaticString("\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t")
            text(o.property, &b); tab(&b)
            b.writeString(String(o.phenomenonStart)); tab(&b)
            if let end = o.phenomenonEnd { b.writeString(String(end)) } else { b.writeStaticString("\\N") }
            tab(&b)
            b.writeString(String(o.result)); tab(&b)
            optional(o.quality, &b)
            if let p = o.provenance {
                // Where it came from (origin, line, record, path, raw): a conflicting duplicate is quarantined with it.
                tab(&b)
                text(p.location.origin, &b); tab(&b)
                number(p.location.line.map(Double.init), &b); tab(&b)
                number(p.location.record.map(Double.init), &b); tab(&b)
                optional(p.location.path, &b)
                b.writeStaticString("\t\\N\t\\N\t")
                text(p.raw, &b)
                b.writeStaticString("\t\\N\n")
            } else {
                b.writeStaticString("\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n")
            }
        case .quarantined(let q):
            let e = q.error
            b.writeStaticString("q\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t")
            text(e.location.origin, &b); tab(&b)
            number(e.location.line.map(Double.init), &b); tab(&b)
            number(e.location.record.map(Double.init), &b); tab(&b)
            optional(e.location.path, &b); tab(&b)
            optional(e.field, &b); tab(&b)
            text(e.reason, &b); tab(&b)
            text(q.raw, &b); tab(&b)
            optional(q.fields?.serialized, &b)
            b.writeStaticString("\n")
        }
    }

    @inline(__always) static func tab(_ b: inout ByteBuffer) { b.writeInteger(UInt8(ascii: "\t")) }

    static func optional(_ s: String?, _ b: inout ByteBuffer) {
        if let s { text(s, &b) } else { b.writeStaticString("\\N") }
    }

    static func number(_ d: Double?, _ b: inout ByteBuffer) {
        guard let d, d.isFinite else { b.writeStaticString("\\N"); return }
        if d.rounded() == d, abs(d) < 1e15 { b.writeString(String(Int64(d))) } else { b.writeString(String(d)) }
    }

    /// COPY text format: backslash, tab, newline and carriage return are escaped; NUL is dropped.
    static func text(_ s: String, _ b: inout ByteBuffer) {
        var s = s
        s.withUTF8 { bytes in
            var start = 0
            for (i, byte) in bytes.enumerated() {
                let escaped: StaticString
                switch byte {
                case UInt8(ascii: "\\"): escaped = "\\\\"
                case UInt8(ascii: "\t"): escaped = "\\t"
                case UInt8(ascii: "\n"): escaped = "\\n"
                case UInt8(ascii: "\r"): escaped = "\\r"
                case 0: escaped = ""
                default: continue
                }
                b.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[start..<i]))
                b.writeStaticString(escaped)
                start = i + 1
            }
            b.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[start..<bytes.count]))
        }
    }
}

final class LoadEnded: Sendable {
    private let value = Atomic(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
