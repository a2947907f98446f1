import DatenwerkOperations
import PostgresNIO

/// What `/metrics` reads from the database at each scrape (`datenwerk serve`; docs/metrics.md).
///
/// Why from the database: jobs run in child processes and on other machines (`datenwerk worker`), so counters
/// kept in the serving process would miss most runs. The run history (`datenwerk.runs`) is durable and
/// shared, so the per-pipeline totals are sums over it: counters that only grow as long as runs are not
/// deleted (deleting run rows makes them drop, which Prometheus reads as a counter reset). Queue, lease and
/// connection figures are gauges of the moment.
package struct MetricsQueries: Sendable {
    package let connections: ServerConnections

    package init(_ connections: ServerConnections) {
        self.connections = connections
    }

    /// The run history of one pipeline. Record counts are sums over its *succeeded* runs (a failed run loads
    /// nothing: its transaction rolled back); runs and durations count every finished run.
    package struct PipelineRuns: Sendable, Hashable {
        package var pipeline: String
        package var succeeded: Int64 = 0
        package var failed: Int64 = 0
        package var running: Int64 = 0
        package var recordsRead: Int64 = 0
        package var loaded: Int64 = 0
        package var inserted: Int64 = 0
        package var updated: Int64 = 0
        package var quarantined: Int64 = 0
        package var skipped: Int64 = 0
        package var bytes: Int64 = 0
        /// Finished runs: sum of their durations (s), and how many took at most each bound of `bounds` (cumulative).
        package var durationSum: Double = 0
        package var durationBuckets: [Int64] = []
        /// Unix time of the end of the last succeeded run; nil: none yet.
        package var lastSuccess: Double?
    }

    /// The jobs of one pipeline now.
    package struct PipelineJobs: Sendable, Hashable {
        package var pipeline: String
        /// Queued, and of those the ones already due (`not_before` passed).
        package var queued: Int64 = 0
        package var ready: Int64 = 0
        /// Running under a live lease, and running under an expired one (the worker is gone; it will be retaken).
        package var running: Int64 = 0
        package var leaseExpired: Int64 = 0
        /// Jobs failed for good because their lease expired after the last attempt.
        package var failedLeaseExpired: Int64 = 0
        /// Age (s) of the oldest ready job; 0: none waiting.
        package var oldestReadySeconds: Double = 0
    }

    /// Backends connected to this database, by application (`datenwerk-serve`: the server's direct connections;
    /// `other`: the load pools of serve, workers and CLI runs, and everything else) and state.
    package struct Connections: Sendable, Hashable {
        package var application: String
        package var state: String
        package var count: Int64
    }

    package struct Snapshot: Sendable {
        package var runs: [PipelineRuns] = []
        package var jobs: [PipelineJobs] = []
        /// Records held in quarantine now, by pipeline.
        package var quarantine: [(pipeline: String, records: Int64)] = []
        package var connections: [Connections] = []
        package var maxConnections: Int64 = 0
    }

    /// Everything at once; `bounds` are the duration histogram's upper bounds in seconds (ascending).
    package func snapshot(bounds: [Double]) async throws -> Snapshot {
        var snapshot = Snapshot()
        var runs: [String: PipelineRuns] = [:]
        for row in try await connections.rows("""
            SELECT pipeline,
                   count(*) FILTER (WHERE status = 'succeeded')::bigint, count(*) FILTER (WHERE status = 'failed')::bigint,
                   count(*) FILTER (WHERE status = 'running')::bigint,
                   coalesce(sum(records_read) FILTER (WHERE status = 'succeeded'), 0)::bigint,
                   coalesce(sum(loaded) FILTER (WHERE status = 'succeeded'), 0)::bigint,
                   coalesce(sum(inserted) FILTER (WHERE status = 'succeeded'), 0)::bigint,
                   coalesce(sum(updated) FILTER (WHERE status = 'succeeded'), 0)::bigint,
                   coalesce(sum(quarantined) FILTER (WHERE status = 'succeeded'), 0)::bigint,
                   coalesce(sum(skipped) FILTER (WHERE status = 'succeeded'), 0)::bigint,
                   coalesce(sum(bytes) FILTER (WHERE status = 'succeeded'), 0)::bigint,
                   coalesce(sum(extract(epoch FROM finished_at - started_at)) FILTER (WHERE status <> 'running' AND finished_at IS NOT NULL), 0)::float8,
                   extract(epoch FROM max(finished_at) FILTER (WHERE status = 'succeeded'))::float8
            FROM datenwerk.runs GROUP BY pipeline ORDER BY pipeline
            """) {
            let r = try row.decode((String, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Double, Double?).self)
            runs[r.0] = PipelineRuns(pipeline: r.0, succeeded: r.1, failed: r.2, running: r.3, recordsRead: r.4, loaded: r.5, inserted: r.6,
                                     updated: r.7, quarantined: r.8, skipped: r.9, bytes: r.10, durationSum: r.11,
                                     durationBuckets: Array(repeating: 0, count: bounds.count), lastSuccess: r.12)
        }
        let index = Dictionary(uniqueKeysWithValues: bounds.enumerated().map { ($0.element, $0.offset) })
        for row in try await connections.rows("""
            SELECT r.pipeline, b.le, count(*)::bigint
            FROM datenwerk.runs r CROSS JOIN unnest(\(bounds)::float8[]) AS b(le)
            WHERE r.status <> 'running' AND r.finished_at IS NOT NULL AND extract(epoch FROM r.finished_at - r.started_at) <= b.le
            GROUP BY r.pipeline, b.le
            """) {
            let (pipeline, le, count) = try row.decode((String, Double, Int64).self)
            if let i = index[le] { runs[pipeline]?.durationBuckets[i] = count }
        }
        snapshot.runs = runs.values.sorted { $0.pipeline < $1.pipeline }

        let leaseExpired = String(JobAttempt.leaseExpiredFormat.prefix { $0 != "%" }) + "%"
        for row in try await connections.rows("""
            SELECT pipeline,
                   count(*) FILTER (WHERE status = 'queued')::bigint,
                   count(*) FILTER (WHERE status = 'queued' AND not_before <= now())::bigint,
                   count(*) FILTER (WHERE status = 'running' AND lease_expires_at >= now())::bigint,
                   count(*) FILTER (WHERE status = 'running' AND lease_expires_at < now())::bigint,
                   count(*) FILTER (WHERE status = 'failed' AND error LIKE \(leaseExpired))::bigint,
                   coalesce(extract(epoch FROM now() - min(not_before) FILTER (WHERE status = 'queued' AND not_before <= now())), 0)::float8
            FROM datenwerk.jobs GROUP BY pipeline ORDER BY pipeline
            """) {
            let j = try row.decode((String, Int64, Int64, Int64, Int64, Int64, Double).self)
            snapshot.jobs.append(PipelineJobs(pipeline: j.0, queued: j.1, ready: j.2, running: j.3, leaseExpired: j.4, failedLeaseExpired: j.5, oldestReadySeconds: j.6))
        }

        for row in try await connections.rows("SELECT pipeline, count(*)::bigint FROM datenwerk.quarantine GROUP BY pipeline ORDER BY pipeline") {
            let (pipeline, records) = try row.decode((String, Int64).self)
            snapshot.quarantine.append((pipeline, records))
        }

        for row in try await connections.rows("""
            SELECT CASE WHEN application_name = \(ServerConnections.applicationName) THEN application_name ELSE 'other' END,
                   coalesce(state, 'unknown'), count(*)::bigint
            FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1, 2 ORDER BY 1, 2
            """) {
            let (application, state, count) = try row.decode((String, String, Int64).self)
            snapshot.connections.append(Connections(application: application, state: state, count: count))
        }
        for row in try await connections.rows("SELECT current_setting('max_connections')::bigint") {
            snapshot.maxConnections = try row.decode(Int64.self)
        }
        return snapshot
    }
}
