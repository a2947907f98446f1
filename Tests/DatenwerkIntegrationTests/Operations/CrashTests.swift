import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// Real processes killed with SIGKILL at named fail points (`DATENWERK_FAILPOINT`) and at random moments, a real
/// PostgreSQL restarted under a run.
@Suite(.serialized) struct CrashTests {
    /// The points of a run where a kill must leave nothing behind, in the order a run passes them.
    static let points = ["extract", "after-copy", "after-merge", "before-commit"]

    /// A whole worker process (`--in-process`: the run inside it) dies of SIGKILL at each named point of a large
    /// load; every kill must hit (the worker exits 137 with the job unfinished, nothing loaded, the checkpoint
    /// untouched). Another worker then takes the job once the lease expires, and the table ends with exactly a
    /// clean run's rows and checksum.
    @Test(.timeLimit(.minutes(6))) func workerKilledAtEachFailPointThenRerun() async throws {
        try await TestDatabase.with { db in
            let fixture = try await CrashFixture.make(db)
            for (trial, point) in Self.points.enumerated() {
                let job = try await fixture.prepareTrial(db, trial: trial)
                let victim = try ChildProcess(["worker", "--in-process", "--pipelines", fixture.dir, "--lease", "2", "--poll", "0.1"],
                                              environment: fixture.env.merging(["DATENWERK_FAILPOINT": "\(point):big-load"]) { $1 })
                #expect(await victim.wait() == 128 + SIGKILL, "\(point): the worker was not killed at the point: \(victim.text)")
                #expect(try await fixture.jobStatus(db, job) == "running", "\(point)")
                try await fixture.expectNothingLoaded(db, point)
                try await fixture.rescueAndCompare(db, job: job, point)
            }
        }
    }

    /// The same points with the run in the worker's child process (the default): the child dies, the worker lives
    /// on and records the attempt at once: job queued again with backoff, the run failed at the right step with
    /// the signal named; nothing loaded, checkpoint untouched; a clean re-run loads exactly a clean run's rows.
    @Test(.timeLimit(.minutes(6))) func jobProcessKilledAtEachFailPointIsRecordedThenRerun() async throws {
        try await TestDatabase.with { db in
            let fixture = try await CrashFixture.make(db)
            for (trial, point) in Self.points.enumerated() {
                let job = try await fixture.prepareTrial(db, trial: 10 + trial)
                let worker = try ChildProcess(["worker", "--pipelines", fixture.dir, "--lease", "30", "--poll", "0.1"],
                                              environment: fixture.env.merging(["DATENWERK_FAILPOINT": "\(point):big-load"]) { $1 })
                var state: (String, Int, String?) = ("", 0, nil)
                for _ in 0..<600 {
                    state = try await db.client.query("SELECT status, attempts, error FROM datenwerk.jobs WHERE id = \(job)", logger: db.logger)
                        .decode((String, Int, String?).self).collect().first ?? ("?", 0, nil)
                    let recorded = state.0 == "queued" && state.1 > 0
                    if recorded || state.0 == "failed" || state.0 == "succeeded" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(worker.process.isRunning, "\(point): the worker died: \(worker.text)")
                worker.kill9()
                let step = point == "extract" ? "extract" : "load"
                #expect(state.0 == "queued" && state.1 == 1, "\(point): \(state)")
                #expect(state.2?.hasPrefix("\(step): the job's process died of SIGKILL") == true, "\(point): \(state.2 ?? "")")
                #expect(state.2?.contains("after point '\(point)'") == true, "\(point): \(state.2 ?? "")")
                let runs = try await db.client.query("SELECT status, error_step FROM datenwerk.runs WHERE job_id = \(job)", logger: db.logger)
                    .decode((String, String?).self).collect()
                #expect(runs.count == 1 && runs.first?.0 == "failed" && runs.first?.1 == step, "\(point): \(runs)")
                try await fixture.expectNothingLoaded(db, point)
                try await db.client.query("UPDATE datenwerk.jobs SET not_before = now() WHERE id = \(job)", logger: db.logger)
                try await fixture.rescueAndCompare(db, job: job, point)
            }
        }
    }

    /// A few kills at random moments (not required to hit a run in flight): whatever the moment, the next worker
    /// leaves exactly a clean run's rows.
    @Test(.timeLimit(.minutes(5))) func killNineAtRandomMomentsThenRerun() async throws {
        try await TestDatabase.with { db in
            let fixture = try await CrashFixture.make(db)
            for trial in 0..<3 {
                let job = try await fixture.prepareTrial(db, trial: 20 + trial)
                let victim = try ChildProcess(["worker", "--pipelines", fixture.dir, "--lease", "2", "--poll", "0.1"], environment: fixture.env)
                for _ in 0..<500 {
                    if try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE id = \(job) AND status <> 'queued'") > 0 { break }
                    try await Task.sleep(for: .milliseconds(10))
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...Int(fixture.cleanSeconds * 1500))))
                victim.kill9()
                try await fixture.rescueAndCompare(db, job: job, "random trial \(trial)")
            }
        }
    }

    /// PostgreSQL is restarted (`pg_ctl stop -m fast`, then start) under a worker's run, three times: while the
    /// COPY streams, while the merge runs, and at a random moment of the load. Each time the worker process
    /// survives, records the failed run (step load, with the reason) and queues the job again; nothing of it was
    /// stored and the checkpoint is untouched; the same worker then completes the job with a clean run's count
    /// and checksum.
    @Test(.timeLimit(.minutes(8))) func postgresRestartedMidRun() async throws {
        let scratch = try await ScratchCluster("restart")
        defer { scratch.remove() }
        let (cluster, location, logger) = (scratch.cluster, scratch.location, scratch.logger)
        let dir = try Paths.temporaryDirectory()
        let spec = try PipelineSpec.load(file: try BigLoad.write(dir, rows: 30_000))
        // A clean run for reference, in this process.
        let reference = try await Database.with(location, logger: logger) { db in
            try await Migrator(db).migrate()
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            #expect(try await runner.run(spec, trigger: "test").succeeded)
            return try await observationChecksum(db)
        }
        #expect(reference.count == 90_000)
        let env = ["DATABASE_URL": location.url]
        let worker = try ChildProcess(["worker", "--pipelines", dir, "--lease", "3", "--poll", "0.2"], environment: env)
        defer { worker.kill9() }
        var hits = 0
        // A first load copies straight into `observations`; a run over stored rows stages them and merges. Before
        // the merge trial every stored value is changed, so the merge rewrites all of them.
        let trials: [(moment: String, prepare: String, storedOnFailure: Int, counted: String)] = [
            ("COPY \"observations\"%", "TRUNCATE datenwerk.observations", 0, "inserted"),
            ("WITH src AS%", "UPDATE datenwerk.observations SET result = result + 1", 90_000, "updated"),
            ("random", "TRUNCATE datenwerk.observations", 0, "inserted"),
        ]
        for (trial, (moment, prepare, storedOnFailure, counted)) in trials.enumerated() {
            let job: Int64 = try await Database.with(location, logger: logger) { db in
                try await db.client.query(PostgresQuery(unsafeSQL: prepare), logger: db.logger)
                try await db.client.query("""
                    INSERT INTO datenwerk.checkpoints (pipeline, cursor) VALUES (\(spec.name), '{"max_phenomenon_start_us": 42}'::jsonb)
                    ON CONFLICT (pipeline) DO UPDATE SET cursor = EXCLUDED.cursor
                    """, logger: db.logger)
                let job = try #require(try await PostgresJobQueue(db).enqueue(pipeline: spec.name, kind: "manual", due: Date(timeIntervalSince1970: Double(trial))))
                // Restart while the run loads: its COPY, its merge, or a random moment after it took the job.
                var seen = false
                for _ in 0..<4000 where !seen {
                    try await Task.sleep(for: .milliseconds(5))
                    if moment == "random" {
                        seen = try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE job_id = \(job)") > 0
                        if seen { try await Task.sleep(for: .milliseconds(Int.random(in: 100...1500))) }
                    } else {
                        seen = try await scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '\(moment)'") > 0
                    }
                }
                #expect(seen, "trial \(trial): the run never reached \(moment)")
                return job
            }
            try cluster.shutdown()
            try cluster.start()
            let hit: Bool = try await Database.with(location, logger: logger) { db in
                try await waitForDatabase(db)
                // The worker records the failed run and queues the job again (or the restart came after the commit).
                var status = "running"
                for _ in 0..<240 where status == "running" && worker.process.isRunning {
                    try await Task.sleep(for: .milliseconds(250))
                    status = try await db.client.query("SELECT status FROM datenwerk.jobs WHERE id = \(job)", logger: db.logger).decode(String.self).collect().first ?? "?"
                }
                #expect(worker.process.isRunning, "the worker died: \(worker.text)")
                #expect(status == "queued" || status == "succeeded", "trial \(trial): job \(status)")
                let hit = status == "queued"
                if hit {
                    let failed = try await db.client.query("""
                        SELECT error_step || ': ' || error FROM datenwerk.runs WHERE job_id = \(job) AND status = 'failed'
                        """, logger: db.logger).decode(String.self).collect()
                    #expect(failed.count == 1, "trial \(trial): \(failed)")
                    #expect(failed.first?.hasPrefix("load: ") == true, "trial \(trial): \(failed)")
                    #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == storedOnFailure, "trial \(trial)")
                    let cursor = try await db.client.query("SELECT cursor::text FROM datenwerk.checkpoints WHERE pipeline = \(spec.name)", logger: db.logger).decode(String.self).collect()
                    #expect(cursor == [#"{"max_phenomenon_start_us": 42}"#], "trial \(trial)")
                    // Skip the retry backoff: the same worker takes the job again and completes it.
                    try await db.client.query("UPDATE datenwerk.jobs SET not_before = now() WHERE id = \(job)", logger: db.logger)
                    for _ in 0..<240 where status != "succeeded" {
                        try await Task.sleep(for: .milliseconds(250))
                        status = try await db.client.query("SELECT status FROM datenwerk.jobs WHERE id = \(job)", logger: db.logger).decode(String.self).collect().first ?? "?"
                    }
                    #expect(status == "succeeded", "trial \(trial): \(worker.text)")
                }
                let after = try await observationChecksum(db)
                #expect(after.count == reference.count, "trial \(trial)")
                #expect(after.checksum == reference.checksum, "trial \(trial)")
                #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE job_id = \(job) AND status = 'succeeded' AND \(counted) = 90000") == 1, "trial \(trial)")
                return hit
            }
            if hit { hits += 1 }
        }
        // The restarts must have hit runs in flight, or the test proves nothing.
        #expect(hits >= 2, "only \(hits) of 3 restarts hit a run before its commit")
    }
}

/// Until `SELECT 1` answers again (a restarted server; the pool backs off after failed connects).
func waitForDatabase(_ db: Database, timeout: Duration = .seconds(60)) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        do {
            _ = try await db.client.query("SELECT 1", logger: db.logger).decode(Int.self).collect()
            return
        } catch {
            if ContinuousClock.now > deadline { throw error }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}


/// A large generated CSV pipeline, its clean reference load, and the steps of one crash trial.
struct CrashFixture: Sendable {
    let dir: String
    let spec: PipelineSpec
    let reference: (count: Int64, checksum: String)
    let referenceCursor: Int64
    let cleanSeconds: Double
    let env: [String: String]
    static let planted = #"{"max_phenomenon_start_us": 42}"#

    static func make(_ db: Database) async throws -> CrashFixture {
        let dir = try Paths.temporaryDirectory()
        let spec = try PipelineSpec.load(file: try BigLoad.write(dir, rows: 6_000))
        let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
        let started = ContinuousClock.now
        let clean = try await runner.run(spec, trigger: "test")
        let cleanSeconds = (ContinuousClock.now - started).seconds
        #expect(clean.succeeded)
        let reference = try await observationChecksum(db)
        #expect(reference.count == 18_000)
        let cursor = try await scalar(db, "SELECT (cursor->>'max_phenomenon_start_us')::numeric::bigint FROM datenwerk.checkpoints WHERE pipeline = '\(spec.name)'")
        return CrashFixture(dir: dir, spec: spec, reference: reference, referenceCursor: cursor, cleanSeconds: cleanSeconds,
                            env: ["DATABASE_URL": db.location.url])
    }

    /// Empty table, a planted checkpoint, one queued job.
    func prepareTrial(_ db: Database, trial: Int) async throws -> Int64 {
        try await db.client.query("TRUNCATE datenwerk.observations", logger: db.logger)
        try await db.client.query("""
            INSERT INTO datenwerk.checkpoints (pipeline, cursor) VALUES (\(spec.name), \(Self.planted)::jsonb)
            ON CONFLICT (pipeline) DO UPDATE SET cursor = EXCLUDED.cursor
            """, logger: db.logger)
        return try #require(try await PostgresJobQueue(db).enqueue(pipeline: spec.name, kind: "manual", due: Date(timeIntervalSince1970: Double(trial))))
    }

    func jobStatus(_ db: Database, _ job: Int64) async throws -> String {
        try await db.client.query("SELECT status FROM datenwerk.jobs WHERE id = \(job)", logger: db.logger).decode(String.self).collect().first ?? "?"
    }

    func expectNothingLoaded(_ db: Database, _ label: String) async throws {
        #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 0, "\(label)")
        #expect(try await cursor(db) == Self.planted, "\(label): the checkpoint moved")
    }

    func cursor(_ db: Database) async throws -> String? {
        try await db.client.query("SELECT cursor::text FROM datenwerk.checkpoints WHERE pipeline = \(spec.name)", logger: db.logger)
            .decode(String.self).collect().first
    }

    /// A clean worker finishes the job: exactly the reference rows, one succeeded run, the checkpoint moved on.
    func rescueAndCompare(_ db: Database, job: Int64, _ label: String) async throws {
        let rescuer = try ChildProcess(["worker", "--pipelines", dir, "--lease", "2", "--poll", "0.2", "--exit-when-idle"], environment: env)
        #expect(await rescuer.wait() == 0, "\(label): \(rescuer.text)")
        let after = try await observationChecksum(db)
        #expect(try await jobStatus(db, job) == "succeeded", "\(label)")
        #expect(after.count == reference.count, "\(label): \(after.count) rows")
        #expect(after.checksum == reference.checksum, "\(label)")
        #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE job_id = \(job) AND status = 'succeeded'") == 1, "\(label)")
        let moved = try await cursor(db) ?? "none"
        #expect(try await scalar(db, "SELECT (cursor->>'max_phenomenon_start_us')::numeric::bigint FROM datenwerk.checkpoints WHERE pipeline = '\(spec.name)'") == referenceCursor,
                "\(label): checkpoint \(moved)")
    }
}
