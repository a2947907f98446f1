import DatenwerkConnectors
import DatenwerkCore
import DatenwerkOperations
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Logging
import PostgresNIO
import Testing

@Suite struct WorkerTests {
    static func worker(_ specs: [PipelineSpec], _ db: Database, id: String = "test-worker", lease: Duration = .seconds(30)) -> Worker {
        let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
        return Worker(id: id, pipelines: specs, database: db, runner: runner, lease: lease, poll: .milliseconds(100), logger: Logger(label: "test"))
    }

    /// The job ends in its run's transaction: status, run id and the run's job id agree.
    @Test func aJobRunsOnceAndFinishesWithItsRun() async throws {
        try await TestDatabase.with { db in
            let klima = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
            let job = try #require(try await PostgresJobQueue(db).enqueue(pipeline: klima.name, kind: "manual", due: Date()))
            #expect(try await PostgresJobQueue(db).enqueue(pipeline: klima.name, kind: "manual", due: Date(timeIntervalSince1970: 0)) != nil)
            let taken = try await Self.worker([klima], db).run(exitWhenIdle: true)
            #expect(taken == 2)
            let rows = try await db.client.query("""
                SELECT j.status, j.attempts, r.status, r.trigger, r.loaded FROM datenwerk.jobs j JOIN datenwerk.runs r ON r.id = j.run_id AND r.job_id = j.id
                WHERE j.id = \(job)
                """, logger: db.logger).decode((String, Int, String, String, Int64).self).collect()
            #expect(rows.count == 1)
            #expect(rows.first?.0 == "succeeded")
            #expect(rows.first?.1 == 1)
            #expect(rows.first?.2 == "succeeded")
            #expect(rows.first?.3 == "manual")
            // The job due at the epoch ran first and loaded the file; this one found it unchanged and read nothing.
            #expect(rows.first?.4 == 0)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs") == 2)
            #expect(try await scalar(db, "SELECT sum(loaded)::bigint FROM datenwerk.runs") == 1150)
        }
    }

    /// A job whose worker vanished (lease expired) is retaken; after its last attempt it fails with a reason.
    @Test func expiredLeasesAreRetakenThenGivenUp() async throws {
        try await TestDatabase.with { db in
            let klima = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
            try await db.client.query("""
                INSERT INTO datenwerk.jobs (pipeline, kind, due_at, not_before, status, attempts, lease_owner, lease_expires_at)
                VALUES (\(klima.name), 'manual', now() - interval '1 hour', now() - interval '1 hour', 'running', 1, 'crashed-worker', now() - interval '1 second'),
                       (\(klima.name), 'scheduled', now() - interval '2 hour', now() - interval '2 hour', 'running', 3, 'crashed-worker', now() - interval '1 second'),
                       (\(klima.name), 'scheduled', now() - interval '3 hour', now() - interval '3 hour', 'running', 1, 'alive-worker', now() + interval '1 hour')
                """, logger: db.logger)
            let worker = Self.worker([klima], db)
            #expect(try await worker.runOne())
            #expect(try await !worker.runOne())   // the live lease is left alone
            let jobs = try await db.client.query("SELECT kind, status, attempts, coalesce(error, ''), coalesce(lease_owner, '') FROM datenwerk.jobs ORDER BY due_at DESC", logger: db.logger)
                .decode((String, String, Int, String, String).self).collect()
            #expect(jobs[0].1 == "succeeded")
            #expect(jobs[0].2 == 2)
            #expect(jobs[0].4 == "test-worker")
            #expect(jobs[1].1 == "failed")
            #expect(jobs[1].3 == "lease expired after 3 attempts (last worker crashed-worker; it crashed or lost the database)")
            #expect(jobs[2].1 == "running")
            #expect(jobs[2].4 == "alive-worker")
        }
    }

    /// While another session runs the pipeline (holds its advisory lock), a worker puts the job back.
    @Test func theAdvisoryLockKeepsRunsOfOnePipelineApart() async throws {
        try await TestDatabase.with { db in
            let klima = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
            let job = try #require(try await PostgresJobQueue(db).enqueue(pipeline: klima.name, kind: "manual", due: Date()))
            let worker = Self.worker([klima], db)
            let ran: Bool? = try await PipelineLock.withLock(klima.name, database: db) {
                try await worker.runOne()
            }
            #expect(ran == true)
            let state = try await db.client.query("SELECT status, attempts, run_id FROM datenwerk.jobs WHERE id = \(job)", logger: db.logger)
                .decode((String, Int, Int64?).self).collect()
            #expect(state.first?.0 == "queued")
            #expect(state.first?.1 == 0)
            #expect(state.first?.2 == nil)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs") == 0)
        }
    }

    /// A run that fails at extract is queued again with backoff; the job keeps the reason.
    @Test func aFailedExtractIsRetriedLater() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            let file = try BigLoad.write(dir, rows: 10)
            try FileManager.default.removeItem(atPath: dir + "/big-load.csv")
            let spec = try PipelineSpec.load(file: file)
            let job = try #require(try await PostgresJobQueue(db).enqueue(pipeline: spec.name, kind: "manual", due: Date()))
            #expect(try await Self.worker([spec], db).runOne())
            let state = try await db.client.query("""
                SELECT status, attempts, error, extract(epoch FROM not_before - now())::float8 FROM datenwerk.jobs WHERE id = \(job)
                """, logger: db.logger).decode((String, Int, String?, Double).self).collect()
            #expect(state.first?.0 == "queued")
            #expect(state.first?.1 == 1)
            #expect(state.first?.2?.hasPrefix("extract: ") == true)
            #expect((20...31).contains(state.first?.3 ?? 0))
        }
    }

    /// Three worker processes, twenty due jobs over four pipelines: every job runs exactly once, runs of one
    /// pipeline never overlap, and the work is shared.
    @Test func threeWorkerProcessesTwentyJobs() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            var specs: [PipelineSpec] = []
            for i in 0..<4 { specs.append(try PipelineSpec.load(file: try BigLoad.write(dir, name: "load-\(i)", rows: 600 + i * 50))) }
            var due = Date().addingTimeInterval(-60)
            for n in 0..<20 {
                due = due.addingTimeInterval(1)
                _ = try #require(try await PostgresJobQueue(db).enqueue(pipeline: specs[n % 4].name, kind: "manual", due: due))
            }
            let env = ["DATABASE_URL": db.location.url]
            let workers = try (0..<3).map { _ in
                try ChildProcess(["worker", "--pipelines", dir, "--exit-when-idle", "--poll", "0.1", "--lease", "20"], environment: env)
            }
            for worker in workers {
                let status = await worker.wait()
                #expect(status == 0, "\(worker.text)")
            }
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE status = 'succeeded'") == 20)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs") == 20)
            #expect(try await scalar(db, "SELECT count(DISTINCT job_id) FROM datenwerk.runs") == 20)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.jobs j WHERE (SELECT count(*) FROM datenwerk.runs r WHERE r.job_id = j.id) <> 1") == 0)
            // No two runs of one pipeline overlap in time.
            #expect(try await scalar(db, """
                SELECT count(*) FROM datenwerk.runs a JOIN datenwerk.runs b ON a.pipeline = b.pipeline AND a.id < b.id
                WHERE tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at)
                """) == 0)
            #expect(try await scalar(db, "SELECT count(DISTINCT lease_owner) FROM datenwerk.jobs") >= 2)
            let expected = Int64((600 + 650 + 700 + 750) * 3)
            #expect(try await observationChecksum(db).count == expected)
        }
    }
}
