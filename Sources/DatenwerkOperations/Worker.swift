import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Takes jobs from a `JobQueue` and runs them: `datenwerk worker` (any number, any machine) and the
/// worker inside `datenwerk serve`. The queue's store (PostgreSQL) is the only coordinator.
package struct Worker: Sendable {
    package struct LeaseLost: Error, CustomStringConvertible {
        package var job: Int64
        package var description: String { "the lease on job \(job) was lost (it expired and another worker may have taken it); the run was stopped" }
    }

    package let id: String
    package let pipelines: [String: PipelineSpec]
    package let queue: any JobQueue
    /// At most one run per pipeline at a time.
    package let lock: any PipelineLocking
    package let runner: PipelineRunner
    package var lease: Duration
    package var poll: Duration
    package var logger: Logger
    /// When set, each job runs in a child process (see `JobIsolation`); `runner` is then not used for jobs.
    package var isolation: JobIsolation?

    package init(id: String? = nil, pipelines: [PipelineSpec], queue: any JobQueue, lock: any PipelineLocking, runner: PipelineRunner,
                lease: Duration = .seconds(60), poll: Duration = .seconds(2), isolation: JobIsolation? = nil, logger: Logger) {
        self.isolation = isolation
        self.id = id ?? "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UInt16.random(in: 0...UInt16.max))"
        self.pipelines = Dictionary(pipelines.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.queue = queue
        self.lock = lock
        self.runner = runner
        self.lease = lease
        self.poll = poll
        self.logger = logger
    }

    /// Runs jobs until cancelled; with `exitWhenIdle`, returns once no job of its pipelines is queued or running.
    /// Returns how many jobs it took.
    @discardableResult
    package func run(exitWhenIdle: Bool = false, shouldStop: @Sendable () -> Bool = { false }) async throws -> Int {
        var taken = 0
        var failures = 0
        while !Task.isCancelled, !shouldStop() {
            do {
                if try await runOne() {
                    taken += 1
                    failures = 0
                    continue
                }
                if exitWhenIdle, try await queue.pending(pipelines: Array(pipelines.keys)) == 0 { return taken }
            } catch is CancellationError {
                break
            } catch {
                // The database went away: keep trying (a restarted server comes back), with a growing pause.
                failures += 1
                logger.error("worker \(id): \(queue.describe(error)); retrying")
                try? await Task.sleep(for: Self.retryPause(poll: poll, failures: failures))
                continue
            }
            var waited = Duration.zero
            while waited < poll, !shouldStop(), !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                waited += .milliseconds(100)
            }
        }
        return taken
    }

    /// Takes and runs one ready job; false when none was ready.
    package func runOne() async throws -> Bool {
        guard let job = try await queue.claim(owner: id, lease: lease, pipelines: Array(pipelines.keys)) else { return false }
        guard let spec = pipelines[job.pipeline] else {
            try await queue.fail(job.id, owner: id, reason: "worker \(id) has no pipeline named '\(job.pipeline)'")
            return true
        }
        logger.info("worker \(id): job \(job.id) (\(job.kind) \(job.pipeline), attempt \(job.attempts))")
        if let isolation {
            let ran: Bool? = try await lock.withLock(spec.name) {
                try await runIsolated(job, spec: spec, isolation: isolation)
                return true
            }
            if ran == nil { try await queue.release(job.id, owner: id, delay: .seconds(2)) }
            return true
        }
        let (runner, queue, id, lease) = (self.runner, self.queue, self.id, self.lease)
        let report: RunReport? = try await lock.withLock(spec.name) {
            try await withThrowingTaskGroup(of: RunReport.self) { group in
                group.addTask {
                    try await runner.run(spec, context: RunContext(trigger: job.kind, jobID: job.id, window: job.window))
                }
                group.addTask {
                    try await Self.heartbeat(queue, job: job.id, owner: id, lease: lease)
                    throw LeaseLost(job: job.id)
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        }
        guard let report else {
            // Another run of this pipeline holds the lock: try again shortly, without using up an attempt.
            try await queue.release(job.id, owner: id, delay: .seconds(2))
            return true
        }
        if let failure = report.failure {
            logger.warning("worker \(id): job \(job.id) run \(report.runID) failed at \(failure.step.rawValue): \(failure.message)")
        }
        return true
    }
}

/// How a worker runs each job in its own process: `<executable> run-job <job> --owner <worker> --pipeline <file>`
/// (the hidden `datenwerk run-job` command). The worker keeps the job's lease (heartbeat) and the pipeline's
/// advisory lock while the child runs; a child that dies without recording its run (a signal, a trap, exit 75)
/// is recorded as a failed attempt naming the signal and the last step the run reached, so a job that crashes
/// every time is failed for good after `max_attempts` instead of being retaken forever.
package struct JobIsolation: Sendable {
    package var executable: String
    /// Added to the child's environment (which is otherwise this process's).
    package var environment: [String: String]

    package init(executable: String = JobProcess.currentExecutable, environment: [String: String] = [:]) {
        self.executable = executable
        self.environment = environment
    }

    package func arguments(job: Int64, owner: String, pipelineFile: String) -> [String] {
        ["run-job", String(job), "--owner", owner, "--pipeline", pipelineFile]
    }

    /// Exit status of `run-job` when the pipeline file no longer loads (the failure is final).
    package static let invalidConfiguration: Int32 = 64
}

extension Worker {
    enum ChildEnd: Sendable {
        case exited(JobProcess.Outcome)
        case leaseLost
    }

    /// The pause after `failures` failed looks at the queue in a row: one poll more each time, at most 15.
    package static func retryPause(poll: Duration, failures: Int) -> Duration {
        poll * min(max(failures, 1), 15)
    }

    /// Renews the lease every lease/3 until cancelled; returns when the job is no longer this worker's.
    static func heartbeat(_ queue: any JobQueue, job: Int64, owner: String, lease: Duration) async throws {
        while true {
            try await Task.sleep(for: Lease(lease).beatInterval)
            let held: Bool?
            do { held = try await queue.heartbeat(job, owner: owner, lease: lease) } catch is CancellationError {
                throw CancellationError()
            } catch {
                held = nil   // the database is away; the run will notice too, or the next beat succeeds
            }
            if Lease.verdict(held: held) == .lost { return }
        }
    }

    /// Runs one claimed job in a child process and records what the child could not (see `JobIsolation`).
    func runIsolated(_ job: ClaimedJob, spec: PipelineSpec, isolation: JobIsolation) async throws {
        let (queue, id, lease, logger) = (self.queue, self.id, self.lease, self.logger)
        let child: JobProcess
        do {
            child = try await JobProcess.start(executable: isolation.executable,
                                         arguments: isolation.arguments(job: job.id, owner: id, pipelineFile: spec.file),
                                         environment: isolation.environment)
        } catch {
            try await queue.recordUnfinished(job.id, owner: id, step: "configure", reason: "could not start the job's process: \(error)", final: false)
            return
        }
        let end: ChildEnd
        do {
            end = try await withTaskCancellationHandler {
                try await withThrowingTaskGroup(of: ChildEnd.self) { group in
                    group.addTask { .exited(await child.wait()) }
                    group.addTask {
                        try await Self.heartbeat(queue, job: job.id, owner: id, lease: lease)
                        return .leaseLost
                    }
                    defer { group.cancelAll() }
                    return try await group.next()!
                }
            } onCancel: {
                child.kill(SIGKILL)
            }
        } catch {
            // This worker is stopping: the child goes with it, the job goes back without using an attempt.
            child.kill(SIGKILL)
            _ = await child.wait()
            await Task {
                try? await queue.releaseStopped(job.id, owner: id, reason: "stopped: worker \(id) shut down during the run; the job was queued again")
            }.value
            throw error
        }
        switch end {
        case .leaseLost:
            child.kill(SIGKILL)
            _ = await child.wait()
            logger.warning("worker \(id): \(LeaseLost(job: job.id).description)")
        case .exited(let outcome):
            // Normally the run recorded itself (exit 0 or 1) and this changes nothing; otherwise the attempt counts.
            let attempt = UnfinishedAttempt(outcome)
            let reason = attempt.reason
            let recorded = try await queue.recordUnfinished(job.id, owner: id, step: attempt.step, reason: reason, final: attempt.final)
            if let recorded {
                logger.error("worker \(id): job \(job.id) (\(job.pipeline), attempt \(job.attempts)): \(reason); job \(recorded == .queued ? "queued again" : "failed")")
            }
        }
    }
}

/// What a worker records for a job whose child process ended without recording its run: the last step the run
/// reached, the signal or exit status with the child's own last words, and whether the failure is final (the
/// pipeline file no longer loads: exit 64).
package struct UnfinishedAttempt: Sendable, Hashable {
    package var step: String
    package var reason: String
    package var final: Bool

    package init(_ outcome: JobProcess.Outcome) {
        step = outcome.lastPoint.flatMap { FailPoint.steps[$0] } ?? "configure"
        var reason = "the job's process \(outcome.describeTermination)"
        if let point = outcome.lastPoint { reason += " after point '\(point)'" } else { reason += " before its run started" }
        if let message = outcome.fatalMessage {
            reason += "; \(message)"
        } else if case .exited = outcome.termination,
                  let last = outcome.errorTail.split(separator: "\n").last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            reason += "; \(last.prefix(300))"   // e.g. why the pipeline file no longer loads, or the database error
        }
        self.reason = reason
        final = outcome.termination == .exited(JobIsolation.invalidConfiguration)
    }
}
