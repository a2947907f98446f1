import DatenwerkCore
import DatenwerkOperations
import DatenwerkPipeline
import Foundation
import Glibc
import Logging
import Testing
import DatenwerkTesting

/// The job queue's rules without a database: leases, heartbeats, attempts (`JobRecord`, `JobTable`, `Lease`,
/// `JobAttempt`), what a crashed child leaves (`UnfinishedAttempt`), backfill planning and the worker's own
/// decisions over an in-memory queue.
@Suite struct JobRulesTests {
    static let t0: Int64 = 1_700_000_000_000_000
    static let second: Int64 = 1_000_000

    @Test func anExpiredLeaseIsRetakenByAnotherWorker() {
        var table = JobTable()
        let id = table.enqueue(pipeline: "p", kind: "manual", due: Self.t0)!
        let a = table.claim(owner: "A", now: Self.t0, lease: .seconds(30), pipelines: ["p"])
        #expect(a?.id == id && a?.attempts == 1)
        // The lease is live: nobody else gets the job, not even at its last µs.
        #expect(table.claim(owner: "B", now: Self.t0 + 10 * Self.second, lease: .seconds(30), pipelines: ["p"]) == nil)
        #expect(table.claim(owner: "B", now: Self.t0 + 30 * Self.second, lease: .seconds(30), pipelines: ["p"]) == nil)
        // A froze: its lease ran out, B takes the job as attempt 2.
        let b = table.claim(owner: "B", now: Self.t0 + 31 * Self.second, lease: .seconds(30), pipelines: ["p"])
        #expect(b?.id == id && b?.attempts == 2)
        #expect(table[id]?.leaseOwner == "B")
        // A's next beat finds the job under B: lost, A stops its run.
        let held = table.update(id) { $0.heartbeat(owner: "A", now: Self.t0 + 32 * Self.second, lease: .seconds(30)) }
        #expect(held == false)
        #expect(Lease.verdict(held: held) == .lost)
        #expect(table[id]?.leaseExpiresAt == Self.t0 + 61 * Self.second, "A's beat did not touch B's lease")
    }

    @Test func aBeatRenewsTheLeaseSoTheJobIsNotRetaken() {
        var table = JobTable()
        let id = table.enqueue(pipeline: "p", kind: "manual", due: Self.t0)!
        _ = table.claim(owner: "A", now: Self.t0, lease: .seconds(30), pipelines: ["p"])
        #expect(Lease(.seconds(30)).beatInterval == .seconds(10))
        for beat in 1...9 {
            let held = table.update(id) { $0.heartbeat(owner: "A", now: Self.t0 + Int64(beat) * 10 * Self.second, lease: .seconds(30)) }
            #expect(held == true)
        }
        #expect(table.claim(owner: "B", now: Self.t0 + 115 * Self.second, lease: .seconds(30), pipelines: ["p"]) == nil)
    }

    @Test(arguments: [JobStatus.succeeded, .failed, .queued])
    func aBeatForAJobThatIsNoLongerRunningIsHeld(_ status: JobStatus) {
        // The run has just ended the job (committed, or queued it again after a failure) while its task has not
        // returned yet: the beat in that moment must not report a lost lease and hide the run's own outcome.
        var table = JobTable()
        let id = table.enqueue(pipeline: "p", kind: "manual", due: Self.t0)!
        _ = table.claim(owner: "A", now: Self.t0, lease: .seconds(30), pipelines: ["p"])
        _ = table.update(id) { $0.status = status }
        let held = table.update(id) { $0.heartbeat(owner: "A", now: Self.t0 + Self.second, lease: .seconds(30)) }
        #expect(held == true)
        #expect(Lease.verdict(held: held) == .keepBeating)
        #expect(table[id]?.status == status, "a beat never changes a finished job")
        // An unreachable store is no verdict either: beat on.
        #expect(Lease.verdict(held: nil) == .keepBeating)
    }

    @Test func afterMaxAttemptsAnExpiredJobFailsAndIsNotRetaken() {
        var table = JobTable()
        let id = table.enqueue(pipeline: "p", kind: "manual", due: Self.t0, maxAttempts: 2)!
        var now = Self.t0
        for (attempt, owner) in [(1, "A"), (2, "B")] {
            #expect(table.claim(owner: owner, now: now, lease: .seconds(30), pipelines: ["p"])?.attempts == attempt)
            now += 31 * Self.second   // the worker dies; its lease runs out
        }
        #expect(table.claim(owner: "C", now: now, lease: .seconds(30), pipelines: ["p"]) == nil)
        #expect(table[id]?.status == .failed)
        #expect(table[id]?.attempts == 2)
        #expect(table[id]?.error == "lease expired after 2 attempts (last worker B; it crashed or lost the database)")
        #expect(table.pending(pipelines: ["p"]) == 0)
    }

    @Test func aCrashedAttemptWaitsLongerEachTimeThenFails() {
        var table = JobTable()
        let id = table.enqueue(pipeline: "p", kind: "manual", due: Self.t0)!
        var now = Self.t0
        var waits: [Int64] = []
        while let job = table.claim(owner: "A", now: now, lease: .seconds(60), pipelines: ["p"]) {
            let status = table.update(id) { $0.recordUnfinished(owner: "A", step: "extract", reason: "SIGILL", final: false, now: now) }
            #expect(status == (job.attempts < 3 ? .queued : .failed))
            guard status == .queued, let notBefore = table[id]?.notBefore else { break }
            #expect(table.claim(owner: "B", now: notBefore - 1, lease: .seconds(60), pipelines: ["p"]) == nil, "not before its backoff")
            waits.append((notBefore - now) / Self.second)
            now = notBefore
        }
        #expect(waits == [30, 60])
        #expect(table[id]?.status == .failed && table[id]?.attempts == 3)
        #expect(table[id]?.error == "extract: SIGILL")
        #expect(JobAttempt.backoff(after: 3) == .seconds(120))
    }

    @Test func aFinalFailureAndAForeignOwnerAreHandled() {
        var table = JobTable()
        let id = table.enqueue(pipeline: "p", kind: "manual", due: Self.t0)!
        _ = table.claim(owner: "A", now: Self.t0, lease: .seconds(60), pipelines: ["p"])
        // Somebody else's report changes nothing.
        #expect(table.update(id) { $0.recordUnfinished(owner: "B", step: "load", reason: "x", final: false, now: Self.t0) } == nil)
        #expect(table[id]?.status == .running)
        // The pipeline file no longer loads: failed at the first attempt.
        #expect(table.update(id) { $0.recordUnfinished(owner: "A", step: "configure", reason: "exit 64", final: true, now: Self.t0) } == .failed)
        // Once the run has recorded itself, the worker's report is nil (nothing to record).
        #expect(table.update(id) { $0.recordUnfinished(owner: "A", step: "load", reason: "x", final: false, now: Self.t0) } == nil)
    }

    @Test func releasedJobsDoNotUseAnAttempt() {
        var table = JobTable()
        let id = table.enqueue(pipeline: "p", kind: "manual", due: Self.t0)!
        _ = table.claim(owner: "A", now: Self.t0, lease: .seconds(60), pipelines: ["p"])
        table.update(id) { $0.release(owner: "A", now: Self.t0, delay: .seconds(2)) }
        #expect(table[id]?.status == .queued && table[id]?.attempts == 0 && table[id]?.notBefore == Self.t0 + 2 * Self.second)
        #expect(table.claim(owner: "A", now: Self.t0 + Self.second, lease: .seconds(60), pipelines: ["p"]) == nil)
        #expect(table.claim(owner: "A", now: Self.t0 + 2 * Self.second, lease: .seconds(60), pipelines: ["p"])?.attempts == 1)
        table.update(id) { $0.releaseStopped(owner: "A", now: Self.t0 + 3 * Self.second) }
        #expect(table[id]?.status == .queued && table[id]?.attempts == 0 && table[id]?.notBefore == Self.t0 + 3 * Self.second)
    }

    @Test func claimsTakeTheEarliestReadyJobOfTheirPipelinesOnly() {
        var table = JobTable()
        #expect(table.enqueue(pipeline: "p", kind: "manual", due: Self.t0 + 5) == 1)
        #expect(table.enqueue(pipeline: "p", kind: "manual", due: Self.t0 + 5) == nil, "one job per pipeline, kind and due time")
        #expect(table.enqueue(pipeline: "q", kind: "manual", due: Self.t0) == 2)
        #expect(table.enqueue(pipeline: "p", kind: "backfill", due: Self.t0 + 1) == 3)
        #expect(table.enqueue(pipeline: "p", kind: "scheduled", due: Self.t0 + 1, notBefore: Self.t0 + 60 * Self.second) == 4)
        let now = Self.t0 + 10
        #expect(table.claim(owner: "A", now: now, lease: .seconds(60), pipelines: ["p"])?.id == 3)
        #expect(table.claim(owner: "A", now: now, lease: .seconds(60), pipelines: ["p"])?.id == 1)
        #expect(table.claim(owner: "A", now: now, lease: .seconds(60), pipelines: ["p"]) == nil, "4 is jittered into the future, 2 is q's")
        #expect(table.pending(pipelines: ["p"]) == 3)
    }

    @Test func aCrashedChildIsDescribedWithItsSignalAndLastStep() {
        let segfault = UnfinishedAttempt(JobProcess.Outcome(termination: .signaled(SIGSEGV), lastPoint: "after-copy", errorTail: "reading\n"))
        #expect(segfault.step == "load")
        #expect(segfault.reason.hasPrefix("the job's process died of SIGSEGV"))
        #expect(segfault.reason.contains("after point 'after-copy'"))
        #expect(!segfault.final)

        let trap = UnfinishedAttempt(JobProcess.Outcome(termination: .signaled(SIGILL), lastPoint: "extract",
                                                        errorTail: "x\nFatal error: Index out of range\n#0 0x1 in main\n"))
        #expect(trap.step == "extract")
        #expect(trap.reason.hasSuffix("; Fatal error: Index out of range"))

        let early = UnfinishedAttempt(JobProcess.Outcome(termination: .exited(75), errorTail: "fatal-ish\n  \n"))
        #expect(early.step == "configure")
        #expect(early.reason == "the job's process exited with status 75 before its run started; fatal-ish")

        let invalid = UnfinishedAttempt(JobProcess.Outcome(termination: .exited(JobIsolation.invalidConfiguration), errorTail: "p.yaml:3:1: unknown key\n"))
        #expect(invalid.final)
        #expect(invalid.reason.hasSuffix("; p.yaml:3:1: unknown key"))
    }

    @Test func backfillChunksCoverTheRangeExactly() {
        let day: Int64 = 86_400 * Self.second
        #expect(Backfill.chunks(from: 0, to: 2 * day + 5, seconds: 86_400) == [0..<day, day..<(2 * day), (2 * day)..<(2 * day + 5)])
        #expect(Backfill.chunks(from: day, to: 3 * day, seconds: 86_400) == [day..<(2 * day), (2 * day)..<(3 * day)])
        #expect(Backfill.chunks(from: day, to: day, seconds: 86_400).isEmpty)
        #expect(Backfill.chunks(from: 0, to: day, seconds: 7 * 86_400) == [0..<day])
        let hours = Backfill.chunks(from: 0, to: 10 * day, seconds: 3_600)
        #expect(hours.count == 240 && zip(hours, hours.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        #expect(Backfill.chunkSeconds.lowerBound == 60)
    }

    @Test func backfillQueuesNewChunksOnceAndRetriesFailedOnes() async throws {
        let queue = InMemoryJobQueue()
        let day: Int64 = 86_400 * Self.second
        let windows = Backfill.chunks(from: 0, to: 3 * day, seconds: 86_400)
        #expect(try await Backfill.enqueue("p", windows: windows, queue: queue) == 3)
        #expect(try await Backfill.enqueue("p", windows: windows, queue: queue) == 0)
        let job = try #require(try await queue.claim(owner: "A", lease: .seconds(60), pipelines: ["p"]))
        #expect(job.window == 0..<day && job.kind == "backfill")
        try await queue.fail(job.id, owner: "A", reason: "no data")
        #expect(try await Backfill.states("p", queue: queue) == [.failed: 1, .queued: 2])
        #expect(try await Backfill.enqueue("p", windows: windows, queue: queue) == 0)
        #expect(try await Backfill.states("p", queue: queue) == [.queued: 3])
        #expect(queue.table[job.id]?.attempts == 0)
    }

    // MARK: the worker over an in-memory queue

    static func worker(_ queue: InMemoryJobQueue, lock: FakePipelineLock = FakePipelineLock(), pipelines: [String] = ["p"]) throws -> Worker {
        let specs = try pipelines.map { name in
            try spec("""
                version: 1
                name: \(name)
                tenant: "05515000"
                source: { kind: file, path: does-not-exist.csv, format: { kind: csv } }
                observations: { station: { id: a }, time: { field: t, format: iso8601 }, values: [{ field: v, property: air_temperature }] }
                """)
        }
        return Worker(id: "W", pipelines: specs, queue: queue, lock: lock, runner: PipelineRunner(fetcher: testFetcher, sink: RecordingSink()),
                      lease: .seconds(30), poll: .milliseconds(10), logger: Logger(label: "test"))
    }

    @Test func aLockedPipelineSendsTheJobBackWithoutUsingAnAttempt() async throws {
        let queue = InMemoryJobQueue()
        let id = try #require(try await queue.enqueue(pipeline: "p", kind: "manual", due: Micros.date(queue.now)))
        let worker = try Self.worker(queue, lock: FakePipelineLock(taken: ["p"]))
        #expect(try await worker.runOne())
        let job = try #require(queue.table[id])
        #expect(job.status == .queued && job.attempts == 0 && job.leaseOwner == nil)
        #expect(job.notBefore == queue.now + 2 * Self.second)
        #expect(try await !worker.runOne(), "not before two seconds")
    }

    @Test func aWorkerClaimsOnlyItsOwnPipelines() async throws {
        let queue = InMemoryJobQueue()
        let id = try #require(try await queue.enqueue(pipeline: "other", kind: "manual", due: Micros.date(queue.now)))
        let worker = try Self.worker(queue, pipelines: ["p"])
        #expect(try await !worker.runOne())
        #expect(queue.table[id]?.status == .queued)
        #expect(try await worker.run(exitWhenIdle: true) == 0, "idle: nothing of its pipelines is queued")
    }

    @Test func aWorkerRunsAJobInProcessAndReturnsWhenIdle() async throws {
        let queue = InMemoryJobQueue()
        let id = try #require(try await queue.enqueue(pipeline: "p", kind: "manual", due: Micros.date(queue.now)))
        let worker = try Self.worker(queue)
        #expect(try await worker.runOne())
        // The run failed at extract (no such file); ending the job is the sink's part, played here.
        #expect(queue.table[id].map { $0.status == .running && $0.attempts == 1 && $0.leaseOwner == "W" } == true)
        queue.finish(id, as: .failed)
        #expect(try await worker.run(exitWhenIdle: true) == 0)
        #expect(Worker.retryPause(poll: .seconds(2), failures: 1) == .seconds(2))
        #expect(Worker.retryPause(poll: .seconds(2), failures: 100) == .seconds(30))
    }
}
