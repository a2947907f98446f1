import Foundation

/// A job a worker holds: claimed under its lease (`JobQueue.claim`) or looked up by its child (`JobQueue.job`).
package struct ClaimedJob: Sendable, Hashable {
    package var id: Int64
    package var pipeline: String
    package var kind: String
    package var dueAt: Date
    /// [from, to) in µs UTC for backfill chunks.
    package var window: Range<Int64>?
    /// This attempt's number (1 for the first).
    package var attempts: Int

    package init(id: Int64, pipeline: String, kind: String, dueAt: Date, window: Range<Int64>? = nil, attempts: Int) {
        self.id = id
        self.pipeline = pipeline
        self.kind = kind
        self.dueAt = dueAt
        self.window = window
        self.attempts = attempts
    }
}

/// Where jobs wait for workers. `PostgresJobQueue` (in `DatenwerkPostgres`) is the one used in production: rows in
/// `datenwerk.jobs` taken with `FOR UPDATE SKIP LOCKED`. What each operation does to a job is stated by
/// `JobRecord`, the same rules as plain values (tested without a database).
///
/// A lease is renewed by the worker's heartbeat. A job whose lease expired (its worker crashed, froze or lost
/// the database) is taken again by any worker; the per-pipeline lock (`PipelineLocking`) still keeps two
/// runs of one pipeline from overlapping, and the job finishes in its run's transaction, so a retaken job
/// never loads twice.
package protocol JobQueue: DescribesErrors {
    /// Adds a job unless one for the same pipeline, kind and due time exists; returns its id when added.
    func enqueue(pipeline: String, kind: String, due: Date, notBefore: Date?, window: Range<Int64>?, maxAttempts: Int) async throws -> Int64?

    /// Takes the next ready job of `pipelines` for `owner` (`JobRecord.claim`); first fails every job whose lease
    /// expired after its last attempt (`JobRecord.expire`).
    func claim(owner: String, lease: Duration, pipelines: [String]) async throws -> ClaimedJob?

    /// Extends the lease; false when the job is no longer this owner's (`JobRecord.heartbeat`).
    func heartbeat(_ job: Int64, owner: String, lease: Duration) async throws -> Bool

    /// Puts a job back (another run of its pipeline holds the lock): not counted as an attempt.
    func release(_ job: Int64, owner: String, delay: Duration) async throws

    /// Ends a job whose run could not even start (no such pipeline here, database error before the run row).
    func fail(_ job: Int64, owner: String, reason: String) async throws

    /// The job `id` if it is running under `owner`'s lease (what a job's child process runs; nil: not ours any more).
    func job(_ id: Int64, owner: String) async throws -> ClaimedJob?

    /// A job whose run did not record its own end (`JobRecord.recordUnfinished`); the runs it started in this
    /// attempt are failed with `step` and `reason`. Returns the job's new status, or nil when the run had recorded
    /// itself (or the job is no longer this owner's).
    @discardableResult
    func recordUnfinished(_ job: Int64, owner: String, step: String, reason: String, final: Bool) async throws -> JobStatus?

    /// A job stopped because its worker shut down: back to the queue without using an attempt; the runs it
    /// started in this attempt are failed with `reason`.
    func releaseStopped(_ job: Int64, owner: String, reason: String) async throws

    /// Jobs of `pipelines` that are queued or running (for `--exit-when-idle`).
    func pending(pipelines: [String]) async throws -> Int

    /// Failed jobs of `pipeline` and `kind` due in `range` are queued again with their attempts reset.
    func retryFailed(pipeline: String, kind: String, due range: Range<Int64>) async throws

    /// How many jobs of `pipeline` and `kind` are in each status.
    func counts(pipeline: String, kind: String) async throws -> [JobStatus: Int]
}

extension JobQueue {
    @discardableResult
    package func enqueue(pipeline: String, kind: String, due: Date, window: Range<Int64>? = nil) async throws -> Int64? {
        try await enqueue(pipeline: pipeline, kind: kind, due: due, notBefore: nil, window: window, maxAttempts: JobAttempt.defaultMaxAttempts)
    }
}

/// A store whose errors a log line names in its own words (a database error: what the server said).
package protocol DescribesErrors: Sendable {
    func describe(_ error: any Error) -> String
}

extension DescribesErrors {
    package func describe(_ error: any Error) -> String { String(describing: error) }
}

/// A job's status (`datenwerk.jobs.status`).
package enum JobStatus: String, Sendable, Hashable, CaseIterable {
    case queued, running, succeeded, failed
}

/// At most one run per pipeline at a time, across processes and machines (`PipelineLock` in `DatenwerkPostgres`:
/// a session advisory lock).
package protocol PipelineLocking: Sendable {
    /// Runs `body` holding the lock; returns nil without running it when someone else holds it.
    func withLock<T: Sendable>(_ pipeline: String, _ body: @Sendable () async throws -> T) async throws -> T?
}

/// Instants as the queue stores them: µs since 1970 UTC.
package enum Micros {
    package static func date(_ micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1e6) }
    package static func of(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1e6).rounded()) }
    package static var now: Int64 { Int64(Date().timeIntervalSince1970 * 1e6) }
    /// A duration in µs (leases, delays, backoff).
    package static func of(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    }
}
