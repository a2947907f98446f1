import Foundation

/// One measurement of one step in one run.
struct BenchSample: Codable {
    var wallSeconds: Double
    /// CPU of the process doing the client side (psql, `datenwerk run`, `datenwerk serve`, ogr2ogr), seconds.
    var clientCPU: Double
    /// CPU of every PostgreSQL process of the cluster in that time, seconds.
    var postgresCPU: Double
    /// Peak RSS of that client process, bytes (nil when unknown).
    var peakRSS: Int?
    /// Bytes produced (downloads), 0 otherwise.
    var bytes: Int = 0
}

/// The steps, in the order they run and print.
enum BenchStep: String, CaseIterable, Codable {
    case plainCopy = "a"
    case firstLoad = "b"
    case rerun = "c"
    case rerunFull = "c2"
    case idsCopy = "e"
    case idsCopyBinary = "e2"
    case csvDownload = "d1"
    case copyTo = "d2"
    case geojsonDownload = "d3"
    case ogr2ogr = "d4"

    var title: String {
        switch self {
        case .plainCopy: "(a) psql \\copy normalised rows → plain table"
        case .firstLoad: "(b) datenwerk run, first load"
        case .rerun: "(c) datenwerk run, same input again"
        case .rerunFull: "(c′) datenwerk run --full, same input"
        case .idsCopy: "(e) psql \\copy rows with ids → copy of observations"
        case .idsCopyBinary: "(e′) the same in the binary COPY format (the loader's)"
        case .csvDownload: "(d) GET observations.csv (serve)"
        case .copyTo: "(d) psql \\copy (same query) TO, CSV"
        case .geojsonDownload: "(d) GET observations.geojson (serve)"
        case .ogr2ogr: "(d) ogr2ogr -f GeoJSON (same query)"
        }
    }

    var isLoad: Bool { [.plainCopy, .firstLoad, .rerun, .rerunFull, .idsCopy, .idsCopyBinary].contains(self) }
}

/// Median, minimum and maximum of a list of numbers.
struct Spread: Codable {
    var median: Double
    var min: Double
    var max: Double

    init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let n = sorted.count
        median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        min = sorted[0]
        max = sorted[n - 1]
    }
}

/// The figures of one step over all runs.
struct StepSummary: Codable {
    var step: String
    var title: String
    var rows: Int
    var wallSeconds: Spread
    var rowsPerSecond: Double
    /// Median time of (a) ÷ median time of this step: this step's speed as a share of (a)'s.
    var speedVsPlainCopy: Double?
    /// The same against (e), for the loads.
    var speedVsIdsCopy: Double?
    var clientCPU: Spread
    var postgresCPU: Spread
    var peakRSSMB: Spread?
    var bytes: Int?
}

struct BenchTarget: Codable {
    var name: String
    var required: Double
    var measured: Double?
    var met: Bool?
}

struct BenchOutput: Codable {
    var build: String
    var rows: Int
    var stations: Int
    var stepMinutes: Int
    var csvBytes: Int
    var runs: Int
    var steps: [StepSummary]
    var targets: [BenchTarget]
    var correct: Bool
    var problems: [String]
    var notes: [String]
}

extension BenchOutput {
    func step(_ s: BenchStep) -> StepSummary? { steps.first { $0.step == s.rawValue } }

    static func number(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }

    /// A measured ratio beside its threshold: two digits, or more where two would round it across the threshold
    /// (0.797 against 0.8 reads 0.797, not a failing "0.80").
    static func number(_ value: Double, against threshold: Double) -> String {
        var digits = 2
        while digits < 4, let shown = Double(number(value, digits)), (shown >= threshold) != (value >= threshold) { digits += 1 }
        return number(value, digits)
    }

    static func rate(_ value: Double) -> String {
        value >= 1e6 ? String(format: "%.2f M", value / 1e6) : value >= 1e3 ? String(format: "%.1f k", value / 1e3) : String(format: "%.0f", value)
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let count = text.count
        guard count < width else { return text }
        let space = String(repeating: " ", count: width - count)
        return right ? space + text : text + space
    }

    /// The table people read.
    var text: String {
        var out: [String] = []
        if build != "release" {
            out.append("!!! DEBUG BUILD: these figures are meaningless. Run `make bench` (a release build). !!!")
        }
        out.append("datenwerk bench — \(rows) observation rows (\(rows / 4) CSV lines × 4 values, \(stations) station\(stations == 1 ? "" : "s"), \(stepMinutes)-minute steps, CSV \(String(format: "%.1f", Double(csvBytes) / 1e6)) MB), \(runs) run\(runs == 1 ? "" : "s"), \(build) build")
        out.append("median over the runs (min–max); speed vs (a)/(e) = that step's time ÷ this step's time (1.0 = as fast)")
        out.append("")
        let header = [Self.pad("step", 54), Self.pad("seconds", 8, right: true), Self.pad("(min–max)", 15), Self.pad("rows/s", 10, right: true),
                      Self.pad("vs (a)", 7, right: true), Self.pad("vs (e)", 7, right: true), Self.pad("RSS MB", 7, right: true),
                      Self.pad("client CPU", 11, right: true), Self.pad("PG CPU", 7, right: true)]
        out.append(header.joined(separator: " "))
        for s in steps {
            let line = [
                Self.pad(s.title, 54),
                Self.pad(Self.number(s.wallSeconds.median), 8, right: true),
                Self.pad("(\(Self.number(s.wallSeconds.min))–\(Self.number(s.wallSeconds.max)))", 15),
                Self.pad(Self.rate(s.rowsPerSecond), 10, right: true),
                Self.pad(s.speedVsPlainCopy.map { Self.number($0) } ?? "", 7, right: true),
                Self.pad(s.speedVsIdsCopy.map { Self.number($0) } ?? "", 7, right: true),
                Self.pad(s.peakRSSMB.map { Self.number($0.median, 0) } ?? "-", 7, right: true),
                Self.pad(Self.number(s.clientCPU.median), 11, right: true),
                Self.pad(Self.number(s.postgresCPU.median), 7, right: true),
            ]
            out.append(line.joined(separator: " "))
        }
        out.append("")
        out.append("where the time went (median seconds; the machine has \(ProcessInfo.processInfo.activeProcessorCount) cores):")
        for step in [BenchStep.firstLoad, .rerun, .rerunFull, .csvDownload, .geojsonDownload] {
            guard let s = self.step(step) else { continue }
            let busy = s.clientCPU.median + s.postgresCPU.median
            let client = step.isLoad ? "datenwerk run" : "datenwerk serve"
            out.append("  \(s.title): wall \(Self.number(s.wallSeconds.median)) = \(client) CPU \(Self.number(s.clientCPU.median)) + PostgreSQL CPU \(Self.number(s.postgresCPU.median)) (together \(Self.number(100 * busy / max(s.wallSeconds.median, 1e-9), 0)) % of wall)")
        }
        out.append("")
        out.append("acceptance targets of issue 13 (information only; the bench fails only on wrong data):")
        for t in targets {
            let mark = t.met.map { $0 ? "✓" : "✗" } ?? "?"
            out.append("  \(mark) \(t.name): \(t.measured.map { Self.number($0, against: t.required) } ?? "not measured") (needs ≥ \(Self.number(t.required, 1)))")
        }
        for note in notes { out.append("note: \(note)") }
        out.append("")
        if correct {
            out.append("correctness: ok — every run loaded exactly the generated rows; every re-run found the file unchanged and read nothing, and every re-run with --full reported 0 new and 0 changed")
        } else {
            for problem in problems { out.append("MISMATCH: \(problem)") }
        }
        return out.joined(separator: "\n")
    }
}
