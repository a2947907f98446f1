import DatenwerkCore
import DatenwerkOperations
import DatenwerkPipeline
import Foundation
import Logging
import PostgresNIO

/// The `JobQueue` and `ScheduleStore` of `DatenwerkOperations` in PostgreSQL: due runs in `datenwerk.jobs`, taken by
/// workers with `FOR UPDATE SKIP LOCKED` under a lease; schedules in `datenwerk.schedules`. Each statement does
/// what `JobRecord` states for one job (the rules are tested there without a database).
package struct PostgresJobQueue: JobQueue, ScheduleStore {
    package typealias Job = ClaimedJob

    package let database: Database
    package init(_ database: Database) { self.database = database }

    /// Adds a job unless one for the same pipeline, kind and due time exists; returns its id when added.
    @discardableResult
    package func enqueue(pipeline: String, kind: String, due: Date, notBefore: Date? = nil, window: Range<Int64>? = nil,
                        maxAttempts: Int = JobAttempt.defaultMaxAttempts) async throws -> Int64? {
        let from = window.map { Self.date($0.lowerBound) }
        let to = window.map { Self.date($0.upperBound) }
        let rows = try await database.client.query("""
            INSERT INTO datenwerk.jobs (pipeline, kind, due_at, not_before, window_from, window_to, max_attempts)
            VALUES (\(pipeline), \(kind), \(due), \(notBefore ?? due), \(from), \(to), \(maxAttempts))
            ON CONFLICT (pipeline, kind, due_at) DO NOTHING RETURNING id
            """, logger: database.logger)
        for try await id in rows.decode(Int64.self) { return id }
        return nil
    }

    /// Takes the next ready job: queued and due, or running with an expired lease. Jobs whose lease expired
    /// after their last attempt are failed here, with a reason an operator can read in `datenwerk status`.
    package func claim(owner: String, lease: Duration, pipelines: [String]) async throws -> Job? {
        let seconds = lease.seconds
        try await database.client.query("""
            UPDATE datenwerk.jobs SET status = 'failed', finished_at = now(),
                error = format(\(JobAttempt.leaseExpiredFormat), attempts, lease_owner)
            WHERE status = 'running' AND lease_expires_at < now() AND attempts >= max_attempts
            """, logger: database.logger)
        let rows = try await database.client.query("""
            UPDATE datenwerk.jobs j SET status = 'running', lease_owner = \(owner), attempts = j.attempts + 1,
                lease_expires_at = now() + \(seconds) * interval '1 second', heartbeat_at = now(), started_at = now(), error = NULL
            WHERE j.id = (
                SELECT id FROM datenwerk.jobs
                WHERE pipeline = ANY(\(pipelines)) AND not_before <= now()
                  AND (status = 'queued' OR (status = 'running' AND lease_expires_at < now()))
                ORDER BY not_before, id
                FOR UPDATE SKIP LOCKED LIMIT 1)
            RETURNING j.id, j.pipeline, j.kind, j.due_at, j.window_from, j.window_to, j.attempts
            """, logger: database.logger)
        for try await (id, pipeline, kind, due, from, to, attempts) in rows.decode((Int64, String, String, Date, Date?, Date?, Int).self) {
            let window = from.flatMap { f in to.map { Micros.of(f)..<Micros.of($0) } }
            return Job(id: id, pipeline: pipeline, kind: kind, dueAt: due, window: window, attempts: attempts)
        }
        return nil
    }

    /// Extends the lease; false when the job is no longer this owner's (the lease expired and another took it).
    /// A job that is no longer running counts as held: this owner's run has just ended it (committed success, or
    /// queued it again after a failure, its task not yet returned); a beat in that moment under load reported the
    /// lease of a finished job as lost and hid the run's own outcome. Lost means: another worker runs it now.
    package func heartbeat(_ job: Int64, owner: String, lease: Duration) async throws -> Bool {
        let seconds = Double(lease.components.seconds)
        let rows = try await database.client.query("""
            WITH beat AS (
                UPDATE datenwerk.jobs SET lease_expires_at = now() + \(seconds) * interval '1 second', heartbeat_at = now()
                WHERE id = \(job) AND lease_owner = \(owner) AND status = 'running' RETURNING id)
            SELECT EXISTS (SELECT 1 FROM beat)
                OR EXISTS (SELECT 1 FROM datenwerk.jobs WHERE id = \(job) AND status <> 'running')
            """, logger: database.logger)
        for try await held in rows.decode(Bool.self) {
            if held { return true }
            // The beat's UPDATE may have waited for the run's own transaction, which ended the job in its commit
            // (status 'succeeded', or 'queued' for a retry): the UPDATE then skips the row, but the statement's
            // snapshot predates that commit, so its second test still saw 'running' and said "lost" for a run that
            // had just landed. Look again with a fresh snapshot before giving the verdict.
            let again = try await database.client.query("""
                SELECT EXISTS (SELECT 1 FROM datenwerk.jobs WHERE id = \(job) AND (status <> 'running' OR lease_owner = \(owner)))
                """, logger: database.logger)
            for try await ours in again.decode(Bool.self) { return ours }
            throw NoHeartbeatAnswer(job: job)
        }
        // No answer row (the connection ended the stream early) is no verdict: not "lost", which would stop a
        // healthy run. The caller treats an error as "store unreachable" and beats again.
        throw NoHeartbeatAnswer(job: job)
    }

    struct NoHeartbeatAnswer: Error, CustomStringConvertible {
        var job: Int64
        var description: String { "the heartbeat of job \(job) got no answer row" }
    }

    /// Puts a job back (another run of its pipeline holds the lock): not counted as an attempt.
    package func release(_ job: Int64, owner: String, delay: Duration) async throws {
        let seconds = Double(delay.components.seconds)
        try await database.client.query("""
            UPDATE datenwerk.jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                attempts = greatest(attempts - 1, 0), not_before = now() + \(seconds) * interval '1 second'
            WHERE id = \(job) AND lease_owner = \(owner)
            """, logger: database.logger)
    }

    /// Ends a job whose run could not even start (no such pipeline here, database error before the run row).
    package func fail(_ job: Int64, owner: String, reason: String) async throws {
        try await database.client.query("""
            UPDATE datenwerk.jobs SET status = 'failed', error = \(reason), finished_at = now(), lease_expires_at = NULL
            WHERE id = \(job) AND lease_owner = \(owner)
            """, logger: database.logger)
    }

    /// The job `id` if it is running under `owner`'s lease (what a job's child process runs; nil: not ours any more).
    package func job(_ id: Int64, owner: String) async throws -> Job? {
        let rows = try await database.client.query("""
            SELECT id, pipeline, kind, due_at, window_from, window_to, attempts FROM datenwerk.jobs
            WHERE id = \(id) AND lease_owner = \(owner) AND status = 'running'
            """, logger: database.logger)
        for try await (id, pipeline, kind, due, from, to, attempts) in rows.decode((Int64, String, String, Date, Date?, Date?, Int).self) {
            let window = from.flatMap { f in to.map { Micros.of(f)..<Micros.of($0) } }
            return Job(id: id, pipeline: pipeline, kind: kind, dueAt: due, window: window, attempts: attempts)
        }
        return nil
    }

    /// A job whose run did not record its own end (its process crashed or was killed): while the job is still
    /// `owner`'s, the runs it started in this attempt are failed with `step` and `reason`, and the job counts the
    /// attempt: queued again with the usual backoff (30 s, 60 s, …) while attempts remain, else failed for good
    /// (at once when `final`). Returns the job's new status, or nil when the run had recorded itself (or the job
    /// is no longer this owner's).
    @discardableResult
    package func recordUnfinished(_ job: Int64, owner: String, step: String, reason: String, final: Bool) async throws -> JobStatus? {
        let error = "\(step): \(reason)"
        let backoffBase = Double(JobAttempt.backoffBase.components.seconds)
        let rows = try await database.client.query("""
            WITH mine AS (
                SELECT id, started_at FROM datenwerk.jobs WHERE id = \(job) AND lease_owner = \(owner) AND status = 'running' FOR UPDATE
            ), failed_runs AS (
                UPDATE datenwerk.runs r SET status = 'failed', finished_at = clock_timestamp(), error_step = \(step), error = \(reason)
                FROM mine WHERE r.job_id = mine.id AND r.status = 'running' AND r.started_at >= mine.started_at
                RETURNING r.id
            )
            UPDATE datenwerk.jobs j SET error = \(error), run_id = coalesce((SELECT max(id) FROM failed_runs), j.run_id),
                status = CASE WHEN NOT \(final) AND j.attempts < j.max_attempts THEN 'queued' ELSE 'failed' END,
                not_before = CASE WHEN NOT \(final) AND j.attempts < j.max_attempts
                                  THEN now() + \(backoffBase) * interval '1 second' * power(2, j.attempts - 1) ELSE j.not_before END,
                finished_at = CASE WHEN NOT \(final) AND j.attempts < j.max_attempts THEN NULL ELSE now() END,
                lease_owner = NULL, lease_expires_at = NULL
            FROM mine WHERE j.id = mine.id
            RETURNING j.status
            """, logger: database.logger)
        for try await status in rows.decode(String.self) { return JobStatus(rawValue: status) }
        return nil
    }

    /// A job stopped because its worker shut down: back to the queue without using an attempt; the runs it
    /// started in this attempt are failed with `reason`.
    package func releaseStopped(_ job: Int64, owner: String, reason: String) async throws {
        try await database.client.query("""
            WITH mine AS (
                SELECT id, started_at FROM datenwerk.jobs WHERE id = \(job) AND lease_owner = \(owner) AND status = 'running' FOR UPDATE
            ), failed_runs AS (
                UPDATE datenwerk.runs r SET status = 'failed', finished_at = clock_timestamp(), error_step = 'load', error = \(reason)
                FROM mine WHERE r.job_id = mine.id AND r.status = 'running' AND r.started_at >= mine.started_at
                RETURNING r.id
            )
            UPDATE datenwerk.jobs j SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                attempts = greatest(j.attempts - 1, 0), not_before = now()
            FROM mine WHERE j.id = mine.id
            """, logger: database.logger)
    }

    /// Jobs that are queued or running (for `--exit-when-idle` and status).
    package func pending(pipelines: [String]) async throws -> Int {
        let rows = try await database.client.query("""
            SELECT count(*)::bigint FROM datenwerk.jobs WHERE pipeline = ANY(\(pipelines)) AND status IN ('queued', 'running')
            """, logger: database.logger)
        for try await n in rows.decode(Int64.self) { return Int(n) }
        return 0
    }

    /// Failed jobs of `pipeline` and `kind` due in `range` queued again with their attempts reset (`JobRecord.retry`).
    package func retryFailed(pipeline: String, kind: String, due range: Range<Int64>) async throws {
        try await database.client.query("""
            UPDATE datenwerk.jobs SET status = 'queued', attempts = 0, not_before = now(), error = NULL
            WHERE pipeline = \(pipeline) AND kind = \(kind) AND status = 'failed'
              AND due_at >= \(Self.date(range.lowerBound)) AND due_at < \(Self.date(range.upperBound))
            """, logger: database.logger)
    }

    package func counts(pipeline: String, kind: String) async throws -> [JobStatus: Int] {
        var counts: [JobStatus: Int] = [:]
        for try await (status, n) in try await database.client.query(
            "SELECT status, count(*)::bigint FROM datenwerk.jobs WHERE pipeline = \(pipeline) AND kind = \(kind) GROUP BY status",
            logger: database.logger
        ).decode((String, Int64).self) {
            if let status = JobStatus(rawValue: status) { counts[status] = Int(n) }
        }
        return counts
    }

    /// In one transaction, the pipeline's row in `datenwerk.schedules` locked: what `plan` decides (`SchedulePlan`).
    package func advance(_ pipeline: String, _ plan: @Sendable (ScheduleState?) -> SchedulePlan) async throws -> SchedulePlan {
        let logger = database.logger
        return try await database.transaction { connection in
            var state: ScheduleState?
            for try await (last, expression) in try await connection.query(
                "SELECT last_fire, expression FROM datenwerk.schedules WHERE pipeline = \(pipeline) FOR UPDATE", logger: logger
            ).decode((Date, String).self) {
                state = ScheduleState(expression: expression, lastFire: Micros.of(last))
            }
            let decided = plan(state)
            switch decided {
            case .start(let expression, let lastFire, let nextFire):
                try await connection.query("""
                    INSERT INTO datenwerk.schedules (pipeline, expression, last_fire, next_fire) VALUES (\(pipeline), \(expression), \(Self.date(lastFire)), \(nextFire.map(Self.date)))
                    ON CONFLICT (pipeline) DO UPDATE SET expression = EXCLUDED.expression, last_fire = EXCLUDED.last_fire,
                        next_fire = EXCLUDED.next_fire, updated_at = now()
                    """, logger: logger)
            case .wait(let nextFire):
                try await connection.query("UPDATE datenwerk.schedules SET next_fire = \(nextFire.map(Self.date)), updated_at = now() WHERE pipeline = \(pipeline)", logger: logger)
            case .fire(let due, let notBefore, _, let nextFire):
                try await connection.query("""
                    INSERT INTO datenwerk.jobs (pipeline, kind, due_at, not_before) VALUES (\(pipeline), 'scheduled', \(Self.date(due)), \(Self.date(notBefore)))
                    ON CONFLICT (pipeline, kind, due_at) DO NOTHING
                    """, logger: logger)
                try await connection.query("""
                    UPDATE datenwerk.schedules SET last_fire = \(Self.date(due)), next_fire = \(nextFire.map(Self.date)), updated_at = now() WHERE pipeline = \(pipeline)
                    """, logger: logger)
            }
            return decided
        }
    }

    package func describe(_ error: any Error) -> String { describeDatabaseError(error) }

    package static func date(_ micros: Int64) -> Date { Micros.date(micros) }
}

/// At most one run per pipeline at a time, across processes and machines: a session advisory lock held on a
/// dedicated connection for the run. It dies with the connection, so a killed worker never leaves it behind.
package struct PipelineLock: PipelineLocking {
    package let database: Database
    package init(_ database: Database) { self.database = database }

    package static func key(_ pipeline: String) -> String { "datenwerk.pipeline:" + pipeline }

    /// Runs `body` holding the lock; returns nil without running it when another session holds it.
    package static func withLock<T: Sendable>(_ pipeline: String, database: Database, _ body: @Sendable () async throws -> T) async throws -> T? {
        try await PipelineLock(database).withLock(pipeline, body)
    }

    /// Runs `body` holding the lock; returns nil without running it when another session holds it.
    package func withLock<T: Sendable>(_ pipeline: String, _ body: @Sendable () async throws -> T) async throws -> T? {
        let database = self.database
        return try await database.withConnection { connection in
            var got = false
            for try await g in try await connection.query("SELECT pg_try_advisory_lock(hashtextextended(\(Self.key(pipeline)), 0))", logger: database.logger).decode(Bool.self) {
                got = g
            }
            guard got else { return nil }
            do {
                let result = try await body()
                _ = try? await connection.query("SELECT pg_advisory_unlock(hashtextextended(\(Self.key(pipeline)), 0))", logger: database.logger)
                return result
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(hashtextextended(\(Self.key(pipeline)), 0))", logger: database.logger)
                throw error
            }
        }
    }
}

extension Worker {
    /// A worker on PostgreSQL: `PostgresJobQueue` and the advisory `PipelineLock` of `database`.
    package init(id: String? = nil, pipelines: [PipelineSpec], database: Database, runner: PipelineRunner,
                lease: Duration = .seconds(60), poll: Duration = .seconds(2), isolation: JobIsolation? = nil, logger: Logger) {
        self.init(id: id, pipelines: pipelines, queue: PostgresJobQueue(database), lock: PipelineLock(database), runner: runner,
                  lease: lease, poll: poll, isolation: isolation, logger: logger)
    }
}

extension Scheduler {
    /// A scheduler on PostgreSQL (`datenwerk.schedules`, jobs in `datenwerk.jobs`).
    package init(pipelines: [PipelineSpec], database: Database, logger: Logger) {
        self.init(pipelines: pipelines, store: PostgresJobQueue(database), logger: logger)
    }
}
