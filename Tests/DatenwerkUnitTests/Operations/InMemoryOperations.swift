import DatenwerkOperations
import Foundation
import Synchronization
import DatenwerkTesting

/// A `JobQueue` and `ScheduleStore` in memory: `JobTable` (the rules of `JobRecord`) under a clock the test moves.
final class InMemoryJobQueue: JobQueue, ScheduleStore {
    private let state: Mutex<(table: JobTable, schedules: [String: ScheduleState], now: Int64)>

    init(now: Int64 = 1_700_000_000_000_000) { state = Mutex((JobTable(), [:], now)) }

    var now: Int64 { state.withLock { $0.now } }
    var table: JobTable { state.withLock { $0.table } }
    func advance(by duration: Duration) { state.withLock { $0.now += Micros.of(duration) } }
    func schedule(_ pipeline: String) -> ScheduleState? { state.withLock { $0.schedules[pipeline] } }
    /// For a test that plays the sink, which ends a job in its run's transaction.
    func finish(_ id: Int64, as status: JobStatus) { state.withLock { _ = $0.table.update(id) { $0.status = status } } }

    func enqueue(pipeline: String, kind: String, due: Date, notBefore: Date?, window: Range<Int64>?, maxAttempts: Int) async throws -> Int64? {
        state.withLock {
            $0.table.enqueue(pipeline: pipeline, kind: kind, due: Micros.of(due), notBefore: notBefore.map(Micros.of), window: window, maxAttempts: maxAttempts)
        }
    }

    func claim(owner: String, lease: Duration, pipelines: [String]) async throws -> ClaimedJob? {
        state.withLock { $0.table.claim(owner: owner, now: $0.now, lease: lease, pipelines: pipelines) }
    }

    func heartbeat(_ job: Int64, owner: String, lease: Duration) async throws -> Bool {
        state.withLock { s in s.table.update(job) { $0.heartbeat(owner: owner, now: s.now, lease: lease) } ?? false }
    }

    func release(_ job: Int64, owner: String, delay: Duration) async throws {
        state.withLock { s in _ = s.table.update(job) { $0.release(owner: owner, now: s.now, delay: delay) } }
    }

    func fail(_ job: Int64, owner: String, reason: String) async throws {
        state.withLock { _ = $0.table.update(job) { $0.fail(owner: owner, reason: reason) } }
    }

    func job(_ id: Int64, owner: String) async throws -> ClaimedJob? {
        state.withLock {
            guard let r = $0.table[id], r.status == .running, r.leaseOwner == owner else { return nil }
            return ClaimedJob(id: r.id, pipeline: r.pipeline, kind: r.kind, dueAt: Micros.date(r.due), window: r.window, attempts: r.attempts)
        }
    }

    func recordUnfinished(_ job: Int64, owner: String, step: String, reason: String, final: Bool) async throws -> JobStatus? {
        state.withLock { s in s.table.update(job) { $0.recordUnfinished(owner: owner, step: step, reason: reason, final: final, now: s.now) } }
    }

    func releaseStopped(_ job: Int64, owner: String, reason: String) async throws {
        state.withLock { s in _ = s.table.update(job) { $0.releaseStopped(owner: owner, now: s.now) } }
    }

    func pending(pipelines: [String]) async throws -> Int { state.withLock { $0.table.pending(pipelines: pipelines) } }

    func retryFailed(pipeline: String, kind: String, due range: Range<Int64>) async throws {
        state.withLock { s in
            for job in s.table.jobs where job.pipeline == pipeline && job.kind == kind && range.contains(job.due) {
                _ = s.table.update(job.id) { $0.retry(now: s.now) }
            }
        }
    }

    func counts(pipeline: String, kind: String) async throws -> [JobStatus: Int] {
        state.withLock { s in
            Dictionary(s.table.jobs.filter { $0.pipeline == pipeline && $0.kind == kind }.map { ($0.status, 1) }, uniquingKeysWith: +)
        }
    }

    func advance(_ pipeline: String, _ plan: @Sendable (ScheduleState?) -> SchedulePlan) async throws -> SchedulePlan {
        state.withLock { s in
            let decided = plan(s.schedules[pipeline])
            switch decided {
            case .start(let expression, let lastFire, _):
                s.schedules[pipeline] = ScheduleState(expression: expression, lastFire: lastFire)
            case .wait:
                break
            case .fire(let due, let notBefore, _, _):
                s.table.enqueue(pipeline: pipeline, kind: "scheduled", due: due, notBefore: notBefore)
                s.schedules[pipeline]?.lastFire = due
            }
            return decided
        }
    }
}

/// A `PipelineLocking` whose pipelines in `taken` are held by someone else.
struct FakePipelineLock: PipelineLocking {
    var taken: Set<String> = []

    func withLock<T: Sendable>(_ pipeline: String, _ body: @Sendable () async throws -> T) async throws -> T? {
        taken.contains(pipeline) ? nil : try await body()
    }
}

/// Deterministic random numbers for tests (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
