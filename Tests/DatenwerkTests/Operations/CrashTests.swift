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

    /// PostgreSQL is restarted under a worker's run (real processes). The run fails cleanly: its worker records
    /// the failure and queues the job again, or, when postgres-nio leaves a COPY write hanging on the closed
    /// connection, the worker exits with 75 (see README). Either way nothing of it is stored, the checkpoint
    /// is untouched, and the next worker completes the job with exact counts.
    @Test(.disabled("""
        Hangs: after the restart the worker process goes idle without failing its run, exiting or renewing its lease
        (postgres-nio 1.33; COPY backpressure promise, pool); not resolved yet, see the issue note.
        """))
    func postgresRestartedMidRun() async throws {
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
        let job: Int64 = try await Database.with(location, logger: logger) { db in
            try await Migrator(db).migrate()
            try await db.client.query("""
                INSERT INTO datenwerk.checkpoints (pipeline, cursor) VALUES (\(spec.name), '{"max_phenomenon_start_us": 42}'::jsonb)
                """, logger: db.logger)
            return try #require(try await JobQueue(db).enqueue(pipeline: spec.name, kind: "manual", due: Date()))
        }
        let env = ["DATABASE_URL": location.url]
        let victim = try ChildProcess(["worker", "--pipelines", dir, "--lease", "3", "--poll", "0.2"], environment: env)
        // Restart while the run loads (COPY or merge of its one transaction).
        let loading: Bool = try await Database.with(location, logger: logger) { db in
            for _ in 0..<3000 {
                try await Task.sleep(for: .milliseconds(5))
                if try await scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND (query LIKE 'COPY%' OR query LIKE 'WITH src AS%')") > 0 { return true }
            }
            return false
        }
        #expect(loading, "the run never started loading")
        try cluster.shutdown()
        try cluster.start()
        // The worker either records the failure and requeues the job, or exits 75 when its load hangs.
        try await Database.with(location, logger: logger) { db in
            try await waitForDatabase(db)
            var status = "running"
            for _ in 0..<240 where status == "running" && victim.process.isRunning {
                try await Task.sleep(for: .milliseconds(250))
                status = try await db.client.query("SELECT status FROM datenwerk.jobs WHERE id = \(job)", logger: db.logger).decode(String.self).collect().first ?? "?"
            }
            #expect(status != "running" || !victim.process.isRunning, "the worker neither ended its run nor exited: \(victim.text)")
            if status != "succeeded" {
                // The failed attempt stored nothing and left the checkpoint alone.
                if victim.process.isRunning { victim.kill9() } else { #expect(victim.process.terminationStatus == 75, "\(victim.text)") }
                #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 0)
                let cursor = try await db.client.query("SELECT cursor::text FROM datenwerk.checkpoints WHERE pipeline = \(spec.name)", logger: db.logger).decode(String.self).collect()
                #expect(cursor == [#"{"max_phenomenon_start_us": 42}"#])
                // Skip the retry backoff (and an expired lease after an exit), then a new worker finishes the job.
                try await db.client.query("UPDATE datenwerk.jobs SET not_before = now(), lease_expires_at = now() - interval '1 second' WHERE id = \(job)", logger: db.logger)
                let rescuer = try ChildProcess(["worker", "--pipelines", dir, "--lease", "3", "--poll", "0.2", "--exit-when-idle"], environment: env)
                #expect(await rescuer.wait() == 0, "\(rescuer.text)")
            } else {
                // The worker's failed attempt left the job to its expiring lease and it took the job again itself.
                victim.kill9()
                #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE job_id = \(job)") >= 2)
            }
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 90_000)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE id = \(job) AND status = 'succeeded'") == 1)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE job_id = \(job) AND status = 'succeeded' AND inserted = 90000") == 1)
        }
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

