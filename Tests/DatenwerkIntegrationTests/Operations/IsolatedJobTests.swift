import AsyncHTTPClient
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import PostgresNIO
import Testing

/// Jobs run in child processes: a crashing pipeline never takes `datenwerk serve` down and is not retaken forever.
@Suite struct IsolatedJobTests {
    /// A real `datenwerk serve --workers 1` whose pipeline `crashy` traps (SIGILL, as a Swift trap does) in its
    /// connector, enqueued 5 times next to a healthy pipeline: the server stays up (`/health` 200 after), each crashy
    /// job is failed after its 3 attempts with the signal and the step in its reason, every attempt is a failed run,
    /// nothing is retaken afterwards, and the healthy job succeeds in between.
    @Test(.timeLimit(.minutes(6))) func serveSurvivesACrashingPipelineEnqueuedFiveTimes() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            try BigLoad.write(dir, name: "crashy", rows: 40)
            try BigLoad.write(dir, name: "steady", rows: 200)
            let queue = PostgresJobQueue(db)
            var crashy: [Int64] = []
            for n in 0..<5 {
                crashy.append(try #require(try await queue.enqueue(pipeline: "crashy", kind: "manual", due: Date(timeIntervalSince1970: Double(n)))))
            }
            let steady = try #require(try await queue.enqueue(pipeline: "steady", kind: "manual", due: Date(timeIntervalSince1970: 0)))
            let server = try ChildProcess(["serve", "--port", "0", "--workers", "1", "--no-scheduler", "--pipelines", dir],
                                          environment: ["DATABASE_URL": db.location.url, "DATENWERK_FAILPOINT": "crash-in-connector:crashy"],
                                          directory: dir)
            defer { server.kill9() }
            let base = try await Self.listening(server)

            // Attempts are retried with backoff (30 s, 60 s); the test lets time pass by moving not_before.
            var failed: Int64 = 0
            for _ in 0..<1200 where failed < 5 {
                try await Task.sleep(for: .milliseconds(200))
                try await db.client.query("UPDATE datenwerk.jobs SET not_before = now() WHERE status = 'queued' AND not_before > now()", logger: db.logger)
                failed = try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE pipeline = 'crashy' AND status = 'failed'")
                if !server.process.isRunning { break }
            }
            #expect(server.process.isRunning, "serve died: \(server.text)")
            #expect(failed == 5, "\(server.text)")

            let jobs = try await db.client.query("SELECT id, status, attempts, coalesce(error, '') FROM datenwerk.jobs WHERE pipeline = 'crashy' ORDER BY id", logger: db.logger)
                .decode((Int64, String, Int, String).self).collect()
            #expect(jobs.map(\.0) == crashy)
            for (id, status, attempts, error) in jobs {
                #expect(status == "failed", "job \(id)")
                #expect(attempts == 3, "job \(id)")
                #expect(error.hasPrefix("extract: the job's process died of SIGILL"), "job \(id): \(error)")
                #expect(error.contains("after point 'extract'"), "job \(id): \(error)")
            }
            let runs = try await db.client.query("SELECT status, coalesce(error_step, ''), coalesce(error, '') FROM datenwerk.runs WHERE pipeline = 'crashy'", logger: db.logger)
                .decode((String, String, String).self).collect()
            #expect(runs.count == 15)
            #expect(runs.allSatisfy { $0.0 == "failed" && $0.1 == "extract" && $0.2.contains("SIGILL") }, "\(runs)")

            // Still serving, and the other pipeline ran.
            let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/health"), timeout: .seconds(10))
            #expect(health.status.code == 200)
            for _ in 0..<300 {
                if try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE id = \(steady) AND status = 'succeeded'") == 1 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE id = \(steady) AND status = 'succeeded'") == 1, "\(server.text)")

            // Failed for good: no retake loop.
            try await Task.sleep(for: .seconds(3))
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE pipeline = 'crashy'") == 15)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE pipeline = 'crashy' AND status <> 'failed'") == 0)
            #expect(server.process.isRunning)
        }
    }

    /// A job whose child aborts (SIGABRT), one that segfaults and one that traps are named so (the trap with
    /// Swift's "Fatal error" line); a worker given `--in-process`
    /// keeps the old behaviour (the crash ends the worker).
    @Test(.timeLimit(.minutes(3))) func theSignalIsNamedAndInProcessCrashesTheWorker() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            try BigLoad.write(dir, name: "aborts", rows: 10)
            try BigLoad.write(dir, name: "segfaults", rows: 10)
            try BigLoad.write(dir, name: "traps", rows: 10)
            let queue = PostgresJobQueue(db)
            let aborts = try #require(try await queue.enqueue(pipeline: "aborts", kind: "manual", due: Date(), maxAttempts: 1))
            let segfaults = try #require(try await queue.enqueue(pipeline: "segfaults", kind: "manual", due: Date(), maxAttempts: 1))
            let traps = try #require(try await queue.enqueue(pipeline: "traps", kind: "manual", due: Date(), maxAttempts: 1))
            // SWIFT_BACKTRACE: a debug build's symbolicated backtrace of the trap would take ~20 s.
            let env = ["DATABASE_URL": db.location.url, "SWIFT_BACKTRACE": "enable=no",
                       "DATENWERK_FAILPOINT": "after-copy:aborts=abort,run-started:segfaults=SIGSEGV,extract:traps=trap"]
            let worker = try ChildProcess(["worker", "--pipelines", dir, "--exit-when-idle", "--poll", "0.1"], environment: env)
            #expect(await worker.wait() == 0, "\(worker.text)")
            let errors = try await db.client.query("SELECT id, error FROM datenwerk.jobs WHERE status = 'failed' ORDER BY id", logger: db.logger)
                .decode((Int64, String).self).collect()
            #expect(errors.count == 3)
            #expect(errors.first { $0.0 == aborts }?.1.hasPrefix("load: the job's process died of SIGABRT") == true, "\(errors)")
            #expect(errors.first { $0.0 == segfaults }?.1.hasPrefix("configure: the job's process died of SIGSEGV") == true, "\(errors)")
            // A real Swift trap: the runtime's own message is kept in the reason.
            let trapped = errors.first { $0.0 == traps }?.1 ?? ""
            #expect(trapped.hasPrefix("extract: the job's process died of SIGILL"), "\(errors)")
            #expect(trapped.contains("Fatal error: fail point 'extract' armed with DATENWERK_FAILPOINT"), "\(trapped)")

            let again = try #require(try await queue.enqueue(pipeline: "aborts", kind: "manual", due: Date(timeIntervalSince1970: 0)))
            let inProcess = try ChildProcess(["worker", "--in-process", "--pipelines", dir, "--exit-when-idle", "--poll", "0.1"], environment: env)
            #expect(await inProcess.wait() == 128 + SIGABRT, "\(inProcess.text)")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.jobs WHERE id = \(again) AND status = 'running'") == 1)
        }
    }

    /// `DATENWERK_FAILPOINT` syntax: point, optional pipeline, optional signal; `crash-in-connector` means SIGILL at `extract`.
    @Test func failPointSettingsParse() {
        #expect(FailPoint.parse("after-copy") == [.init(point: "after-copy", pipeline: nil, signal: SIGKILL)])
        #expect(FailPoint.parse("crash-in-connector:crashy") == [.init(point: "extract", pipeline: "crashy", signal: SIGILL)])
        #expect(FailPoint.parse(" before-commit:a=segv , after-merge=abort,") == [
            .init(point: "before-commit", pipeline: "a", signal: SIGSEGV), .init(point: "after-merge", pipeline: nil, signal: nil),
        ])
        #expect(FailPoint.describe(signal: SIGILL).hasPrefix("SIGILL (illegal instruction"))
    }

    /// The server's base URL from its "listening on" line.
    static func listening(_ server: ChildProcess) async throws -> String {
        for _ in 0..<600 {
            if let range = server.text.range(of: #"listening on http://[0-9.]+:[0-9]+"#, options: .regularExpression) {
                return String(server.text[range].dropFirst("listening on ".count))
            }
            if !server.process.isRunning { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("serve did not start: \(server.text)")
    }
}

/// Every number and duration in a pipeline is range-checked when the file is read (`file:line:col: error: …`
/// naming the key and the allowed range), so nothing that uses them later can overflow.
@Suite struct PipelineSpecRangeTests {
    static let valid = """
        version: 1
        name: ranges
        tenant: "09162000"
        schedule: "every 15m"
        jitter: 2m
        source:
          kind: http
          url: https://example.org/x.json
          timeout_seconds: 60
          paging: { kind: offset, page_size: 100, max_pages: 10 }
          format: { kind: json, records: "$.items" }
        observations:
          station: { id: station }
          time: { field: time, format: iso8601, interval: 1h }
          values:
            - { field: t, property: air_temperature, range: [-50, 60] }
        max_bad_records: 10
        """

    static func problems(_ yaml: String) -> [String] {
        do {
            _ = try PipelineSpec.parse(yaml: yaml, file: "ranges.yaml")
            return []
        } catch let error as DiagnosticError {
            return error.diagnostics.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    @Test func theValidFileLoads() {
        #expect(Self.problems(Self.valid) == [])
    }

    @Test(arguments: [
        ("\"every 15m\"", "\"every 9999999999999m\"", "ranges.yaml:4:11: error: the interval of 'schedule: every …' must be between 1s and 366d, found '9999999999999m'"),
        ("\"every 15m\"", "\"every 99999999999999999999999m\"", "ranges.yaml:4:11: error: the interval of 'schedule: every …' must be between 1s and 366d"),
        ("\"every 15m\"", "\"every PT99999999999999999H\"", "ranges.yaml:4:11: error: the interval of 'schedule: every …' must be between 1s and 366d"),
        ("jitter: 2m", "jitter: 99999999999999999999d", "ranges.yaml:5:9: error: 'jitter' must be between 1s and 1d, found '99999999999999999999d'"),
        ("jitter: 2m", "jitter: 9999999999999999d", "ranges.yaml:5:9: error: 'jitter' must be between 1s and 1d"),
        ("timeout_seconds: 60", "timeout_seconds: 9999999999", "error: 'timeout_seconds' must be between 1 and 86400, found 9999999999"),
        ("timeout_seconds: 60", "timeout_seconds: 99999999999999999999", "error: 'timeout_seconds' is out of range, found 99999999999999999999; allowed: 1…86400"),
        ("page_size: 100", "page_size: 0", "error: 'page_size' must be between 1 and 1000000, found 0"),
        ("max_pages: 10", "max_pages: 99999999999", "error: 'max_pages' must be between 1 and 10000000"),
        ("interval: 1h", "interval: 9999999999999d", "error: 'interval' must be between 1s and 366d"),
        ("max_bad_records: 10", "max_bad_records: -1", "error: 'max_bad_records' must be between 0 and 1000000000, found -1"),
        ("range: [-50, 60]", "range: [-50, 1e999]", "error: expected a finite number, found '1e999'"),
    ])
    func everyNumberIsRangeChecked(_ from: String, _ to: String, _ expected: String) {
        let problems = Self.problems(Self.valid.replacingOccurrences(of: from, with: to))
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.contains(expected) == true, "\(problems)")
    }

    /// `validate` exits 64 naming the key and range; `status` (which used to trap on the overflow) does not even
    /// load such a file and exits 64 too — before it touches a database.
    @Test(.timeLimit(.minutes(2))) func validateAndStatusExit64InsteadOfTrapping() async throws {
        let dir = try Paths.temporaryDirectory()
        let yaml = Self.valid.replacingOccurrences(of: "\"every 15m\"", with: "\"every 9999999999999m\"")
            .replacingOccurrences(of: "jitter: 2m", with: "jitter: 99999999999999999999d")
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: dir + "/ranges.yaml"))
        for command in ["validate", "status"] {
            let child = try ChildProcess([command, "ranges.yaml"], environment: ["DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"], directory: dir)
            #expect(await child.wait() == 64, "\(command): \(child.text)")
            #expect(child.text.contains("ranges.yaml:4:11: error: the interval of 'schedule: every …' must be between 1s and 366d"), "\(command): \(child.text)")
            #expect(child.text.contains("ranges.yaml:5:9: error: 'jitter' must be between 1s and 1d"), "\(command): \(child.text)")
        }
    }

    /// The duration parser never overflows: too large is its own answer.
    @Test func durationsNeverOverflow() {
        #expect(checkedDuration("15m") == .seconds(900))
        #expect(checkedDuration("P1DT2H") == .seconds(93_600))
        #expect(checkedDuration("9999999999999999999m") == .tooLarge)
        #expect(checkedDuration("153722867280912931m") == .tooLarge)
        #expect(checkedDuration("P999999999999999D") == .tooLarge)
        #expect(checkedDuration("0m") == .invalid)
        #expect(checkedDuration("-5m") == .invalid)
        #expect(checkedDuration("PT") == .invalid)
        #expect(parseDuration("9999999999999999999m") == nil)
    }
}
