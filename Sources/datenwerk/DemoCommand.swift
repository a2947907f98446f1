import ArgumentParser
import DatenwerkConnectors
import DatenwerkCore
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkPostgres
import Foundation

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run every example pipeline on SampleData/ and show what landed in the database.",
        discussion: "The embedded PostgreSQL stays running afterwards so you can look with psql; stop it with 'datenwerk db stop'."
    )

    @Option(help: "Folder with the example pipelines.")
    var pipelines = "Pipelines/examples"

    @Flag(help: "Stop the embedded PostgreSQL when done.")
    var stopDatabase = false

    func run() async throws {
        let logger = makeLogger(verbose: false)
        let (specs, problems, _) = loadPipelines([pipelines])
        guard problems == 0, !specs.isEmpty else {
            stderr("error: the example pipelines in \(pipelines) are invalid or missing; nothing was run.")
            throw Exit.invalidConfiguration
        }
        let fetcher = HTTPFetcher()
        defer { Task { try? await fetcher.shutdown() } }
        let (reports, totals, hint) = try await DatabaseEnvironment(keepRunning: !stopDatabase, logger: logger).with { opened in
            let runner = PipelineRunner(fetcher: fetcher, sink: PostgresObservationSink(database: opened.database), connectors: BuiltinConnectors.registry, logger: logger)
            var reports: [RunReport] = []
            for spec in specs {
                reports.append(try await runner.run(spec, trigger: "demo", progress: isTerminal ? printProgress : nil))
                if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            }
            let totals = try await RunHistoryStore(opened.database).totals()
            return (reports, totals, opened.psqlHint)
        }
        print(table(reports))
        print("")
        print("In the database now: \(totals.observations) observations, \(totals.stations) stations, \(totals.quarantine) quarantined records, \(totals.runs) runs.")
        print("")
        print("Look at the data:")
        print("  \(hint)")
        print("  \(RunHistoryStore.exampleQuery)")
        if !stopDatabase { print("Stop the database with: datenwerk db stop") }
        let failed = reports.filter { !$0.succeeded }
        for report in failed {
            stderr("error: pipeline '\(report.pipeline)' failed at step '\(report.failure!.step.rawValue)': \(report.failure!.message)")
        }
        if !failed.isEmpty { throw Exit.runFailed }
    }

    func table(_ reports: [RunReport]) -> String {
        var rows: [[String]] = [["pipeline", "read", "loaded", "new", "quarantined", "seconds", "status"]]
        for r in reports {
            rows.append([
                r.pipeline, String(r.totals.recordsRead), String(r.totals.observations), String(r.load.inserted),
                String(r.totals.quarantined + r.totals.skipped), String(format: "%.2f", r.seconds),
                !r.succeeded ? "FAILED" : r.totals.recordsRead == 0 && !r.totals.events.isEmpty ? "ok, nothing new" : "ok",
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.enumerated().map { index, row in
            let line = row.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
            return index == 0 ? line + "\n" + String(repeating: "-", count: line.count) : line
        }.joined(separator: "\n")
    }
}
