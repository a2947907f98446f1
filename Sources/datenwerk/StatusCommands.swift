import ArgumentParser
import DatenwerkConnectors
import DatenwerkCore
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTransforms
import Foundation
import PostgresNIO

/// `datenwerk status`: one line per pipeline — last run, next due time, state.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "One line per pipeline: last run, next due, state.")

    @Argument(help: "Pipeline files or folders.")
    var paths: [String] = ["Pipelines"]

    func run() async throws {
        let (specs, problems, invalid) = loadPipelines(paths)
        if problems > 0 {
            stderr("error: \(problems) problem\(problems == 1 ? "" : "s") in \(invalid) pipeline file\(invalid == 1 ? "" : "s"); fix them first (datenwerk validate)")
            throw Exit.invalidConfiguration
        }
        let logger = makeLogger(verbose: false)
        let (last, states) = try await DatabaseEnvironment(logger: logger).with { opened in
            (try await lastRuns(opened.database), try await jobStates(opened.database))
        }
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        var rows = [["pipeline", "schedule", "last run", "status", "loaded", "quarantined", "next due", "state"]]
        for spec in specs.sorted(by: { $0.name < $1.name }) {
            let run = last[spec.name]
            var next = "-"
            if let schedule = spec.cron {
                next = schedule.next(after: now).map(TimestampParser.formatISO8601) ?? "-"
            }
            rows.append([
                spec.name, spec.schedule ?? "manual", run?.started ?? "never", run?.status ?? "-",
                run.map { String($0.loaded) } ?? "-", run.map { String($0.quarantined) } ?? "-", next,
                states[spec.name] ?? "idle",
            ])
        }
        print(formatTable(rows))
        for spec in specs {
            if let run = last[spec.name], run.status == "failed" {
                print("\(spec.name): failed at step '\(run.errorStep ?? "?")': \(run.error ?? "")")
            }
        }
    }
}

/// `datenwerk runs <pipeline>`: the recent runs of one pipeline.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "runs", abstract: "Recent runs of one pipeline (newest first).")

    @Argument(help: "The pipeline name.")
    var pipeline: String

    @Option(help: "How many runs.")
    var limit = 20

    func run() async throws {
        let logger = makeLogger(verbose: false)
        let (name, limit) = (pipeline, limit)
        let rows = try await DatabaseEnvironment(logger: logger).with { opened in
            let db = opened.database
            return try await db.client.query("""
                SELECT id, status, trigger, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       coalesce(extract(epoch FROM finished_at - started_at), 0)::float8,
                       records_read, loaded, inserted, quarantined, retries, bytes, error_step, error
                FROM datenwerk.runs WHERE pipeline = \(name) ORDER BY id DESC LIMIT \(limit)
                """, logger: db.logger).decode((Int64, String, String, String, Double, Int64, Int64, Int64, Int64, Int, Int64, String?, String?).self).collectAll()
        }
        var table = [["run", "started (UTC)", "status", "trigger", "seconds", "read", "loaded", "new", "quarantined", "retries", "bytes"]]
        for r in rows {
            table.append([String(r.0), r.3, r.1, r.2, String(format: "%.2f", r.4), String(r.5), String(r.6), String(r.7), String(r.8), String(r.9), String(r.10)])
        }
        print(formatTable(table))
        for r in rows where r.1 == "failed" {
            print("run \(r.0) failed at step '\(r.11 ?? "?")': \(r.12 ?? "")")
        }
    }
}

/// `datenwerk quarantine list|show <pipeline>`: what was set aside, where it came from, and why.
struct QuarantineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine", abstract: "Inspect quarantined records, and replay them after fixing a pipeline.",
        subcommands: [List.self, Show.self, Replay.self])

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Map a pipeline's quarantined records again with its current file; those that load now leave quarantine.",
            discussion: """
                One run (trigger "replay", listed by `datenwerk runs`): records that map now are loaded and removed from
                quarantine in the same transaction; records still bad stay with the new reason. Replays decoded records of
                source + observations pipelines and whole bodies of push connectors (ttn); other connectors' fragments are
                reported as not replayable (run the pipeline again or backfill the window instead).
                """)
        @Argument(help: "The pipeline: its file, or the name of its file in Pipelines/.") var pipeline: String
        @Option(name: .customLong("id"), help: "Only this quarantined record (repeatable).") var ids: [Int64] = []
        @Flag(name: .shortAndLong, help: "Log more.") var verbose = false

        func run() async throws {
            let specs = try loadValidPipelines([pipeline])
            guard specs.count == 1, let spec = specs.first else {
                stderr("error: '\(pipeline)' names \(specs.count) pipelines; give one file")
                throw Exit.invalidConfiguration
            }
            let logger = makeLogger(verbose: verbose)
            let fetcher = HTTPFetcher()
            defer { Task { try? await fetcher.shutdown() } }
            let ids = self.ids
            let outcome: (RunReport, QuarantineReplay)? = try await DatabaseEnvironment(logger: logger).with { opened in
                let database = opened.database
                let replay = QuarantineStore(database).replay(pipeline: spec.name, ids: ids)
                let runner = PipelineRunner(fetcher: fetcher, sink: PostgresObservationSink(database: database), connectors: BuiltinConnectors.registry, logger: logger)
                // Like any run of the pipeline: never at the same time as another.
                return try await PipelineLock.withLock(spec.name, database: database) {
                    (try await runner.run(spec, context: RunContext(trigger: "replay", replay: replay)), replay)
                }
            }
            guard let (report, replay) = outcome else {
                stderr("error: a run of \(spec.name) is in progress; replay when it has ended")
                throw Exit.runFailed
            }
            if let failure = report.failure {
                stderr("error: replay run \(report.runID) of \(spec.name) failed at \(failure.step.rawValue): \(failure.reason); quarantine unchanged")
                throw Exit.runFailed
            }
            print("\(spec.name): run \(report.runID): \(replay.summary); \(report.load.inserted) new and \(report.load.updated) changed observations")
            for bad in replay.stillBadRecords.prefix(10) { print("  still #\(bad.id) \(bad.error)") }
            for skipped in replay.notReplayableRecords.prefix(10) { print("  not replayable #\(skipped.id): \(skipped.reason)") }
            let more = replay.stillBadRecords.count + replay.notReplayableRecords.count - min(10, replay.stillBadRecords.count) - min(10, replay.notReplayableRecords.count)
            if more > 0 { print("  … and \(more) more: datenwerk quarantine list \(spec.name)") }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per quarantined record of a pipeline.")
        @Argument var pipeline: String
        @Option var limit = 100

        func run() async throws {
            let (name, limit) = (pipeline, limit)
            let rows = try await DatabaseEnvironment(logger: makeLogger(verbose: false)).with { opened in
                try await opened.database.client.query("""
                    SELECT id, origin, line, record, path, field, reason, seen_count FROM datenwerk.quarantine
                    WHERE pipeline = \(name) ORDER BY id LIMIT \(limit)
                    """, logger: opened.database.logger).decode((Int64, String, Int?, Int?, String?, String?, String, Int).self).collectAll()
            }
            for r in rows {
                let at = RecordError(SourceLocation(origin: r.1, line: r.2, record: r.3, path: r.4), field: r.5, r.6)
                print("#\(r.0) \(at)\(r.7 > 1 ? " (seen \(r.7)×)" : "")")
            }
            if rows.isEmpty { print("no quarantined records for \(name)") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One quarantined record with its raw payload.")
        @Argument var id: Int64

        func run() async throws {
            let id = self.id
            let rows = try await DatabaseEnvironment(logger: makeLogger(verbose: false)).with { opened in
                try await opened.database.client.query("""
                    SELECT pipeline, origin, line, record, path, field, reason, raw, run_id,
                           to_char(first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), seen_count, jsonb_pretty(fields)
                    FROM datenwerk.quarantine WHERE id = \(id)
                    """, logger: opened.database.logger).decode((String, String, Int?, Int?, String?, String?, String, String, Int64?, String, Int, String?).self).collectAll()
            }
            guard let r = rows.first else {
                stderr("error: no quarantined record #\(id)")
                throw Exit.runFailed
            }
            print("pipeline:   \(r.0)\norigin:     \(SourceLocation(origin: r.1, line: r.2, record: r.3, path: r.4))\nfield:      \(r.5 ?? "-")\nreason:     \(r.6)\nrun:        \(r.8.map(String.init) ?? "-")\nfirst seen: \(r.9) (seen \(r.10)×)\nraw:\n\(r.7)")
            if let fields = r.11 { print("decoded fields (what `quarantine replay` maps again):\n\(fields)") }
        }
    }
}

struct LastRun: Sendable {
    var started: String, status: String, loaded: Int64, quarantined: Int64, errorStep: String?, error: String?
}

func lastRuns(_ db: Database) async throws -> [String: LastRun] {
    let rows = try await db.client.query("""
        SELECT DISTINCT ON (pipeline) pipeline, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"'), status, loaded, quarantined, error_step, error
        FROM datenwerk.runs ORDER BY pipeline, id DESC
        """, logger: db.logger).decode((String, String, String, Int64, Int64, String?, String?).self).collectAll()
    return Dictionary(uniqueKeysWithValues: rows.map { ($0.0, LastRun(started: $0.1, status: $0.2, loaded: $0.3, quarantined: $0.4, errorStep: $0.5, error: $0.6)) })
}

/// What the job table says per pipeline: running (by whom, lease state), queued, or a job failed for good.
func jobStates(_ db: Database) async throws -> [String: String] {
    let rows = try await db.client.query("""
        SELECT pipeline,
               count(*) FILTER (WHERE status = 'running' AND lease_expires_at >= now())::bigint,
               count(*) FILTER (WHERE status = 'running' AND lease_expires_at < now())::bigint,
               count(*) FILTER (WHERE status = 'queued')::bigint,
               max(lease_owner) FILTER (WHERE status = 'running'),
               count(*) FILTER (WHERE status = 'failed' AND finished_at > now() - interval '1 day')::bigint
        FROM datenwerk.jobs GROUP BY pipeline
        """, logger: db.logger).decode((String, Int64, Int64, Int64, String?, Int64).self).collectAll()
    var states: [String: String] = [:]
    for (pipeline, running, expired, queued, owner, failed) in rows {
        var parts: [String] = []
        if running > 0 { parts.append("running on \(owner ?? "?")") }
        if expired > 0 { parts.append("LEASE EXPIRED (worker \(owner ?? "?") gone; will be retaken)") }
        if queued > 0 { parts.append("\(queued) queued") }
        if failed > 0 { parts.append("\(failed) job\(failed == 1 ? "" : "s") failed today") }
        if !parts.isEmpty { states[pipeline] = parts.joined(separator: ", ") }
    }
    return states
}

func formatTable(_ rows: [[String]]) -> String {
    let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
    return rows.enumerated().map { index, row in
        let line = row.enumerated().map { column, cell in cell.padding(toLength: widths[column], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        return index == 0 ? line + "\n" + String(repeating: "-", count: line.count) : line
    }.joined(separator: "\n")
}

extension AsyncSequence where Self: Sendable {
    func collectAll() async throws -> [Element] {
        var all: [Element] = []
        for try await element in self { all.append(element) }
        return all
    }
}
