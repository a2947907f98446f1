import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Testing

/// The `datenwerk` executable as a user runs it.
@Suite struct CLITests {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// `datenwerk ARGUMENTS` to its end (off the cooperative threads: `TestProcess`), without the caller's
    /// DATABASE_URL unless `environment` names one.
    static func datenwerk(_ arguments: [String], environment: [String: String] = [:], in directory: String = Paths.root) async throws -> Output {
        let output = try await TestProcess.run(Paths.executable, arguments, environment: Self.environment(environment), directory: directory)
        return Output(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }

    /// The same, waiting on the calling thread: only inside `PublishingServer.blocking`.
    static func datenwerkBlocking(_ arguments: [String], environment: [String: String] = [:], in directory: String = Paths.root) throws -> Output {
        let output = try TestProcess.runBlocking(Paths.executable, arguments, environment: Self.environment(environment), directory: directory)
        return Output(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }

    static func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DATABASE_URL")
        for (k, v) in extra { env[k] = v }
        return env
    }

    @Test func validateReportsThreeMistakesAndExits64() async throws {
        let dir = try Paths.temporaryDirectory()
        try Data("""
            version: 1
            name: parking
            tenant: "05515000"
            source:
              kind: file
              path: parking.csv
              format: { kind: csv, delimter: ";" }
            observations:
              station: { id: id }
              time: { field: ts, format: iso8601, zone: Europe/Berln }
              values:
                - { field: free, property: parking_free_space }
            """.utf8).write(to: URL(fileURLWithPath: dir + "/parking.yaml"))
        let out = try await Self.datenwerk(["validate", "parking.yaml"], in: dir)
        #expect(out.status == 64)
        let errors = out.stderr.split(separator: "\n").filter { $0.contains(": error: ") }
        #expect(errors.count == 3)
        #expect(errors[0].hasPrefix("parking.yaml:7:24: error: unknown key 'delimter'"))
        #expect(errors[1].hasPrefix("parking.yaml:10:45: error: unknown time zone 'Europe/Berln'"))
        #expect(errors[2].hasPrefix("parking.yaml:12:7: error: unknown observed property 'parking_free_space'"))
        #expect(out.stderr.contains("error: 3 problems in 1 pipeline file; nothing was run."))
    }

    @Test func validatePassesForTheShippedPipelines() async throws {
        let out = try await Self.datenwerk(["validate", "Pipelines"])
        #expect(out.status == 0)
        #expect(out.stdout.hasPrefix("ok: "))
    }

    /// A folder mounted from a Kubernetes ConfigMap holds each file again under `..data/` and `..<timestamp>/`:
    /// hidden entries are not pipelines.
    @Test func validateSkipsHiddenFoldersLikeAConfigMapMount() async throws {
        let dir = try Paths.temporaryDirectory()
        let source = try String(contentsOfFile: Paths.root + "/Pipelines/examples/musterstadt-energie.yaml", encoding: .utf8)
        for folder in ["", "/..data", "/..2026_12_04_06_00_00.123", "/.git"] {
            try FileManager.default.createDirectory(atPath: dir + folder, withIntermediateDirectories: true)
            try Data(source.utf8).write(to: URL(fileURLWithPath: dir + folder + "/musterstadt-energie.yaml"))
        }
        let out = try await Self.datenwerk(["validate", dir])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("ok: 1 pipeline valid"), "\(out.stdout)")
    }

    @Test func runLoadsIntoTheDatabaseGivenByDATABASE_URL() async throws {
        try await TestDatabase.with { db in
            let env = ["DATABASE_URL": db.location.url]
            let first = try await Self.datenwerk(["run", "Pipelines/examples/musterstadt-energie.yaml"], environment: env)
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stdout.contains("72 records read, 143 observations (143 new, 0 changed, 0 unchanged), 1 quarantined"))
            #expect(first.stderr.contains("warning: musterstadt-energie: SampleData/energie-api/page-2.json, $.items[3]: field 'energie_kwh': 'n/a' is not a number"))
            // Unchanged files are not read again; `--full` reads them, and the load finds every row unchanged.
            let second = try await Self.datenwerk(["run", "musterstadt-energie"], environment: env)
            #expect(second.status == 0, "\(second.stderr)")
            #expect(second.stdout.contains("musterstadt-energie: SampleData/energie-api/page-1.json: unchanged since the last successful run"), "\(second.stdout)")
            #expect(second.stdout.contains("0 records read, 0 observations (0 new, 0 changed, 0 unchanged)"), "\(second.stdout)")
            let full = try await Self.datenwerk(["run", "--full", "musterstadt-energie"], environment: env)
            #expect(full.stdout.contains("72 records read, 143 observations (0 new, 0 changed, 143 unchanged)"), "\(full.stdout)")
            #expect(!full.stdout.contains("not read again"), "\(full.stdout)")
            #expect(try await counts(db).observations == 143)
        }
    }

    @Test func aFailedRunExitsWithOneAndSaysWhere() async throws {
        let out = try await Self.datenwerk(["run", "--dry-run", Paths.root + "/Tests/DatenwerkIntegrationTests/CLI/missing-file.yaml"])
        #expect(out.status == 1)
        #expect(out.stderr.contains("error: pipeline 'missing-file' failed at step 'extract'"))
        #expect(out.stderr.contains("source file not found"))
    }
}

extension CLITests {
    @Test func runsStatusAndQuarantineShowTheHistory() async throws {
        try await TestDatabase.with { db in
            let env = ["DATABASE_URL": db.location.url]
            _ = try await Self.datenwerk(["run", "musterstadt-energie"], environment: env)
            let runs = try await Self.datenwerk(["runs", "musterstadt-energie"], environment: env)
            #expect(runs.status == 0, "\(runs.stderr)")
            let line = try #require(runs.stdout.split(separator: "\n").dropFirst(2).first)
            let cells = line.split(separator: " ", omittingEmptySubsequences: true)
            #expect(cells[2] == "succeeded")
            // read, values (72 records × 2 value fields), loaded, new, quarantined, skipped
            #expect(cells[5] == "72" && cells[6] == "144" && cells[7] == "143" && cells[8] == "143" && cells[9] == "1" && cells[10] == "0", "\(line)")
            let list = try await Self.datenwerk(["quarantine", "list", "musterstadt-energie"], environment: env)
            #expect(list.stdout.contains("SampleData/energie-api/page-2.json, $.items[3]: field 'energie_kwh': 'n/a' is not a number"))
            let id = String(list.stdout.dropFirst().prefix { $0.isNumber })
            let show = try await Self.datenwerk(["quarantine", "show", id], environment: env)
            #expect(show.stdout.contains("\"energie_kwh\": \"n/a\""))
            #expect(show.stdout.contains("decoded fields (what `quarantine replay` maps again):"), "\(show.stdout)")
            let status = try await Self.datenwerk(["status", "Pipelines/examples"], environment: env)
            #expect(status.stdout.split(separator: "\n").contains { $0.hasPrefix("musterstadt-energie") && $0.contains("succeeded") && $0.contains("143") })
            #expect(status.stdout.split(separator: "\n").contains { $0.hasPrefix("musterstadt-klima") && $0.contains("never") })
        }
    }
}

extension CLITests {
    /// Zero silent drops, as a user sees it: the run prints its books and `datenwerk runs` names every skip rule.
    @Test func runsNameTheRuleOfEverySkippedValue() async throws {
        try await TestDatabase.with { db in
            let env = ["DATABASE_URL": db.location.url]
            let run = try await Self.datenwerk(["run", "musterstadt-klima"], environment: env)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("values: 1156 read = 1150 loaded + 5 quarantined + 1 skipped (missing_value 1)"), "\(run.stdout)")
            let runs = try await Self.datenwerk(["runs", "musterstadt-klima"], environment: env)
            #expect(runs.status == 0, "\(runs.stderr)")
            let lines = runs.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("run ") && $0.hasSuffix(" skipped: missing_value 1") }, "\(runs.stdout)")
            let cells = try #require(lines.dropFirst(2).first).split(separator: " ", omittingEmptySubsequences: true)
            #expect(cells[6] == "1156" && cells[7] == "1150" && cells[10] == "1", "\(lines)")
        }
    }
}

extension CLITests {
    /// `--dry-run --show` shows what makes interval and time-zone mistakes visible: start → end in UTC, the canonical
    /// unit, and each station's position with the coordinates it came from.
    @Test func dryRunShowsIntervalsUnitsAndCoordinates() async throws {
        let energie = try await Self.datenwerk(["run", "--dry-run", "--show", "3", "musterstadt-energie"])
        #expect(energie.status == 0, "\(energie.stderr)")
        let lines = energie.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("observation musterstadt-energie:UW-NORD electricity_consumption 2024-10-26T22:00:00Z → 2024-10-26T22:15:00Z 0.657659 MW.h"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("station musterstadt-energie:UW-NORD Umspannwerk Nord at lon 7.625200, lat 51.989300") })
        #expect(lines.contains("… 144 more items"))
        let klima = try await Self.datenwerk(["run", "--dry-run", "--show", "1", "musterstadt-klima"])
        #expect(klima.stdout.contains("(from EPSG:25832 405328.42 5757524.87)"), "\(klima.stdout)")
    }
}
