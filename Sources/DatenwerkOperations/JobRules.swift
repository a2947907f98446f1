import Foundation

/// Attempts and retries: how many, how long to wait before the next, what an operator reads when they ran out.
package enum JobAttempt {
    /// `max_attempts` of a job nobody set it for.
    package static let defaultMaxAttempts = 3
    /// The wait before attempt n + 1 after attempt n failed is `backoffBase` · 2^(n − 1): 30 s, 60 s, 120 s, …
    package static let backoffBase: Duration = .seconds(30)

    package static func backoff(after attempt: Int) -> Duration {
        backoffBase * pow(2, Double(attempt - 1))
    }

    /// Whether a failed attempt is followed by another (else the job fails for good).
    package static func retries(attempts: Int, maxAttempts: Int, final: Bool) -> Bool {
        !final && attempts < maxAttempts
    }

    /// The reason a job fails with when its lease expired after its last attempt (PostgreSQL `format`: two `%s`).
    package static let leaseExpiredFormat = "lease expired after %s attempts (last worker %s; it crashed or lost the database)"

    package static func leaseExpiredReason(attempts: Int, owner: String?) -> String {
        var text = leaseExpiredFormat
        for value in [String(attempts), owner ?? ""] {
            if let hole = text.range(of: "%s") { text.replaceSubrange(hole, with: value) }
        }
        return text
    }
}

/// A worker's lease on a job: renewed every third of its length by the heartbeat.
package struct Lease: Sendable, Hashable {
    package var duration: Duration

    package init(_ duration: Duration) { self.duration = duration }

    /// Time between two beats: three beats fit in one lease, so one slow beat never loses it.
    package var beatInterval: Duration { duration / 3 }

    package enum Verdict: Sendable, Hashable {
        /// Still ours (renewed, or the job has just ended under this owner), or the store did not answer: beat on.
        case keepBeating
        /// Another worker runs the job now: stop the run.
        case lost
    }

    /// What a beat's answer means; nil: the store was unreachable (the run notices too, or the next beat succeeds).
    package static func verdict(held: Bool?) -> Verdict { held == false ? .lost : .keepBeating }
}

/// One job as the queue's rules see it: what `JobQueue`'s operations do to a job, as plain values. `PostgresJobQueue`
/// does the same in SQL on `datenwerk.jobs` (status, attempts, max_attempts, not_before, lease_owner, lease_expires_at,
/// error); `JobTable` applies these rules to a list of jobs in memory. Times are µs UTC.
package struct JobRecord: Sendable, Hashable {
    package var id: Int64
    package var pipeline: String
    package var kind: String
    package var due: Int64
    package var window: Range<Int64>?
    package var status: JobStatus = .queued
    package var attempts = 0
    package var maxAttempts: Int
    package var notBefore: Int64
    package var leaseOwner: String?
    package var leaseExpiresAt: Int64?
    package var error: String?

    package init(id: Int64, pipeline: String, kind: String, due: Int64, notBefore: Int64? = nil, window: Range<Int64>? = nil,
                maxAttempts: Int = JobAttempt.defaultMaxAttempts) {
        self.id = id
        self.pipeline = pipeline
        self.kind = kind
        self.due = due
        self.notBefore = notBefore ?? due
        self.window = window
        self.maxAttempts = maxAttempts
    }

    func leaseExpired(_ now: Int64) -> Bool { leaseExpiresAt.map { $0 < now } ?? false }

    /// Before a claim: a running job whose lease expired after its last attempt fails, naming its last worker.
    package mutating func expire(now: Int64) -> Bool {
        guard status == .running, leaseExpired(now), attempts >= maxAttempts else { return false }
        status = .failed
        error = JobAttempt.leaseExpiredReason(attempts: attempts, owner: leaseOwner)
        return true
    }

    /// Ready for a worker: due, and queued or running under an expired lease (its worker died: taken again).
    package func isReady(now: Int64) -> Bool {
        guard notBefore <= now else { return false }
        return status == .queued || (status == .running && leaseExpired(now))
    }

    /// Taken by `owner`: the attempt counts from here.
    package mutating func claim(owner: String, now: Int64, lease: Duration) -> ClaimedJob {
        status = .running
        leaseOwner = owner
        attempts += 1
        leaseExpiresAt = now + Micros.of(lease)
        error = nil
        return ClaimedJob(id: id, pipeline: pipeline, kind: kind, dueAt: Micros.date(due), window: window, attempts: attempts)
    }

    /// Renews `owner`'s lease. Held: renewed, or the job is no longer running (this owner's run has just ended it:
    /// committed, or queued again after a failure). Not held (lost): it runs under another owner now.
    package mutating func heartbeat(owner: String, now: Int64, lease: Duration) -> Bool {
        if status == .running, leaseOwner == owner {
            leaseExpiresAt = now + Micros.of(lease)
            return true
        }
        return status != .running
    }

    /// Back to the queue after `delay` (the pipeline's lock was taken): the attempt does not count.
    package mutating func release(owner: String, now: Int64, delay: Duration) {
        guard leaseOwner == owner else { return }
        status = .queued
        leaseOwner = nil
        leaseExpiresAt = nil
        attempts = max(attempts - 1, 0)
        notBefore = now + Micros.of(delay)
    }

    /// Failed for good without a run (e.g. this worker has no such pipeline).
    package mutating func fail(owner: String, reason: String) {
        guard leaseOwner == owner else { return }
        status = .failed
        error = reason
        leaseExpiresAt = nil
    }

    /// The run did not record its end (its process crashed): the attempt counts; queued again after the backoff
    /// while attempts remain, else (or at once when `final`) failed. Nil when the job is not `owner`'s running job.
    package mutating func recordUnfinished(owner: String, step: String, reason: String, final: Bool, now: Int64) -> JobStatus? {
        guard status == .running, leaseOwner == owner else { return nil }
        error = "\(step): \(reason)"
        if JobAttempt.retries(attempts: attempts, maxAttempts: maxAttempts, final: final) {
            status = .queued
            notBefore = now + Micros.of(JobAttempt.backoff(after: attempts))
        } else {
            status = .failed
        }
        leaseOwner = nil
        leaseExpiresAt = nil
        return status
    }

    /// Its worker shut down during the run: queued again at once, the attempt does not count.
    package mutating func releaseStopped(owner: String, now: Int64) {
        guard status == .running, leaseOwner == owner else { return }
        status = .queued
        leaseOwner = nil
        leaseExpiresAt = nil
        attempts = max(attempts - 1, 0)
        notBefore = now
    }

    /// A failed backfill chunk asked for again: a fresh start.
    package mutating func retry(now: Int64) {
        guard status == .failed else { return }
        status = .queued
        attempts = 0
        notBefore = now
        error = nil
    }
}

/// The rules of `JobRecord` over a list of jobs, in memory: what `PostgresJobQueue` does with `datenwerk.jobs`
/// (one job per pipeline, kind and due time; the next job is the ready one with the earliest not-before, then id).
package struct JobTable: Sendable, Hashable {
    package private(set) var jobs: [JobRecord] = []

    package init() {}

    package subscript(id: Int64) -> JobRecord? { jobs.first { $0.id == id } }

    @discardableResult
    package mutating func enqueue(pipeline: String, kind: String, due: Int64, notBefore: Int64? = nil, window: Range<Int64>? = nil,
                                 maxAttempts: Int = JobAttempt.defaultMaxAttempts) -> Int64? {
        guard !jobs.contains(where: { $0.pipeline == pipeline && $0.kind == kind && $0.due == due }) else { return nil }
        let id = (jobs.map(\.id).max() ?? 0) + 1
        jobs.append(JobRecord(id: id, pipeline: pipeline, kind: kind, due: due, notBefore: notBefore, window: window, maxAttempts: maxAttempts))
        return id
    }

    package mutating func claim(owner: String, now: Int64, lease: Duration, pipelines: [String]) -> ClaimedJob? {
        for i in jobs.indices { _ = jobs[i].expire(now: now) }
        let ready = jobs.indices.filter { pipelines.contains(jobs[$0].pipeline) && jobs[$0].isReady(now: now) }
        guard let next = ready.min(by: { (jobs[$0].notBefore, jobs[$0].id) < (jobs[$1].notBefore, jobs[$1].id) }) else { return nil }
        return jobs[next].claim(owner: owner, now: now, lease: lease)
    }

    package mutating func update<T>(_ id: Int64, _ change: (inout JobRecord) -> T?) -> T? {
        guard let i = jobs.firstIndex(where: { $0.id == id }) else { return nil }
        return change(&jobs[i])
    }

    package func pending(pipelines: [String]) -> Int {
        jobs.count { pipelines.contains($0.pipeline) && ($0.status == .queued || $0.status == .running) }
    }
}
