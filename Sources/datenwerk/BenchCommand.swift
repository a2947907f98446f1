import ArgumentParser
import DatenwerkPipeline
import DatenwerkPostgres
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `datenwerk bench`: the full pipeline side by side with what PostgreSQL can do on the same rows (docs/bench.md).
/// Synchronous on purpose: it only starts child processes and waits for them, and those waits must not sit on
/// the two threads of the cooperative pool.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure loads and downloads next to psql \\copy and ogr2ogr on a generated German CSV (release build: make bench).",
        discussion: """
            Uses its own embedded PostgreSQL in --directory (port --pg-port), never DATABASE_URL, and stops it at the
            end unless --keep. Exit 0 unless the loaded data were wrong (MISMATCH lines) or a step failed.
            See docs/bench.md for what each line measures.
            """
    )

    @Option(help: "Normalised observation rows (values; 4 per CSV line).")
    var rows = 1_000_000

    @Option(help: "How many times each step runs (interleaved, each run on a fresh schema).")
    var runs = 3

    @Flag(help: "Print the figures as one JSON object.")
    var json = false

    @Flag(help: "Leave the bench's PostgreSQL running afterwards (and its files).")
    var keep = false

    @Option(help: "Working directory: generated files and the cluster (removed and made again).")
    var directory = "/tmp/datenwerk-bench"

    @Option(help: "Port of the bench's PostgreSQL.")
    var pgPort = 54379

    func validate() throws {
        guard rows >= 4 else { throw ValidationError("--rows must be at least 4") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() throws {
        #if DEBUG
        let build = "debug"
        stderr("""
            !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
            !!! WARNING: this is a DEBUG build — every figure it prints is meaningless.
            !!! Measure with `make bench` (a release build in .build-release).
            !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
            """)
        #else
        let build = "release"
        #endif
        let bench = try Bench(rows: rows, runs: runs, directory: directory, pgPort: pgPort, keep: keep, build: build)
        let output = try bench.measure()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            print(output.text)
        }
        if !output.correct {
            if json { for problem in output.problems { stderr("MISMATCH: \(problem)") } }
            throw ExitCode(1)
        }
    }
}

/// One bench: the files, the cluster, the children, the samples.
final class Bench {
    let dataset: BenchDataset
    let runs: Int
    let directory: String
    let pgPort: Int
    let keep: Bool
    let build: String
    let executable: String
    let psql: String
    var samples: [BenchStep: [BenchSample]] = [:]
    var problems: [String] = []
    var notes: [String] = []
    var csvBytes = 0

    var csvPath: String { directory + "/observations.csv" }
    var normalisedPath: String { directory + "/normalised.copy" }
    var idsPath: String { directory + "/observations-with-ids.copy" }
    var idsBinaryPath: String { directory + "/observations-with-ids.bin" }
    var pipelineDirectory: String { directory + "/pipelines" }
    var pipelinePath: String { pipelineDirectory + "/\(dataset.pipeline).yaml" }
    var clusterRoot: String { directory + "/pg" }
    var socketDirectory: String { clusterRoot + "/socket" }
    /// For children: the bench's cluster, never DATABASE_URL.
    var childEnvironment: [String: String?] {
        ["DATENWERK_PG_ROOT": clusterRoot, "DATENWERK_PG_PORT": String(pgPort), "DATABASE_URL": nil, "DATENWERK_PG_KEEP": nil,
         "DATENWERK_LOG_LEVEL": nil]
    }

    init(rows: Int, runs: Int, directory: String, pgPort: Int, keep: Bool, build: String) throws {
        dataset = BenchDataset(rows: rows)
        self.runs = runs
        self.directory = (directory as NSString).standardizingPath
        self.pgPort = pgPort
        self.keep = keep
        self.build = build
        executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let bin = try? EmbeddedPostgres.findBinaries(ProcessInfo.processInfo.environment["DATENWERK_PG_BIN"])
        psql = bin.map { $0 + "/psql" }.flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil } ?? "psql"
    }

    func progress(_ text: String) { stderr("== " + text) }

    // MARK: The whole bench

    func measure() throws -> BenchOutput {
        if dataset.rows != 0, dataset.rows < 4 * BenchDataset.spanHours {
            notes.append("with fewer than \(4 * BenchDataset.spanHours) rows the series do not reach both DST changes")
        }
        let configuration = EmbeddedPostgres.Configuration(root: clusterRoot, port: pgPort, keepRunning: keep)
        let previous = EmbeddedPostgres(configuration)
        if (try? previous.isRunning()) == true { try previous.shutdown() }
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: pipelineDirectory, withIntermediateDirectories: true)
        chmod(directory, 0o755)

        progress("generating \(dataset.rows) rows (\(dataset.lines) lines, \(dataset.stations) stations, \(dataset.stepMinutes)-minute steps) in \(directory)")
        try generate()

        progress("starting PostgreSQL in \(clusterRoot) on port \(pgPort)")
        let cluster = EmbeddedPostgres(configuration)
        try cluster.start()
        defer { cluster.stop() }
        guard let clusterCPU = ClusterCPU(dataDirectory: cluster.dataDirectory) else {
            throw ChildProcess.Failure(description: "cannot read the postmaster's pid in \(cluster.dataDirectory)")
        }
        // The first `migrate` also creates the database.
        _ = try datenwerk(["migrate"], log: log("migrate", 0))
        for run in 1...runs {
            try measureRun(run, cpu: clusterCPU)
        }
        if keep {
            stderr("the bench's PostgreSQL keeps running: \(cluster.psqlCommand)  (stop: DATENWERK_PG_ROOT=\(clusterRoot) DATENWERK_PG_PORT=\(pgPort) datenwerk db stop)")
        }
        return summary()
    }

    // MARK: Files

    func generate() throws {
        try write(path: csvPath) { out in
            out(dataset.csvHeader)
            for station in 0..<dataset.stations {
                var bytes: [UInt8] = []
                dataset.appendCSV(station: station, to: &bytes)
                out(bytes)
            }
        }
        try write(path: normalisedPath) { out in
            for station in 0..<dataset.stations {
                var bytes: [UInt8] = []
                dataset.appendNormalised(station: station, to: &bytes)
                out(bytes)
            }
        }
        csvBytes = Int((try? FileManager.default.attributesOfItem(atPath: csvPath)[.size] as? NSNumber)??.intValue ?? 0)
        try dataset.pipelineYAML(csvPath: csvPath).write(toFile: pipelinePath, atomically: false, encoding: .utf8)
        try Self.catalog.write(toFile: directory + "/catalog.yaml", atomically: false, encoding: .utf8)
    }

    func write(path: String, _ body: ((([UInt8]) -> Void)) -> Void) throws {
        guard let file = fopen(path, "wb") else { throw ChildProcess.Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        var failed = false
        body { bytes in
            if bytes.withUnsafeBytes({ fwrite($0.baseAddress, 1, $0.count, file) }) != bytes.count { failed = true }
        }
        if fclose(file) != 0 || failed { throw ChildProcess.Failure(description: "cannot write \(path)") }
    }

    static let catalog = """
        version: 1
        title: Datenwerk Benchmark
        description: Erzeugte Daten für datenwerk bench.
        publisher:
          name: Stadt Musterstadt
          url: https://www.musterstadt.example/
          email: opendata@musterstadt.example
          type: LocalAuthority
        languages: [de]
        license: dl-de/by-2-0
        contributor_id: openNRW
        contact:
          name: Open-Data-Team
          email: opendata@musterstadt.example
        issued: 2024-01-15

        """

    // MARK: Children

    func log(_ name: String, _ run: Int) -> String { directory + "/\(name)-\(run).log" }

    /// Runs psql with `arguments` (after the connection) and fails on a non-zero exit.
    @discardableResult
    func psql(_ arguments: [String], log path: String) throws -> ChildProcess.Result {
        let result = try ChildProcess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", String(pgPort), "-U", "datenwerk", "-d", "datenwerk"] + arguments,
            environment: ["PGOPTIONS": nil], outputPath: path)
        guard result.status == 0 else {
            throw ChildProcess.Failure(description: "psql \(arguments.joined(separator: " ")) failed (exit \(result.status)):\n\(result.output)")
        }
        return result
    }

    /// One SQL statement through psql; its rows unaligned, `|` between fields.
    func query(_ sql: String, log path: String) throws -> [[String]] {
        let result = try psql(["-A", "-t", "-F", "|", "-c", sql], log: path)
        return result.output.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
    }

    func datenwerk(_ arguments: [String], log path: String) throws -> ChildProcess.Result {
        let result = try ChildProcess.run([executable] + arguments, environment: childEnvironment, outputPath: path)
        guard result.status == 0 else {
            throw ChildProcess.Failure(description: "datenwerk \(arguments.joined(separator: " ")) failed (exit \(result.status)):\n\(result.output)")
        }
        return result
    }

    /// `\copy` wants its statement on one line.
    static func oneLine(_ sql: String) -> String {
        sql.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    /// Times `body`, which returns the client process's result, with the cluster's CPU around it.
    @discardableResult
    func timed(_ step: BenchStep, cpu: ClusterCPU, bytes: Int = 0, _ body: () throws -> ChildProcess.Result) rethrows -> ChildProcess.Result {
        let backends = Set(cpu.children().map(\.pid))
        let before = cpu.seconds()
        let result = try body()
        cpu.settle(after: backends)
        let postgres = cpu.seconds() - before
        samples[step, default: []].append(BenchSample(wallSeconds: result.wallSeconds, clientCPU: result.cpuSeconds, postgresCPU: postgres, peakRSS: result.maxRSS, bytes: bytes))
        return result
    }

    // MARK: One run

    func measureRun(_ run: Int, cpu: ClusterCPU) throws {
        let tag = "run \(run)/\(runs)"
        progress("\(tag): fresh schema (drop, migrate)")
        try psql(["-c", BenchSQL.dropDatenwerk], log: log("reset", run))
        _ = try datenwerk(["migrate"], log: log("migrate", run))

        progress("\(tag): (a) psql \\copy of the normalised rows into a plain table")
        try psql(["-c", BenchSQL.createPlain], log: log("plain-create", run))
        try settle(run, "a")
        try timed(.plainCopy, cpu: cpu) {
            try psql(["-c", "\\copy \(BenchSQL.plainTable) FROM '\(normalisedPath)'"], log: log("a-copy", run))
        }

        progress("\(tag): (b) datenwerk run (first load)")
        try settle(run, "b")
        let first = try timed(.firstLoad, cpu: cpu) { try datenwerk(["run", pipelinePath], log: log("b-run", run)) }
        check(first.output, run: run, step: "(b) first load", new: dataset.rows, changed: 0)
        try verify(run: run)

        progress("\(tag): (c) datenwerk run again (same input)")
        try settle(run, "c")
        let again = try timed(.rerun, cpu: cpu) { try datenwerk(["run", pipelinePath], log: log("c-run", run)) }
        checkSkipped(again.output, run: run, step: "(c) re-run")

        // The same re-run when the file is not known to be unchanged (another file with the same rows, or
        // `--full`): every row is read, normalised and compared with the stored one.
        progress("\(tag): (c′) datenwerk run --full (same input, every row compared)")
        try settle(run, "c2")
        let full = try timed(.rerunFull, cpu: cpu) { try datenwerk(["run", "--full", pipelinePath], log: log("c2-run", run)) }
        check(full.output, run: run, step: "(c′) re-run --full", new: 0, changed: 0)

        progress("\(tag): (e) psql \\copy of the rows with ids into an empty copy of observations")
        let key = try query(BenchSQL.observationKey, log: log("e-key", run)).first?.first ?? ""
        let columns = try query(BenchSQL.copyColumns, log: log("e-columns", run)).first?.first ?? ""
        try measureCopyWithIDs(.idsCopy, run: run, cpu: cpu, columns: columns, key: key)
        // (e′): the loader sends its rows in the binary COPY format (docs/loading.md), so the limit for it is the
        // same rows in that format.
        progress("\(tag): (e′) the same rows in the binary COPY format")
        try measureCopyWithIDs(.idsCopyBinary, run: run, cpu: cpu, columns: columns, key: key)

        try measureDownloads(run, cpu: cpu)
    }

    /// (e) and (e′): `observations` as (b) left it, dumped in key order with its ids resolved (text for (e),
    /// binary for (e′)), and copied into a fresh empty copy of the table, which must then hold every row.
    func measureCopyWithIDs(_ step: BenchStep, run: Int, cpu: ClusterCPU, columns: String, key: String) throws {
        let binary = step == .idsCopyBinary
        let (path, format, name) = binary ? (idsBinaryPath, " WITH (FORMAT binary)", "(e′)") : (idsPath, "", "(e)")
        let tag = step.rawValue
        try psql(["-c", "\\copy (\(Self.oneLine(BenchSQL.dump(columns: columns, orderBy: key)))) TO '\(path)'\(format)"], log: log("\(tag)-dump", run))
        try psql(["-c", BenchSQL.createObservationsCopy], log: log("\(tag)-create", run))
        try settle(run, tag)
        try timed(step, cpu: cpu) {
            try psql(["-c", "\\copy \(BenchSQL.observationsCopy) (\(columns)) FROM '\(path)'\(format)"], log: log("\(tag)-copy", run))
        }
        let copied = try query(BenchSQL.count(BenchSQL.observationsCopy), log: log("\(tag)-count", run)).first?.first.flatMap { Int($0) } ?? -1
        if copied != dataset.rows {
            problems.append("run \(run) \(name): the copy of observations holds \(copied) rows, not \(dataset.rows)")
        }
    }

    /// Untimed, before each timed step: what the steps before left for the background — autovacuum of the rows
    /// they loaded (10M rows into (a)'s plain table made autovacuum scan it during (b)), their dirty buffers and
    /// WAL — is done now, so the step's time and the cluster's CPU around it are its own. Every step then starts
    /// from the steady state a database reaches some minutes after a load.
    func settle(_ run: Int, _ step: String) throws {
        try psql(BenchSQL.settle.flatMap { ["-c", $0] }, log: log("settle-\(step)", run))
    }

    /// (b)/(c): the run's summary line must say `new` new and `changed` changed, nothing quarantined.
    func check(_ output: String, run: Int, step: String, new: Int, changed: Int) {
        guard let line = output.split(separator: "\n").first(where: { $0.contains(" ok — ") }),
              let match = line.firstMatch(of: #/(\d+) observations \((\d+) new, (\d+) changed/#)
        else {
            problems.append("run \(run) \(step): no summary line in the output of datenwerk run:\n\(output)")
            return
        }
        let observations = Int(match.1) ?? -1, inserted = Int(match.2) ?? -1, updated = Int(match.3) ?? -1
        if observations != dataset.rows || inserted != new || updated != changed {
            problems.append("run \(run) \(step): expected \(dataset.rows) observations (\(new) new, \(changed) changed), the run says: \(line)")
        }
        if let quarantined = line.firstMatch(of: #/(\d+) quarantined/#), Int(quarantined.1) != 0 {
            problems.append("run \(run) \(step): \(quarantined.1) records quarantined (none expected): \(line)")
        }
    }

    /// (c): the run must say the file is unchanged since the last successful run, and read nothing.
    func checkSkipped(_ output: String, run: Int, step: String) {
        let lines = output.split(separator: "\n")
        if !lines.contains(where: { $0.contains("unchanged since the last successful run") })
            || !lines.contains(where: { $0.contains(" ok — 0 records read, 0 observations (0 new, 0 changed") }) {
            problems.append("run \(run) \(step): expected the unchanged file to be skipped, the run says:\n\(output)")
        }
    }

    /// After (b): the loaded observations equal the generated normalised rows, property by property.
    func verify(run: Int) throws {
        let lines = try query(BenchSQL.verify, log: log("b-verify", run))
        let each = dataset.rows / 4
        var seen = Set<String>()
        for fields in lines where fields.count >= 8 {
            let property = fields[0]
            seen.insert(property)
            let numbers = fields[1...5].map { Int($0) ?? -1 }
            let (expected, loaded, missing, unexpected, different) = (numbers[0], numbers[1], numbers[2], numbers[3], numbers[4])
            if expected != each || loaded != each || missing != 0 || unexpected != 0 || different != 0 {
                problems.append("run \(run) (b) \(property): expected \(expected) rows, loaded \(loaded); \(missing) missing, \(unexpected) not generated, \(different) with another value; sum expected \(fields[6]), loaded \(fields[7])")
            }
        }
        for property in BenchDataset.properties where !seen.contains(property) {
            problems.append("run \(run) (b) \(property): no rows at all")
        }
    }

    // MARK: (d) downloads

    func measureDownloads(_ run: Int, cpu: ClusterCPU) throws {
        let tag = "run \(run)/\(runs)"
        progress("\(tag): (d) datenwerk serve, downloads against psql \\copy TO and ogr2ogr")
        let serveLog = log("d-serve", run)
        let server = try ChildProcess.start(
            [executable, "serve", "--pipelines", pipelineDirectory, "--catalog", directory + "/catalog.yaml", "--port", "0",
             "--workers", "0", "--no-scheduler"],
            environment: childEnvironment, outputPath: serveLog)
        var stopped = false
        defer {
            if !stopped {
                server.signal(SIGTERM)
                _ = server.wait()
            }
        }
        var port: Int?
        for _ in 0..<600 {
            let text = (try? String(contentsOfFile: serveLog, encoding: .utf8)) ?? ""
            if let match = text.firstMatch(of: #/listening on http://[^:]+:(\d+)/#) {
                port = Int(match.1)
                break
            }
            if !ProcessMemory.isAlive(server.pid) { break }
            usleep(100_000)
        }
        guard let port else {
            throw ChildProcess.Failure(description: "datenwerk serve did not start:\n\((try? String(contentsOfFile: serveLog, encoding: .utf8)) ?? "")")
        }
        // Statistics as autovacuum leaves them shortly after a load (it never analyzes the partitioned parent itself),
        // so the download and the statements it is compared with are planned alike; not part of a download.
        _ = try psql(["-c", "ANALYZE datenwerk.observations"], log: log("d-analyze", run))
        try settle(run, "d")
        // The dataset's facts are computed once per change, as the first request would; not part of a download.
        _ = try HTTPDownload.get(port: port, path: "/catalog.ttl")

        for (step, format) in [(BenchStep.csvDownload, "csv"), (.geojsonDownload, "geojson")] {
            do {
                try download(step, format: format, port: port, server: server, run: run, cpu: cpu)
            } catch {
                usleep(500_000)
                let died = !ProcessMemory.isAlive(server.pid)
                problems.append("run \(run) (d) GET observations.\(format): \(error)\(died ? " — datenwerk serve crashed, see \(serveLog)" : "")")
                if died { break }
            }
            do {
                try compare(step, run: run, cpu: cpu)
            } catch {
                notes.append("FAILED: run \(run) \(step == .csvDownload ? BenchStep.copyTo.title : BenchStep.ogr2ogr.title): \(error)")
            }
        }
        server.signal(SIGTERM)
        let end = server.wait()
        stopped = true
        if end.status != 0, !problems.contains(where: { $0.contains("datenwerk serve crashed") }) {
            notes.append("run \(run): datenwerk serve exited with \(end.status) on SIGTERM (see \(serveLog))")
        }
    }

    /// The tool the download is compared with: `\\copy (…) TO` after the CSV, `ogr2ogr` after the GeoJSON.
    func compare(_ step: BenchStep, run: Int, cpu: ClusterCPU) throws {
        if step == .csvDownload {
            let sql = Self.oneLine(BenchSQL.download(pipeline: dataset.pipeline))
            try timed(.copyTo, cpu: cpu) {
                try psql(["-c", "\\copy (\(sql)) TO '/dev/null' WITH (FORMAT csv, HEADER)"], log: log("d-copy-to", run))
            }
        } else if let ogr2ogr = Self.which("ogr2ogr") {
            let connection = "PG:host=\(socketDirectory) port=\(pgPort) user=datenwerk dbname=datenwerk"
            try timed(.ogr2ogr, cpu: cpu) {
                let result = try ChildProcess.run(
                    ["/bin/sh", "-c", "exec \"$0\" -f GeoJSON /vsistdout/ \"$1\" -sql \"$2\" >/dev/null", ogr2ogr, connection,
                     Self.oneLine(BenchSQL.downloadWithGeometry(pipeline: dataset.pipeline))],
                    outputPath: log("d-ogr2ogr", run))
                guard result.status == 0 else { throw ChildProcess.Failure(description: "ogr2ogr failed (exit \(result.status)):\n\(result.output)") }
                return result
            }
        } else if !notes.contains(where: { $0.hasPrefix("ogr2ogr") }) {
            notes.append("ogr2ogr not found (Debian: apt-get install gdal-bin); the GeoJSON target is not measured")
        }
    }

    /// One timed GET of the whole dataset from `datenwerk serve`: its CPU, the cluster's, its peak RSS.
    func download(_ step: BenchStep, format: String, port: Int, server: ChildProcess, run: Int, cpu: ClusterCPU) throws {
        ProcessMemory.resetPeak(server.pid)
        let serverBefore = ProcessMemory.cpuSeconds(server.pid)
        let before = cpu.seconds()
        let answer = try HTTPDownload.get(port: port, path: "/datasets/\(dataset.pipeline)/observations.\(format)")
        let postgres = cpu.seconds() - before
        let serverCPU = ProcessMemory.cpuSeconds(server.pid) - serverBefore
        guard answer.status == 200 else { throw ChildProcess.Failure(description: "answered \(answer.status)") }
        guard answer.complete else { throw ChildProcess.Failure(description: "the body broke off after \(answer.bodyBytes) bytes") }
        samples[step, default: []].append(BenchSample(wallSeconds: answer.seconds, clientCPU: serverCPU, postgresCPU: postgres,
                                                      peakRSS: ProcessMemory.peakRSS(server.pid), bytes: answer.bodyBytes))
        // One line per observation after the header line.
        if format == "csv", answer.lines != dataset.rows + 1 {
            problems.append("run \(run) (d) observations.csv has \(answer.lines) lines, not \(dataset.rows + 1) (header + one per observation)")
        }
    }

    static func which(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    // MARK: Figures

    func summary() -> BenchOutput {
        var steps: [StepSummary] = []
        let plain = samples[.plainCopy].flatMap { Spread($0.map(\.wallSeconds)) }?.median
        let ids = samples[.idsCopy].flatMap { Spread($0.map(\.wallSeconds)) }?.median
        for step in BenchStep.allCases {
            guard let list = samples[step], let wall = Spread(list.map(\.wallSeconds)) else { continue }
            let rss = list.compactMap(\.peakRSS).map { Double($0) / 1_048_576 }
            steps.append(StepSummary(
                step: step.rawValue, title: step.title, rows: dataset.rows, wallSeconds: wall,
                rowsPerSecond: Double(dataset.rows) / max(wall.median, 1e-9),
                speedVsPlainCopy: step.isLoad ? plain.map { $0 / max(wall.median, 1e-9) } : nil,
                speedVsIdsCopy: step.isLoad ? ids.map { $0 / max(wall.median, 1e-9) } : nil,
                clientCPU: Spread(list.map(\.clientCPU))!, postgresCPU: Spread(list.map(\.postgresCPU))!,
                peakRSSMB: Spread(rss), bytes: list.map(\.bytes).max().flatMap { $0 > 0 ? $0 : nil }))
        }
        func median(_ step: BenchStep) -> Double? { samples[step].flatMap { Spread($0.map(\.wallSeconds)) }?.median }
        func ratio(_ reference: BenchStep, _ step: BenchStep) -> Double? {
            guard let r = median(reference), let s = median(step), s > 0 else { return nil }
            return r / s
        }
        let targets = [
            BenchTarget(name: "first load (b) vs plain \\copy (a)", required: 0.5, measured: ratio(.plainCopy, .firstLoad)),
            BenchTarget(name: "first load (b) vs \\copy with ids into observations (e)", required: 0.8, measured: ratio(.idsCopy, .firstLoad)),
            BenchTarget(name: "first load (b) vs the same in binary format (e′), the loader's format", required: 0.8, measured: ratio(.idsCopyBinary, .firstLoad)),
            BenchTarget(name: "re-run (c) vs plain \\copy (a)", required: 0.8, measured: ratio(.plainCopy, .rerun)),
            BenchTarget(name: "re-run with --full (c′) vs plain \\copy (a)", required: 0.8, measured: ratio(.plainCopy, .rerunFull)),
            BenchTarget(name: "CSV download vs \\copy (…) TO", required: 0.8, measured: ratio(.copyTo, .csvDownload)),
            BenchTarget(name: "GeoJSON download vs ogr2ogr", required: 5, measured: ratio(.ogr2ogr, .geojsonDownload)),
        ].map { t in
            var t = t
            t.met = t.measured.map { $0 >= t.required }
            return t
        }
        return BenchOutput(build: build, rows: dataset.rows, stations: dataset.stations, stepMinutes: dataset.stepMinutes, csvBytes: csvBytes,
                           runs: runs, steps: steps, targets: targets, correct: problems.isEmpty, problems: problems,
                           notes: notes + ["peak RSS at 10M ≤ 1.2× that at 1M: compare the (b) RSS of two benches (--rows 1000000, --rows 10000000)"])
    }
}
