import ArgumentParser
import DatenwerkConnectors
import DatenwerkCore
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTransforms
import Foundation
import Logging

@main
struct Datenwerk: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datenwerk",
        abstract: "Smart-city data hub: pipelines from municipal sources into PostgreSQL/PostGIS.",
        discussion: """
            With DATABASE_URL (postgres://user:password@host:5432/db) every command uses that server.
            Without it, Datenwerk starts a private PostgreSQL+PostGIS cluster from the system binaries
            (data in /var/lib/datenwerk/postgres as root, ~/.local/share/datenwerk/postgres otherwise;
            DATENWERK_PG_ROOT and DATENWERK_PG_PORT override).
            Exit codes: 0 ok, 1 run failed, 64 invalid configuration or usage.
            """,
        subcommands: [RunCommand.self, ValidateCommand.self, MigrateCommand.self, DemoCommand.self, StatusCommand.self, RunsCommand.self, QuarantineCommand.self, ConnectorsCommand.self, DatabaseCommand.self, ServeCommand.self, ExportCommand.self, BenchCommand.self, WorkerCommand.self, EnqueueCommand.self, BackfillCommand.self, RunJobCommand.self, TemplatesCommand.self, TokensCommand.self]
    )

    static func main() async {
        returnLargeBuffersToTheSystem()
        await main(nil)
    }
}

/// Buffers of 4 MiB and more (a load's COPY groups, 16 MiB) get their own mappings, given back when freed.
/// glibc's default raises that threshold to the size of the largest buffer freed so far (up to 32 MiB), after
/// which such buffers come from the heap and stay in the process when freed; a load's peak RSS then grew with how
/// many of its large buffers had come and gone (1M hourly rows 104–116 MB, 10M 10-minute rows 129 MB). With the
/// threshold at 256 KiB, every batch's arrays (staged items, decoded records: 0.3–2 MB each) were mapped, faulted
/// in page by page and unmapped again: 15 % of a first load's client CPU. At 4 MiB they are reused from the heap:
/// `datenwerk run` of the bench's first load, client CPU 1M 1.10–1.17 → 0.99–1.13 s, 10M 10.9 → 10.2 s; peak
/// RSS 75 → 80 MB and 87 → 92 MB. `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` in the environment still win.
/// (`mallopt` is looked up at run time: Swift's Glibc module does not import `malloc.h`.)
func returnLargeBuffersToTheSystem() {
    #if canImport(Glibc)
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    let mmapThreshold: Int32 = -3   // M_MMAP_THRESHOLD
    let trimThreshold: Int32 = -1   // M_TRIM_THRESHOLD
    let environment = ProcessInfo.processInfo.environment
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    if environment["MALLOC_MMAP_THRESHOLD_"] == nil { _ = mallopt(mmapThreshold, 4 * 1024 * 1024) }
    // Setting the mmap threshold leaves the trim threshold at 128 KiB: the heap's top was given back after every
    // batch and faulted in again for the next (24–29k page faults of a 1M load → 12k; peak RSS +3–5 MB).
    if environment["MALLOC_TRIM_THRESHOLD_"] == nil { _ = mallopt(trimThreshold, 64 * 1024 * 1024) }
    #endif
}

/// Exit code 64 for invalid configuration (EX_USAGE), 1 for a failed run.
enum Exit {
    static let invalidConfiguration = ExitCode(64)
    static let runFailed = ExitCode(1)
}

func stderr(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

var isTerminal: Bool { isatty(STDERR_FILENO) != 0 }

/// `DATENWERK_LOG_LEVEL` (trace, debug, info, notice, warning, error, critical) overrides every command's default.
var logLevelFromEnvironment: Logger.Level? {
    ProcessInfo.processInfo.environment["DATENWERK_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
}

/// The log handlers of every command: human-readable on standard error (swift-log's format), or JSON lines with
/// `DATENWERK_LOG_FORMAT=json` (pipeline, run, job and step fields: `LogContext`); secrets masked either way
/// (the `DATABASE_URL` password, tokens from the environment, URL passwords, secret metadata keys).
func makeLogger(verbose: Bool) -> Logger {
    let environment = ProcessInfo.processInfo.environment
    let secrets = LogSecrets.from(environment: environment)
    let format = LogFormat.from(environment: environment) ?? .human
    let process = LogContext.fromArguments(CommandLine.arguments)
    let level = logLevelFromEnvironment ?? (verbose ? .debug : .warning)
    LoggingSystem.bootstrap { label in
        switch format {
        case .json:
            var handler = JSONLogHandler(label: label, secrets: secrets, process: process)
            handler.logLevel = level
            return handler
        case .human:
            var handler = MaskingLogHandler(StreamLogHandler.standardError(label: label), secrets: secrets)
            handler.logLevel = level
            return handler
        }
    }
    return Logger(label: "datenwerk")
}

/// Loads pipeline files, printing every diagnostic; nil when any file is invalid.
func loadPipelines(_ paths: [String]) -> (specs: [PipelineSpec], problems: Int, files: Int) {
    var specs: [PipelineSpec] = []
    var problems = 0
    var invalidFiles = 0
    for file in pipelineFiles(paths) {
        do {
            let spec = try PipelineSpec.load(file: file, connectors: BuiltinConnectors.registry)
            for var warning in spec.warnings {
                warning.file = warning.file.map(displayPath)
                stderr(warning.description)
            }
            specs.append(spec)
        } catch let error as DiagnosticError {
            invalidFiles += 1
            problems += error.diagnostics.count
            for diagnostic in (error.diagnostics + error.warnings).sorted(by: { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) }) {
                var d = diagnostic
                d.file = d.file.map(displayPath)
                stderr(d.description)
            }
        } catch {
            invalidFiles += 1
            problems += 1
            stderr("\(displayPath(file)): error: \(error)")
        }
    }
    return (specs, problems, invalidFiles)
}

/// Expands folders to the `.yaml`/`.yml` files inside (recursively, sorted); a bare name finds `Pipelines/**/<name>.yaml`.
func pipelineFiles(_ paths: [String]) -> [String] {
    var files: [String] = []
    let fm = FileManager.default
    for path in paths {
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                // Hidden entries are skipped: a Kubernetes ConfigMap mount holds every file twice more under
                // `..data/` and `..<timestamp>/`, which read as duplicate pipelines.
                let found = (fm.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                    .filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.split(separator: "/").contains { $0.hasPrefix(".") } }
                    .sorted()
                // Pipeline templates (`templates/` folders) are not pipelines: `validate` checks them on their own.
                files += found.map { (path as NSString).appendingPathComponent($0) }.filter { !isInTemplatesFolder($0) }
            } else {
                files.append(path)
            }
        } else if !path.contains("/"), let found = findPipeline(named: path) {
            files.append(found)
        } else {
            files.append(path)
        }
    }
    return files.map { ($0 as NSString).standardizingPath }
}

func findPipeline(named name: String) -> String? {
    let fm = FileManager.default
    let all = (fm.enumerator(atPath: "Pipelines")?.allObjects as? [String]) ?? []
    return all.first { ($0 as NSString).lastPathComponent == "\(name).yaml" || ($0 as NSString).lastPathComponent == "\(name).yml" }
        .map { "Pipelines/" + $0 }
}

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "validate", abstract: "Check pipeline files and report every problem at once.",
                                                    discussion: "Templates in `templates/` folders are checked too; other installations' templates that pipelines use are fetched first (docs/templates.md).")

    @Argument(help: "Pipeline files or folders (default: Pipelines).")
    var paths: [String] = ["Pipelines"]

    func run() async throws {
        // Remote templates (uses: https://… with sha256:) into the cache first, so reading the pipelines finds them.
        let fetcher = HTTPFetcher()
        let fetch = await RemoteTemplates.fetchMissing(files: pipelineFiles(paths), library: .standard, fetcher: fetcher)
        try? await fetcher.shutdown()
        for var d in fetch.problems {
            d.file = d.file.map(displayPath)
            stderr(d.description)
        }
        let templates = templateFiles(paths)
        let templateProblems = checkTemplates(templates)
        // A template file named on its own is checked as a template above, not read as a pipeline.
        let pipelinePaths = paths.filter { !(isInTemplatesFolder($0) && FileManager.default.fileExists(atPath: $0)) }
        let (specs, pipelineProblems, invalid) = pipelinePaths.isEmpty ? ([], 0, 0) : loadPipelines(pipelinePaths)
        let problems = pipelineProblems + templateProblems + fetch.problems.count
        if problems > 0 {
            stderr("error: \(problems) problem\(problems == 1 ? "" : "s") in \(invalid) pipeline file\(invalid == 1 ? "" : "s")\(templateProblems > 0 ? " and the templates" : ""); nothing was run.")
            throw Exit.invalidConfiguration
        }
        if specs.isEmpty, templates.isEmpty {
            stderr("error: no pipeline files found in \(paths.joined(separator: ", "))")
            throw Exit.invalidConfiguration
        }
        print("ok: \(specs.count) pipeline\(specs.count == 1 ? "" : "s") valid" + (templates.isEmpty ? "" : ", \(templates.count) template\(templates.count == 1 ? "" : "s") valid"))
    }
}

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Apply the database migrations (run and demo do this too).")

    @Flag(help: "Leave the embedded PostgreSQL running afterwards.")
    var keepDatabase = false

    func run() async throws {
        let logger = makeLogger(verbose: false)
        var environment = DatabaseEnvironment(keepRunning: keepDatabase, logger: logger)
        environment.migrate = false
        let applied = try await environment.with { opened in try await Migrator(opened.database).migrate() }
        print(applied.isEmpty ? "schema is up to date" : "applied migrations: \(applied.map(String.init).joined(separator: ", "))")
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run one pipeline now.")

    @Argument(help: "A pipeline file, or the name of a pipeline under Pipelines/.")
    var pipeline: String

    @Flag(help: "Read, transform and print the normalised output; write nothing.")
    var dryRun = false

    @Option(help: "With --dry-run: how many items to print (0: all).")
    var show = 50

    @Flag(help: "Read every source in full: files unchanged since the last successful run too, HTTP without If-None-Match/If-Modified-Since, connectors without what they remembered (ckan: the resource's version). Rows are still compared, so nothing is loaded twice.")
    var full = false

    @Flag(help: "Leave the embedded PostgreSQL running afterwards.")
    var keepDatabase = false

    @Flag(name: .shortAndLong, help: "Log more.")
    var verbose = false

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        let (specs, problems, _) = loadPipelines([pipeline])
        guard problems == 0, let spec = specs.first else {
            stderr("error: \(problems) problem\(problems == 1 ? "" : "s") in \(pipeline); nothing was run.")
            throw Exit.invalidConfiguration
        }
        let fetcher = HTTPFetcher()
        defer { Task { try? await fetcher.shutdown() } }
        if dryRun {
            // Bounded like a real run: the first --show items are kept to print, the rest only counted.
            let sink = DryRunSink(keep: show > 0 ? show : Int.max)
            let report = try await PipelineRunner(fetcher: fetcher, sink: sink, connectors: BuiltinConnectors.registry, logger: logger).run(spec, trigger: "dry-run")
            for item in sink.shown { print(describe(item)) }
            if sink.total > sink.shown.count { print("… \(sink.total - sink.shown.count) more items") }
            if sink.conflictingRepeats > 0 {
                stderr("warning: \(report.pipeline): \(sink.conflictingRepeats) observations repeat an earlier one's station, property and time with a different value; a real run quarantines all of them as conflicting_duplicate")
            }
            if sink.keyCheckIncomplete {
                stderr("note: \(report.pipeline): repeated keys were looked for among the first \(sink.maxKeys) observations only")
            }
            try finish(report)
            return
        }
        let report = try await DatabaseEnvironment(keepRunning: keepDatabase, logger: logger).with { opened in
            let runner = PipelineRunner(fetcher: fetcher, sink: PostgresObservationSink(database: opened.database, onStuckLoad: exitWhenLoadIsStuck), connectors: BuiltinConnectors.registry, logger: logger)
            return try await runner.run(spec, context: RunContext(trigger: "manual", full: full), progress: isTerminal ? printProgress : nil)
        }
        try finish(report)
    }

    func finish(_ report: RunReport) throws {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        printWarnings(report)
        let t = report.totals
        if let failure = report.failure {
            stderr("""
                error: pipeline '\(report.pipeline)' failed at step '\(failure.step.rawValue)'
                ├─ Reason: \(failure.message)
                ├─ State: nothing loaded; the checkpoint stays where it was (run \(report.runID))
                └─ Try: datenwerk run \(pipeline) --dry-run --verbose
                """)
            throw Exit.runFailed
        }
        // What the source noticed: files unchanged since the last run, 304 answers, a connector's remarks.
        for event in t.events { print("\(report.pipeline): \(event)") }
        print("\(report.pipeline): run \(report.runID) ok — \(t.recordsRead) records read, \(t.observations) observations (\(report.load.inserted) new, \(report.load.updated) changed, \(report.load.unchanged) unchanged), \(t.quarantined) quarantined, \(t.skipped) skipped, \(String(format: "%.2f", report.seconds)) s")
        print(accountingLine(t))
    }
}

/// `values: 120 read = 96 loaded + 2 quarantined + 22 skipped (missing_value 20, duplicate 2)`.
func accountingLine(_ t: RunTotals) -> String {
    let skips = t.skips.isEmpty ? "" : " (\(t.skips.summary))"
    if t.valuesUncounted {
        return "values: not counted by this source — \(t.observations) loaded, \(t.quarantinedValues) quarantined, \(t.skipped) skipped\(skips)"
    }
    let balance = t.isBalanced ? "=" : "≠"
    return "values: \(t.valuesRead) read \(balance) \(t.observations) loaded + \(t.quarantinedValues) quarantined + \(t.skipped) skipped\(skips)"
}

func printWarnings(_ report: RunReport) {
    for problem in report.recordProblems {
        stderr("warning: \(report.pipeline): \(problem)")
    }
    let bad = report.totals.quarantined + report.totals.skips[.badRecord]
    if bad > report.recordProblems.count {
        stderr("warning: \(report.pipeline): … \(bad - report.recordProblems.count) more bad records (see datenwerk.quarantine)")
    }
}

@Sendable func printProgress(_ p: RunProgress) {
    let rate = p.seconds > 0 ? Double(p.totals.recordsRead) / p.seconds : 0
    let line = "\r\u{1B}[K\(p.pipeline): \(p.totals.recordsRead) records, \(p.totals.observations) observations, \(p.totals.quarantined) quarantined — \(Int(rate)) records/s"
    FileHandle.standardError.write(Data(line.utf8))
}

func describe(_ item: StagedItem) -> String {
    switch item {
    case .station(let s):
        var at = s.location.map { " at lon \(String(format: "%.6f", $0.longitude)), lat \(String(format: "%.6f", $0.latitude))" + ($0.altitude.map { ", alt \(JSONValue.format($0)) m" } ?? "") } ?? " (no position)"
        if let c = s.sourceCoordinates { at += " (from EPSG:\(c.epsg) \(JSONValue.format(c.x)) \(JSONValue.format(c.y)))" }
        return "station \(s.key) \(s.name ?? "")\(at)"
    case .observation(let o):
        let unit = Vocabulary.property(o.property)?.unit ?? "?"
        // Start and end in UTC, so interval and time-zone mistakes show.
        let time = TimestampParser.formatISO8601(o.phenomenonStart) + (o.phenomenonEnd.map { " → " + TimestampParser.formatISO8601($0) } ?? "")
        return "observation \(o.stationKey) \(o.property) \(time) \(JSONValue.format(o.result)) \(unit)" + (o.quality.map { " quality \($0)" } ?? "")
    case .quarantined(let q):
        return "quarantined \(q.error)"
    }
}

