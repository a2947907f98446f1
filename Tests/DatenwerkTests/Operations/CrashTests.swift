import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// Real processes killed with SIGKILL, a real PostgreSQL restarted under a run.
@Suite struct CrashTests {
    /// Ten trials: a worker is killed with SIGKILL at a random moment of a large load, then another worker
    /// takes the job once the lease expires. Every time the table ends with exactly a clean run's rows.
    @Test func killNineAtRandomPointsThenRerun() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            let file = try BigLoad.write(dir, rows: 6_000)
            let spec = try PipelineSpec.load(file: file)
            // The clean reference, in this process.
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            let started = ContinuousClock.now
            let clean = try await runner.run(spec, trigger: "test")
            let cleanSeconds = (ContinuousClock.now - started).seconds
            #expect(clean.succeeded)
            let reference = try await observationChecksum(db)
            #expect(reference.count == 18_000)
            let env = ["DATABASE_URL": db.location.url]
            var killedBeforeCommit = 0
            for trial in 0..<10 {
                try await db.client.query("TRUNCATE datenwerk.observations", logger: db.logger)
                let job = try #require(try await JobQueue(db).enqueue(pipeline: spec.name, kind: "manual", due: Date(timeIntervalSince1970: Double(trial))))
                let victim = try ChildProcess(["worker", "--pipelines", dir, "--lease", "2", "--poll", "0.1"], environment: env)
                // Once the worker has taken the job: somewhere within (or just after) the run.
                for _ in 0..<500 {
                    if try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE id = \(job) AND status <> 'queued'") > 0 { break }
                    try await Task.sleep(for: .milliseconds(10))
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...Int(cleanSeconds * 500))))
                victim.kill9()
                let status = try await db.client.query("SELECT status FROM datenwerk.jobs WHERE id = \(job)", logger: db.logger).decode(String.self).collect()
                if status.first != "succeeded" { killedBeforeCommit += 1 }
                let rescuer = try ChildProcess(["worker", "--pipelines", dir, "--lease", "2", "--poll", "0.2", "--exit-when-idle"], environment: env)
                #expect(await rescuer.wait() == 0, "\(rescuer.text)")
                let after = try await observationChecksum(db)
                if status.first == "succeeded" {
                    // Killed after the commit: the job is done and its rows were loaded before the truncate of the next trial.
                    #expect(after.count == reference.count)
                } else {
                    #expect(after.count == reference.count, "trial \(trial): \(after.count) rows")
                    #expect(after.checksum == reference.checksum, "trial \(trial)")
                }
                #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE job_id = \(job) AND status = 'succeeded'") == 1)
                #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE id = \(job) AND status = 'succeeded'") == 1)
            }
            // The random kills must actually have hit runs in flight, or the test proves nothing.
            #expect(killedBeforeCommit >= 3, "only \(killedBeforeCommit) of 10 kills hit a run before its commit")
        }
    }

    /// PostgreSQL is restarted (`pg_ctl stop -m fast`, then start) under a worker's run, three times: while the
    /// COPY streams, while the merge runs, and at a random moment of the load. Each time the worker process
    /// survives, records the failed run (step load, with the reason) and queues the job again; nothing of it was
    /// stored and the checkpoint is untouched; the same worker then completes the job with a clean run's count
    /// and checksum.
    @Test func postgresRestartedMidRun() async throws {
        let root = "/tmp/datenwerk-restart-pg-\(getpid())"
        let port = 54400 + Int(getpid() % 500)
        let cluster = EmbeddedPostgres(EmbeddedPostgres.Configuration(root: root, port: port))
        try cluster.start()
        defer {
            try? cluster.shutdown()
            try? FileManager.default.removeItem(atPath: root)
        }
        var logger = Logger(label: "test.restart")
        logger.logLevel = .critical
        let location = DatabaseLocation(socketPath: cluster.socketPath, username: "datenwerk", database: "datenwerk")
        try await Database.createDatabaseIfMissing(location, logger: logger)
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
        for (trial, moment) in ["COPY%", "WITH src AS%", "random"].enumerated() {
            let job: Int64 = try await Database.with(location, logger: logger) { db in
                try await db.client.query("TRUNCATE datenwerk.observations", logger: db.logger)
                try await db.client.query("""
                    INSERT INTO datenwerk.checkpoints (pipeline, cursor) VALUES (\(spec.name), '{"max_phenomenon_start_us": 42}'::jsonb)
                    ON CONFLICT (pipeline) DO UPDATE SET cursor = EXCLUDED.cursor
                    """, logger: db.logger)
                let job = try #require(try await JobQueue(db).enqueue(pipeline: spec.name, kind: "manual", due: Date(timeIntervalSince1970: Double(trial))))
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
                    #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 0)
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
                #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE job_id = \(job) AND status = 'succeeded' AND inserted = 90000") == 1)
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

