import ArgumentParser
import DatenwerkConnectors
import DatenwerkCore
import DatenwerkHTTP
import DatenwerkOperations
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTransforms
import Foundation
import Logging

/// `datenwerk worker`: takes due jobs from the database and runs them. Start as many as you like, anywhere.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run due jobs (scheduled, manual, backfill chunks) from the database; any number of workers may run.",
        discussion: """
            Jobs are taken with row locks that skip locked rows, under a lease that a heartbeat renews every lease/3.
            A job whose worker died is taken again when its lease expires; a per-pipeline advisory lock keeps two runs
            of one pipeline from overlapping. The schedule is turned into jobs by `datenwerk serve`.
            Each job runs in a child process (datenwerk run-job), so a crash in a connector or decoder ends that job
            only: it is recorded as a failed attempt naming the signal and the last step, and a job that crashes every
            time is failed after its max_attempts (3). --in-process runs jobs in the worker itself.
            """
    )

    @Option(name: .customLong("pipelines"), help: "Pipeline files or folders this worker can run.")
    var pipelinePaths: [String] = ["Pipelines"]

    @Option(help: "Concurrent jobs in this process.")
    var concurrency = 1

    @Option(help: "Lease in seconds (renewed by heartbeat while the run goes on).")
    var lease = 60

    @Option(help: "Seconds between looks at the queue when it is empty.")
    var poll = 2.0

    @Flag(help: "Exit when no job of these pipelines is queued or running (for batch use and tests).")
    var exitWhenIdle = false

    @Flag(help: "Run each job inside this process instead of a child process (a crash then ends the worker).")
    var inProcess = false

    @Flag(name: .shortAndLong, help: "Log more.")
    var verbose = false

    func validate() throws {
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64, found \(concurrency)") }
        guard (1...86_400).contains(lease) else { throw ValidationError("--lease must be between 1 and 86400 seconds, found \(lease)") }
        guard poll.isFinite, (0.01...3600).contains(poll) else { throw ValidationError("--poll must be between 0.01 and 3600 seconds, found \(poll)") }
    }

    func run() async throws {
        var configured = makeLogger(verbose: verbose)
        configured.logLevel = logLevelFromEnvironment ?? (verbose ? .debug : .notice)
        let logger = configured
        let specs = try loadValidPipelines(pipelinePaths)
        let fetcher = HTTPFetcher()
        defer { Task { try? await fetcher.shutdown() } }
        let (concurrency, lease, poll, exitWhenIdle) = (max(1, concurrency), lease, poll, exitWhenIdle)
        let isolation = inProcess ? nil : JobIsolation()
        let taken = try await DatabaseEnvironment(logger: logger).with { opened in
            let runner = PipelineRunner(fetcher: fetcher, sink: PostgresObservationSink(database: opened.database, onStuckLoad: exitWhenLoadIsStuck),
                                        connectors: BuiltinConnectors.registry, logger: logger)
            return try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<concurrency {
                    let worker = Worker(pipelines: specs, database: opened.database, runner: runner,
                                        lease: .seconds(lease), poll: .milliseconds(Int(poll * 1000)), isolation: isolation, logger: logger)
                    group.addTask { try await worker.run(exitWhenIdle: exitWhenIdle) }
                }
                return try await group.reduce(0, +)
            }
        }
        if exitWhenIdle { print("worker: \(taken) job\(taken == 1 ? "" : "s") taken; queue empty") }
    }
}

/// `datenwerk enqueue <pipeline>…`: a manual job for the workers (instead of running here like `run`).
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enqueue", abstract: "Queue a run of each pipeline for the workers.")

    @Argument(help: "Pipeline names or files.")
    var pipelines: [String]

    func run() async throws {
        let specs = try loadValidPipelines(pipelines)
        let logger = makeLogger(verbose: false)
        let ids = try await DatabaseEnvironment(logger: logger).with { opened in
            var ids: [(String, Int64?)] = []
            for spec in specs {
                ids.append((spec.name, try await PostgresJobQueue(opened.database).enqueue(pipeline: spec.name, kind: "manual", due: Date())))
            }
            return ids
        }
        for (name, id) in ids { print("\(name): job \(id.map(String.init) ?? "(already queued)")") }
    }
}

/// `datenwerk backfill <pipeline> --from … --to …`: the range in chunks, each its own run, transaction and checkpoint.
struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Load a past time range in chunks; resumable (run it again after an interruption).",
        discussion: """
            Each chunk is a job (kind backfill) with its window [from, to): HTTP sources see it as {from} and {to}
            in their URL or query, and observations outside the window are dropped. Each chunk commits on its own,
            so readers of the observations table are never blocked for long and a crash loses one chunk at most.
            Chunks already done are skipped when the command runs again; failed ones are tried again.
            With --queue the chunks are only queued for `datenwerk worker`s.
            """
    )

    @Argument(help: "The pipeline name or file.")
    var pipeline: String

    @Option(help: "Start (ISO 8601 date or instant, UTC unless an offset is given).")
    var from: String

    @Option(help: "End, exclusive.")
    var to: String

    @Option(help: "Chunk length (e.g. 1d, 6h, P7D).")
    var chunk = "1d"

    @Flag(help: "Only queue the chunks for workers.")
    var queue = false

    @Flag(name: .shortAndLong, help: "Log more.")
    var verbose = false

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        guard let spec = try loadValidPipelines([pipeline]).first else { throw Exit.invalidConfiguration }
        let parser = try TimestampParser(format: "iso8601", zone: .utc)
        guard let start = try? parser.parse(from) else { stderr("error: --from: '\(from)' is not an ISO 8601 date or instant"); throw Exit.invalidConfiguration }
        guard let end = try? parser.parse(to) else { stderr("error: --to: '\(to)' is not an ISO 8601 date or instant"); throw Exit.invalidConfiguration }
        guard end > start else { stderr("error: --to must be after --from"); throw Exit.invalidConfiguration }
        guard let seconds = parseDuration(chunk) else { stderr("error: --chunk: '\(chunk)' is not a duration (1d, 6h, P7D)"); throw Exit.invalidConfiguration }
        guard Backfill.chunkSeconds.contains(seconds) else {
            stderr("error: --chunk must be between 1m and 3660d, found '\(chunk)'")
            throw Exit.invalidConfiguration
        }
        let count = (end - start) / (Int64(seconds) * 1_000_000) + 1
        guard count <= Backfill.maxChunks else {
            stderr("error: \(from) … \(to) in chunks of \(chunk) is \(count) chunks; at most \(Backfill.maxChunks) (use a longer --chunk)")
            throw Exit.invalidConfiguration
        }
        let windows = Backfill.chunks(from: start, to: end, seconds: seconds)
        let fetcher = HTTPFetcher()
        defer { Task { try? await fetcher.shutdown() } }
        let queueOnly = queue
        let summary = try await DatabaseEnvironment(logger: logger).with { opened in
            let added = try await Backfill.enqueue(spec.name, windows: windows, queue: PostgresJobQueue(opened.database))
            if queueOnly { return "queued \(added) new chunk\(added == 1 ? "" : "s") of \(windows.count)" }
            let runner = PipelineRunner(fetcher: fetcher, sink: PostgresObservationSink(database: opened.database, onStuckLoad: exitWhenLoadIsStuck),
                                        connectors: BuiltinConnectors.registry, logger: logger)
            let worker = Worker(pipelines: [spec], database: opened.database, runner: runner, lease: .seconds(60), poll: .milliseconds(500), logger: logger)
            let taken = try await worker.run(exitWhenIdle: true)
            let states = try await Backfill.states(spec.name, queue: PostgresJobQueue(opened.database))
            return "\(windows.count) chunks: \(states[.succeeded, default: 0]) done, \(states[.failed, default: 0]) failed (\(taken) run now)"
        }
        print("\(spec.name): backfill \(from) … \(to): \(summary)")
    }
}

/// `datenwerk run-job <job> --owner <worker> --pipeline <file>` (hidden): runs ONE job that `owner` has claimed, in
/// this process, and exits: 0 when the run succeeded, 1 when it failed (both recorded with the run), 64 when the
/// pipeline file no longer loads, 75 when the job is not running under `owner` any more. Started by a worker
/// (see `JobIsolation`), which keeps the lease and records the attempt itself if this process dies.
struct RunJobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run-job", abstract: "Run one claimed job (started by a worker).", shouldDisplay: false)

    @Argument(help: "The job id.")
    var job: Int64

    @Option(help: "The worker whose lease the job is under.")
    var owner: String

    @Option(help: "The pipeline file.")
    var pipeline: String

    func run() async throws {
        dieWithParent()
        var configured = makeLogger(verbose: false)
        configured.logLevel = logLevelFromEnvironment ?? .notice
        let logger = configured
        let specs = try loadValidPipelines([pipeline])
        guard let spec = specs.first else { throw Exit.invalidConfiguration }
        let fetcher = HTTPFetcher()
        defer { Task { try? await fetcher.shutdown() } }
        let (jobID, owner) = (job, owner)
        var environment = DatabaseEnvironment(logger: logger)
        environment.migrate = false   // the worker did
        let report: RunReport? = try await environment.with { opened in
            guard let claimed = try await PostgresJobQueue(opened.database).job(jobID, owner: owner) else { return nil }
            let runner = PipelineRunner(fetcher: fetcher, sink: PostgresObservationSink(database: opened.database, onStuckLoad: exitWhenLoadIsStuck),
                                        connectors: BuiltinConnectors.registry, logger: logger)
            return try await runner.run(spec, context: RunContext(trigger: claimed.kind, jobID: claimed.id, window: claimed.window))
        }
        guard let report else {
            stderr("run-job: job \(jobID) is not running under \(owner) any more (its lease expired?); nothing was run")
            throw ExitCode(75)
        }
        if let failure = report.failure {
            stderr("run-job: job \(jobID) run \(report.runID) of \(spec.name) failed at step '\(failure.step.rawValue)': \(failure.message)")
            throw Exit.runFailed
        }
    }

    /// The worker that started this process must not leave it behind: SIGKILL when its spawning thread ends
    /// (`PR_SET_PDEATHSIG`), and exit at once if the worker is already gone.
    private func dieWithParent() {
        typealias PRCtl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") {
            _ = unsafeBitCast(symbol, to: PRCtl.self)(1 /* PR_SET_PDEATHSIG */, UInt(SIGKILL), 0, 0, 0)
        }
        if let parent = ProcessInfo.processInfo.environment["DATENWERK_JOB_PARENT"].flatMap(Int32.init), getppid() != parent {
            stderr("run-job: the worker that started this job (pid \(parent)) is gone; exiting")
            Foundation.exit(75)
        }
    }
}

/// Loads pipelines or exits 64 after printing every problem.
func loadValidPipelines(_ paths: [String]) throws -> [PipelineSpec] {
    let (specs, problems, invalid) = loadPipelines(paths)
    guard problems == 0, !specs.isEmpty else {
        stderr("error: \(problems) problem\(problems == 1 ? "" : "s") in \(invalid) pipeline file\(invalid == 1 ? "" : "s")\(specs.isEmpty && problems == 0 ? " (no pipelines found)" : "")")
        throw Exit.invalidConfiguration
    }
    return specs
}

/// A load whose database connection closed and that did not end: exit 75 (EX_TEMPFAIL) so systemd (or the
/// operator) starts the process again; the job's lease then expires and another worker takes it. Nothing of
/// the stuck load was committed.
@Sendable func exitWhenLoadIsStuck(_ message: String) {
    stderr("fatal: \(message); exiting with 75 so the job is retaken (nothing of this run was committed)")
    exit(75)
}
