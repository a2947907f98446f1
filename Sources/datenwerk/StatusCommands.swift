import ArgumentParser
import DatenwerkConnectors
import DatenwerkCore
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTransforms
import Foundation

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
            let store = RunHistoryStore(opened.database)
            return (try await store.lastRuns(), jobStates(try await store.jobCounts()))
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
        let runs = try await DatabaseEnvironment(logger: logger).with { opened in
            try await RunHistoryStore(opened.database).runs(pipeline: name, limit: limit)
        }
        var table = [["run", "started (UTC)", "status", "trigger", "seconds", "read", "values", "loaded", "new", "quarantined", "skipped", "retries", "bytes"]]
        for r in runs {
            // values read, with "≠" when they do not add up to loaded + quarantined + skipped (a connector dropped some).
            let values = r.balanced == false ? "\(r.valuesRead) ≠" : String(r.valuesRead)
            table.append([String(r.id), r.started, r.status, r.trigger, String(format: "%.2f", r.seconds), String(r.recordsRead), values, String(r.loaded),
                          String(r.inserted), String(r.quarantined), String(r.skipped), String(r.retries), String(r.bytes)])
        }
        print(formatTable(table))
        // Zero silent drops: every skipped value is counted under the rule that left it out.
        for r in runs where !r.skips.isEmpty {
            print("run \(r.id) skipped: \(r.skips.summary)")
        }
        for r in runs where r.status == "failed" {
            print("run \(r.id) failed at step '\(r.errorStep ?? "?")': \(r.error ?? "")")
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
                stderr("error: replay run \(report.runID) of \(spec.name) failed at \(failure.step.rawValue): \(failure.message); quarantine unchanged")
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
                try await QuarantineStore(opened.database).list(pipeline: name, limit: limit)
            }
            for r in rows {
                print("#\(r.id) \(r.error)\(r.seenCount > 1 ? " (seen \(r.seenCount)×)" : "")")
            }
            if rows.isEmpty { print("no quarantined records for \(name)") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One quarantined record with its raw payload.")
        @Argument var id: Int64

        func run() async throws {
            let id = self.id
            let found = try await DatabaseEnvironment(logger: makeLogger(verbose: false)).with { opened in
                try await QuarantineStore(opened.database).record(id: id)
            }
            guard let r = found else {
                stderr("error: no quarantined record #\(id)")
                throw Exit.runFailed
            }
            print("pipeline:   \(r.pipeline)\norigin:     \(r.error.location)\nfield:      \(r.error.field ?? "-")\nreason:     \(r.error.reason)\nrun:        \(r.runID.map(String.init) ?? "-")\nfirst seen: \(r.firstSeen) (seen \(r.seenCount)×)\nraw:\n\(r.raw)")
            if let fields = r.fields { print("decoded fields (what `quarantine replay` maps again):\n\(fields)") }
        }
    }
}

/// What the job table says per pipeline: running (by whom, lease state), queued, or a job failed for good.
func jobStates(_ counts: [String: RunHistoryStore.JobCounts]) -> [String: String] {
    var states: [String: String] = [:]
    for (pipeline, c) in counts {
        var parts: [String] = []
        if c.running > 0 { parts.append("running on \(c.owner ?? "?")") }
        if c.expired > 0 { parts.append("LEASE EXPIRED (worker \(c.owner ?? "?") gone; will be retaken)") }
        if c.queued > 0 { parts.append("\(c.queued) queued") }
        if c.failedToday > 0 { parts.append("\(c.failedToday) job\(c.failedToday == 1 ? "" : "s") failed today") }
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
