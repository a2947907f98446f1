import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation
import Logging
import PostgresNIO

/// Takes jobs from `datenwerk.jobs` and runs them: `datenwerk worker` (any number, any machine) and the
/// worker inside `datenwerk serve`. PostgreSQL is the only coordinator.
public struct Worker: Sendable {
    public struct LeaseLost: Error, CustomStringConvertible {
        public var job: Int64
        public var description: String { "the lease on job \(job) was lost (it expired and another worker may have taken it); the run was stopped" }
    }

    public let id: String
    public let pipelines: [String: PipelineSpec]
    public let database: Database
    public let runner: PipelineRunner
    public var lease: Duration
    public var poll: Duration
    public var logger: Logger
    /// When set, each job runs in a child process (see `JobIsolation`); `runner` is then not used for jobs.
    public var isolation: JobIsolation?
    var queue: JobQueue { JobQueue(database) }

    public init(id: String? = nil, pipelines: [PipelineSpec], database: Database, runner: PipelineRunner,
                lease: Duration = .seconds(60), poll: Duration = .seconds(2), isolation: JobIsolation? = nil, logger: Logger) {
        self.isolation = isolation
        self.id = id ?? "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UInt16.random(in: 0...UInt16.max))"
        self.pipelines = Dictionary(pipelines.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.database = database
        self.runner = runner
        self.lease = lease
        self.poll = poll
        self.logger = logger
    }

    /// Runs jobs until cancelled; with `exitWhenIdle`, returns once no job of its pipelines is queued or running.
    /// Returns how many jobs it took.
    @discardableResult
    public func run(exitWhenIdle: Bool = false, shouldStop: @Sendable () -> Bool = { false }) async throws -> Int {
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
                logger.error("worker \(id): \(describeDatabaseError(error)); retrying")
                try? await Task.sleep(for: poll * min(failures, 15))
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
    public func runOne() async throws -> Bool {
        guard let job = try await queue.claim(owner: id, lease: lease, pipelines: Array(pipelines.keys)) else { return false }
        guard let spec = pipelines[job.pipeline] else {
            try await queue.fail(job.id, owner: id, reason: "worker \(id) has no pipeline named '\(job.pipeline)'")
            return true
        }
        logger.info("worker \(id): job \(job.id) (\(job.kind) \(job.pipeline), attempt \(job.attempts))")
        if let isolation {
            let ran: Bool? = try await PipelineLock.withLock(spec.name, database: database) {
                try await runIsolated(job, spec: spec, isolation: isolation)
                return true
            }
            if ran == nil { try await queue.release(job.id, owner: id, delay: .seconds(2)) }
            return true
        }
        let (runner, queue, id, lease, database) = (self.runner, self.queue, self.id, self.lease, self.database)
        let report: RunReport? = try await PipelineLock.withLock(spec.name, database: database) {
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
            logger.warning("worker \(id): job \(job.id) run \(report.runID) failed at \(failure.step.rawValue): \(failure.reason)")
        }
        return true
    }
}

/// How a worker runs each job in its own process: `<executable> run-job <job> --owner <worker> --pipeline <file>`
/// (the hidden `datenwerk run-job` command). The worker keeps the job's lease (heartbeat) and the pipeline's
/// advisory lock while the child runs; a child that dies without recording its run (a signal, a trap, exit 75)
/// is recorded as a failed attempt naming the signal and the last step the run reached, so a job that crashes
/// every time is failed for good after `max_attempts` instead of being retaken forever.
public struct JobIsolation: Sendable {
    public var executable: String
    /// Added to the child's environment (which is otherwise this process's).
    public var environment: [String: String]

    public init(executable: String = JobProcess.currentExecutable, environment: [String: String] = [:]) {
        self.executable = executable
        self.environment = environment
    }

    public func arguments(job: Int64, owner: String, pipelineFile: String) -> [String] {
        ["run-job", String(job), "--owner", owner, "--pipeline", pipelineFile]
    }

    /// Exit status of `run-job` when the pipeline file no longer loads (the failure is final).
    public static let invalidConfiguration: Int32 = 64
}

extension Worker {
    enum ChildEnd: Sendable {
        case exited(JobProcess.Outcome)
        case leaseLost
    }

    /// Renews the lease every lease/3 until cancelled; returns when the job is no longer this worker's.
    static func heartbeat(_ queue: JobQueue, job: Int64, owner: String, lease: Duration) async throws {
        while true {
            try await Task.sleep(for: lease / 3)
            let held: Bool
            do { held = try await queue.heartbeat(job, owner: owner, lease: lease) } catch is CancellationError {
                throw CancellationError()
            } catch {
                continue   // the database is away; the run will notice too, or the next beat succeeds
            }
            if !held { return }
        }
    }

    /// Runs one claimed job in a child process and records what the child could not (see `JobIsolation`).
    func runIsolated(_ job: JobQueue.Job, spec: PipelineSpec, isolation: JobIsolation) async throws {
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
            let step = outcome.lastPoint.flatMap { FailPoint.steps[$0] } ?? "configure"
            var reason = "the job's process \(outcome.describeTermination)"
            if let point = outcome.lastPoint { reason += " after point '\(point)'" } else { reason += " before its run started" }
            if let message = outcome.fatalMessage {
                reason += "; \(message)"
            } else if case .exited = outcome.termination,
                      let last = outcome.errorTail.split(separator: "\n").last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                reason += "; \(last.prefix(300))"   // e.g. why the pipeline file no longer loads, or the database error
            }
            let final = outcome.termination == .exited(JobIsolation.invalidConfiguration)
            let recorded = try await queue.recordUnfinished(job.id, owner: id, step: step, reason: reason, final: final)
            if let recorded {
                logger.error("worker \(id): job \(job.id) (\(job.pipeline), attempt \(job.attempts)): \(reason); job \(recorded == "queued" ? "queued again" : "failed")")
            }
        }
    }
}

/// Turns `schedule:` into jobs. Each tick looks at every scheduled pipeline in its own short transaction
/// (row-locked in `datenwerk.schedules`, so several schedulers agree): fires missed while nobody was running
/// become ONE job for the latest of them (caught up once, not N times), with the pipeline's jitter.
public struct Scheduler: Sendable {
    public let pipelines: [PipelineSpec]
    public let database: Database
    public var logger: Logger

    public init(pipelines: [PipelineSpec], database: Database, logger: Logger) {
        self.pipelines = pipelines.filter { $0.cron != nil }
        self.database = database
        self.logger = logger
    }

    public struct Fired: Sendable, Hashable {
        public var pipeline: String
        public var fire: Int64
        public var missed: Int

        public init(pipeline: String, fire: Int64, missed: Int) {
            self.pipeline = pipeline
            self.fire = fire
            self.missed = missed
        }
    }

    /// Enqueues what is due at `now` (µs UTC); returns what fired.
    @discardableResult
    public func tick(now: Int64 = Int64(Date().timeIntervalSince1970 * 1e6)) async throws -> [Fired] {
        var fired: [Fired] = []
        for spec in pipelines {
            guard let cron = spec.cron else { continue }
            let result: Fired? = try await database.transaction { connection in
                var last: Date?
                var expression: String?
                for try await (l, e) in try await connection.query(
                    "SELECT last_fire, expression FROM datenwerk.schedules WHERE pipeline = \(spec.name) FOR UPDATE", logger: logger
                ).decode((Date, String).self) {
                    last = l
                    expression = e
                }
                let key = cron.description
                guard let last, expression == key else {
                    // First sight (or a changed schedule): start from now, never fire for the past.
                    let next = cron.next(after: now).map(JobQueue.date)
                    try await connection.query("""
                        INSERT INTO datenwerk.schedules (pipeline, expression, last_fire, next_fire) VALUES (\(spec.name), \(key), \(JobQueue.date(now)), \(next))
                        ON CONFLICT (pipeline) DO UPDATE SET expression = EXCLUDED.expression, last_fire = EXCLUDED.last_fire,
                            next_fire = EXCLUDED.next_fire, updated_at = now()
                        """, logger: logger)
                    return nil
                }
                var cursor = JobQueue.micros(last)
                var latest: Int64?
                var missed = 0
                while let f = cron.next(after: cursor), f <= now, missed < 1_000_000 {
                    latest = f
                    cursor = f
                    missed += 1
                }
                let next = cron.next(after: max(latest ?? cursor, now)).map(JobQueue.date)
                guard let latest else {
                    try await connection.query("UPDATE datenwerk.schedules SET next_fire = \(next), updated_at = now() WHERE pipeline = \(spec.name)", logger: logger)
                    return nil
                }
                // Validation bounds jitter (≤ 1 day); clamped again here so no spec can make this overflow.
                let jitter = spec.jitterSeconds > 0 ? Int64.random(in: 0...Int64(min(spec.jitterSeconds, PipelineSpec.maxJitterSeconds)) * 1_000_000) : 0
                try await connection.query("""
                    INSERT INTO datenwerk.jobs (pipeline, kind, due_at, not_before) VALUES (\(spec.name), 'scheduled', \(JobQueue.date(latest)), \(JobQueue.date(latest + jitter)))
                    ON CONFLICT (pipeline, kind, due_at) DO NOTHING
                    """, logger: logger)
                try await connection.query("""
                    UPDATE datenwerk.schedules SET last_fire = \(JobQueue.date(latest)), next_fire = \(next), updated_at = now() WHERE pipeline = \(spec.name)
                    """, logger: logger)
                return Fired(pipeline: spec.name, fire: latest, missed: missed)
            }
            if let result {
                if result.missed > 1 { logger.notice("\(spec.name): \(result.missed) fires were missed; caught up with one run") }
                fired.append(result)
            }
        }
        return fired
    }

    /// Ticks every `interval` until cancelled; database errors are logged and the next tick tries again.
    public func run(interval: Duration = .seconds(5)) async {
        while !Task.isCancelled {
            do { try await tick() } catch {
                logger.error("scheduler: \(describeDatabaseError(error))")
            }
            try? await Task.sleep(for: interval)
        }
    }
}
