import DatenwerkCore
import DatenwerkFormats
import PostgresNIO

/// Reads what the runs (and the jobs around them) left in the database, for `datenwerk status`, `runs` and `demo`.
/// Times come back as UTC text (`…Z`), formatted by PostgreSQL.
package struct RunHistoryStore: Sendable {
    package let database: Database

    package init(_ database: Database) {
        self.database = database
    }

    /// The newest run of a pipeline, as `datenwerk status` shows it.
    package struct LastRun: Sendable, Hashable {
        /// Start, UTC to the minute (`2024-10-27T01:00Z`).
        package var started: String
        package var status: String
        package var loaded: Int64
        package var quarantined: Int64
        package var errorStep: String?
        package var error: String?
    }

    /// The newest run of every pipeline that has run, by pipeline name.
    package func lastRuns() async throws -> [String: LastRun] {
        let rows = try await database.client.query("""
            SELECT DISTINCT ON (pipeline) pipeline, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"'), status, loaded, quarantined, error_step, error
            FROM datenwerk.runs ORDER BY pipeline, id DESC
            """, logger: database.logger).decode((String, String, String, Int64, Int64, String?, String?).self)
        var runs: [String: LastRun] = [:]
        for try await r in rows {
            runs[r.0] = LastRun(started: r.1, status: r.2, loaded: r.3, quarantined: r.4, errorStep: r.5, error: r.6)
        }
        return runs
    }

    /// One row of `datenwerk runs`.
    package struct Run: Sendable, Hashable {
        package var id: Int64
        package var status: String
        package var trigger: String
        /// Start, UTC to the second (`2024-10-27T01:00:00Z`).
        package var started: String
        package var seconds: Double
        package var recordsRead: Int64
        package var loaded: Int64
        package var inserted: Int64
        package var quarantined: Int64
        package var retries: Int
        package var bytes: Int64
        package var errorStep: String?
        package var error: String?
        /// Values the source offered, and how many of them were left out on purpose, by rule.
        package var valuesRead: Int64 = 0
        package var skipped: Int64 = 0
        package var skips = SkipCounts()
        /// values read = loaded + quarantined values + skipped; nil when the source does not count values.
        package var balanced: Bool?
    }

    /// The newest `limit` runs of `pipeline`, newest first.
    package func runs(pipeline: String, limit: Int) async throws -> [Run] {
        let rows = try await database.client.query("""
            SELECT id, status, trigger, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   coalesce(extract(epoch FROM finished_at - started_at), 0)::float8,
                   records_read, loaded, inserted, quarantined, retries, bytes, error_step, error,
                   values_read, skipped, skips::text, balanced
            FROM datenwerk.runs WHERE pipeline = \(pipeline) ORDER BY id DESC LIMIT \(limit)
            """, logger: database.logger).decode((Int64, String, String, String, Double, Int64, Int64, Int64, Int64, Int, Int64, String?, String?, Int64, Int64, String, Bool?).self)
        var runs: [Run] = []
        for try await r in rows {
            runs.append(Run(id: r.0, status: r.1, trigger: r.2, started: r.3, seconds: r.4, recordsRead: r.5, loaded: r.6, inserted: r.7,
                            quarantined: r.8, retries: r.9, bytes: r.10, errorStep: r.11, error: r.12,
                            valuesRead: r.13, skipped: r.14, skips: SkipCounts(json: try? JSONParser.parse(Array(r.15.utf8))), balanced: r.16))
        }
        return runs
    }

    /// What the job table says about one pipeline (a read for `datenwerk status`; the queue itself is `PostgresJobQueue`).
    package struct JobCounts: Sendable, Hashable {
        /// Running under a lease that has not expired.
        package var running: Int64
        /// Running under a lease that has expired (its worker is gone; the job will be retaken).
        package var expired: Int64
        package var queued: Int64
        /// The (greatest) lease owner among the running jobs.
        package var owner: String?
        /// Jobs that failed for good in the last day.
        package var failedToday: Int64
    }

    /// The job counts of every pipeline that has jobs, by pipeline name.
    package func jobCounts() async throws -> [String: JobCounts] {
        let rows = try await database.client.query("""
            SELECT pipeline,
                   count(*) FILTER (WHERE status = 'running' AND lease_expires_at >= now())::bigint,
                   count(*) FILTER (WHERE status = 'running' AND lease_expires_at < now())::bigint,
                   count(*) FILTER (WHERE status = 'queued')::bigint,
                   max(lease_owner) FILTER (WHERE status = 'running'),
                   count(*) FILTER (WHERE status = 'failed' AND finished_at > now() - interval '1 day')::bigint
            FROM datenwerk.jobs GROUP BY pipeline
            """, logger: database.logger).decode((String, Int64, Int64, Int64, String?, Int64).self)
        var counts: [String: JobCounts] = [:]
        for try await (pipeline, running, expired, queued, owner, failed) in rows {
            counts[pipeline] = JobCounts(running: running, expired: expired, queued: queued, owner: owner, failedToday: failed)
        }
        return counts
    }

    /// How many rows the main tables hold.
    package struct Totals: Sendable, Hashable {
        package var observations: Int64, stations: Int64, quarantine: Int64, runs: Int64
    }

    package func totals() async throws -> Totals {
        let rows = try await database.client.query("""
            SELECT (SELECT count(*) FROM datenwerk.observations)::bigint, (SELECT count(*) FROM datenwerk.stations)::bigint,
                   (SELECT count(*) FROM datenwerk.quarantine)::bigint, (SELECT count(*) FROM datenwerk.runs)::bigint
            """, logger: database.logger)
        for try await (o, s, q, r) in rows.decode((Int64, Int64, Int64, Int64).self) {
            return Totals(observations: o, stations: s, quarantine: q, runs: r)
        }
        return Totals(observations: 0, stations: 0, quarantine: 0, runs: 0)
    }

    /// A first query to try in psql on the loaded data (printed by `datenwerk demo`).
    package static let exampleQuery =
        "SELECT station_key, property, unit, phenomenon_start, result FROM datenwerk.observations_view ORDER BY phenomenon_start LIMIT 20;"
}
